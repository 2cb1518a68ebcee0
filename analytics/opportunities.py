"""Savings the plan asks for (pure): load shifting, the month's maximum demand, reactive power.

- **Load shifting**: for each shiftable device, the energy and cost of its sharp and peak
  periods, and the saving if that energy ran at the cheapest tariff period its allowed
  windows (``shift_windows``) reach instead.
- **Maximum demand**: the 15-minute interval that set each billing group's monthly maximum,
  the sub-metered loads in it (largest first), and the maximum had the shiftable loads'
  sharp/peak energy run spread evenly over the month's intervals that lie wholly inside the
  load's ``shift_windows`` and are not sharp or peak; the kW saved times the tariff's demand
  charge (when the bill's charge is configured).
- **Compressed air** (where an ``air_flow`` meter measures a compressor station): specific
  power, kW per m3/min of free air (kWh / m3 x 60), and the saving of a lower header
  pressure, about 7 % of compressor energy per bar (``compressed_air:`` in the plant file).
- **Reactive power**: the month's PF as the tariff computes it (import + export kvarh), the
  1983 bill adjustment, a capacitor bank sized from the 15-minute distribution, the devices
  with the most reactive energy and the lowest PF, over-compensation (leading intervals at
  light load, exported kvarh), and the line-loss reduction of the target PF on the losses
  from the energy balance behind the group's meters (import - export + on-site generation -
  sub-metered loads, analytics/balance.py; an upper bound: it includes unmetered load). With
  every incomer in the group it is the report's unmetered remainder.

Maximum demand here is over fixed 15-minute intervals of ``energy_15m``; a sliding-window
meter can bill up to a few % more, which is why the live ``demand`` points (sliding) are
reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from plantems.analytics.balance import energy_balance
from plantems.analytics.opportunity_results import (
    CompressedAir,
    DemandPeak,
    DevicePf,
    LoadShift,
    MaxDemand,
    Opportunities,
    ReactiveMonth,
    ReactivePower,
)
from plantems.analytics.reactive import line_loss_reduction, monthly_pf, pf_adjustment_percent, size_capacitor_bank
from plantems.calendar import clock_minutes
from plantems.config import Device, DeviceKind, PlantConfig
from plantems.demandconfig import MeterGroup
from plantems.schema import Field, Tag
from plantems.tariffs import Period, Tariff

__all__ = ["CompressedAir", "DemandPeak", "DevicePf", "LoadShift", "MaxDemand", "Opportunities", "ReactiveMonth",
           "ReactivePower", "allowed_periods", "compressed_air", "device_totals", "group_peak", "interval_devices",
           "load_shift", "max_demand", "reactive_power", "window_mask"]

_EXPENSIVE = (Period.SHARP, Period.PEAK)
# columns of energy_15m rows and device tables: the schema's names
_DEVICE, _TOU = Tag.DEVICE.value, Tag.TOU.value
_KWH, _EXP_KWH = Field.ENERGY_KWH.value, Field.ENERGY_EXP_KWH.value
_KVARH, _EXP_KVARH = Field.REACTIVE_KVARH.value, Field.REACTIVE_EXP_KVARH.value
_NOT_LOADS = (DeviceKind.INCOMER, DeviceKind.FEEDER, DeviceKind.PV)
_LIGHT_LOAD_QUANTILE = 0.25  # intervals below this kW quantile count as light load


# --- computation (pure) ------------------------------------------------------------------------------


def window_mask(times_ns: np.ndarray, tz: ZoneInfo, windows: Sequence[str], *, interval_min: int = 15
                ) -> np.ndarray:
    """Which intervals (UTC start times) lie wholly inside the local ``windows`` (none: all of them)."""
    if not windows:
        return np.ones(len(times_ns), dtype=bool)
    covered = np.array(clock_minutes(tuple(windows)), dtype=bool)
    inside = np.concatenate([covered, covered])  # an interval may run past midnight into a wrapping window
    local = pd.DatetimeIndex(pd.to_datetime(times_ns, utc=True)).tz_convert(tz)
    first = local.hour.to_numpy() * 60 + local.minute.to_numpy()
    return np.array([bool(inside[m:m + interval_min].all()) for m in first], dtype=bool)


def allowed_periods(tariff: Tariff, month: int, windows: Sequence[str]) -> set[Period]:
    """Tariff periods a load may move into: those its windows reach (default: the whole day)."""
    calendar = next(c for c in tariff.calendars if month in c.months)
    covered = clock_minutes(tuple(windows)) if windows else [True] * (24 * 60)
    return {calendar.period_at(time(m // 60, m % 60)) for m, inside in enumerate(covered) if inside}


def load_shift(devices: pd.DataFrame, shiftable: Sequence[Device], tariff: Tariff, month: int
               ) -> tuple[LoadShift, ...]:
    """Per shiftable device (rows of a rollup-style device table with kwh_<period> and
    cost_<period>_cny): sharp+peak energy and cost, and the saving at the cheapest allowed period."""
    out = []
    table = devices.set_index(_DEVICE).to_dict(orient="index") if len(devices) else {}
    for device in shiftable:
        row = table.get(device.id)
        if row is None:
            continue
        targets = allowed_periods(tariff, month, device.shift_windows) - set(_EXPENSIVE)
        if not targets:
            continue  # its windows only reach peak hours: nowhere cheaper to go
        target = min(targets, key=lambda p: tariff.prices_per_kwh[p])
        price = tariff.prices_per_kwh[target]
        kwh = sum(float(row[f"kwh_{p.value}"]) for p in _EXPENSIVE)
        cost = sum(float(row[f"cost_{p.value}_cny"]) for p in _EXPENSIVE)
        out.append(LoadShift(device=device.id, peak_sharp_kwh=kwh, peak_sharp_cost_cny=cost, move_to=target,
                             move_to_price_cny_per_kwh=price, saving_cny=max(cost - kwh * price, 0.0),
                             windows=tuple(device.shift_windows)))
    return tuple(sorted(out, key=lambda item: -item.saving_cny))


def _group_meters(plant: PlantConfig, group: MeterGroup) -> tuple[list[str], list[Device]]:
    """The group's meters and the loads behind them (their fed areas, or the whole site)."""
    meters = [d for d in plant.devices if d.id in group.meters]
    areas = {a for m in meters for a in m.feeds}
    loads = [d for d in plant.devices if d.kind not in _NOT_LOADS and (not areas or d.area in areas)]
    return [m.id for m in meters], loads


