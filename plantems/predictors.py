"""Daily predictor series for energy baselines (relevant variables besides tonnage), from CSV files.

A series is configured in ``measures.yaml`` under ``predictor_series`` (plantems/measures.py): a CSV
with a ``date`` column and one value column per day, e.g. the outdoor daily mean temperature, the
share of a product family in the day's output, or the shifts worked. A temperature column may be
turned into degree-days against a base temperature (ISO 50006 lists degree-days as the usual
weather variable; a daily baseline reads one value a day):

- cooling degree-days CDD = max(T_mean - base_c, 0);
- heating degree-days HDD = max(base_c - T_mean, 0).

Lines starting with ``#`` are comments (say where the data come from). Reading refuses what a
regression would silently misread: a missing column, a bad or repeated
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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}:1 series {series_id!r}: cannot read the file: {exc.strerror}") from None
    # lines starting with '#' are comments (a series' source belongs in its file); numbers stay the file's own
    rows = [(number, row) for number, row in enumerate(csv.reader(text.splitlines()), start=1)
            if row and not row[0].lstrip().startswith("#")]
    if not rows:
        raise ValueError(f"{path}:1 series {series_id!r}: no header: the file needs date,{column} and its rows")
    header_line, header = rows[0]
    missing = [name for name in ("date", column) if name not in header]
    if missing:
        raise ValueError(f"{path}:{header_line} series {series_id!r}: columns {missing} missing; the header has "
                         f"{header}")
    date_at, value_at = header.index("date"), header.index(column)
    values: dict[date, float] = {}
    first_line: dict[date, int] = {}
    for number, row in rows[1:]:
        where = f"{path}:{number} series {series_id!r}"
        cells = row + [""] * (len(header) - len(row))
        day_text, value_text = cells[date_at].strip(), cells[value_at].strip()
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise ValueError(f"{where}: date = {day_text!r}: must be an ISO date YYYY-MM-DD") from None
        if day in first_line:
            raise ValueError(f"{where}: date = {day}: given twice (first on line {first_line[day]})")
        try:
            value = float(value_text)
        except ValueError:
            raise ValueError(f"{where}: {column} = {value_text!r}: must be a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{where}: {column} = {value_text!r}: must be finite")
        if valid_range is not None and not valid_range[0] <= value <= valid_range[1]:
            raise ValueError(f"{where}: {column} = {value:g}: outside the series' valid range "
                             f"[{valid_range[0]:g}, {valid_range[1]:g}]")
        first_line[day] = number
        values[day] = value if degree is None else degree_days(value, kind=degree[0], base_c=degree[1])
    if not values:
        raise ValueError(f"{path}:1 series {series_id!r}: no rows: a predictor series needs at least its "
                         "baseline's days")
    return values
