"""Daily predictor series for energy baselines (relevant variables besides tonnage), from CSV files.

A series is configured in ``measures.yaml`` under ``predictor_series`` (plantems/measures.py): a CSV
with a ``date`` column and one value column per day, e.g. the outdoor daily mean temperature, the
share of a product family in the day's output, or the shifts worked. A temperature column may be
turned into degree-days against a base temperature (ISO 50006 lists degree-days as the usual
weather variable; a daily baseline reads one value a day):

- cooling degree-days CDD = max(T_mean - base_c, 0);
- heating degree-days HDD = max(base_c - T_mean, 0).

Reading refuses what a regression would silently misread: a missing column, a bad or repeated
date, a non-finite value or one outside the series' configured range; each error reads
``file:line series 'id': column = value: rule``. A day absent from the file is simply absent (the
baseline leaves that day out and says how many).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Literal

__all__ = ["DegreeDays", "degree_days", "read_series_csv"]

DegreeDays = Literal["cooling", "heating"]


def degree_days(mean_temperature_c: float, *, kind: DegreeDays, base_c: float) -> float:
    """One day's cooling or heating degree-days (K·d) from its mean outdoor temperature."""
    excess = mean_temperature_c - base_c
    return max(excess, 0.0) if kind == "cooling" else max(-excess, 0.0)


def read_series_csv(path: Path, *, series_id: str, column: str, valid_range: tuple[float, float] | None = None,
                    degree: tuple[DegreeDays, float] | None = None) -> Mapping[date, float]:
    """The daily values of ``column`` (degree-days when ``degree`` = (kind, base_c) is given).

    ``valid_range`` bounds the raw column (e.g. -50..50 for a temperature, 0..1 for a share).
    Raises ValueError naming the file, the line, the series, the value and the rule."""
    where = f"{path}:1 series {series_id!r}"
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{where}: cannot read the file: {exc.strerror}") from None
    values: dict[date, float] = {}
    first_line: dict[date, int] = {}
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [name for name in ("date", column) if name not in header]
        if missing:
            raise ValueError(f"{where}: columns {missing} missing; the header has {header}")
        for number, row in enumerate(reader, start=2):
            values_at = f"{path}:{number} series {series_id!r}"
            try:
                day = date.fromisoformat((row["date"] or "").strip())
            except ValueError:
                raise ValueError(f"{values_at}: date = {row['date']!r}: must be an ISO date YYYY-MM-DD") from None
            if day in first_line:
                raise ValueError(f"{values_at}: date = {day}: given twice (first on line {first_line[day]})")
            text = (row[column] or "").strip()
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{values_at}: {column} = {text!r}: must be a number") from None
            if not math.isfinite(value):
                raise ValueError(f"{values_at}: {column} = {text!r}: must be finite")
            if valid_range is not None and not valid_range[0] <= value <= valid_range[1]:
                raise ValueError(f"{values_at}: {column} = {value:g}: outside the series' valid range "
                                 f"[{valid_range[0]:g}, {valid_range[1]:g}]")
            first_line[day] = number
            values[day] = value if degree is None else degree_days(value, kind=degree[0], base_c=degree[1])
    if not values:
        raise ValueError(f"{where}: no rows: a predictor series needs at least its baseline's days")
    return values
