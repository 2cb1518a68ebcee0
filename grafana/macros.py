"""Grafana's InfluxQL macros as Grafana expands them, for the tests and ``bench/bench_dashboards.py``
(Grafana itself cannot run here): ``$timeFilter`` in epoch milliseconds, ``$__interval`` from the
range over the panel's width in pixels (Grafana's ``maxDataPoints``), rounded to Grafana's steps and
raised to the panel's minimum interval or the datasource's ``timeInterval``, and template variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

__all__ = ["DATASOURCE_MIN_INTERVAL_S", "PANEL_WIDTH_PX", "expand", "expand_target", "interval_s", "interval_text",
           "parse_duration_s"]

PANEL_WIDTH_PX: Final = 1600  # a full-width panel on a wide screen: Grafana's maxDataPoints
DATASOURCE_MIN_INTERVAL_S: Final = 1.0  # the provisioned datasources' timeInterval ("1s")

# Grafana's roundInterval (public/app/core/utils/kbn / @grafana/data rangeutil): (below ms, result ms)
_ROUND_MS: Final = ((15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000),
                    (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000),
                    (45_000, 30_000), (90_000, 60_000), (210_000, 120_000), (450_000, 300_000),
                    (870_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000), (2_700_000, 1_800_000),
                    (5_400_000, 3_600_000), (9_000_000, 7_200_000), (16_200_000, 10_800_000),
                    (24_300_000, 21_600_000), (86_400_000, 43_200_000), (604_800_000, 86_400_000),
                    (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000))
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def parse_duration_s(text: str) -> float:
    """Seconds in a Grafana duration such as ``1m`` or ``30d``."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not match:
        raise ValueError(f"duration {text!r}: expected a number and one of {', '.join(_UNIT_S)}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def _round_ms(interval_ms: float) -> float:
    return next((result for below, result in _ROUND_MS if interval_ms < below), 31_536_000_000)


def interval_s(range_s: float, *, width_px: int = PANEL_WIDTH_PX, min_interval: str = "") -> float:
    """``$__interval`` in seconds: the range over the width, rounded, at least the minimum interval."""
    low_s = max(DATASOURCE_MIN_INTERVAL_S, parse_duration_s(min_interval) if min_interval else 0.0)
    return max(_round_ms(range_s * 1000 / width_px) / 1000, low_s)


def interval_text(seconds: float) -> str:
    """An InfluxQL duration for ``seconds`` in the largest whole unit (``1800`` -> ``30m``)."""
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNIT_S[unit] and seconds % _UNIT_S[unit] == 0:
            return f"{int(seconds // _UNIT_S[unit])}{unit}"
    return f"{round(seconds * 1000)}ms"


def expand_target(panel: Mapping[str, Any], query: str, start: datetime, end: datetime,
                  variables: Mapping[str, str]) -> str:
    """A panel's query with the panel's minimum interval and max data points (if below the width) applied."""
    width_px = min(PANEL_WIDTH_PX, int(panel.get("maxDataPoints") or PANEL_WIDTH_PX))
    return expand(query, start, end, variables, width_px=width_px, min_interval=str(panel.get("interval") or ""))


def expand(query: str, start: datetime, end: datetime, variables: Mapping[str, str], *,
           width_px: int = PANEL_WIDTH_PX, min_interval: str = "") -> str:
    """The query as Grafana sends it; a macro or variable left unexpanded is an error."""
    from_ms, to_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    text = query.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    text = text.replace("${__from}", str(from_ms)).replace("${__to}", str(to_ms))  # the range's ends, epoch ms
    step_s = interval_s((end - start).total_seconds(), width_px=width_px, min_interval=min_interval)
    text = text.replace("$__interval", interval_text(step_s))
    for name, value in sorted(variables.items(), key=lambda item: -len(item[0])):
        text = text.replace(f"${name}", value)
    if re.search(r"\$[A-Za-z_{]", text):
        raise ValueError(f"unexpanded macro or variable in {text}")
    return text
