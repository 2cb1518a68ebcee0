"""The dashboard tiers, computed from per-minute aggregates (pure: no I/O).

InfluxDB computes the per-device minute min/mean/max/count of the raw fields (``GROUP BY time(1m),
device``); this module turns those rows into the derived measurements the dashboards read:

- ``device_1m``: per device, ``tier_field(f, stat)`` for the tier fields and the sample count;
- ``device_1h``: the same per hour, from the minute rows (min of mins, max of maxes, the mean
  weighted by each minute's sample count);
- ``power_1m``: per area the summed minute means of its loads (the overview's "Power by area"
  devices: not incomers, feeders or PV), and per billing group the summed means of its meters (the
  demand monitor's members), each with the number of devices that reported;
- ``collector_1m``: per collector source, latency mean/max and the sample count, the poll errors and
  missed polls added in the minute (from the collector's running counts); and per site the same over
  every device source (source ``ALL_DEVICES_SOURCE``: the mean weighted by samples, the max, the sums);
- ``collector_1h``: the per-source minute rows per hour (the mean weighted by samples, the max, the sums);
- ``energy_1h``: ``energy_15m`` summed per hour (InfluxDB sums; rows become points here).

Tag values come from the configuration, never from the rows: a device that is not in the plant
file has no area or kind and is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from plantems.config import Device, DeviceKind, PlantConfig
from plantems.lineproto import Point
from plantems.schema import (
    ALL_DEVICES_SOURCE,
    COLLECTOR_1H,
    COLLECTOR_1M,
    COLLECTOR_TIER_STATS,
    DEVICE_1H,
    DEVICE_1M,
    ENERGY_1H,
    MQTT_SOURCE,
    POWER_1M,
    SPOOL_SOURCE,
    Field,
    Stat,
    Tag,
    tier_columns,
    tier_field,
)
from plantems.store.window import SeriesLike

__all__ = ["COLLECTOR_COUNTERS", "ENERGY_FIELDS", "HOUR_NS", "MINUTE_NS", "Rows", "collector_columns",
           "collector_hour_points", "collector_minute_points", "collector_minutes", "counter_increments",
           "device_hour_points", "device_minute_points", "energy_hour_points", "join_rows", "power_points",
           "rows_by_tag"]

MINUTE_NS: Final = 60 * 1_000_000_000
HOUR_NS: Final = 60 * MINUTE_NS
# Not loads: the overview's "Power by area" leaves these kinds out (grafana/dashboards.py ctx.loads).
_NOT_LOADS: Final = frozenset({DeviceKind.INCOMER, DeviceKind.FEEDER, DeviceKind.PV})
# collector_status running counts that become increments per minute in collector_1m
COLLECTOR_COUNTERS: Final = (Field.ERRORS, Field.MISSED_POLLS)
# energy_15m fields summed into energy_1h
ENERGY_FIELDS: Final = (Field.ENERGY_KWH, Field.ENERGY_EXP_KWH, Field.REACTIVE_KVARH, Field.REACTIVE_EXP_KVARH,
                        Field.INTERP_KWH)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Rows:
    """One series' rows: times (ns) and named columns (NaN where InfluxDB returned null)."""

    times_ns: IntArray
    columns: Mapping[str, FloatArray]

    @staticmethod
    def of(series: SeriesLike) -> Rows:
        times = np.array([row[0] for row in series.values], dtype=np.int64)
        # None (a null aggregate) becomes NaN in a float array
        values = np.array([row[1:] for row in series.values], dtype=np.float64).reshape(len(times), -1)
        return Rows(times, {name: values[:, i] for i, name in enumerate(series.columns[1:])})

    def column(self, name: str) -> FloatArray:
        found = self.columns.get(name)
        return found if found is not None else np.full(len(self.times_ns), np.nan)


