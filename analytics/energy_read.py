"""Reading a window's counter samples for the energy_15m job (InfluxDB I/O and pure assembly).

Per device, for the window [start, end):

- the real samples at both edges: the last few before it and the first few after it (as far
  back and ahead as the raw retention), and the first and last few in it. The steps across a
  window edge are then the same real samples whichever of the two adjacent windows computes
  them, so a gap across midnight or a month end splits its energy exactly as one run over both
  days would;
- in between, the last counter value of each minute and the minute's sample count (InfluxDB
  aggregates: reading every 1-s sample of 500 meters for a day would move tens of millions of
  values through JSON);
- the holes (import-counter samples further apart than 60 s) from the real sample times. Only
  minutes with too few samples for their poll interval can hold a hole, so only those minutes'
  raw times are read. (InfluxQL ``elapsed()`` in a subquery filtered to the holes scans every
  raw point: 1-2.3 s per hour window for 200 meters at 1 s on InfluxDB 1.6; the count test
  makes a healthy plant's coverage free.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plantems.analytics.energy import LOOKAHEAD
from plantems.config import PlantConfig
from plantems.influx import InfluxClient, Series
from plantems.schema import ELECTRICAL, Field, Tag
from plantems.store.query import COUNT_ALIAS, SiteScope, agg, col

__all__ = ["COUNTERS", "HOLES", "ROWS_PER_QUERY", "SPAN", "Rows", "assemble_samples", "bands", "hole_ranges",
           "minute_samples", "read_samples", "time_parts"]

_NS = 1_000_000_000
COUNTERS = (Field.E_IMP_KWH, Field.E_EXP_KWH, Field.EQ_IMP_KVARH, Field.EQ_EXP_KVARH)
_BUCKET_S = 60
_POWER_MARGIN_NS = 900 * _NS  # power-only devices: samples just outside the window anchor its edges
_CONTEXT = LOOKAHEAD + 1  # raw samples read at each edge: the edge step and the judge's look-ahead
MIN_HOLE_S = 60  # the smallest gap that is a hole for any device (max(60 s, 3 poll intervals))
_MAX_BANDS = 24  # queries for the raw times where holes may be, per window
ROWS_PER_QUERY = 15_000  # device minutes per aggregate request: about 2 s of InfluxDB 1.6 for 1-s meters
SPAN = "span_ns"  # frame.attrs: (first, last) real sample time of the import counter around the window
HOLES = "holes_ns"  # frame.attrs: (starts, ends) of the import counter's gaps longer than MIN_HOLE_S


@dataclass(frozen=True)
class Rows:
    """Rows of one device from one query: times and columns (NaN where a field is absent)."""

    times_ns: np.ndarray
    values: np.ndarray  # shape (rows, columns)
    columns: tuple[str, ...]

    @staticmethod
    def of(series: Series) -> Rows:
        times = np.array([row[0] for row in series.values], dtype=np.int64)
        values = np.array([row[1:] for row in series.values], dtype=float).reshape(len(times), -1)
        return Rows(times, values, tuple(series.columns[1:]))

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)] if name in self.columns else np.full(len(self.times_ns), np.nan)


def minute_samples(frame: pd.DataFrame, bucket_s: int = _BUCKET_S) -> pd.DataFrame:
    """Turn bucket aggregates into samples (pure): ``last()`` of a counter in a bucket is taken at
    ``start + bucket x (n - 1) / n``, where the last of ``n`` evenly spaced samples falls, so a
    bucket's single sample keeps its own time and 1-s data the time of its last second."""
    counts = frame[COUNT_ALIAS].clip(lower=1).to_numpy(dtype=float)
    offset_ns = (bucket_s * 1_000_000_000 * (counts - 1) / counts).astype(np.int64)
    out = frame.drop(columns=[COUNT_ALIAS]).copy()
    out["time"] = frame["time"].to_numpy(dtype=np.int64) + offset_ns
    return out


def _bucket_offsets_ns(counts: np.ndarray) -> np.ndarray:
    counts = np.clip(counts, 1, None)
    return (_BUCKET_S * _NS * (counts - 1) / counts).astype(np.int64)


def _imp_times(rows: Rows | None) -> np.ndarray:
    if rows is None:
        return np.array([], dtype=np.int64)
    return rows.times_ns[np.isfinite(rows.column(Field.E_IMP_KWH.value))]


