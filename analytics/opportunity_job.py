"""Opportunity jobs: daily load shifting (every night, and in back-fills) and the monthly set
(load shifting, maximum demand, reactive power) that the rollup adds to its report. Both
write `opportunity` points, replacing the window's previous ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd

from plantems.analytics.opportunities import (
    compressed_air,
    device_totals,
    group_peak,
    interval_devices,
    load_shift,
    max_demand,
    reactive_power,
)
from plantems.analytics.rollup import Rollup, device_table, month_bounds, read_counter_totals, read_energy
from plantems.config import DeviceKind, PlantConfig
from plantems.influx import InfluxClient, LineWriter
from plantems.lineproto import Point
from plantems.schema import AIR, OPPORTUNITY, Field, Granularity, OpportunityType, Tag
from plantems.store.query import SiteScope, agg
from plantems.store.window import replace_window
from plantems.tariffs import Tariff, tariff_for

__all__ = ["month_opportunities", "opportunity_points", "read_air", "read_month_energy", "run_daily_load_shift",
           "write_opportunities"]


def month_opportunities(plant: PlantConfig, rollup: Rollup, intervals: pd.DataFrame, tariffs: Sequence[Tariff], *,
                        totals: pd.DataFrame | None = None, at_peak: dict[str, dict[str, float]] | None = None,
                        air_m3: dict[str, tuple[float, float]] | None = None,
                        air_bar: dict[str, float] | None = None
                        ) -> dict[str, Any]:
    """The month's opportunities from its rollup and its 15-minute energy (pure).

    ``intervals``: 15-minute rows of at least ``interval_devices(plant)``; ``totals``: every device's
    month sums; ``at_peak``: per group, every device's kWh in the group's peak interval. Without the
    last two, both come from ``intervals``.
    """
    totals = totals if totals is not None else device_totals(intervals)
    start, _ = month_bounds(rollup.month, plant.site.tz)
    tariff = tariff_for(tariffs, start.date())
    shiftable = [d for d in plant.devices if d.shiftable]
    groups = plant.demand.groups if plant.demand else ()
    costs = rollup.devices.set_index("device") if len(rollup.devices) else rollup.devices
    reactive = []
    for group in groups:
        mine = costs.loc[costs.index.intersection(list(group.meters))]
        kwh, cost = float(mine["energy_kwh"].sum()), float(mine["cost_cny"].sum())
        reactive.append(reactive_power(plant, group, intervals, totals=totals, energy_cost_cny=cost,
                                       average_price_cny_per_kwh=cost / kwh if kwh else 0.0))
    return {"tariff": tariff.id,
            "load_shift": load_shift(rollup.devices, shiftable, tariff, start.month),
            "max_demand": [max_demand(plant, group, intervals, tariff, start.month,
                                      at_peak=(at_peak or {}).get(group.id)) for group in groups],
            "reactive": reactive,
            "compressed_air": compressed_air(plant, air_m3 or {}, air_bar or {}, rollup.devices)}


def _tags(base: Mapping[str, str], kind: OpportunityType, key: Tag, value: str) -> dict[str, str]:
    return {**base, Tag.TYPE.value: kind.value, key.value: value}


def opportunity_points(plant: PlantConfig, found: dict[str, Any], time_ns: int, granularity: Granularity
                       ) -> list[Point]:
    """`opportunity` points: one per device (load shift, low PF) or billing group (demand, reactive)."""
    base = {Tag.SITE.value: plant.site.id, Tag.GRANULARITY.value: Granularity(granularity).value}
    points = []
    for item in found.get("load_shift", []):
        points.append(Point(OPPORTUNITY, _tags(base, OpportunityType.LOAD_SHIFT, Tag.DEVICE, item["device"]),
                            {Field.ENERGY_KWH.value: item["peak_sharp_kwh"],
                             Field.COST_CNY.value: item["peak_sharp_cost_cny"],
                             Field.SAVING_CNY.value: item["saving_cny"]}, time_ns))
    for item in found.get("max_demand", []):
        if item.get("max_kw") is None:
            continue
        fields = {Field.DEMAND_KW.value: item["max_kw"], Field.REDUCTION_KW.value: item["reduction_kw"],
                  Field.LIMIT_KW.value: item["limit_kw"]}
        if item["saving_cny"] is not None:
            fields[Field.SAVING_CNY.value] = item["saving_cny"]
        points.append(Point(OPPORTUNITY, _tags(base, OpportunityType.MAX_DEMAND, Tag.METER_GROUP, item["group"]),
                            fields, time_ns))
    for item in found.get("reactive", []):
        if item.get("pf") is None:
            continue
        points.append(Point(OPPORTUNITY, _tags(base, OpportunityType.REACTIVE, Tag.METER_GROUP, item["group"]),
                            {Field.PF.value: item["pf"], Field.ADJUSTMENT_PCT.value: item["adjustment_pct"],
                             Field.ADJUSTMENT_CNY.value: item["adjustment_cny"],
                             Field.KVAR.value: item["capacitor_kvar_p95"],
                             Field.SAVING_KWH.value: item["line_loss_saving_kwh"],
                             Field.SAVING_CNY.value: item["saving_cny"]}, time_ns))
        for device in item["devices_by_pf"]:
            points.append(Point(OPPORTUNITY, _tags(base, OpportunityType.LOW_PF, Tag.DEVICE, device["device"]),
                                {Field.PF.value: device["pf"], Field.REACTIVE_KVARH.value: device["kvarh"]}, time_ns))
    for item in found.get("compressed_air", []):
        fields = {Field.ENERGY_KWH.value: item["compressor_kwh"], Field.SAVING_KWH.value: item["saving_kwh"],
                  Field.SAVING_CNY.value: item["saving_cny"]}
        if item["specific_power_kw_per_m3min"] is not None:
            fields[Field.SPECIFIC_POWER_KW_PER_M3MIN.value] = item["specific_power_kw_per_m3min"]
        if item["mean_bar"] is not None:
            fields[Field.AIR_BAR.value] = item["mean_bar"]
        points.append(Point(OPPORTUNITY, _tags(base, OpportunityType.COMPRESSED_AIR, Tag.DEVICE, item["device"]),
                            fields, time_ns))
    return points


def read_month_energy(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int, *,
                      hourly: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, float]]]:
    """What the month's opportunities read: 15-minute rows of the billing meters and shiftable
    loads, and every device's kWh in each group's peak interval. Month totals per device come
    from the rollup's own hourly rows (``hourly``), not from another query."""
    intervals = read_energy(client, plant, start_ns, end_ns, bucket="15m", devices=interval_devices(plant))
    at_peak = {}
    for group in plant.demand.groups if plant.demand else ():
        peak = group_peak(plant, group, intervals)
        if peak is not None:
            rows = read_energy(client, plant, peak, peak + 900 * 10**9, bucket="")
            at_peak[group.id] = dict(zip(rows["device"], rows["energy_kwh"].astype(float), strict=True))
    return intervals, device_totals(hourly), at_peak


