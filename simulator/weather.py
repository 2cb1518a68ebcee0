"""A synthetic daily mean outdoor temperature for Changsha (pure, deterministic), and the demo's CSV of it.

NOT observed data: a seasonal cycle fitted by eye to Changsha's monthly climate normals (about 4.6 °C
in January, 29 °C in July, 18.6 °C in October) plus a day-to-day anomaly of up to ±2.5 K from a hash
of the day, so the demo's baselines have weather to normalise for. ``config/weather.changsha.csv``
is this function's output (``python -m plantems.simulator.weather > config/weather.changsha.csv``; a
test checks the two agree). Replace it with a weather service's or the site's own station's record
before a report relies on it.
"""

from __future__ import annotations

import math
import sys
import zlib
from datetime import date, timedelta
from typing import Final, TextIO

import numpy as np

from plantems.simulator.profiles import unit_hash

__all__ = ["CSV_FIRST", "CSV_LAST", "changsha_mean_temperature_c", "write_csv"]

_SEED: Final = zlib.crc32(b"weather-changsha")
ANNUAL_MEAN_C: Final = 17.4
HALF_RANGE_K: Final = 12.4  # half the difference between the warmest and the coldest month
COLDEST_DAY_OF_YEAR: Final = 20
ANOMALY_K: Final = 2.5
CSV_FIRST, CSV_LAST = date(2025, 1, 1), date(2028, 12, 31)


def changsha_mean_temperature_c(day: date) -> float:
    """The synthetic daily mean temperature (°C, one decimal, as a weather record gives it)."""
    season = ANNUAL_MEAN_C - HALF_RANGE_K * math.cos(2 * math.pi * (day.timetuple().tm_yday - COLDEST_DAY_OF_YEAR)
                                                     / 365.25)
    index = np.array([(day - date(1970, 1, 1)).days], dtype=np.int64)
    anomaly = ANOMALY_K * (2 * float(unit_hash(_SEED, index)[0]) - 1)
    return round(season + anomaly, 1)


def write_csv(out: TextIO, first: date = CSV_FIRST, last: date = CSV_LAST) -> None:
    out.write("# synthetic Changsha daily mean temperature for the plantems demo (simulator/weather.py): "
              "NOT observed data\n")
    out.write("date,temp_mean_c\n")
    day = first
    while day <= last:
        out.write(f"{day.isoformat()},{changsha_mean_temperature_c(day):.1f}\n")
        day += timedelta(days=1)


if __name__ == "__main__":
    write_csv(sys.stdout)
