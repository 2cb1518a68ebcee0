"""15-minute interval energy from meter counters (pure).

Reads raw `electrical` samples of one device, returns one row per 15-minute
interval aligned in the site's local calendar:

- counter deltas, so totals stay exact across gaps: the energy of a gap is
  spread over the intervals it spans in proportion to time (the counter is
  linear between two samples), and ``coverage`` records the share of each
  interval that had samples no more than ``max_gap_s`` apart;
- a counter that wraps at its rollover adds ``rollover - previous + current``;
- any other drop is a meter reset or replacement: the new counter is taken to
  count from zero (``resets`` counts these; the step adds the new value);
- duplicate timestamps keep the last sample, out-of-order samples are sorted;
- a device without a counter integrates power (trapezoid over samples no more
  than ``max_gap_s`` apart), flagged ``from_power``.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

__all__ = ["INTERVAL_S", "CounterSpec", "energy_from_counter", "energy_from_power", "interval_edges"]

INTERVAL_S = 900
_NS = 1_000_000_000


@dataclass(frozen=True)
class CounterSpec:
    """How a counter behaves: its rollover (in its own unit) if it has one."""

    rollover: float | None = None


def interval_edges(start_ns: int, end_ns: int, tz: ZoneInfo) -> np.ndarray:
    """Interval boundaries (UTC ns) every 15 local minutes covering [start_ns, end_ns).

    Local alignment matters for zones whose offset is not a multiple of 15 minutes and at
    daylight-saving changes, where a local day has 92 or 100 intervals.
    """
    start = pd.Timestamp(start_ns, tz="UTC").tz_convert(tz).floor("15min", ambiguous=True, nonexistent="shift_forward")
    end = pd.Timestamp(end_ns, tz="UTC").tz_convert(tz)
    edges = pd.date_range(start, end.ceil("15min", ambiguous=True, nonexistent="shift_forward"), freq="15min")
    return edges.tz_convert("UTC").asi8.astype(np.int64)


def _clean(times_ns: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, de-duplicated (last wins), finite samples."""
    finite = np.isfinite(values)
    if finite.all() and (len(times_ns) < 2 or bool(np.all(np.diff(times_ns) > 0))):
        return times_ns, values  # already clean (aggregates from InfluxDB are): skip pandas
    frame = pd.DataFrame({"t": times_ns, "v": values}).dropna()
    frame = frame[np.isfinite(frame["v"].to_numpy(dtype=float))]
    frame = frame.drop_duplicates("t", keep="last").sort_values("t", kind="stable")
    return frame["t"].to_numpy(dtype=np.int64), frame["v"].to_numpy(dtype=float)


def _step_energy(values: np.ndarray, spec: CounterSpec) -> tuple[np.ndarray, int]:
    """Energy of each step between consecutive counter samples, and the number of resets."""
    deltas = np.diff(values)
    drops = deltas < 0
    resets = 0
    if drops.any():
        previous, current = values[:-1][drops], values[1:][drops]
        if spec.rollover is not None:
            wrapped = spec.rollover - previous + current
            # a wrap leaves the counter near zero after being near the top; otherwise it was reset
            is_wrap = previous > 0.5 * spec.rollover
            deltas[drops] = np.where(is_wrap, wrapped, current)
            resets = int((~is_wrap).sum())
        else:
            deltas[drops] = current
            resets = int(drops.sum())
    return deltas, resets


def _spread(times_ns: np.ndarray, step_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Spread each step's value over the intervals it overlaps, in proportion to time."""
    totals = np.zeros(len(edges) - 1)
    if len(step_values) == 0:
        return totals
    starts, ends = times_ns[:-1], times_ns[1:]
    # cumulative value at every edge: interpolate the running total (linear within a step)
    cumulative = np.concatenate(([0.0], np.cumsum(step_values)))
    at_edges = np.interp(edges.astype(float), times_ns.astype(float), cumulative,
                         left=np.nan, right=np.nan)
    # edges outside the sampled span contribute nothing
    first, last = float(starts[0]), float(ends[-1])
    at_edges = np.where(edges < first, 0.0, at_edges)
    at_edges = np.where(edges > last, cumulative[-1], at_edges)
    totals = np.diff(at_edges)
    return totals


def _coverage(times_ns: np.ndarray, edges: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Share of each interval covered by sample pairs no more than ``max_gap_s`` apart."""
    if len(times_ns) < 2:
        return np.zeros(len(edges) - 1)
    starts, ends = times_ns[:-1], times_ns[1:]
    good = (ends - starts) <= max_gap_s * _NS
    covered = np.where(good, ends - starts, 0).astype(float)
    return np.clip(_spread(times_ns, covered, edges) / np.diff(edges), 0.0, 1.0)


NO_ROLLOVER = CounterSpec()


def energy_from_counter(times_ns: np.ndarray, counter: np.ndarray, edges: np.ndarray, *,
                        spec: CounterSpec = NO_ROLLOVER, max_gap_s: float = 60.0) -> pd.DataFrame:
    """Per interval: ``energy`` (counter units), ``coverage`` (0-1); ``attrs['resets']``."""
    times_ns, counter = _clean(times_ns, counter)
    steps, resets = _step_energy(counter, spec) if len(counter) > 1 else (np.array([]), 0)
    frame = pd.DataFrame({"start_ns": edges[:-1], "energy": _spread(times_ns, steps, edges) if len(steps) else
                          np.zeros(len(edges) - 1), "coverage": _coverage(times_ns, edges, max_gap_s)})
    frame.attrs["resets"] = resets
    return frame


def energy_from_power(times_ns: np.ndarray, power: np.ndarray, edges: np.ndarray, *,
                      max_gap_s: float = 60.0) -> pd.DataFrame:
    """Per interval: ``energy`` integrated from power (kW -> kWh, trapezoid), ``coverage``."""
    times_ns, power = _clean(times_ns, power)
    if len(power) < 2:
        return pd.DataFrame({"start_ns": edges[:-1], "energy": 0.0, "coverage": 0.0})
    hours = np.diff(times_ns) / _NS / 3600.0
    good = np.diff(times_ns) <= max_gap_s * _NS
    steps = np.where(good, (power[1:] + power[:-1]) * 0.5 * hours, 0.0)
    return pd.DataFrame({"start_ns": edges[:-1], "energy": _spread(times_ns, steps, edges),
                         "coverage": _coverage(times_ns, edges, max_gap_s)})
