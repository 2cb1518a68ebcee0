"""Modbus source: planner and decoder (pure), client (the only pymodbus import), poller."""
