"""EnPI points: kWh/t, kgce/t and t CO2e/t per production line and per site, by day and by month.

Reads `energy_15m` (electricity per device), the `fuel` counters (natural gas per meter) and
`production` (tonnes per line and day), and writes `enpi` points (schema.ENPI) through
``replace_window``, so a rerun replaces a period's points. The ratios come from analytics/enpi.py.

Boundaries (the same as the monthly rollup's, so the figures agree):
- a line's electricity is the sum of the load meters in its areas; the site's is its consumption
  (grid import - export + on-site generation, analytics/balance.py);
- a line's gas is the fuel meters in its areas; the site's, every fuel meter;
- Scope 2 is location-based: the site's grid import x the year's location factor, shared among the
  lines by electricity (as the rollup allocates it); Scope 1 is gas x the natural-gas factor;
- the site's output is its output lines' (``site.output_lines``): cast then rolled is one tonne.

A month is the sum of its days, then divided. Production completeness: the share of the period's
days whose output was recorded (for the site: by every output line); a missing day makes a ratio
look better than it is, so the point states it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

import pandas as pd

from plantems.analytics.balance import energy_balance
from plantems.analytics.enpi import (
    CALORIFIC_ELECTRICITY_KGCE_PER_KWH,
    NATURAL_GAS_GAS_FIELD_KGCE_PER_M3,
    CoalCoefficients,
    DayUse,
    Enpi,
    Period,
    compute_enpis,
)
from plantems.analytics.rollup import read_counter_totals, read_energy
from plantems.config import PlantConfig
from plantems.factors import Factor, load_factors, select_factor
from plantems.influx import InfluxClient, LineWriter
from plantems.lineproto import Point
from plantems.reference import reference_path
from plantems.schema import ENPI, FUEL, PRODUCTION, Field, Granularity, Tag
from plantems.store.query import SiteScope, col
from plantems.store.window import replace_window

__all__ = [
    "CALORIFIC",
    "DayInputs",
    "EnpiFactors",
    "day_uses",
    "enpi_points",
    "entity_day",
    "read_days",
    "run_enpi",
    "run_enpi_month",
]

log = logging.getLogger(__name__)

_NS = 1_000_000_000
SITE_ENTITY = ""  # the site's entity key: its points carry no line tag
CALORIFIC = CoalCoefficients(basis="calorific", electricity_kgce_per_kwh=CALORIFIC_ELECTRICITY_KGCE_PER_KWH,
                             gas_kgce_per_m3=NATURAL_GAS_GAS_FIELD_KGCE_PER_M3,
                             source="GB/T 2589-2020 当量值; natural gas: Annex A gas-field value")


@dataclass(frozen=True)
class DayInputs:
    """One local day of a site: electricity per device, gas per fuel meter, output per line (recorded only)."""

    day: date
    energy: pd.DataFrame  # columns device, energy_kwh, energy_exp_kwh (the day's sums)
    gas_m3: Mapping[str, float]
    production_t: Mapping[str, float]
    energy_by_tou: pd.DataFrame | None = None  # columns device, tou, energy_kwh (the day's sums): for pricing


@dataclass(frozen=True)
class EnpiFactors:
    location_kg_per_kwh: float
    gas_kg_per_m3: float
    location_label: str = ""  # the factors' ids and standing (provenance)
    gas_label: str = ""


def entity_day(plant: PlantConfig, inputs: DayInputs, factors: EnpiFactors) -> dict[str, tuple[DayUse, bool]]:
    """Each entity's DayUse for the day and whether its output was recorded (pure)."""
    balance = energy_balance(plant, inputs.energy)
    consumption = balance.consumption_kwh
    site_scope2_t = balance.grid_import_kwh * factors.location_kg_per_kwh / 1000
    area_of = {d.id: d.area for d in plant.devices}
    out: dict[str, tuple[DayUse, bool]] = {}
    for line in plant.production_lines:
        kwh = sum(v for d, v in balance.loads_kwh.items() if area_of.get(d) in line.areas)
        m3 = sum(v for d, v in inputs.gas_m3.items() if area_of.get(d) in line.areas)
        share = kwh / consumption if consumption > 0 else 0.0
        out[line.id] = (DayUse(line.id, inputs.day, kwh, m3, inputs.production_t.get(line.id, 0.0),
                               m3 * factors.gas_kg_per_m3 / 1000, max(site_scope2_t * share, 0.0)),
                        line.id in inputs.production_t)
    outputs = plant.site_output_lines
    site_m3 = sum(inputs.gas_m3.values())
    out[SITE_ENTITY] = (DayUse(SITE_ENTITY, inputs.day, max(consumption, 0.0), site_m3,
                               sum(inputs.production_t.get(line, 0.0) for line in outputs),
                               site_m3 * factors.gas_kg_per_m3 / 1000, max(site_scope2_t, 0.0)),
                        bool(outputs) and all(line in inputs.production_t for line in outputs))
    return out


