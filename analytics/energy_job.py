"""The ``energy_15m`` job: reads raw `electrical` samples, writes `energy_15m` (derived database).

Per device and 15-minute interval (local calendar): import/export energy and
reactive energy from the judged counters (power integration where a device has no
import counter), the interval's average demand, the data coverage, what was
rejected or taken as a new meter, and the tariff period as the ``tou`` tag. Points
are stamped at the interval start; a recompute writes them over the old ones and only
then deletes the stale ones, so re-running a window (or back-filling it after a tariff
change) leaves exactly one consistent result and a failed write never leaves a hole.

Each window is read with the real samples around its edges: the last few before it and
the first few after it (as far back and ahead as the raw retention), so a gap across
the window's edge splits its energy between both windows exactly as one run over both
would, and every kWh the counter moved lands in exactly one interval, day and month.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from analytics.energy import (
    INTERVAL_S,
    LOOKAHEAD,
    CounterSpec,
    coverage_from_holes,
    energy_from_counter,
    energy_from_power,
    interval_edges,
)
from plantems.config import Device, PlantConfig
from plantems.influx import InfluxClient, LineWriter, replace_window, tag_in
from plantems.lineproto import Point
from plantems.ratelog import ConditionLog
from plantems.schema import ELECTRICAL, ENERGY_15M, Field, Tag
from plantems.tariffs import Tariff, tariff_for

__all__ = ["compute_energy_15m", "counter_rollover", "counter_spec", "read_samples", "run_energy_15m"]

log = logging.getLogger(__name__)
_judged = ConditionLog(log)  # the hourly re-runs see the same rejected sample four times

_NS = 1_000_000_000
# Counters and what they become in energy_15m.
_COUNTERS = {Field.E_IMP_KWH: Field.ENERGY_KWH, Field.E_EXP_KWH: Field.ENERGY_EXP_KWH,
             Field.EQ_IMP_KVARH: Field.REACTIVE_KVARH, Field.EQ_EXP_KVARH: Field.REACTIVE_EXP_KVARH}
# Reactive power may exceed active power (a power factor down to 0.45 at full load).
_REACTIVE_PER_KW = 2.0
_POWER_MARGIN_NS = INTERVAL_S * _NS  # power-only devices: samples just outside the window anchor its edges
_CONTEXT = LOOKAHEAD + 1  # raw samples read at each edge: the edge step and the judge's look-ahead
_MIN_HOLE_S = 60  # the smallest gap that is a hole for any device (max(60 s, 3 poll intervals))
SPAN = "span_ns"  # frame.attrs: (first, last) real sample time of the import counter around the window
HOLES = "holes_ns"  # frame.attrs: (starts, ends) of the import counter's gaps longer than _MIN_HOLE_S


def counter_rollover(plant: PlantConfig, device: Device, field: Field) -> tuple[float, ...]:
    """The wrap point of every register summed into ``field`` (none for MQTT devices)."""
    if device.mqtt is not None:
        return ()
    return tuple(r.rollover for r in plant.meter_of(device).registers
                 if r.quantity == field and r.rollover is not None)


def counter_spec(plant: PlantConfig, device: Device, field: Field) -> CounterSpec:
    """How ``field`` of ``device`` is judged: its wrap points and its maximum power."""
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


def _coverage(frame: pd.DataFrame, edges: np.ndarray, gap_s: float) -> np.ndarray | None:
    """Coverage from the real sample times the reader left in ``attrs`` (None: not read that way)."""
    if SPAN not in frame.attrs:
        return None
    first_ns, last_ns = frame.attrs[SPAN]
    starts, ends = (np.asarray(a, dtype=np.int64) for a in frame.attrs[HOLES])
    holes = (ends - starts) > gap_s * _NS
    return coverage_from_holes(edges, first_ns=first_ns, last_ns=last_ns,
                               hole_start_ns=starts[holes], hole_end_ns=ends[holes])


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


def _device_fields(plant: PlantConfig, device: Device, frame: pd.DataFrame, edges: np.ndarray
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, bool]:
    """Per-interval fields of one device, its coverage, and whether it was integrated from power."""
    times = frame["time"].to_numpy(dtype=np.int64)
    gap = _max_gap_s(device)
    fields: dict[str, np.ndarray] = {}
    coverage = np.zeros(len(edges) - 1)
    rejected, replaced = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for counter, target in _COUNTERS.items():
        column = frame[counter.value].to_numpy(dtype=float) if counter.value in frame else np.array([])
        if np.count_nonzero(np.isfinite(column)) < 2:
            continue
        spec = counter_spec(plant, device, counter)
        result = energy_from_counter(times, column, edges, spec=spec, max_gap_s=gap)
        result.attrs["max_per_h"] = spec.max_per_h
        _report(device, counter, result, edges)
        fields[target.value] = result["energy"].to_numpy()
        rejected, replaced = rejected + result["rejected"].to_numpy(), replaced + result["replaced"].to_numpy()
        if counter is Field.E_IMP_KWH:
            fields[Field.INTERP_KWH.value] = result["interp"].to_numpy()
            real = _coverage(frame, edges, gap)
            coverage = result["coverage"].to_numpy() if real is None else real
    if fields:
        fields[Field.REJECTED_SAMPLES.value], fields[Field.REPLACEMENTS.value] = rejected, replaced
    if Field.ENERGY_KWH.value not in fields and Field.P_KW.value in frame:
        power = frame[Field.P_KW.value].to_numpy(dtype=float)
        result = energy_from_power(times, np.clip(power, 0.0, None), edges, max_gap_s=gap)
        fields[Field.ENERGY_KWH.value] = result["energy"].to_numpy()
        return fields, result["coverage"].to_numpy(), True
    return fields, coverage, False


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


def _times_of(frame: pd.DataFrame | None, field: Field) -> np.ndarray:
    if frame is None or field.value not in frame:
        return np.array([], dtype=np.int64)
    return frame["time"].to_numpy(dtype=np.int64)[frame[field.value].notna().to_numpy()]


def assemble_samples(*, before: pd.DataFrame | None, first: pd.DataFrame | None, minutes: pd.DataFrame | None,
                     last: pd.DataFrame | None, after: pd.DataFrame | None,
                     holes: tuple[np.ndarray, np.ndarray] | None) -> pd.DataFrame:
    """One device's counter samples for a window (pure): the real samples at both edges (the last
    before it, the first and last in it, the first after it), the minute aggregates in between,
    and in ``attrs`` the import counter's real span and holes for its coverage.

    Raw frames have real times; ``minutes`` has bucket starts and counts ``n``. Buckets that reach
    into the edges' real samples are left out, so the steps across each window edge are the same
    real samples whichever of the two windows computes them.
    """
    raw = [f for f in (before, first, last, after) if f is not None and not f.empty]
    frame = pd.concat(raw, ignore_index=True) if raw else pd.DataFrame({"time": np.array([], dtype=np.int64)})
    if minutes is not None and not minutes.empty:
        bucket_ns = minutes["time"].to_numpy(dtype=np.int64)
        low = int(first["time"].max()) if first is not None and not first.empty else np.iinfo(np.int64).min
        high = int(last["time"].min()) if last is not None and not last.empty else np.iinfo(np.int64).max
        inner = minutes[(bucket_ns > low) & (bucket_ns + _BUCKET_S * _NS <= high)]
        frame = pd.concat([frame, minute_samples(inner)], ignore_index=True)
    frame = frame.astype({"time": "int64"}).drop_duplicates("time", keep="first").sort_values("time")
    frame = frame.reset_index(drop=True)
    known = [_times_of(f, Field.E_IMP_KWH) for f in (before, first, last, after)]
    tb, tf, tl, ta = (None if len(t) == 0 else int(t.max() if i in (0, 2) else t.min())
                      for i, t in enumerate(known))
    starts, ends = holes if holes is not None else (np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    pairs = [(tb, tf), (tl, ta)] if tf is not None else [(tb, ta)]
    edge = [(a, b) for a, b in pairs if a is not None and b is not None and b - a > _MIN_HOLE_S * _NS]
    frame.attrs[HOLES] = (np.concatenate([starts, [a for a, _ in edge]]).astype(np.int64),
                          np.concatenate([ends, [b for _, b in edge]]).astype(np.int64))
    span = [t for t in (tb, tf, tl, ta) if t is not None]
    frame.attrs[SPAN] = (min(span), max(span)) if span else (None, None)
    return frame


def _site(plant: PlantConfig) -> str:
    return f"\"{Tag.SITE.value}\" = '{plant.site.id}'"


def _by_device(series: list, *, bucketed: bool = False) -> dict[str, pd.DataFrame]:
    out = {}
    for s in series:
        frame = pd.DataFrame(s.values, columns=s.columns).astype({"time": "int64"})
        out[s.tags[Tag.DEVICE.value]] = frame.sort_values("time").reset_index(drop=True) if not bucketed else frame
    return out


def _edge_query(plant: PlantConfig, time_range: str, *, newest_first: bool) -> str:
    """The first (or last) few raw counter samples of every device in ``time_range``."""
    counters = ", ".join(f'"{f.value}"' for f in _COUNTERS)
    order = " ORDER BY time DESC" if newest_first else ""
    return (f'SELECT {counters} FROM "{ELECTRICAL}" WHERE {_site(plant)} AND {time_range} '
            f'GROUP BY "{Tag.DEVICE.value}"{order} LIMIT {_CONTEXT}')


def _holes_query(plant: PlantConfig, start_ns: int, end_ns: int) -> str:
    """Only the import counter's gaps longer than any device's threshold, computed by InfluxDB; each
    row's time is the hole's end, ``e`` its length in ns."""
    return (f'SELECT "e" FROM (SELECT elapsed("{Field.E_IMP_KWH.value}", 1ns) AS "e" FROM "{ELECTRICAL}" '
            f"WHERE {_site(plant)} AND time >= {start_ns} AND time < {end_ns} GROUP BY \"{Tag.DEVICE.value}\") "
            f'WHERE "e" > {_MIN_HOLE_S * _NS} GROUP BY "{Tag.DEVICE.value}"')


def _aggregate_query(plant: PlantConfig, select: str, count_field: str, start_ns: int, end_ns: int,
                     devices: str = "") -> str:
    return (f'SELECT {select}, count("{count_field}") AS "n" FROM "{ELECTRICAL}" '
            f"WHERE {_site(plant)}{devices} AND time >= {start_ns} AND time < {end_ns} "
            f'GROUP BY time({_BUCKET_S}s), "{Tag.DEVICE.value}" fill(none)')


def read_samples(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, pd.DataFrame]:
    """Counter samples per device for [start_ns, end_ns) (see ``assemble_samples``); mean power per
    minute (with a 15-minute margin) only for devices without an import counter.

    Reading every 1-s sample of 500 meters for a day would move tens of millions of values
    through JSON; the last counter value per minute keeps totals exact, the real samples at the
    edges make adjacent windows add up, and the holes InfluxDB finds give the coverage.
    """
    raw_db = plant.influxdb.raw_database
    reach_ns = plant.influxdb.raw_retention_days * 86_400 * _NS  # nothing older or newer can exist

    def edge(time_range: str, *, newest_first: bool) -> dict[str, pd.DataFrame]:
        return _by_device(client.query(_edge_query(plant, time_range, newest_first=newest_first), database=raw_db))

    inside = f"time >= {start_ns} AND time < {end_ns}"
    before = edge(f"time >= {start_ns - reach_ns} AND time < {start_ns}", newest_first=True)
    first, last = edge(inside, newest_first=False), edge(inside, newest_first=True)
    after = edge(f"time >= {end_ns} AND time < {end_ns + reach_ns}", newest_first=False)
    counters = ", ".join(f'last("{f.value}") AS "{f.value}"' for f in _COUNTERS)
    minutes = _by_device(client.query(_aggregate_query(plant, counters, Field.E_IMP_KWH.value, start_ns, end_ns),
                                      database=raw_db), bucketed=True)
    holes = {}
    for s in client.query(_holes_query(plant, start_ns, end_ns), database=raw_db):
        hole = np.array([[row[0], row[1]] for row in s.values], dtype=np.int64).reshape(-1, 2)
        holes[s.tags[Tag.DEVICE.value]] = (hole[:, 0] - hole[:, 1], hole[:, 0])
    out = {}
    for device in sorted(set(before) | set(first) | set(after)):
        out[device] = assemble_samples(before=before.get(device), first=first.get(device),
                                       minutes=minutes.get(device), last=last.get(device),
                                       after=after.get(device), holes=holes.get(device))
    without = [d.id for d in plant.devices if d.id not in out]
    if without:
        query = _aggregate_query(plant, f'mean("{Field.P_KW.value}") AS "{Field.P_KW.value}"', Field.P_KW.value,
                                 start_ns - _POWER_MARGIN_NS, end_ns + _POWER_MARGIN_NS,
                                 devices=f" AND {tag_in(Tag.DEVICE.value, without)}")
        for device, frame in _by_device(client.query(query, database=raw_db), bucketed=True).items():
            out[device] = minute_samples(frame)
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
