"""Reference data (meter models, tariffs, emission factors, targets), installed as package data ``plantems.refdata``."""