def interval_devices(plant: PlantConfig) -> list[str]:
    """The devices whose 15-minute energy the month's opportunities need: the billing meters and the
    shiftable loads. Every other device is read as month totals and at each group's peak only, so a
    plant with hundreds of meters is not read interval by interval."""
    groups = plant.demand.groups if plant.demand else ()
    return sorted({m for g in groups for m in g.meters} | {d.id for d in plant.devices if d.shiftable})


def device_totals(intervals: pd.DataFrame) -> pd.DataFrame:
    """Per device: the energy fields summed (pure; the same as InfluxDB's month sums)."""
    fields = [_KWH, _EXP_KWH, _KVARH, _EXP_KVARH]
    return intervals.reindex(columns=[_DEVICE, *fields]).groupby(_DEVICE, as_index=False)[fields].sum()


def group_peak(plant: PlantConfig, group: MeterGroup, intervals: pd.DataFrame) -> int | None:
    """Start (UTC ns) of the 15-minute interval with the group's highest import, or None without data."""
    meters, _ = _group_meters(plant, group)
    mine = intervals[intervals[_DEVICE].isin(meters)]
    if mine.empty:
        return None
    sums = mine.groupby("time")[_KWH].sum()
    return int(sums.index[int(sums.to_numpy().argmax())])


def _pivot(intervals: pd.DataFrame, column: str) -> pd.DataFrame:
    """time x device table of one field of 15-minute points (0 where a device has no point)."""
    return intervals.pivot_table(index="time", columns=_DEVICE, values=column, aggfunc="sum").fillna(0.0)


