"""Opportunity jobs: daily load shifting (every night, and in back-fills) and the monthly set
(load shifting, maximum demand, reactive power) that the rollup adds to its report. Both
write `opportunity` points, replacing the window's previous ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd

from plantems.analytics.opportunities import (
    Opportunities,
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
from plantems.schema import AIR, OPPORTUNITY, Field, Granularity, Tag
from plantems.store.query import SiteScope, agg
from plantems.store.window import replace_window
from plantems.tariffs import Tariff, tariff_for

__all__ = ["month_opportunities", "read_air", "read_month_energy", "run_daily_load_shift",
           "write_opportunities"]


def month_opportunities(plant: PlantConfig, rollup: Rollup, intervals: pd.DataFrame, tariffs: Sequence[Tariff], *,
                        totals: pd.DataFrame | None = None, at_peak: dict[str, dict[str, float]] | None = None,
                        air_m3: dict[str, tuple[float, float]] | None = None,
                        air_bar: dict[str, float] | None = None
                        ) -> Opportunities:
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
    costs = rollup.devices.set_index(Tag.DEVICE.value) if len(rollup.devices) else rollup.devices
    reactive = []
    for group in groups:
        mine = costs.loc[costs.index.intersection(list(group.meters))]
        kwh, cost = float(mine[Field.ENERGY_KWH.value].sum()), float(mine["cost_cny"].sum())
        reactive.append(reactive_power(plant, group, intervals, totals=totals, energy_cost_cny=cost,
                                       average_price_cny_per_kwh=cost / kwh if kwh else 0.0))
    return Opportunities(
        tariff=tariff.id, load_shift=load_shift(rollup.devices, shiftable, tariff, start.month),
        max_demand=tuple(max_demand(plant, group, intervals, tariff, start.month, at_peak=(at_peak or {}).get(group.id))
                         for group in groups),
        reactive=tuple(reactive), compressed_air=compressed_air(plant, air_m3 or {}, air_bar or {}, rollup.devices))


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
    tariff = tariff_for(tariffs, day)
    found = Opportunities(tariff=tariff.id, load_shift=load_shift(table, shiftable, tariff, day.month))
    points = found.to_points(site=plant.site.id, time_ns=start_ns, granularity=Granularity.DAY)
    return write_opportunities(plant, client, writer, points, start_ns=start_ns, end_ns=end_ns,
                               granularity=Granularity.DAY)