def _edge_holes(before: np.ndarray, first: np.ndarray, last: np.ndarray, after: np.ndarray
                ) -> tuple[list[tuple[int, int]], tuple[int | None, int | None]]:
    """The holes across the window edges, and the span of the real import samples."""
    tb = int(before.max()) if len(before) else None
    tf, tl = (int(first.min()) if len(first) else None), (int(last.max()) if len(last) else None)
    ta = int(after.min()) if len(after) else None
    pairs = [(tb, tf), (tl, ta)] if tf is not None else [(tb, ta)]
    holes = [(a, b) for a, b in pairs if a is not None and b is not None and b - a > MIN_HOLE_S * _NS]
    known = [t for t in (tb, tf, tl, ta) if t is not None]
    return holes, ((min(known), max(known)) if known else (None, None))


def _overlaps(bucket_ns: np.ndarray, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
    out = np.zeros(len(bucket_ns), dtype=bool)
    for a, b in ranges:
        out |= (bucket_ns < b) & (bucket_ns + _BUCKET_S * _NS > a)
    return out


def assemble_samples(*, before: Rows | None, first: Rows | None, minutes: Rows | None, last: Rows | None,
                     after: Rows | None, inner: Rows | None = None,
                     inner_ranges: Sequence[tuple[int, int]] = ()) -> pd.DataFrame:
    """One device's counter samples for a window (pure), ``time`` and the counter columns, with the
    import counter's real span and holes in ``attrs`` (``SPAN``, ``HOLES``).

    ``minutes`` has bucket starts, the counters and their count ``n``. ``inner`` are the raw samples
    in ``inner_ranges`` (see ``hole_ranges``): consecutive import samples in a range further apart
    than MIN_HOLE_S are holes, and there the raw samples replace the minutes, so a hole's edges are
    real sample times. Buckets that reach into the edges' real samples are left out too.
    """
    names = [f.value for f in COUNTERS]
    raw = [r for r in (before, first, last, after, inner) if r is not None and len(r.times_ns)]
    times = [r.times_ns for r in raw]
    values = [np.column_stack([r.column(n) for n in names]) for r in raw]
    if minutes is not None and len(minutes.times_ns):
        low = int(first.times_ns.max()) if first is not None and len(first.times_ns) else np.iinfo(np.int64).min
        high = int(last.times_ns.min()) if last is not None and len(last.times_ns) else np.iinfo(np.int64).max
        keep = (minutes.times_ns > low) & (minutes.times_ns + _BUCKET_S * _NS <= high)
        keep &= ~_overlaps(minutes.times_ns, inner_ranges)
        counts = minutes.column(COUNT_ALIAS)[keep]
        times.append(minutes.times_ns[keep] + _bucket_offsets_ns(np.nan_to_num(counts, nan=1.0)))
        values.append(np.column_stack([minutes.column(n)[keep] for n in names]))
    all_times = np.concatenate(times) if times else np.array([], dtype=np.int64)
    all_values = np.concatenate(values) if values else np.empty((0, len(names)))
    unique, index = np.unique(all_times, return_index=True)  # sorted; the first of equal times (raw before minutes)
    frame = pd.DataFrame({"time": unique, **{n: all_values[index, i] for i, n in enumerate(names)}})
    edge, span = _edge_holes(*(_imp_times(r) for r in (before, first, last, after)))
    inside = np.unique(_imp_times(inner))
    in_range = np.searchsorted(np.array([a for a, _ in inner_ranges], dtype=np.int64), inside, side="right")
    gaps = (np.diff(inside) > MIN_HOLE_S * _NS) & (np.diff(in_range) == 0)  # never across two ranges
    starts = np.concatenate([inside[:-1][gaps], [a for a, _ in edge]]).astype(np.int64)
    ends = np.concatenate([inside[1:][gaps], [b for _, b in edge]]).astype(np.int64)
    frame.attrs[HOLES] = (starts, ends)
    frame.attrs[SPAN] = span
    return frame


def _suspect_at_most(poll_interval_s: float) -> int:
    """Most samples a minute can have and still hold part of a hole longer than the device's gap
    threshold, max(60 s, 3 polls).

    Such a hole misses at least ``floor(threshold / poll) - 1`` polls (one for jitter). Over three or
    more minutes the middle ones are empty; over two, whose polls number at most 2 x ceil(60 / poll)
    + 1, one of them keeps at most half of what the hole leaves.
    """
    per_minute = math.ceil(60.0 / poll_interval_s)
    missed = math.floor(max(60.0, 3 * poll_interval_s) / poll_interval_s) - 1
    return max(0, (2 * per_minute + 1 - missed) // 2)


def hole_ranges(bucket_ns: np.ndarray, counts: np.ndarray, *, start_ns: int, end_ns: int,
                poll_interval_s: float) -> list[tuple[int, int]]:
    """Time ranges (within the window) that hold every hole longer than the device's gap threshold
    (pure): runs of minutes with too few samples (``_suspect_at_most``), widened by a minute on each
    side, since a hole's ends lie in the minutes next to the ones it empties."""
    grid = np.arange(start_ns // (_BUCKET_S * _NS) * _BUCKET_S * _NS, end_ns, _BUCKET_S * _NS, dtype=np.int64)
    per_minute = np.zeros(len(grid))
    slot = np.searchsorted(grid, bucket_ns)
    inside = (slot < len(grid)) & (grid[np.clip(slot, 0, len(grid) - 1)] == bucket_ns)
    per_minute[slot[inside]] = counts[inside]
    suspect = per_minute <= _suspect_at_most(poll_interval_s)
    widened = suspect.copy()
    widened[1:] |= suspect[:-1]
    widened[:-1] |= suspect[1:]
    edges = np.flatnonzero(np.diff(np.concatenate(([0], widened.astype(np.int8), [0]))))
    return [(max(int(grid[a]), start_ns), min(int(grid[b - 1]) + _BUCKET_S * _NS, end_ns))
            for a, b in zip(edges[::2], edges[1::2], strict=True)]


def time_parts(start_ns: int, end_ns: int, *, devices: int, rows: int | None = None) -> list[tuple[int, int]]:
    """[start, end) cut on the minute grid into parts of at most ``rows`` (default ROWS_PER_QUERY) device
    minutes (pure): one request per part, so a day of 500 meters is never one request that runs into the
    timeout (issue 15)."""
    step = max(1, (rows or ROWS_PER_QUERY) // max(devices, 1)) * _BUCKET_S * _NS
    cuts = range(start_ns // (_BUCKET_S * _NS) * _BUCKET_S * _NS + step, end_ns, step)
    bounds = [start_ns, *cuts, end_ns]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _joined(parts: Sequence[Mapping[str, Rows]]) -> dict[str, Rows]:
    """Each device's rows from consecutive time parts, as one (the parts' columns are the same query's)."""
    found: dict[str, list[Rows]] = {}
    for part in parts:
        for device, rows in part.items():
            found.setdefault(device, []).append(rows)
    return {device: rs[0] if len(rs) == 1 else Rows(np.concatenate([r.times_ns for r in rs]),
                                                    np.concatenate([r.values for r in rs]), rs[0].columns)
            for device, rs in found.items()}


def _by_device(series: Sequence[Series]) -> dict[str, Rows]:
    return {s.tags[Tag.DEVICE.value]: Rows.of(s) for s in series}


def _edge_query(plant: PlantConfig, start_ns: int, end_ns: int, *, newest_first: bool) -> str:
    """The first (or last) few raw counter samples of every device in [start_ns, end_ns)."""
    return SiteScope(plant.site.id).select(ELECTRICAL, [col(f.value) for f in COUNTERS], start_ns=start_ns,
                                           end_ns=end_ns, group_by=[Tag.DEVICE.value], newest_first=newest_first,
                                           limit=_CONTEXT)


def _aggregate_query(plant: PlantConfig, columns: Sequence[str], count_field: str, start_ns: int, end_ns: int,
                     devices: Sequence[str] | None = None) -> str:
    return SiteScope(plant.site.id).select(
        ELECTRICAL, [*columns, agg("count", count_field, alias=COUNT_ALIAS)],
        any_of=None if devices is None else {Tag.DEVICE.value: devices}, start_ns=start_ns, end_ns=end_ns,
        every=f"{_BUCKET_S}s", group_by=[Tag.DEVICE.value], fill_none=True)


def bands(ranges: Mapping[str, Sequence[tuple[int, int]]], *, max_bands: int = _MAX_BANDS
          ) -> list[tuple[int, int, list[str]]]:
    """Time bands covering every device's ranges, with the devices that have a range in each (pure).

    InfluxQL 1.x cannot OR time ranges, so each band is one query; bands closest together are
    merged until there are at most ``max_bands``.
    """
    spans = sorted((a, b, device) for device, rs in ranges.items() for a, b in rs)
    merged: list[tuple[int, int, frozenset[str]]] = []
    for a, b, device in spans:
        if merged and a <= merged[-1][1]:
            start, end, devices = merged[-1]
            merged[-1] = (start, max(end, b), devices | {device})
        else:
            merged.append((a, b, frozenset({device})))
    while len(merged) > max_bands:
        k = min(range(len(merged) - 1), key=lambda i: merged[i + 1][0] - merged[i][1])
        nxt = merged.pop(k + 1)
        merged[k] = (merged[k][0], nxt[1], merged[k][2] | nxt[2])
    return [(a, b, sorted(devices)) for a, b, devices in merged]


def _inner_rows(client: InfluxClient, plant: PlantConfig, ranges: Mapping[str, Sequence[tuple[int, int]]]
                ) -> dict[str, Rows]:
    """Raw counter samples of each device in its suspect ranges (one query per time band)."""
    site = SiteScope(plant.site.id)
    found: dict[str, list[Rows]] = {}
    for a, b, devices in bands(ranges):
        query = site.select(ELECTRICAL, [col(f.value) for f in COUNTERS], any_of={Tag.DEVICE.value: devices},
                            start_ns=a, end_ns=b, group_by=[Tag.DEVICE.value])
        for device, rows in _by_device(client.query(query, database=plant.influxdb.raw_database)).items():
            starts, ends = (np.array(x, dtype=np.int64) for x in zip(*ranges[device], strict=True))
            slot = np.searchsorted(starts, rows.times_ns, side="right") - 1
            mine = (slot >= 0) & (rows.times_ns < ends[np.clip(slot, 0, None)])  # only the device's own ranges
            found.setdefault(device, []).append(Rows(rows.times_ns[mine], rows.values[mine], rows.columns))
    return {device: Rows(np.concatenate([p.times_ns for p in parts]), np.concatenate([p.values for p in parts]),
                         parts[0].columns) for device, parts in found.items()}


def read_samples(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, pd.DataFrame]:
    """Counter samples per device for [start_ns, end_ns) (see the module doc and ``assemble_samples``);
    mean power per minute (with a 15-minute margin) only for devices without a counter."""
    raw_db = plant.influxdb.raw_database
    reach_ns = plant.influxdb.raw_retention_days * 86_400 * _NS  # nothing older or newer can exist

    def edge(a: int, b: int, *, newest_first: bool) -> dict[str, Rows]:
        return _by_device(client.query(_edge_query(plant, a, b, newest_first=newest_first), database=raw_db))

    before = edge(start_ns - reach_ns, start_ns, newest_first=True)
    first, last = edge(start_ns, end_ns, newest_first=False), edge(start_ns, end_ns, newest_first=True)
    after = edge(end_ns, end_ns + reach_ns, newest_first=False)
    counters = [agg("last", f.value, alias=f.value) for f in COUNTERS]
    minutes = _joined([_by_device(client.query(_aggregate_query(plant, counters, Field.E_IMP_KWH.value, a, b),
                                               database=raw_db))
                       for a, b in time_parts(start_ns, end_ns, devices=len(plant.devices))])
    polls = {d.id: d.poll_interval_s for d in plant.devices}
    suspect = {device: hole_ranges(rows.times_ns, rows.column(COUNT_ALIAS), start_ns=start_ns, end_ns=end_ns,
                                   poll_interval_s=polls.get(device, 1.0)) for device, rows in minutes.items()}
    inner = _inner_rows(client, plant, {d: r for d, r in suspect.items() if r})
    out = {}
    for device in sorted(set(before) | set(first) | set(after)):
        out[device] = assemble_samples(before=before.get(device), first=first.get(device),
                                       minutes=minutes.get(device), last=last.get(device),
                                       after=after.get(device), inner=inner.get(device),
                                       inner_ranges=suspect.get(device, ()))
    without = [d.id for d in plant.devices if d.id not in out]
    if without:
        query = _aggregate_query(plant, [agg("mean", Field.P_KW.value, alias=Field.P_KW.value)], Field.P_KW.value,
                                 start_ns - _POWER_MARGIN_NS, end_ns + _POWER_MARGIN_NS, devices=without)
        for series in client.query(query, database=raw_db):
            frame = pd.DataFrame(series.values, columns=series.columns).astype({"time": "int64"})
            out[series.tags[Tag.DEVICE.value]] = minute_samples(frame)
    return out