def max_demand(plant: PlantConfig, group: MeterGroup, intervals: pd.DataFrame, tariff: Tariff,
               month: int, *, at_peak: dict[str, float] | None = None) -> MaxDemand:
    """The interval that set the group's maximum, who made it, and what shifting would have saved.

    ``intervals`` needs the group's meters and shiftable loads; ``at_peak`` is every device's kWh in
    the peak interval (default: taken from ``intervals``).
    """
    meters, loads = _group_meters(plant, group)
    kw = _pivot(intervals, _KWH) * 4.0  # 15-minute energy -> average kW
    present = [m for m in meters if m in kw]
    if not present:
        return MaxDemand(group=group.id, peak=None)
    total = kw[present].sum(axis=1)
    peak_time = int(total.index[int(total.to_numpy().argmax())])
    peak_kwh = (at_peak if at_peak is not None
                else {str(d): float(kwh) / 4.0 for d, kwh in kw.loc[peak_time].to_dict().items()})
    contributors = tuple(sorted(((d.id, peak_kwh[d.id] * 4.0) for d in loads if d.id in peak_kwh),
                                key=lambda item: -item[1]))
    tou = intervals.drop_duplicates("time").set_index("time")[_TOU].reindex(total.index)
    expensive = tou.isin([p.value for p in _EXPENSIVE]).to_numpy()
    moved = total.to_numpy().copy()
    for device in (d for d in loads if d.shiftable and d.id in kw):
        series = kw[device.id].to_numpy()
        # only into hours the load may run: inside its windows, and not into sharp or peak
        into = ~expensive & window_mask(total.index.to_numpy(dtype=np.int64), plant.site.tz, device.shift_windows)
        if not into.any():
            continue
        moved = moved - np.where(expensive, series, 0.0)
        moved = moved + np.where(into, series[expensive].sum() / into.sum(), 0.0)  # same energy, spread evenly
    new_max = float(moved.max())
    reduction = max(float(total.max()) - new_max, 0.0)
    charge = tariff.demand_charge_per_kw_month
    peak = DemandPeak(
        limit_kw=group.limit_kw, max_kw=float(total.max()), max_at_ns=peak_time,
        max_at_local=pd.Timestamp(peak_time, tz="UTC").tz_convert(plant.site.tz).strftime("%Y-%m-%d %H:%M"),
        max_tou=str(tou.loc[peak_time]), contributors_kw=contributors,
        shiftable_at_max=tuple(c for c in contributors if any(d.id == c[0] and d.shiftable for d in loads)),
        max_kw_if_shifted=new_max, reduction_kw=reduction,
        saving_cny=reduction * charge if charge is not None else None, demand_charge_cny_per_kw_month=charge)
    return MaxDemand(group=group.id, peak=peak)


