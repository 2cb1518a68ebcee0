"""``plantems quarter``: read a quarter's and its baselines' days, verify every measure, write the report.

Reads `energy_15m`, `fuel` and `production` through analytics/enpi_job.read_days (the same days
and boundaries as the `enpi` points), the measures register (``measures.yaml`` beside the plant
file, else the shipped one), the emission factors and the pathway (targets.yaml).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from plantems.analytics.enpi_job import (
    CALORIFIC,
    DayInputs,
    EnpiFactors,
    enpi_factors,
    entity_day,
    read_days,
)
from plantems.analytics.predictor_series import register_series
from plantems.analytics.quarter import (
    TONNAGE_ONLY,
    BoundaryDay,
    EnpiSummary,
    MeasureResult,
    QuarterFactors,
    baseline_spec,
    enpi_summary,
    quarter_bounds,
    verify_measure,
)
from plantems.config import DeviceKind, PlantConfig
from plantems.factors import load_factors
from plantems.i18n import ALL_LANGS, Lang
from plantems.influx import InfluxClient
from plantems.measures import REGISTER_FILE, Boundary, EnpiBaseline, Measure, MeasuresFile, PlantNames, site_register
from plantems.reference import reference_path
from plantems.schema import Field, Tag
from plantems.targets import load_targets
from plantems.tariffs import Period, Tariff, load_tariffs, tariff_for

__all__ = ["QuarterReport", "boundary_days", "compute_quarter", "previous_quarter", "run_quarter"]

log = logging.getLogger(__name__)

_NOT_LOADS = (DeviceKind.INCOMER, DeviceKind.FEEDER, DeviceKind.PV)
_PERIODS = frozenset(p.value for p in Period)  # the tou tag values a tariff can price


@dataclass(frozen=True)
class QuarterReport:
    quarter: str
    site: str
    first: date
    last: date  # the last day with data read (the quarter's last day, or yesterday while it runs)
    enpis: tuple[EnpiSummary, ...]
    measures: tuple[MeasureResult, ...]
    pathway: dict[str, Any]
    completeness: dict[str, Any]
    provenance: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"quarter": self.quarter, "site": self.site, "first": self.first.isoformat(),
                "last": self.last.isoformat(), "enpis": [e.to_json() for e in self.enpis],
                "measures": [m.to_json() for m in self.measures], "pathway": self.pathway,
                "completeness": self.completeness, "provenance": self.provenance}


def previous_quarter(today: date) -> str:
    """The quarter before the one ``today`` is in (the scheduled report's)."""
    index = (today.month - 1) // 3
    return f"{today.year - 1}Q4" if index == 0 else f"{today.year}Q{index}"


def _boundary_devices(plant: PlantConfig, boundary: Boundary) -> set[str]:
    areas = set(boundary.areas) | {a for line in plant.production_lines if line.id in boundary.lines
                                   for a in line.areas}
    return set(boundary.devices) | {d.id for d in plant.devices if d.area in areas}


def _boundary_lines(plant: PlantConfig, boundary: Boundary, devices: set[str]) -> tuple[str, ...]:
    """The lines whose output the boundary's energy follows (see analytics/quarter.py)."""
    if boundary.lines:
        return tuple(boundary.lines)
    areas = {d.area for d in plant.devices if d.id in devices}
    touched = tuple(line.id for line in plant.production_lines if areas & set(line.areas))
    return touched or tuple(plant.site_output_lines)


def _day_cost(inputs: DayInputs, loads: set[str], tariffs: Sequence[Tariff]) -> float | None:
    """The loads' electricity cost of the day at the tariff in force, by time-of-use period; None when no
    tariff is in force or a period has no price (never a guessed price)."""
    frame = inputs.energy_by_tou
    if frame is None or not tariffs:
        return None
    try:
        prices = tariff_for(tariffs, inputs.day).prices_per_kwh
    except LookupError:
        return None
    mine = frame[frame[Tag.DEVICE.value].isin(sorted(loads))]
    cost = 0.0
    for tou, kwh in zip(mine[Tag.TOU.value], mine[Field.ENERGY_KWH.value].fillna(0.0), strict=True):
        price = prices.get(Period(tou)) if tou in _PERIODS else None
        if price is None:
            if kwh:
                return None
            continue
        cost += float(kwh) * price
    return cost


def boundary_days(plant: PlantConfig, boundary: Boundary, days: Sequence[DayInputs], *,
                  series: Mapping[str, Mapping[date, float]] | None = None,
                  tariffs: Sequence[Tariff] = ()) -> list[BoundaryDay]:
    """A measure boundary's electricity (its load meters), gas, tonnage, the day's predictor values
    (``series``: id -> daily values) and its electricity cost at ``tariffs`` per day (pure)."""
    devices = _boundary_devices(plant, boundary)
    kinds = {d.id: d.kind for d in plant.devices}
    loads = {d for d in devices if kinds[d] not in _NOT_LOADS}
    lines = _boundary_lines(plant, boundary, devices)
    device_col, kwh_col = Tag.DEVICE.value, Field.ENERGY_KWH.value
    out = []
    for inputs in days:
        frame = inputs.energy
        kwh = float(frame.loc[frame[device_col].isin(sorted(loads)), kwh_col].fillna(0.0).sum())
        gas = sum(m3 for device, m3 in inputs.gas_m3.items() if device in devices)
        recorded = all(line in inputs.production_t for line in lines) and bool(lines)
        conditions = {key: values[inputs.day] for key, values in (series or {}).items() if inputs.day in values}
        out.append(BoundaryDay(inputs.day, kwh, gas,
                               sum(inputs.production_t[line] for line in lines) if recorded else None,
                               conditions, _day_cost(inputs, loads, tariffs)))
    return out


def _entity_days(plant: PlantConfig, days: Sequence[DayInputs], factors: EnpiFactors,
                 series: Mapping[str, Mapping[date, float]]) -> dict[str, list[tuple[BoundaryDay, float, float]]]:
    """Per entity (line id or the site): each day's BoundaryDay with its Scope 1 and Scope 2 t (pure)."""
    out: dict[str, list[tuple[BoundaryDay, float, float]]] = {}
    for inputs in days:
        conditions = {key: values[inputs.day] for key, values in series.items() if inputs.day in values}
        for entity, (use, recorded) in entity_day(plant, inputs, factors).items():
            out.setdefault(entity or "site", []).append(
                (BoundaryDay(inputs.day, use.electricity_kwh, use.gas_m3, use.output_t if recorded else None,
                             conditions), use.scope1_t_co2e, use.scope2_t_co2e))
    return out


def _between(days: Sequence[DayInputs], first: date, last: date) -> list[DayInputs]:
    return [d for d in days if first <= d.day <= last]


@dataclass(frozen=True)
class ModelInputs:
    """What the register adds to the days read: predictor series, tariffs, the gas price, the EnPI baseline."""

    series: Mapping[str, Mapping[date, float]] = field(default_factory=dict)
    tariffs: Sequence[Tariff] = ()
    gas_cny_per_m3: float | None = None
    enpi_baseline: EnpiBaseline | None = None


def compute_quarter(plant: PlantConfig, quarter: str, days: Sequence[DayInputs], measures: Sequence[Measure], *,
                    factors: EnpiFactors, target_t_co2e_per_t: float | None, last: date,
                    provenance: Mapping[str, Any], enpi_baseline: tuple[date, date] | None = None,
                    inputs: ModelInputs | None = None) -> QuarterReport:
    """The report from the days read (pure): ``days`` must cover the baselines and the quarter."""
    first, _ = quarter_bounds(quarter)
    extra = inputs or ModelInputs()
    qfactors = QuarterFactors(factors.location_kg_per_kwh, factors.gas_kg_per_m3, CALORIFIC, extra.gas_cny_per_m3)
    results = []
    for measure in measures:
        version = measure.in_force
        series = {key: extra.series[key] for key in version.predictors}
        base = boundary_days(plant, measure.boundary, _between(days, version.start, version.end), series=series,
                             tariffs=extra.tariffs)
        report = boundary_days(plant, measure.boundary, _between(days, max(measure.go_live, first), last),
                               series=series, tariffs=extra.tariffs)
        results.append(verify_measure(measure, base, report, qfactors))
    enpi_first, enpi_last = enpi_baseline or enpi_baseline_period(measures, first)
    chosen = extra.enpi_baseline
    enpi_series = {key: extra.series[key] for key in (chosen.predictors if chosen else ())}
    spec = baseline_spec(chosen, (chosen,)) if chosen else TONNAGE_ONLY
    baseline = _entity_days(plant, _between(days, enpi_first, enpi_last), factors, enpi_series)
    current = _entity_days(plant, _between(days, first, last), factors, enpi_series)
    enpis = []
    for entity, rows in current.items():
        enpis.append(enpi_summary(entity, [b for b, _, _ in baseline.get(entity, [])], [b for b, _, _ in rows],
                                  factors=qfactors, scope1_t=sum(s1 for _, s1, _ in rows),
                                  scope2_t=sum(s2 for _, _, s2 in rows),
                                  target_t_co2e_per_t=target_t_co2e_per_t if entity == "site" else None, spec=spec))
    site = next((e for e in enpis if e.entity == "site"), None)
    actual = site.t_co2e_per_t if site else None
    status = ("no data" if actual is None or target_t_co2e_per_t is None
              else "on track" if actual <= target_t_co2e_per_t else "off track")
    pathway = {"target_t_co2e_per_t": target_t_co2e_per_t, "actual_t_co2e_per_t": actual, "status": status,
               "verified_t_co2e": sum(m.verified_t_co2e or 0.0 for m in results),
               "claimed_t_co2e": sum(m.claimed.get("t_co2e") or 0.0 for m in results)}
    expected_days = (last - first).days + 1
    quarter_days = _between(days, first, last)
    completeness = {"days_expected": expected_days, "days_with_energy": len(quarter_days),
                    "days_with_site_output": sum(1 for b, _, _ in current.get("site", []) if b.output_t is not None),
                    "by_entity": {e.entity: {"days": e.days, "production_days": e.production_days}
                                  for e in enpis}}
    return QuarterReport(quarter, plant.site.id, first, last, tuple(sorted(enpis, key=lambda e: e.entity != "site")),
                         tuple(results), pathway, completeness,
                         {**provenance, "enpi_baseline": [enpi_first.isoformat(), enpi_last.isoformat()]})


def enpi_baseline_period(measures: Sequence[Measure], quarter_first: date) -> tuple[date, date]:
    """The default EnPI baseline (measures.yaml ``enpi_baseline`` overrides it): before any measure went
    live, from the earliest measure baseline's start to the day before the first go-live; without
    measures, the year before the quarter."""
    if not measures:
        return quarter_first.replace(year=quarter_first.year - 1), quarter_first - timedelta(days=1)
    return (min(m.in_force.start for m in measures), min(m.go_live for m in measures) - timedelta(days=1))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _series_provenance(register: MeasuresFile | None, measures_path: Path,
                       series: Mapping[str, Mapping[date, float]]) -> list[dict[str, Any]]:
    if register is None:
        return []
    out = []
    for s in register.predictors:
        source: dict[str, Any] = (
            {"csv": str(measures_path.parent / s.csv), "column": s.column,
             "sha256": _sha256(measures_path.parent / s.csv)} if s.csv is not None else
            {"influx": s.influx.model_dump() if s.influx else None})
        out.append({"id": s.id, **source, "unit": s.unit or None, "days": len(series.get(s.id, {})),
                    "degree_days": None if s.degree_days is None else {"kind": s.degree_days.kind,
                                                                       "base_c": s.degree_days.base_c}})
    return out


def run_quarter(plant: PlantConfig, quarter: str, *, config_dir: Path, client: InfluxClient, out_root: Path,
                as_of: date, langs: tuple[Lang, ...] = ALL_LANGS) -> list[Path]:
    """The quarter end to end: read, verify, write report.html / report.zh.html, quarter.xlsx / quarter.zh.xlsx
    (the languages ``langs``: both by default) and quarter.json."""
    from plantems.analytics.quarter_report import write_quarter_report
    from plantems.analytics.service import plant_names

    first, after = quarter_bounds(quarter)
    last = min(after - timedelta(days=1), as_of - timedelta(days=1))
    if last < first:
        raise ValueError(f"quarter {quarter}: has not started on {as_of}")
    # the site's own register only (its `site`): another park's plant file may share the folder
    measures_path = config_dir / REGISTER_FILE
    register = site_register(config_dir, plant.site.id, PlantNames.of(plant))
    measures = register.measures if register else ()
    chosen = register.enpi_baseline if register else None
    factors_path = reference_path(config_dir, "emission_factors.yaml")
    factors = enpi_factors(load_factors(factors_path), plant, first.year, as_of)
    targets = load_targets(reference_path(config_dir, "targets.yaml"))
    tariffs = load_tariffs(reference_path(config_dir, "tariffs"))
    enpi_first, enpi_last = ((chosen.start, chosen.end) if chosen else enpi_baseline_period(measures, first))
    start = min([enpi_first, first, *(m.in_force.start for m in measures)])
    days = read_days(client, plant, start, last)
    series = register_series(register, client, plant, start, last)
    provenance = {"config_sha256": plant.config_sha256, "measures_file": str(measures_path) if measures else None,
                  "measures_sha256": _sha256(measures_path) if measures else None,
                  "emission_factors_sha256": _sha256(factors_path),
                  "location_kg_per_kwh": factors.location_kg_per_kwh, "gas_kg_per_m3": factors.gas_kg_per_m3,
                  "location_factor": factors.location_label, "gas_factor": factors.gas_label,
                  "coal_coefficients": {"basis": CALORIFIC.basis, "kgce_per_kwh": CALORIFIC.electricity_kgce_per_kwh,
                                        "kgce_per_m3": CALORIFIC.gas_kgce_per_m3, "source": CALORIFIC.source},
                  "pathway": {"name": targets.intensity.name, "source": targets.intensity.source},
                  "as_of": as_of.isoformat(), "generated": datetime.now(plant.site.tz).isoformat(timespec="seconds"),
                  "confidence": [0.68, 0.90], "days_read": [start.isoformat(), last.isoformat()],
                  "enpi_baseline_reason": chosen.reason if chosen else "default: before the first go-live",
                  "predictors": _series_provenance(register, measures_path, series),
                  "cny": {"electricity": "verified kWh x the boundary's reporting-period tariff mix (its cost at the "
                                         "tariff in force, by time-of-use period, over its kWh); a new load with no "
                                         "reporting-period use: the baseline period's mix",
                          "tariffs": [f"{t.id} from {t.valid_from} ({t.status})" for t in tariffs],
                          "gas": (f"{register.prices.gas_cny_per_m3} CNY/m3 ({register.prices.source})"
                                  if register and register.prices else "not priced (measures.yaml prices)")}}
    inputs = ModelInputs(series=series,
                         tariffs=tariffs, gas_cny_per_m3=register.prices.gas_cny_per_m3
                         if register and register.prices else None, enpi_baseline=chosen)
    report = compute_quarter(plant, quarter, days, measures, factors=factors,
                             target_t_co2e_per_t=targets.intensity.for_year(first.year), last=last,
                             provenance=provenance, enpi_baseline=(enpi_first, enpi_last), inputs=inputs)
    for measure in report.measures:
        for carrier in measure.carriers:
            if carrier.problem:
                log.error("quarter %s: measure %s %s not verified: %s", quarter, measure.measure_id, carrier.carrier,
                          carrier.problem)
    names = {**plant_names(plant), plant.site.id: plant.site}
    paths: list[Path] = write_quarter_report(report, out_root / quarter, langs=langs, names=names)
    return paths
