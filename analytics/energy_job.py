"""The ``energy_15m`` job: reads raw `electrical` samples, writes `energy_15m` (derived database).

Per device and 15-minute interval (local calendar): import/export energy and
reactive energy from the judged counters (power integration where a device has no
import counter), the interval's average demand, the data coverage, what was
rejected or taken as a new meter, and the tariff period as the ``tou`` tag. Points
are stamped at the interval start; a recompute writes them over the old ones and only
then deletes the stale ones, so re-running a window (or back-filling it after a tariff
change) leaves exactly one consistent result and a failed write never leaves a hole.

Each window is read with the real samples around its edges (``analytics.energy_read``),
so a gap across the window's edge splits its energy between both windows exactly as one
run over both would: every kWh the counter moved lands in exactly one interval, day and month.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from plantems.analytics.energy import (
    INTERVAL_S,
    CounterSpec,
    energy_from_counter,
    energy_from_power,
    interval_edges,
)
from plantems.analytics.energy_read import HOLES, SPAN, minute_samples, read_samples
from plantems.config import Device, PlantConfig
from plantems.influx import InfluxClient, LineWriter
from plantems.lineproto import Point
from plantems.ratelog import ConditionLog
from plantems.schema import ENERGY_15M, Field, Tag
from plantems.store.query import SiteScope
from plantems.store.window import replace_window
from plantems.tariffs import Tariff, tariff_for

__all__ = ["compute_energy_15m", "counter_rollover", "counter_spec", "minute_samples", "read_samples", "run_energy_15m"]

log = logging.getLogger(__name__)
_judged = ConditionLog(log)  # the hourly re-runs see the same rejected sample four times

_NS = 1_000_000_000
# Counters and what they become in energy_15m.
_COUNTERS = {Field.E_IMP_KWH: Field.ENERGY_KWH, Field.E_EXP_KWH: Field.ENERGY_EXP_KWH,
             Field.EQ_IMP_KVARH: Field.REACTIVE_KVARH, Field.EQ_EXP_KVARH: Field.REACTIVE_EXP_KVARH}
# Reactive power may exceed active power (a power factor down to 0.45 at full load).
_REACTIVE_PER_KW = 2.0


def counter_rollover(plant: PlantConfig, device: Device, field: Field) -> tuple[float, ...]:
    """The wrap point of every register summed into ``field`` (none for MQTT devices)."""
    if device.mqtt is not None:
        return ()
    return tuple(r.rollover for r in plant.meter_of(device).registers
                 if r.quantity == field and r.rollover is not None)


def counter_spec(plant: PlantConfig, device: Device, field: Field) -> CounterSpec:
    """How ``field`` of ``device`` is judged: its wrap points and its maximum power (or gas flow)."""
    if field is Field.GAS_M3:
        return CounterSpec(rollovers=counter_rollover(plant, device, field), max_per_h=device.max_flow_m3h)
    max_kw = plant.max_kw_of(device)
    if max_kw is not None and field in (Field.EQ_IMP_KVARH, Field.EQ_EXP_KVARH):
        max_kw *= _REACTIVE_PER_KW
    return CounterSpec(rollovers=counter_rollover(plant, device, field), max_per_h=max_kw)


def _max_gap_s(device: Device) -> float:
    """Samples further apart than this leave the interval partly uncovered."""
    return max(60.0, 3 * device.poll_interval_s)


def _tou(tariffs: Sequence[Tariff], plant: PlantConfig, starts_ns: np.ndarray) -> list[str]:
    tz = plant.site.tz
    periods = []
    for start in starts_ns:
        local = datetime.fromtimestamp(start / _NS, tz)
        periods.append(tariff_for(tariffs, local.date()).period_at(local).value)
    return periods


def _report(device: Device, counter: Field, result: pd.DataFrame, edges: np.ndarray) -> None:
    """Log what the judge refused (rate-limited per device and counter)."""
    rejected, replaced = int(result["rejected"].sum()), int(result["replaced"].sum())
    if not rejected and not replaced:
        return
    first = int(np.flatnonzero((result["rejected"] + result["replaced"]).to_numpy())[0])
    _judged.log(logging.WARNING, f"{device.id}/{counter.value}",
                "device %s: counter %s: %d sample(s) rejected as implausible and %d new meter(s) (replacement "
                "or reset, counted from its first reading) in the intervals from %s; steps judged by max %s kW",
                device.id, counter.value, rejected, replaced, pd.Timestamp(int(edges[first]), tz="UTC"),
                result.attrs.get("max_per_h"))


def _counter_fields(plant: PlantConfig, device: Device, frame: pd.DataFrame, edges: np.ndarray
                    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Per-interval fields from the device's judged counters, and the coverage (None: no counter)."""
    times, gap = frame["time"].to_numpy(dtype=np.int64), _max_gap_s(device)
    span = frame.attrs.get(SPAN)
    real = span is not None and span[0] is not None  # the reader found the import counter's real times
    fields: dict[str, np.ndarray] = {}
    coverage: np.ndarray | None = None
    judged = np.zeros((2, len(edges) - 1))
    for counter, target in _COUNTERS.items():
        column = frame[counter.value].to_numpy(dtype=float) if counter.value in frame else np.array([])
        if np.count_nonzero(np.isfinite(column)) < 2:
            continue
        spec = counter_spec(plant, device, counter)
        result = energy_from_counter(times, column, edges, spec=spec, max_gap_s=gap,
                                     holes_ns=frame.attrs.get(HOLES) if real else None, span_ns=span if real else None)
        result.attrs["max_per_h"] = spec.max_per_h
        _report(device, counter, result, edges)
        fields[target.value] = result["energy"].to_numpy()
        judged += result[["rejected", "replaced"]].to_numpy().T
        if counter is Field.E_IMP_KWH:
            fields[Field.INTERP_KWH.value] = result["interp"].to_numpy()
        if counter is Field.E_IMP_KWH or coverage is None:  # the import counter's, else the first one's
            coverage = result["coverage"].to_numpy()
    if fields:
        fields[Field.REJECTED_SAMPLES.value], fields[Field.REPLACEMENTS.value] = judged
    return fields, coverage


