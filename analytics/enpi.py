"""Ratio EnPIs per production line and per site, by day and by month (pure).

Reads each entity's (a line's or the site's) energy by carrier, its output and its emissions for a
day; returns kWh/t (electricity), m3/t (natural gas), kgce/t (all carriers in kilograms of standard
coal equivalent, GB/T 2589) and t CO2e/t. A month is the sum of its days' energy, output and
emissions, then divided: a month's EnPI is never an average of daily ratios (a low-output day
would weigh as much as a full one). A period with no output has no ratio (None), never infinity.

Standard coal (shared/domain.md section 10): 1 kgce = 29,307.6 kJ. 当量值 (calorific equivalent)
is the primary series: electricity 0.1229 kgce/kWh (3.6 MJ / 29.3076 MJ). 等价值 (primary-energy
equivalent) takes the previous year's coal consumption of power generation: a second series with
its own coefficient, year and source, never mixed with the first. Natural gas: prefer the
supplier's lower heating value (``kgce_per_m3_from_lhv``) over the Annex A table values.

Ratio EnPIs rise when output falls because of fixed load; report the baseline's intercept beside
them (analytics/baseline.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

__all__ = [
    "CALORIFIC_ELECTRICITY_KGCE_PER_KWH",
    "KJ_PER_KGCE",
    "CoalCoefficients",
    "DayUse",
    "Enpi",
    "compute_enpis",
    "kgce_per_m3_from_lhv",
]

KJ_PER_KGCE = 29_307.6  # 7,000 kcal, low-heat basis
CALORIFIC_ELECTRICITY_KGCE_PER_KWH = 0.1229  # GB/T 2589 当量值 (3,600 kJ / 29,307.6 kJ, as the standard rounds it)
# GB/T 2589-2008 Annex A, as reproduced in DB43/T 612-2015: oil-field and gas-field natural gas
NATURAL_GAS_OIL_FIELD_KGCE_PER_M3 = 1.3300
NATURAL_GAS_GAS_FIELD_KGCE_PER_M3 = 1.2143

Period = Literal["day", "month"]
Basis = Literal["calorific", "primary"]  # 当量值, 等价值


def kgce_per_m3_from_lhv(lhv_kj_per_m3: float) -> float:
    """A gas's standard-coal coefficient from its lower heating value (the supplier's figure)."""
    if not 20_000 <= lhv_kj_per_m3 <= 45_000:
        raise ValueError(f"natural gas LHV {lhv_kj_per_m3} kJ/m3 is outside 20,000-45,000 kJ/m3 "
                         "(GB/T 2589 range about 32,000-39,000): check the unit (kJ, not kcal or MJ)")
    return lhv_kj_per_m3 / KJ_PER_KGCE


@dataclass(frozen=True)
class CoalCoefficients:
    """One basis of standard-coal conversion, cited: every kgce figure names the one it used."""

    basis: Basis
    electricity_kgce_per_kwh: float
    gas_kgce_per_m3: float
    source: str
    year: int | None = None  # 等价值: the generation coal-consumption year

    def __post_init__(self) -> None:
        if not 0 < self.electricity_kgce_per_kwh < 1 or not 0 < self.gas_kgce_per_m3 < 2:
            raise ValueError(f"{self.basis} coefficients {self.electricity_kgce_per_kwh} kgce/kWh, "
                             f"{self.gas_kgce_per_m3} kgce/m3 are implausible (expected ~0.12-0.40 and ~1.1-1.4)")
        if self.basis == "primary" and self.year is None:
            raise ValueError("a 等价值 (primary) basis needs the year of its generation coal consumption")
        if not self.source:
            raise ValueError(f"{self.basis} coefficients need a source")


@dataclass(frozen=True)
class DayUse:
    """One entity's day: energy by carrier, output and emissions (all already verified upstream)."""

    entity: str  # a production line id or the site id
    day: date  # local calendar day of the site
    electricity_kwh: float
    gas_m3: float
    output_t: float
    scope1_t_co2e: float
    scope2_t_co2e: float

    def __post_init__(self) -> None:
        for name in ("electricity_kwh", "gas_m3", "output_t", "scope1_t_co2e", "scope2_t_co2e"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"{self.entity} {self.day}: {name} = {value}: must be a finite value >= 0")


@dataclass(frozen=True)
class Enpi:
    entity: str
    period: str  # "2026-03-05" (day) or "2026-03" (month)
    days: int  # days summed (a month with missing days says so)
    electricity_kwh: float
    gas_m3: float
    kgce: float
    t_co2e: float
    output_t: float
    basis: Basis
    kwh_per_t: float | None  # None: no output in the period
    gas_m3_per_t: float | None
    kgce_per_t: float | None
    t_co2e_per_t: float | None


def _label(day: date, period: Period) -> str:
    return day.isoformat() if period == "day" else f"{day.year:04d}-{day.month:02d}"


def _ratio(value: float, output_t: float) -> float | None:
    return value / output_t if output_t > 0 else None


def compute_enpis(uses: Iterable[DayUse], *, period: Period, coefficients: CoalCoefficients) -> tuple[Enpi, ...]:
    """EnPIs per entity and day or month, ordered by entity then period. A (entity, day) given twice is refused:
    its energy would count twice."""
    sums: dict[tuple[str, str], list[float]] = {}
    seen: set[tuple[str, date]] = set()
    for use in uses:
        if (use.entity, use.day) in seen:
            raise ValueError(f"{use.entity} {use.day}: given twice; each day's energy counts once")
        seen.add((use.entity, use.day))
        acc = sums.setdefault((use.entity, _label(use.day, period)), [0.0] * 6)
        for index, value in enumerate((use.electricity_kwh, use.gas_m3, use.output_t, use.scope1_t_co2e,
                                       use.scope2_t_co2e, 1.0)):
            acc[index] += value
    result = []
    for (entity, label), (kwh, m3, output_t, scope1, scope2, days) in sorted(sums.items()):
        kgce = kwh * coefficients.electricity_kgce_per_kwh + m3 * coefficients.gas_kgce_per_m3
        t_co2e = scope1 + scope2
        result.append(Enpi(entity=entity, period=label, days=int(days), electricity_kwh=kwh, gas_m3=m3, kgce=kgce,
                           t_co2e=t_co2e, output_t=output_t, basis=coefficients.basis,
                           kwh_per_t=_ratio(kwh, output_t), gas_m3_per_t=_ratio(m3, output_t),
                           kgce_per_t=_ratio(kgce, output_t), t_co2e_per_t=_ratio(t_co2e, output_t)))
    return tuple(result)
