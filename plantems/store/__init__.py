"""The only InfluxDB I/O of plantems' data: the site-scoped query layer (``query``) and the
window replacement of derived points (``window``). Writers still live in ``plantems.influx``."""
