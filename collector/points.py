"""Meter readings -> line-protocol lines (pure).

A reading becomes one wide line per measurement: all quantities of a poll share
one timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping

from plantems.lineproto import Point, format_line, series_key
from plantems.schema import AIR, ELECTRICAL, FUEL, PRODUCTION, Field, Tag, measurement_of

__all__ = ["ReadingFormatter", "status_line"]

_MEASUREMENT = {f.value: measurement_of(f.value) for f in Field}  # a dict lookup on the poll hot path


class ReadingFormatter:
    """Formats one device's readings on the poll hot path: one wide line per measurement.

    Series keys are escaped once per device. Field keys are the schema's canonical names
    (``[a-z0-9_]``, nothing to escape), and the decoder only hands over finite floats, so
    values are written with ``repr`` directly (format_fields re-checks both; 3x slower).
    """

    def __init__(self, tags: Mapping[str, str]) -> None:
        self._keys = {m: series_key(m, tags) for m in (ELECTRICAL, FUEL, AIR)}
        # production is tagged by line (the device id) and site only: the schema's production series
        self._keys[PRODUCTION] = series_key(PRODUCTION, {Tag.SITE.value: tags[Tag.SITE.value],
                                                          Tag.LINE.value: tags[Tag.DEVICE.value]})

    def lines(self, time_ns: int, values: Mapping[str, float]) -> list[str]:
        groups: dict[str, list[str]] = {}
        for field, value in values.items():
            groups.setdefault(_MEASUREMENT.get(field, ELECTRICAL), []).append(f"{field}={value!r}")
        return [f"{self._keys[m]} {','.join(fields)} {time_ns}" for m, fields in groups.items()]


def status_line(measurement: str, *, site: str, source: str, time_ns: int,
                fields: Mapping[str, float]) -> str:
    return format_line(Point(measurement, {Tag.SITE: site, Tag.SOURCE: source}, fields, time_ns))