def day_uses(plant: PlantConfig, days: Sequence[DayInputs], factors: EnpiFactors
             ) -> tuple[list[DayUse], set[tuple[str, date]]]:
    """Every entity's DayUse over ``days`` and the (entity, day) pairs with output recorded (pure)."""
    uses: list[DayUse] = []
    recorded: set[tuple[str, date]] = set()
    for inputs in days:
        for entity, (use, has_output) in entity_day(plant, inputs, factors).items():
            uses.append(use)
            if has_output:
                recorded.add((entity, inputs.day))
    return uses, recorded


def _period_start(plant: PlantConfig, label: str) -> datetime:
    day = date.fromisoformat(label if len(label) == 10 else f"{label}-01")
    return datetime(day.year, day.month, day.day, tzinfo=plant.site.tz)


def _days_in(label: str) -> int:
    if len(label) == 10:
        return 1
    start = date.fromisoformat(f"{label}-01")
    return ((start.replace(day=28) + timedelta(days=4)).replace(day=1) - start).days


def enpi_points(plant: PlantConfig, days: Sequence[DayInputs], factors: EnpiFactors, *, period: Period,
                coefficients: CoalCoefficients = CALORIFIC) -> list[Point]:
    """`enpi` points per entity and day or month (pure); a ratio field is absent when output was 0."""
    uses, recorded = day_uses(plant, days, factors)
    points = []
    for enpi in compute_enpis(uses, period=period, coefficients=coefficients):
        produced = sum(1 for entity, day in recorded if entity == enpi.entity and _label(day, period) == enpi.period)
        points.append(_point(plant, enpi, produced, _days_in(enpi.period), period))
    return points


def _label(day: date, period: Period) -> str:
    return day.isoformat() if period == "day" else f"{day.year:04d}-{day.month:02d}"


def _point(plant: PlantConfig, enpi: Enpi, production_days: int, period_days: int, period: Period) -> Point:
    tags = {Tag.SITE.value: plant.site.id, Tag.GRANULARITY.value: Granularity(period).value}
    if enpi.entity != SITE_ENTITY:
        tags[Tag.LINE.value] = enpi.entity
    fields: dict[str, float | str] = {
        Field.ENERGY_KWH.value: enpi.electricity_kwh, Field.GAS_M3.value: enpi.gas_m3, Field.KGCE.value: enpi.kgce,
        Field.T_CO2E.value: enpi.t_co2e, Field.OUTPUT_T.value: enpi.output_t, Field.DAYS.value: float(enpi.days),
        Field.PRODUCTION_DAYS.value: float(production_days),
        Field.PRODUCTION_COMPLETENESS.value: production_days / period_days}
    for key, value in ((Field.KWH_PER_T, enpi.kwh_per_t), (Field.GAS_M3_PER_T, enpi.gas_m3_per_t),
                       (Field.KGCE_PER_T, enpi.kgce_per_t), (Field.T_CO2E_PER_T, enpi.t_co2e_per_t)):
        if value is not None:
            fields[key.value] = value
    return Point(ENPI, tags, fields, int(_period_start(plant, enpi.period).timestamp()) * _NS)


def _local_day_ns(plant: PlantConfig, day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=plant.site.tz).timestamp()) * _NS


def day_bucket(tz: tzinfo, day: date) -> str:
    """Hourly sums when the site's UTC offset is whole hours (InfluxDB buckets align to UTC), else the
    15-minute intervals themselves: a bucket must never straddle a local midnight."""
    offset = datetime(day.year, day.month, day.day, tzinfo=tz).utcoffset()
    return "1h" if offset is None or offset.total_seconds() % 3600 == 0 else "15m"