def join_rows(a: Rows, b: Rows) -> Rows:
    """Two parts of one series as one, in time order (pure)."""
    names = set(a.columns) | set(b.columns)
    times = np.concatenate([a.times_ns, b.times_ns])
    order = np.argsort(times, kind="stable")
    return Rows(times[order], {n: np.concatenate([a.column(n), b.column(n)])[order] for n in names})


def rows_by_tag(series: Iterable[SeriesLike], tag: str) -> dict[str, Rows]:
    """Each series' rows by the value of ``tag`` (parts of one series from several queries are joined)."""
    out: dict[str, Rows] = {}
    for s in series:
        key, rows = s.tags.get(tag, ""), Rows.of(s)
        out[key] = join_rows(out[key], rows) if key in out else rows
    return out


def _fields(values: Mapping[str, float]) -> dict[str, float | str]:
    return {k: float(v) for k, v in values.items() if np.isfinite(v)}


def device_minute_points(site: str, devices: Mapping[str, Device], minutes: Mapping[str, Rows]) -> list[Point]:
    """``device_1m`` points: each device's minute rows as they are (columns named by ``tier_field``
    and ``samples``), tagged from the configuration."""
    names = [name for _, _, name in tier_columns()] + [Field.SAMPLES.value]
    points = []
    for device_id, rows in sorted(minutes.items()):
        device = devices.get(device_id)
        if device is None:
            continue
        tags = _device_tags(site, device)
        for i, t in enumerate(rows.times_ns.tolist()):
            fields = _fields({n: rows.column(n)[i] for n in names})
            if any(k != Field.SAMPLES.value for k in fields):
                points.append(Point(DEVICE_1M, tags, fields, int(t)))
    return points


def _device_tags(site: str, device: Device) -> dict[str, str]:
    return {Tag.SITE.value: site, Tag.AREA.value: device.area, Tag.KIND.value: device.kind.value,
            Tag.DEVICE.value: device.id}


def _bucket_stats(keys: IntArray, rows: Rows, columns: Sequence[tuple[Stat | None, str]]
                  ) -> tuple[IntArray, dict[str, FloatArray]]:
    """Per distinct key (a bucket start) of ``rows``: min of the mins, max of the maxes, the means weighted by
    ``samples``, and the sums of the columns whose statistic is None (NaN where a bucket has no value)."""
    starts, slot = np.unique(keys, return_inverse=True)
    samples = np.nan_to_num(rows.column(Field.SAMPLES.value), nan=0.0)
    weights = np.where(samples > 0, samples, 1.0)  # a minute without a count still weighs one sample
    out: dict[str, FloatArray] = {}
    for stat, name in columns:
        values = rows.column(name)
        present = np.isfinite(values)
        if stat is Stat.MEAN or stat is None:
            w = weights if stat is Stat.MEAN else np.ones(len(values))
            total = np.bincount(slot, weights=np.where(present, values * w, 0.0), minlength=len(starts))
            weight = np.bincount(slot, weights=np.where(present, w, 0.0), minlength=len(starts))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = np.where(weight > 0, total / weight if stat is Stat.MEAN else total, np.nan)
        else:
            reduce = np.fmin if stat is Stat.MIN else np.fmax
            result = np.full(len(starts), np.nan)
            reduce.at(result, slot[present], values[present])
            out[name] = result
    out[Field.SAMPLES.value] = np.bincount(slot, weights=samples, minlength=len(starts)).astype(np.float64)
    return starts.astype(np.int64), out


