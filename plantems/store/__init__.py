"""The only InfluxDB I/O of plantems' data: the site-scoped query layer (``query``) and the
window replacement of derived points (``window``). Writers still live in ``plantems.influx``."""

from plantems.store.query import SiteScope
from plantems.store.window import replace_window

__all__ = ["SiteScope", "replace_window"]
