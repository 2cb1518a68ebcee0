"""Monthly rollup: reads `energy_15m`, `fuel` and `production`, writes `scope2` points and the report data.

Pure core: ``compute_rollup`` turns a month's 15-minute energy into device
totals and costs, the site's energy balance (analytics/balance.py), Scope 1 from natural-gas meters, Scope 2
(location, market monthly, market hourly), its allocation, Scope 1+2 intensity against the pathway (per
tonne of the site's output: ``site.output_lines``), the renewable and certificate shares, the completeness
of each headline figure (energy measured, interpolated across gaps, samples rejected) and the provenance an
auditor needs (coverage per meter, factor, tariff prices, pathway source, solar profile, ledger rows used
and excluded, config hash). Re-running a month gives the same numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from plantems.analytics.balance import EnergyBalance, energy_balance
from plantems.analytics.energy import energy_from_counter
from plantems.analytics.energy_job import counter_spec, minute_samples
from plantems.analytics.rollup_results import (
    POOR_COVERAGE,
    Intensity,
    ProcessLine,
    Provenance,
    Rollup,
    Scope1Provenance,
)
from plantems.analytics.scope2 import Scope2Result, compute_scope2
from plantems.config import DeviceKind, PlantConfig
from plantems.factors import Factor, select_factor
from plantems.influx import InfluxClient, LineWriter
from plantems.ledger import LedgerEntry
from plantems.schema import ENERGY_15M, FUEL, PRODUCTION, SCOPE2, Field, Granularity, Method, Tag
from plantems.store.query import COUNT_ALIAS, SiteScope, agg
from plantems.store.window import replace_window
from plantems.targets import Targets
from plantems.tariffs import Period, Tariff, tariff_for

__all__ = ["POOR_COVERAGE", "MonthData", "Rollup", "completeness", "compute_rollup", "device_table", "month_bounds",
           "read_counter_totals", "read_energy", "read_month", "site_output", "write_scope2_points"]

log = logging.getLogger(__name__)

_GRID = (DeviceKind.INCOMER,)
# energy_15m completeness fields, per device, summed over the month
_INTERP, _REJECTED, _REPLACED = Field.INTERP_KWH.value, Field.REJECTED_SAMPLES.value, Field.REPLACEMENTS.value
_COMPLETENESS = (_INTERP, _REJECTED, _REPLACED)


def month_bounds(month: str, tz: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Local start of ``month`` (YYYY-MM) and of the next month."""
    start = pd.Timestamp(f"{month}-01", tz=tz)
    return start, pd.Timestamp(start.tz_localize(None) + pd.offsets.MonthBegin(1), tz=tz)


@dataclass(frozen=True)
class MonthData:
    intervals: pd.DataFrame  # time (ns, hour start), device, tou, energy_kwh, energy_exp_kwh, coverage (sums)
    production_t: float | None  # the site's output (its output lines) in the month, None if none was recorded
    fuel_m3: dict[str, float] = field(default_factory=dict)  # natural gas per fuel meter (Scope 1)
    production_by_line: dict[str, float] = field(default_factory=dict)
    fuel_coverage: dict[str, float] = field(default_factory=dict)  # per fuel meter, 0-1