def read_air(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int
             ) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """Free air delivered (m3, with its coverage) and mean header pressure (bar) per air meter."""
    if not any(d.kind is DeviceKind.AIR_FLOW for d in plant.devices):
        return {}, {}
    volumes = read_counter_totals(client, plant, AIR, Field.AIR_M3, start_ns, end_ns)
    query = SiteScope(plant.site.id).select(AIR, [agg("mean", Field.AIR_BAR.value)], start_ns=start_ns,
                                            end_ns=end_ns, group_by=[Tag.DEVICE.value])
    series = client.query(query, database=plant.influxdb.raw_database)
    pressure = {s.tags[Tag.DEVICE.value]: float(s.values[0][1]) for s in series
                if s.values and s.values[0][1] is not None}
    return volumes, pressure


def write_opportunities(plant: PlantConfig, client: InfluxClient, writer: LineWriter, points: list[Point], *,
                        start_ns: int, end_ns: int, granularity: Granularity) -> int:
    """Replace the window's `opportunity` points of this granularity."""
    replace_window(client, writer, site=SiteScope(plant.site.id), database=plant.influxdb.derived_database,
                   measurement=OPPORTUNITY, tags={Tag.GRANULARITY.value: Granularity(granularity).value},
                   start_ns=start_ns, end_ns=end_ns, points=points)
    return len(points)


def run_daily_load_shift(plant: PlantConfig, tariffs: Sequence[Tariff], client: InfluxClient, writer: LineWriter,
                         day: date, start_ns: int, end_ns: int) -> int:
    """Load-shifting opportunities of one local day (energy_15m must be there already)."""
    shiftable = [d for d in plant.devices if d.shiftable]
    if not shiftable:
        return 0
    frame = read_energy(client, plant, start_ns, end_ns, bucket="1h", devices=[d.id for d in shiftable])
    if frame.empty:
        return 0
    table = device_table(plant, frame, tariffs, plant.site.tz, expected_intervals=96)
    found = {"load_shift": load_shift(table, shiftable, tariff_for(tariffs, day), day.month)}
    points = opportunity_points(plant, found, start_ns, Granularity.DAY)
    return write_opportunities(plant, client, writer, points, start_ns=start_ns, end_ns=end_ns,
                               granularity=Granularity.DAY)
