"""The ``energy_15m`` job: reads raw `electrical` samples, writes `energy_15m` (derived database).

Per device and 15-minute interval (local calendar): import/export energy and
reactive energy from the counters (power integration where a device has no
import counter), the interval's average demand, the data coverage, and the
tariff period as the ``tou`` tag. Points are stamped at the interval start; a
recompute writes them over the old ones and only then deletes the stale ones, so
re-running a window (or back-filling it after a tariff change) leaves exactly one
consistent result and a failed write never leaves a hole.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from analytics.energy import INTERVAL_S, CounterSpec, energy_from_counter, energy_from_power, interval_edges
from plantems.config import Device, PlantConfig
from plantems.influx import InfluxClient, LineWriter, replace_window, tag_in
from plantems.lineproto import Point
from plantems.schema import ELECTRICAL, ENERGY_15M, Field, Tag
from plantems.tariffs import Tariff, tariff_for

__all__ = ["compute_energy_15m", "counter_rollover", "read_samples", "run_energy_15m"]

log = logging.getLogger(__name__)

_NS = 1_000_000_000
# Counters and what they become in energy_15m.
_COUNTERS = {Field.E_IMP_KWH: Field.ENERGY_KWH, Field.E_EXP_KWH: Field.ENERGY_EXP_KWH,
             Field.EQ_IMP_KVARH: Field.REACTIVE_KVARH, Field.EQ_EXP_KVARH: Field.REACTIVE_EXP_KVARH}
_READ_MARGIN_NS = INTERVAL_S * _NS  # samples just outside the window anchor its first and last interval


def counter_rollover(plant: PlantConfig, device: Device, field: Field) -> float | None:
    if device.mqtt is not None:
        return None
    rollovers = [r.rollover for r in plant.meter_of(device).registers if r.quantity == field]
    return rollovers[0] if len(rollovers) == 1 else None  # a summed quantity has no single wrap point


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


def compute_energy_15m(plant: PlantConfig, tariffs: Sequence[Tariff], samples: Mapping[str, pd.DataFrame],
                       start_ns: int, end_ns: int) -> list[Point]:
    """energy_15m points for [start_ns, end_ns) from each device's samples (pure).

    ``samples[device_id]`` has an int64 ``time`` column (UTC ns) and the raw fields.
    Intervals without any data are left out rather than written as zero.
    """
    edges = interval_edges(start_ns, end_ns - 1, plant.site.tz)
    tou = _tou(tariffs, plant, edges[:-1])
    points = []
    for device in plant.devices:
        frame = samples.get(device.id)
        if frame is None or frame.empty:
            continue
        times = frame["time"].to_numpy(dtype=np.int64)
        gap = _max_gap_s(device)
        fields: dict[str, np.ndarray] = {}
        coverage = np.zeros(len(edges) - 1)
        from_power = False
        for counter, target in _COUNTERS.items():
            column = frame[counter.value].to_numpy(dtype=float) if counter.value in frame else np.array([])
            if np.count_nonzero(np.isfinite(column)) >= 2:
                result = energy_from_counter(times, frame[counter.value].to_numpy(dtype=float), edges,
                                             spec=CounterSpec(counter_rollover(plant, device, counter)), max_gap_s=gap)
                fields[target.value] = result["energy"].to_numpy()
                if result.attrs["resets"]:
                    log.warning("device %s: counter %s dropped %d time(s) without wrapping (meter reset or "
                                "replaced); counted from zero", device.id, counter.value, result.attrs["resets"])
                if counter is Field.E_IMP_KWH:
                    coverage = result["coverage"].to_numpy()
        if Field.ENERGY_KWH.value not in fields and Field.P_KW.value in frame:
            power = frame[Field.P_KW.value].to_numpy(dtype=float)
            result = energy_from_power(times, np.clip(power, 0.0, None), edges, max_gap_s=gap)
            fields[Field.ENERGY_KWH.value] = result["energy"].to_numpy()
            coverage = result["coverage"].to_numpy()
            from_power = True
        if Field.ENERGY_KWH.value not in fields:
            continue
        tags = {Tag.SITE.value: plant.site.id, Tag.AREA.value: device.area, Tag.DEVICE.value: device.id,
                Tag.KIND.value: device.kind.value}
        for index, start in enumerate(edges[:-1]):
            if start < start_ns or start >= end_ns:
                continue
            if coverage[index] == 0 and fields[Field.ENERGY_KWH.value][index] == 0:
                continue  # no data at all for this interval
            values = {name: float(series[index]) for name, series in fields.items()}
            values[Field.DEMAND_KW.value] = values[Field.ENERGY_KWH.value] / (INTERVAL_S / 3600.0)
            values[Field.COVERAGE.value] = float(round(coverage[index], 6))
            values[Field.FROM_POWER.value] = 1.0 if from_power else 0.0
            points.append(Point(ENERGY_15M, {**tags, Tag.TOU.value: tou[index]}, values, int(start)))
    return points


_BUCKET_S = 60


def minute_samples(frame: pd.DataFrame, bucket_s: int = _BUCKET_S) -> pd.DataFrame:
    """Turn bucket aggregates into samples (pure): ``last()`` of a counter in a bucket is taken at
    ``start + bucket x (n - 1) / n``, where the last of ``n`` evenly spaced samples falls, so a
    bucket's single sample keeps its own time and 1-s data the time of its last second."""
    counts = frame["n"].clip(lower=1).to_numpy(dtype=float)
    offset_ns = (bucket_s * 1_000_000_000 * (counts - 1) / counts).astype(np.int64)
    out = frame.drop(columns=["n"]).copy()
    out["time"] = frame["time"].to_numpy(dtype=np.int64) + offset_ns
    return out