def device_table(plant: PlantConfig, frame: pd.DataFrame, tariffs: Sequence[Tariff], tz: Any,
                  expected_intervals: int) -> pd.DataFrame:
    """Per device: energy, export, cost (each row priced by its date's tariff and period), coverage."""
    local_dates = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(tz).dt.date
    pairs = {(day, tou) for day, tou in zip(local_dates, frame["tou"], strict=True)}
    price_of = {(day, tou): tariff_for(tariffs, day).prices_per_kwh[Period(tou)] for day, tou in pairs}
    prices = pd.Series([price_of[pair] for pair in zip(local_dates, frame["tou"], strict=True)], index=frame.index,
                       dtype=float)
    work = frame.assign(cost=frame["energy_kwh"] * prices, energy_exp_kwh=frame["energy_exp_kwh"].fillna(0.0),
                        **{c: (frame[c] if c in frame else pd.Series(0.0, index=frame.index)).fillna(0.0)
                           for c in _COMPLETENESS})
    totals = work.groupby("device")[["energy_kwh", "energy_exp_kwh", "cost", "coverage", *_COMPLETENESS]].sum()
    by_tou = work.pivot_table(index="device", columns="tou", values="energy_kwh", aggfunc="sum").fillna(0.0)
    cost_by_tou = work.pivot_table(index="device", columns="tou", values="cost", aggfunc="sum").fillna(0.0)
    device_totals = totals.to_dict(orient="index")
    tou_kwh, tou_cny = by_tou.to_dict(orient="index"), cost_by_tou.to_dict(orient="index")
    rows = []
    electrical = {Field.E_IMP_KWH.value, Field.P_KW.value}
    for device in plant.devices:
        if not electrical & plant.quantities_of(device):
            continue  # fuel meters have their own table (Scope 1)
        mine = device_totals.get(device.id)
        tou = tou_kwh.get(device.id, {})
        tou_cost = tou_cny.get(device.id, {})
        rows.append({"device": device.id, "area": device.area, "kind": device.kind.value,
                     "energy_kwh": float(mine["energy_kwh"]) if mine is not None else 0.0,
                     "energy_exp_kwh": float(mine["energy_exp_kwh"]) if mine is not None else 0.0,
                     "cost_cny": float(mine["cost"]) if mine is not None else 0.0,
                     "coverage": float(mine["coverage"]) / expected_intervals if mine is not None else 0.0,
                     **{c: float(mine[c]) if mine is not None else 0.0 for c in _COMPLETENESS},
                     **{f"kwh_{p.value}": float(tou.get(p.value, 0.0)) for p in Period},
                     **{f"cost_{p.value}_cny": float(tou_cost.get(p.value, 0.0)) for p in Period}})
    return pd.DataFrame(rows)


