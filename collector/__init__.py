"""The collector: meter sources -> points -> spool -> InfluxDB."""