def _aggregate_query(plant: PlantConfig, select: str, count_field: str, start_ns: int, end_ns: int,
                     devices: str = "") -> str:
    return (f'SELECT {select}, count("{count_field}") AS "n" FROM "{ELECTRICAL}" '
            f"WHERE \"{Tag.SITE.value}\" = '{plant.site.id}'{devices} "
            f"AND time >= {start_ns - _READ_MARGIN_NS} AND time < {end_ns + _READ_MARGIN_NS} "
            f'GROUP BY time({_BUCKET_S}s), "{Tag.DEVICE.value}" fill(none)')


def read_samples(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, pd.DataFrame]:
    """Counter samples per device around [start_ns, end_ns), aggregated to 1 minute by InfluxDB;
    mean power per minute only for devices without an import counter.

    Reading every 1-s sample of 500 meters for an hour would move millions of values
    through JSON; the last counter value per minute keeps totals exact and puts each
    interval boundary within a second of the truth.
    """
    counters = ", ".join(f'last("{f.value}") AS "{f.value}"' for f in _COUNTERS)
    query = _aggregate_query(plant, counters, Field.E_IMP_KWH.value, start_ns, end_ns)
    out = {}
    for series in client.query(query, database=plant.influxdb.raw_database):
        frame = pd.DataFrame(series.values, columns=series.columns).astype({"time": "int64"})
        out[series.tags[Tag.DEVICE.value]] = minute_samples(frame)
    without = [d.id for d in plant.devices if d.id not in out]
    if without:
        query = _aggregate_query(plant, f'mean("{Field.P_KW.value}") AS "{Field.P_KW.value}"', Field.P_KW.value,
                                 start_ns, end_ns, devices=f" AND {tag_in(Tag.DEVICE.value, without)}")
        for series in client.query(query, database=plant.influxdb.raw_database):
            frame = pd.DataFrame(series.values, columns=series.columns).astype({"time": "int64"})
            out[series.tags[Tag.DEVICE.value]] = minute_samples(frame)
    return out


def run_energy_15m(plant: PlantConfig, tariffs: Sequence[Tariff], client: InfluxClient, writer: LineWriter,
                   start_ns: int, end_ns: int) -> int:
    """Recompute [start_ns, end_ns): write the new energy_15m points over the old, then delete the
    stale ones (plantems.influx.replace_window: a failed write never leaves the window empty)."""
    points = compute_energy_15m(plant, tariffs, read_samples(client, plant, start_ns, end_ns), start_ns, end_ns)
    replace_window(client, writer, database=plant.influxdb.derived_database, measurement=ENERGY_15M,
                   scope={Tag.SITE.value: plant.site.id}, start_ns=start_ns, end_ns=end_ns, points=points,
                   batch_lines=plant.influxdb.batch_lines)
    log.debug("energy_15m: %d points for %s .. %s", len(points), pd.Timestamp(start_ns, tz="UTC"),
             pd.Timestamp(end_ns, tz="UTC"))
    return len(points)