def read_days(client: InfluxClient, plant: PlantConfig, first: date, last: date) -> list[DayInputs]:
    """The inputs of every local day from ``first`` to ``last`` inclusive that has energy data."""
    start_ns, end_ns = _local_day_ns(plant, first), _local_day_ns(plant, last + timedelta(days=1))
    hourly = read_energy(client, plant, start_ns, end_ns, bucket=day_bucket(plant.site.tz, first))
    local = pd.to_datetime(hourly["time"], utc=True).dt.tz_convert(plant.site.tz).dt.date
    kwh = Field.ENERGY_KWH.value, Field.ENERGY_EXP_KWH.value
    daily = hourly.assign(day=local).groupby(["day", Tag.DEVICE.value], as_index=False)[list(kwh)].sum()
    by_tou = {day: frame.reset_index(drop=True) for day, frame in hourly.assign(day=local).groupby(
        ["day", Tag.DEVICE.value, Tag.TOU.value], as_index=False)[kwh[0]].sum().groupby("day")}
    produced = client.query(SiteScope(plant.site.id).select(PRODUCTION, [col(Field.OUTPUT_T.value)], start_ns=start_ns,
                                                            end_ns=end_ns, group_by=[Tag.LINE.value]),
                            database=plant.influxdb.raw_database)
    production: dict[date, dict[str, float]] = {}
    for series in produced:
        for time_ns, tonnes in series.values:
            day = datetime.fromtimestamp(int(time_ns) / _NS, plant.site.tz).date()
            mine = production.setdefault(day, {})
            mine[series.tags[Tag.LINE.value]] = mine.get(series.tags[Tag.LINE.value], 0.0) + float(tonnes)
    out = []
    for day, frame in daily.groupby("day"):
        assert isinstance(day, date)
        start = _local_day_ns(plant, day)
        gas = read_counter_totals(client, plant, FUEL, Field.GAS_M3, start, _local_day_ns(plant, day + timedelta(1)))
        out.append(DayInputs(day, frame.reset_index(drop=True), {d: m3 for d, (m3, _) in gas.items()},
                             production.get(day, {}), by_tou.get(day)))
    return out


def enpi_factors(factors: Sequence[Factor], plant: PlantConfig, year: int, as_of: date) -> EnpiFactors:
    location = select_factor(factors, method="location", regions=plant.site.grid_factor_regions, year=year,
                             as_of=as_of)
    gas = select_factor(factors, method="fuel", regions=("natural_gas",), year=year, as_of=as_of)
    return EnpiFactors(location.factor.kg_per_unit, gas.factor.kg_per_unit, location.label, gas.label)


def _write(client: InfluxClient, writer: LineWriter, plant: PlantConfig, period: Period, start_ns: int, end_ns: int,
           points: Sequence[Point]) -> None:
    replace_window(client, writer, site=SiteScope(plant.site.id), database=plant.influxdb.derived_database,
                   measurement=ENPI, tags={Tag.GRANULARITY.value: Granularity(period).value}, start_ns=start_ns,
                   end_ns=end_ns, points=points)


def run_enpi(plant: PlantConfig, client: InfluxClient, writer: LineWriter, first: date, last: date, *,
             config_dir: Path, as_of: date) -> int:
    """Day points for ``first``..``last`` (one month at most: one year's factors) and the month-to-date
    point of that month (all its days so far). Returns the number of points written."""
    if (first.year, first.month) != (last.year, last.month) or last < first:
        raise ValueError(f"EnPI run {first}..{last}: must lie within one month")
    factors = enpi_factors(load_factors(reference_path(config_dir, "emission_factors.yaml")), plant, first.year,
                           as_of)
    days = read_days(client, plant, first, last)
    day_points = enpi_points(plant, days, factors, period="day")
    _write(client, writer, plant, "day", _local_day_ns(plant, first), _local_day_ns(plant, last + timedelta(1)),
           day_points)
    month_first = first.replace(day=1)
    month_days = read_days(client, plant, month_first, last) if first != month_first else days
    month_points = enpi_points(plant, month_days, factors, period="month")
    month_end = (month_first.replace(day=28) + timedelta(days=4)).replace(day=1)
    _write(client, writer, plant, "month", _local_day_ns(plant, month_first), _local_day_ns(plant, month_end),
           month_points)
    log.info("enpi %s..%s: %d day and %d month point(s)", first, last, len(day_points), len(month_points))
    return len(day_points) + len(month_points)


def run_enpi_month(plant: PlantConfig, client: InfluxClient, writer: LineWriter, month: str, *, config_dir: Path,
                   as_of: date) -> int:
    """Every day of ``month`` (YYYY-MM) and the month: the monthly rollup's step."""
    first = date.fromisoformat(f"{month}-01")
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return run_enpi(plant, client, writer, first, last, config_dir=config_dir, as_of=as_of)


def backfill_enpi(plant: PlantConfig, client: InfluxClient, writer: LineWriter, first: date, last: date, *,
                  config_dir: Path, as_of: date) -> int:
    """EnPI points for every day ``first``..``last`` and the months they fall in, month by month."""
    written = 0
    start = first
    while start <= last:
        month_end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        end = min(month_end, last)
        written += run_enpi(plant, client, writer, start, end, config_dir=config_dir, as_of=as_of)
        start = end + timedelta(days=1)
    return written