def reactive_power(plant: PlantConfig, group: MeterGroup, intervals: pd.DataFrame, *, totals: pd.DataFrame,
                   energy_cost_cny: float, average_price_cny_per_kwh: float) -> ReactivePower:
    """Monthly PF, bill adjustment, capacitor sizing, worst devices, over-compensation, line losses.

    ``intervals`` needs the group's meters (15-minute rows); ``totals`` every device's month sums.
    """
    meters, loads = _group_meters(plant, group)
    mine = intervals[intervals[_DEVICE].isin(meters)]
    if mine.empty or mine[_KWH].sum() <= 0:
        return ReactivePower(group=group.id, month=None)
    kwh = float(mine[_KWH].sum())
    kvarh_imp = float(mine[_KVARH].fillna(0).sum())
    kvarh_exp = float(mine[_EXP_KVARH].fillna(0).sum())
    pf = monthly_pf(kwh, kvarh_imp, kvarh_exp)
    adjustment_pct = pf_adjustment_percent(pf, group.pf_standard)
    p = _pivot(mine, _KWH).sum(axis=1) * 4.0
    # net kvarh per meter; leading per meter, as two incomers can cancel in the sum while one feeds kvar back
    net_q = (_pivot(mine.fillna({_KVARH: 0.0}), _KVARH)
             - _pivot(mine.fillna({_EXP_KVARH: 0.0}), _EXP_KVARH)).reindex(p.index, fill_value=0.0)
    q = net_q.sum(axis=1) * 4.0
    sizing = size_capacitor_bank(p.to_numpy(), q.to_numpy(), pf_target=group.pf_target)
    leading = net_q < 0
    light = p < p.quantile(_LIGHT_LOAD_QUANTILE)
    by_device = totals.set_index(_DEVICE).to_dict(orient="index")
    devices = []
    for device in (d for d in loads if d.id in by_device):
        row = by_device[device.id]
        e, r_imp, r_exp = (float(row[f]) if pd.notna(row[f]) else 0.0
                           for f in (_KWH, _KVARH, _EXP_KVARH))
        if e > 0 and r_imp + r_exp > 0:
            devices.append(DevicePf(device=device.id, kvarh=r_imp + r_exp, pf=monthly_pf(e, r_imp, r_exp), kwh=e))
    balance = energy_balance(plant, totals, grid_meters=meters)
    losses_kwh = max(balance.unmetered_kwh, 0.0)  # negative: sub-meters exceed the supply, no losses to reduce
    loss_share = max(line_loss_reduction(pf, group.pf_target), 0.0) if pf < group.pf_target else 0.0
    # what compensation to the target PF is worth: the bill adjustment avoided, and the line losses
    at_target_pct = pf_adjustment_percent(max(pf, group.pf_target), group.pf_standard)
    compensation_cny = (adjustment_pct - at_target_pct) / 100.0 * energy_cost_cny
    line_loss_kwh = losses_kwh * loss_share
    return ReactivePower(group=group.id, month=ReactiveMonth(
        kwh=kwh, kvarh_import=kvarh_imp, kvarh_export=kvarh_exp, pf=pf, pf_standard=group.pf_standard,
        pf_target=group.pf_target, adjustment_pct=adjustment_pct,
        adjustment_cny=adjustment_pct / 100.0 * energy_cost_cny,
        capacitor_kvar_p95=sizing.p95_kvar, capacitor_kvar_average=sizing.average_kvar,
        capacitor_kvar_max=sizing.max_kvar, leading_intervals=int(leading.any(axis=1).sum()),
        leading_intervals_at_light_load=int((leading.any(axis=1) & light).sum()),
        over_compensated=kvarh_exp > 0 or bool(leading.any(axis=None)), devices=tuple(devices),
        losses_kwh_upper_bound=losses_kwh, balance=balance, line_loss_saving_kwh=line_loss_kwh,
        line_loss_saving_cny=line_loss_kwh * average_price_cny_per_kwh,
        saving_cny=compensation_cny + line_loss_kwh * average_price_cny_per_kwh))


def compressed_air(plant: PlantConfig, air_m3: dict[str, tuple[float, float]], mean_bar: dict[str, float],
                   devices: pd.DataFrame) -> tuple[CompressedAir, ...]:
    """Per air meter (``air_m3``: free air and its data coverage): its compressors' energy, specific
    power, and the pressure-reduction saving."""
    table = devices.set_index(_DEVICE) if len(devices) else devices
    settings = plant.compressed_air
    out = []
    for meter in (d for d in plant.devices if d.kind is DeviceKind.AIR_FLOW and d.compressors):
        mine = table.loc[table.index.intersection(list(meter.compressors))]
        kwh, cost = float(mine[_KWH].sum()), float(mine["cost_cny"].sum())
        m3, coverage = air_m3.get(meter.id, (None, 0.0))
        saving_kwh = settings.saving_per_bar * settings.pressure_reduction_bar * kwh
        out.append(CompressedAir(
            device=meter.id, compressors=tuple(meter.compressors), compressor_kwh=kwh, air_m3=m3,
            air_coverage=coverage, kwh_per_m3=kwh / m3 if m3 else None,
            specific_power_kw_per_m3min=kwh / m3 * 60.0 if m3 else None, mean_bar=mean_bar.get(meter.id),
            pressure_reduction_bar=settings.pressure_reduction_bar, saving_kwh=saving_kwh,
            saving_cny=saving_kwh * (cost / kwh) if kwh else 0.0))
    return tuple(out)