def compute_rollup(plant: PlantConfig, month: str, data: MonthData, *, tariffs: Sequence[Tariff],
                   factors: Sequence[Factor], ledger: Sequence[LedgerEntry], targets: Targets,
                   as_of: date) -> Rollup:
    """Everything the monthly report states, from the month's data (pure)."""
    tz = plant.site.tz
    start, end = month_bounds(month, tz)
    expected = int((end - start) / pd.Timedelta(minutes=15))
    frame = data.intervals
    devices = device_table(plant, frame, tariffs, tz, expected)
    kinds = {d.id: d.kind for d in plant.devices}
    grid = frame[frame["device"].map(kinds).isin(_GRID)]
    hours = pd.date_range(start, end, freq="1h", inclusive="left").tz_convert("UTC")
    hourly = (grid.assign(hour=pd.to_datetime(grid["time"], utc=True).dt.floor("1h"))
              .groupby("hour")["energy_kwh"].sum().reindex(hours, fill_value=0.0))
    balance = energy_balance(plant, devices)
    year = start.year
    location = select_factor(factors, method="location", regions=plant.site.grid_factor_regions, year=year,
                             as_of=as_of)
    residual = select_factor(factors, method="residual", regions=plant.site.residual_factor_regions, year=year,
                             as_of=as_of)
    site_entries = [e for e in ledger if e.site == plant.site.id]
    scope2 = compute_scope2(month=month, tz=tz, grid_import_hourly=hourly, balance=balance, entries=site_entries,
                            location=location, residual=residual)
    daily = _daily(frame[frame["device"].isin(list(balance.loads_kwh))], plant, tz)
    production = site_output(plant, data.production_by_line)
    fuel = select_factor(factors, method="fuel", regions=("natural_gas",), year=year, as_of=as_of)
    scope1 = {device: m3 * fuel.factor.kg_per_unit for device, m3 in data.fuel_m3.items()}
    scope1_t = sum(scope1.values()) / 1000
    intensity = Intensity(  # Scope 1+2 per tonne of the site's output, as the pathway counts it
        location_t_per_t=(scope1_t + scope2.location_kgco2e / 1000) / production if production else None,
        market_t_per_t=(scope1_t + scope2.market_monthly.kgco2e / 1000) / production if production else None,
        target_t_per_t=targets.intensity.for_year(year), output_lines=tuple(plant.site_output_lines))
    first_tariff, tariff_versions = _tariffs_used(tariffs, start, end)
    provenance = Provenance(
        config_sha256=plant.config_sha256, tariff=first_tariff, tariff_versions=tariff_versions,
        location_factor=location, residual_factor=residual, ledger_entries_used=scope2.entries_used,
        ledger_entries_excluded=scope2.entries_excluded,
        # bought certificates claimed for the month beyond its grid import: held, but matched to nothing
        certificates_beyond_import_kwh=max(sum(e.mwh for e in site_entries if e.instrument.has_certificates
                                               and e.claim_month == month) * 1000.0 - scope2.grid_import_kwh, 0.0),
        pathway=targets.intensity, output_lines=tuple(plant.site_output_lines),
        production_t_by_line=data.production_by_line,
        coverage_per_meter={d: float(c) for d, c in zip(devices["device"], devices["coverage"].round(4), strict=True)},
        expected_intervals=expected, completeness=completeness(devices, balance, data.fuel_coverage),
        scope1=(Scope1Provenance(factor=fuel, gas_m3=data.fuel_m3, coverage=data.fuel_coverage) if data.fuel_m3
                else None),
        as_of=as_of)
    return Rollup(month=month, site=plant.site.id, as_of=as_of, devices=devices, daily=daily, scope2=scope2,
                  scope1_kgco2e=scope1, production_t=production, intensity=intensity,
                  renewable_share_target=targets.renewable_share.by_year.get(max(targets.renewable_share.by_year)),
                  lines=_per_line(plant, scope2, scope1, data.production_by_line), provenance=provenance)


def site_output(plant: PlantConfig, production_by_line: dict[str, float]) -> float | None:
    """Tonnes of the site's product: the output of its output lines only (metal cast and then rolled
    is one tonne, not two); None when none of them recorded output."""
    recorded = [production_by_line[line] for line in plant.site_output_lines if line in production_by_line]
    return sum(recorded) if recorded else None


def _tariffs_used(tariffs: Sequence[Tariff], start: pd.Timestamp, end: pd.Timestamp
                  ) -> tuple[Tariff, tuple[Tariff, ...]]:
    """The tariff version of the month's first day and every version that priced a day of it."""
    days = pd.date_range(start.tz_localize(None), end.tz_localize(None), freq="1D", inclusive="left")
    used = {t.id: t for t in (tariff_for(tariffs, day.date()) for day in days)}
    return tariff_for(tariffs, start.date()), tuple(used.values())


def completeness(devices: pd.DataFrame, balance: EnergyBalance, fuel_coverage: dict[str, float]
                 ) -> dict[str, dict[str, Any]]:
    """Per headline figure, over the meters it is computed from: energy through them (import +
    export), how much of it was measured and how much interpolated across gaps, samples rejected as
    implausible, meter replacements, and the lowest coverage."""
    grid, generators, loads = list(balance.grid_meters), list(balance.generators), list(balance.loads_kwh)
    figures = {"grid_import_kwh": grid, "grid_export_kwh": grid, "pv_generation_kwh": generators,
               "pv_self_kwh": grid + generators, "consumption_kwh": grid + generators, "sub_metered_kwh": loads,
               "unmetered_kwh": grid + generators + loads, "scope2_location": grid, "scope2_market": grid,
               "renewable_share": grid + generators}
    table = devices.set_index("device") if len(devices) else devices
    out: dict[str, dict[str, Any]] = {name: _figure_completeness(table, meters) for name, meters in figures.items()}
    out["scope1"] = {"meters": sorted(fuel_coverage), "coverage_min": min(fuel_coverage.values(), default=None)}
    out["intensity"] = {**out["consumption_kwh"], "fuel_coverage_min": out["scope1"]["coverage_min"]}
    return out


