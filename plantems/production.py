"""Production tonnage from CSV (``date,line,output_t``) -> `production` line protocol (pure but for reading).

Every row's ``line`` must be one of the plant's ``production_lines``: an unknown or misspelt line
would be stored as a tag no intensity ever reads, and its tonnes silently lost."""

from __future__ import annotations

import csv
import math
from datetime import date, datetime
from pathlib import Path

from plantems.config import PlantConfig
from plantems.lineproto import Point, format_line
from plantems.schema import PRODUCTION, Field, Tag

__all__ = ["read_production_csv"]


def read_production_csv(path: Path, plant: PlantConfig) -> list[str]:
    """One point per row at the local midnight of its date; ValueError names the line and the rule."""
    lines = []
    known = [line.id for line in plant.production_lines]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if set(reader.fieldnames or []) != {"date", "line", "output_t"}:
            raise ValueError(f"{path}:1: columns must be date,line,output_t; found {reader.fieldnames}")
        for number, row in enumerate(reader, start=2):
            try:
                day = date.fromisoformat(row["date"])
                tonnes = float(row["output_t"])
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
            if not math.isfinite(tonnes) or tonnes < 0:
                raise ValueError(f"{path}:{number}: output_t {row['output_t']!r} must be a non-negative number")
            line = row["line"].strip()
            if not line:
                raise ValueError(f"{path}:{number}: line is empty")
            if line not in known:
                raise ValueError(f"{path}:{number}: line {line!r} is not a production line of site "
                                 f"{plant.site.id!r}; defined under production_lines: {known or 'none'}")
            midnight = datetime(day.year, day.month, day.day, tzinfo=plant.site.tz)
            lines.append(format_line(Point(PRODUCTION, {Tag.SITE.value: plant.site.id, Tag.LINE.value: line},
                                           {Field.OUTPUT_T.value: tonnes}, int(midnight.timestamp()) * 10**9)))
    return lines
