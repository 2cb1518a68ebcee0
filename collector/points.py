"""Meter readings -> line-protocol lines (pure).

A reading becomes one point per measurement, written as two lines that share
series and timestamp: instantaneous fields and counter fields. InfluxDB merges
them into one wide point; the spool can then drop instantaneous lines before
counters when it is full.
"""

from __future__ import annotations

from collections.abc import Mapping

from plantems.lineproto import Point, format_line
from plantems.schema import COUNTER_FIELDS, ELECTRICAL, FUEL, FUEL_FIELDS, Tag

__all__ = ["reading_lines", "status_line"]


def reading_lines(tags: Mapping[str, str], time_ns: int, values: Mapping[str, float]) -> list[tuple[str, bool]]:
    """``(line, is_counter)`` pairs for one device reading; empty groups are left out."""
    groups: dict[tuple[str, bool], dict[str, float]] = {}
    for field, value in values.items():
        measurement = FUEL if field in FUEL_FIELDS else ELECTRICAL
        groups.setdefault((measurement, field in COUNTER_FIELDS), {})[field] = value
    return [(format_line(Point(measurement, tags, fields, time_ns)), counter)
            for (measurement, counter), fields in groups.items()]


def status_line(measurement: str, *, site: str, source: str, time_ns: int,
                fields: Mapping[str, float]) -> str:
    return format_line(Point(measurement, {Tag.SITE: site, Tag.SOURCE: source}, fields, time_ns))