def _figure_completeness(table: pd.DataFrame, meters: list[str]) -> dict[str, Any]:
    rows = table.loc[table.index.intersection(meters)] if len(table) else table
    through = float((rows["energy_kwh"] + rows["energy_exp_kwh"]).sum()) if len(rows) else 0.0
    interpolated = float(rows[_INTERP].sum()) if len(rows) else 0.0
    return {"meters": sorted(meters), "energy_kwh": through, "energy_measured_kwh": through - interpolated,
            "energy_interpolated_kwh": interpolated,
            "samples_rejected": int(rows[_REJECTED].sum()) if len(rows) else 0,
            "replacements": int(rows[_REPLACED].sum()) if len(rows) else 0,
            "coverage_min": round(float(rows["coverage"].min()), 4) if len(rows) else None,
            "missing_meters": sorted((set(meters) - set(rows.index))
                                     | (set(rows.index[rows["coverage"] <= 0]) if len(rows) else set()))}


def _per_line(plant: PlantConfig, scope2: Scope2Result, scope1: dict[str, float],
              production: dict[str, float]) -> dict[str, ProcessLine]:
    """Scope 1+2 and intensity per process step: the meters of its areas (the unmetered
    remainder stays a site line, never guessed onto a step)."""
    out = {}
    for line in plant.production_lines:
        members = {d.id for d in plant.devices if d.area in line.areas}
        mine = [a for device, a in scope2.allocation.items() if device in members]
        out[line.id] = ProcessLine(name=line.name, areas=tuple(line.areas), production_t=production.get(line.id),
                                   scope1_kgco2e=sum(kg for device, kg in scope1.items() if device in members),
                                   scope2_location_kgco2e=sum(a.kg[Method.LOCATION] for a in mine),
                                   scope2_market_kgco2e=sum(a.kg[Method.MARKET] for a in mine))
    return out


def _daily(frame: pd.DataFrame, plant: PlantConfig, tz: Any) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=["date", "area", "tou", "energy_kwh"])
    areas = {d.id: d.area for d in plant.devices}
    local = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(tz).dt.date
    return pd.DataFrame(frame.assign(date=local, area=frame["device"].map(areas))
                        .groupby(["date", "area", "tou"], as_index=False)["energy_kwh"].sum())


def read_month(client: InfluxClient, plant: PlantConfig, month: str) -> MonthData:
    """The month's energy_15m summed per hour, device and tariff period, and its production total.

    Hourly sums are all the rollup needs (hourly matching, daily charts, costs per period,
    coverage) and are a quarter of the rows of the 15-minute points.
    """
    start, end = month_bounds(month, plant.site.tz)
    intervals = read_energy(client, plant, start.value, end.value, bucket="1h")
    produced = client.query(SiteScope(plant.site.id).select(PRODUCTION, [agg("sum", Field.OUTPUT_T.value)],
                                                            start_ns=start.value, end_ns=end.value,
                                                            group_by=[Tag.LINE.value]),
                            database=plant.influxdb.raw_database)
    by_line = {s.tags[Tag.LINE.value]: float(s.values[0][1]) for s in produced if s.values}
    production = site_output(plant, by_line)
    fuel = read_counter_totals(client, plant, FUEL, Field.GAS_M3, start.value, end.value)
    return MonthData(intervals, production, {d: m3 for d, (m3, _) in fuel.items()}, by_line,
                     {d: cov for d, (_, cov) in fuel.items()})


