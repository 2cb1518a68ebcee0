"""Meter readings -> line-protocol lines (pure).

A reading becomes one wide line per measurement (all quantities of a poll share
one timestamp), with a counters-only copy for the spool's drop policy.
"""

from __future__ import annotations

from collections.abc import Mapping

from plantems.lineproto import Point, format_line, series_key
from plantems.schema import COUNTER_FIELDS, ELECTRICAL, FUEL, FUEL_FIELDS, Tag

__all__ = ["ReadingFormatter", "status_line"]


class ReadingFormatter:
    """Formats one device's readings on the poll hot path.

    A reading is one wide line per measurement, plus a counters-only copy that the spool
    falls back to when it must shed instantaneous values. Series keys are escaped once per
    device. Field keys are the schema's canonical names (``[a-z0-9_]``, nothing to escape),
    and the decoder only hands over finite floats, so values are written with ``repr``
    directly (format_fields re-checks both and is 3x slower).
    """

    def __init__(self, tags: Mapping[str, str]) -> None:
        self._keys = {m: series_key(m, tags) for m in (ELECTRICAL, FUEL)}

    def lines(self, time_ns: int, values: Mapping[str, float]) -> list[tuple[str, str | None]]:
        """``(line, counters_only_line or None)`` per measurement present in ``values``."""
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for field, value in values.items():
            instant, counters = groups.setdefault(FUEL if field in FUEL_FIELDS else ELECTRICAL, ([], []))
            (counters if field in COUNTER_FIELDS else instant).append(f"{field}={value!r}")
        out = []
        for measurement, (instant, counters) in groups.items():
            key = self._keys[measurement]
            counter_fields = ",".join(counters)
            line = f"{key} {','.join(instant + counters)} {time_ns}"
            out.append((line, f"{key} {counter_fields} {time_ns}" if counters else None))
        return out


def status_line(measurement: str, *, site: str, source: str, time_ns: int,
                fields: Mapping[str, float]) -> str:
    return format_line(Point(measurement, {Tag.SITE: site, Tag.SOURCE: source}, fields, time_ns))