def _device_fields(plant: PlantConfig, device: Device, frame: pd.DataFrame, edges: np.ndarray
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, bool]:
    """Per-interval fields of one device, its coverage, and whether it was integrated from power."""
    fields, coverage = _counter_fields(plant, device, frame, edges)
    if Field.ENERGY_KWH.value not in fields and Field.P_KW.value in frame:
        power = frame[Field.P_KW.value].to_numpy(dtype=float)
        times = frame["time"].to_numpy(dtype=np.int64)
        result = energy_from_power(times, np.clip(power, 0.0, None), edges, max_gap_s=_max_gap_s(device))
        fields[Field.ENERGY_KWH.value] = result["energy"].to_numpy()
        return fields, result["coverage"].to_numpy(), True
    if fields and Field.ENERGY_KWH.value not in fields:  # an export-only meter: its export still counts
        fields[Field.ENERGY_KWH.value] = np.zeros(len(edges) - 1)
    return fields, coverage if coverage is not None else np.zeros(len(edges) - 1), False


def compute_energy_15m(plant: PlantConfig, tariffs: Sequence[Tariff], samples: Mapping[str, pd.DataFrame],
                       start_ns: int, end_ns: int) -> list[Point]:
    """energy_15m points for [start_ns, end_ns) from each device's samples (pure).

    ``samples[device_id]`` has an int64 ``time`` column (UTC ns) and the raw fields, and may
    carry the real sample span and holes in ``attrs`` (see ``read_samples``). An interval is
    written when any counter moved, it has coverage, or a sample in it was judged; intervals
    without any of that are left out rather than written as zero.
    """
    edges = interval_edges(start_ns, end_ns - 1, plant.site.tz)
    tou = _tou(tariffs, plant, edges[:-1])
    points = []
    for device in plant.devices:
        frame = samples.get(device.id)
        if frame is None or frame.empty:
            continue
        fields, coverage, from_power = _device_fields(plant, device, frame, edges)
        if Field.ENERGY_KWH.value not in fields:
            continue
        tags = {Tag.SITE.value: plant.site.id, Tag.AREA.value: device.area, Tag.DEVICE.value: device.id,
                Tag.KIND.value: device.kind.value}
        for index, start in enumerate(edges[:-1]):
            if start < start_ns or start >= end_ns:
                continue
            values = {name: float(series[index]) for name, series in fields.items()}
            if coverage[index] == 0 and not any(values.values()):
                continue  # nothing moved, nothing sampled, nothing judged
            values[Field.DEMAND_KW.value] = values[Field.ENERGY_KWH.value] / (INTERVAL_S / 3600.0)
            values[Field.COVERAGE.value] = float(round(coverage[index], 6))
            values[Field.FROM_POWER.value] = 1.0 if from_power else 0.0
            points.append(Point(ENERGY_15M, {**tags, Tag.TOU.value: tou[index]}, values, int(start)))
    return points


def run_energy_15m(plant: PlantConfig, tariffs: Sequence[Tariff], client: InfluxClient, writer: LineWriter,
                   start_ns: int, end_ns: int) -> int:
    """Recompute [start_ns, end_ns): write the new energy_15m points over the old, then delete the
    stale ones (plantems.store.window.replace_window: a failed write never leaves the window empty)."""
    points = compute_energy_15m(plant, tariffs, read_samples(client, plant, start_ns, end_ns), start_ns, end_ns)
    replace_window(client, writer, site=SiteScope(plant.site.id), database=plant.influxdb.derived_database,
                   measurement=ENERGY_15M, tags={}, start_ns=start_ns, end_ns=end_ns, points=points,
                   batch_lines=plant.influxdb.batch_lines)
    log.debug("energy_15m: %d points for %s .. %s", len(points), pd.Timestamp(start_ns, tz="UTC"),
             pd.Timestamp(end_ns, tz="UTC"))
    return len(points)