def _hour_stats(rows: Rows, columns: Sequence[tuple[Stat | None, str]]) -> tuple[IntArray, dict[str, FloatArray]]:
    """Per hour of ``rows``: min of the minute mins, max of the maxes, the means weighted by samples, the sums."""
    return _bucket_stats(rows.times_ns // HOUR_NS * HOUR_NS, rows, columns)


def device_hour_points(site: str, devices: Mapping[str, Device], minutes: Mapping[str, Rows]) -> list[Point]:
    """``device_1h`` points from the minute rows of whole hours (a partial hour summarises its minutes so far)."""
    points = []
    for device_id, rows in sorted(minutes.items()):
        device = devices.get(device_id)
        if device is None or not len(rows.times_ns):
            continue
        tags = _device_tags(site, device)
        starts, stats = _hour_stats(rows, [(stat, name) for _, stat, name in tier_columns()])
        points += _stat_points(DEVICE_1H, tags, starts, stats)
    return points


def _summed(members: Sequence[str], minutes: Mapping[str, Rows]) -> dict[int, tuple[float, float, int]]:
    """Per minute: the sum of the members' p and q means and how many members reported p."""
    p_mean, q_mean = tier_field(Field.P_KW, Stat.MEAN), tier_field(Field.Q_KVAR, Stat.MEAN)
    out: dict[int, tuple[float, float, int]] = {}
    for member in members:
        rows = minutes.get(member)
        if rows is None:
            continue
        for t, p, q in zip(rows.times_ns.tolist(), rows.column(p_mean).tolist(), rows.column(q_mean).tolist(),
                           strict=True):
            if not np.isfinite(p):
                continue
            sum_p, sum_q, count = out.get(t, (0.0, 0.0, 0))
            out[t] = (sum_p + p, sum_q + (q if np.isfinite(q) else 0.0), count + 1)
    return out


def power_points(site: str, plant: PlantConfig, minutes: Mapping[str, Rows]) -> list[Point]:
    """``power_1m`` points: per area the summed minute means of its loads, per billing group those of
    its meters (all added, as the demand monitor adds them)."""
    by_area: dict[str, list[str]] = {}
    for device in plant.devices:
        if device.kind not in _NOT_LOADS:
            by_area.setdefault(device.area, []).append(device.id)
    members = [({Tag.SITE.value: site, Tag.AREA.value: area}, ids) for area, ids in sorted(by_area.items())]
    groups = plant.demand.groups if plant.demand is not None else ()
    members += [({Tag.SITE.value: site, Tag.METER_GROUP.value: g.id}, list(g.meters)) for g in groups]
    points = []
    for tags, ids in members:
        for t, (p, q, count) in sorted(_summed(ids, minutes).items()):
            points.append(Point(POWER_1M, tags, {Field.P_KW.value: p, Field.Q_KVAR.value: q,
                                                 Field.DEVICES.value: float(count)}, t))
    return points


def counter_increments(last: FloatArray, peak: FloatArray) -> FloatArray:
    """Increments of a running count per minute (pure), from each minute's last and highest value.

    A minute whose last value is below the one before restarted the count (the collector restarted,
    counting from 0): what it added is the climb before the restart (its peak above the previous
    value) plus the count since. NaN where there is no earlier value to start from."""
    out = np.full(len(last), np.nan)
    known = np.flatnonzero(np.isfinite(last))
    if len(known) < 2:
        return out
    values, peaks = last[known], np.where(np.isfinite(peak[known]), peak[known], last[known])
    before, now = values[:-1], values[1:]
    restarted = np.maximum(peaks[1:] - before, 0.0) + now
    out[known[1:]] = np.where(now >= before, now - before, restarted)
    return out


def collector_columns() -> list[tuple[Stat | None, str]]:
    """The ``collector_1m``/``collector_1h`` fields beside ``samples``: the kept latency statistics, and the
    running counts' increments (statistic None: they add up)."""
    kept: list[tuple[Stat | None, str]] = [(s, tier_field(f, s)) for f, stats in COLLECTOR_TIER_STATS.items()
                                           for s in stats]
    return kept + [(None, f.value) for f in COLLECTOR_COUNTERS]


def _stat_points(measurement: str, tags: Mapping[str, str], starts: IntArray, stats: Mapping[str, FloatArray]
                 ) -> list[Point]:
    """A point per bucket that has a value beside its sample count."""
    points = []
    for i, t in enumerate(starts.tolist()):
        fields = _fields({n: v[i] for n, v in stats.items()})
        if any(k != Field.SAMPLES.value for k in fields):
            points.append(Point(measurement, dict(tags), fields, int(t)))
    return points


def collector_minutes(sources: Mapping[str, Rows], *, start_ns: int) -> dict[str, Rows]:
    """Each source's ``collector_1m`` rows from ``start_ns`` on (pure), from its minute aggregates of
    ``collector_status`` (columns: the kept latency statistics, ``samples``, ``last`` of each running count under
    its own name and its ``max`` as ``tier_field(count, max)``). Rows before ``start_ns`` only give the counts their
    starting value."""
    names = [name for stat, name in collector_columns() if stat is not None] + [Field.SAMPLES.value]
    out = {}
    for source, rows in sources.items():
        keep = rows.times_ns >= start_ns
        columns = {n: rows.column(n)[keep] for n in names}
        for f in COLLECTOR_COUNTERS:
            increments = counter_increments(rows.column(f.value), rows.column(tier_field(f, Stat.MAX)))
            columns[f.value] = increments[keep]
        out[source] = Rows(rows.times_ns[keep], columns)
    return out


def _device_source(source: str) -> bool:
    """A device's source: not the collector's own spool or MQTT client (``spool-0of2`` when sharded)."""
    return not source.startswith((SPOOL_SOURCE, MQTT_SOURCE)) and source != ALL_DEVICES_SOURCE


def collector_minute_points(site: str, minutes: Mapping[str, Rows]) -> list[Point]:
    """``collector_1m`` points: each source's minute rows, and per minute those of every device source together
    (source ``ALL_DEVICES_SOURCE``: latency mean weighted by samples and max, errors and missed polls summed)."""
    names = [name for _, name in collector_columns()] + [Field.SAMPLES.value]
    points = []
    for source, rows in sorted(minutes.items()):
        points += _stat_points(COLLECTOR_1M, {Tag.SITE.value: site, Tag.SOURCE.value: source}, rows.times_ns,
                               {n: rows.column(n) for n in names})
    devices = [rows for source, rows in sorted(minutes.items()) if _device_source(source)]
    if devices:
        together = Rows(np.concatenate([r.times_ns for r in devices]),
                        {n: np.concatenate([r.column(n) for r in devices]) for n in names})
        starts, stats = _bucket_stats(together.times_ns, together, collector_columns())
        points += _stat_points(COLLECTOR_1M, {Tag.SITE.value: site, Tag.SOURCE.value: ALL_DEVICES_SOURCE}, starts,
                               stats)
    return points


def collector_hour_points(site: str, minutes: Mapping[str, Rows]) -> list[Point]:
    """``collector_1h`` points per source (not ``ALL_DEVICES_SOURCE``) from its ``collector_1m`` rows: the latency
    mean weighted by samples, the max, errors and missed polls summed (a partial hour: its minutes so far)."""
    points = []
    for source, rows in sorted(minutes.items()):
        if source == ALL_DEVICES_SOURCE or not len(rows.times_ns):
            continue
        starts, stats = _hour_stats(rows, collector_columns())
        points += _stat_points(COLLECTOR_1H, {Tag.SITE.value: site, Tag.SOURCE.value: source}, starts, stats)
    return points


def energy_hour_points(series: Iterable[SeriesLike]) -> list[Point]:
    """``energy_1h`` points from the hourly sums of ``energy_15m`` fields (each under its own name, grouped
    by every tag): the same tags, the hour's sums (hours without any interval are left out)."""
    points = []
    for s in series:
        tags = {k: v for k, v in s.tags.items() if v}
        rows = Rows.of(s)
        for i, t in enumerate(rows.times_ns.tolist()):
            fields = _fields({f.value: rows.column(f.value)[i] for f in ENERGY_FIELDS})
            if fields:
                points.append(Point(ENERGY_1H, tags, fields, int(t)))
    return points