_ENERGY_FIELDS = (Field.ENERGY_KWH.value, Field.ENERGY_EXP_KWH.value, Field.COVERAGE.value,
                  Field.REACTIVE_KVARH.value, Field.REACTIVE_EXP_KVARH.value, Field.INTERP_KWH.value,
                  Field.REJECTED_SAMPLES.value, Field.REPLACEMENTS.value)


def read_energy(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int, *,
                bucket: str = "1h", devices: Sequence[str] | None = None) -> pd.DataFrame:
    """energy_15m over [start_ns, end_ns) summed per ``bucket`` ("1h", "15m" for the intervals
    themselves, "" for the whole window), device and tariff period: time, device, tou and the
    energy fields. ``devices`` limits the read (default: every device)."""
    if devices is not None and not devices:
        return pd.DataFrame(columns=["time", "device", "tou", *_ENERGY_FIELDS]).astype({"time": "int64"})
    query = SiteScope(plant.site.id).select(
        ENERGY_15M, [agg("sum", f, alias=f) for f in _ENERGY_FIELDS],
        any_of=None if devices is None else {Tag.DEVICE.value: devices}, start_ns=start_ns, end_ns=end_ns,
        every=bucket or None, group_by=[Tag.DEVICE.value, Tag.TOU.value], fill_none=True)
    series = client.query(query, database=plant.influxdb.derived_database)
    frames = [pd.DataFrame(s.values, columns=s.columns).assign(device=s.tags[Tag.DEVICE.value],
                                                               tou=s.tags[Tag.TOU.value]) for s in series]
    columns = ["time", "device", "tou", *_ENERGY_FIELDS]
    frame = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    return frame.astype({"time": "int64"})


def read_counter_totals(client: InfluxClient, plant: PlantConfig, measurement: str, counter: Field, start_ns: int,
                        end_ns: int) -> dict[str, tuple[float, float]]:
    """A counter's total and its data coverage (0-1) per device over [start_ns, end_ns): hourly last
    values, rollover-aware; coverage is the share of the window with samples at most 2 h apart."""
    margin = 3600 * 10**9  # the hour before anchors the first hour
    query = SiteScope(plant.site.id).select(
        measurement, [agg("last", counter.value, alias=counter.value), agg("count", counter.value, alias=COUNT_ALIAS)],
        start_ns=start_ns - margin, end_ns=end_ns + margin, every="1h", group_by=[Tag.DEVICE.value], fill_none=True)
    devices = {d.id: d for d in plant.devices}
    edges = np.array([start_ns, end_ns], dtype=np.int64)
    out = {}
    for series in client.query(query, database=plant.influxdb.raw_database):
        device = devices.get(series.tags[Tag.DEVICE.value])
        if device is None:
            continue
        samples = minute_samples(pd.DataFrame(series.values, columns=series.columns).astype({"time": "int64"}),
                                 bucket_s=3600)
        total = energy_from_counter(samples["time"].to_numpy(dtype=np.int64),
                                    samples[counter.value].to_numpy(dtype=float), edges,
                                    spec=counter_spec(plant, device, counter), max_gap_s=7200)
        out[device.id] = (float(total["energy"].iloc[0]), round(float(total["coverage"].iloc[0]), 4))
    return out


def write_scope2_points(plant: PlantConfig, rollup: Rollup, writer: LineWriter, client: InfluxClient) -> int:
    """`scope2` points for the month (site total and per area), replacing the month's previous ones."""
    start, end = month_bounds(rollup.month, plant.site.tz)
    points = rollup.to_points(area_of={d.id: d.area for d in plant.devices}, time_ns=start.value)
    replace_window(client, writer, site=SiteScope(plant.site.id), database=plant.influxdb.derived_database,
                   measurement=SCOPE2, tags={Tag.GRANULARITY.value: Granularity.MONTH.value}, start_ns=start.value,
                   end_ns=end.value, points=points)
    return len(points)
