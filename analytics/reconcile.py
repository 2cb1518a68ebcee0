"""The monthly reconciliation: every meter's energy_15m sum against its counter difference.

Reads raw `electrical` counters (the month, and the real readings around its start and end) and
the stored `energy_15m` sums, all of one site; writes nothing. For every meter with an
import counter, the energy its counter recorded across the month - from the last reading before
the start to the first after the end, prorated at the edges (the counter is linear between two
readings), with rollovers, replacements and rejected glitches applied as the energy job applies
them - must equal the sum of its stored intervals. Tolerance: 1e-6 of the counter difference plus
0.001 kWh (float sums over ~3,000 intervals, and the 15-minute points' own rounding, stay far below
it; one lost interval of an idle meter does not).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from plantems.analytics.energy import judge_counter
from plantems.analytics.energy_job import counter_spec
from plantems.analytics.energy_read import Rows, _by_device, _edge_query, assemble_samples  # as the energy job reads
from plantems.config import Device, PlantConfig
from plantems.influx import InfluxClient
from plantems.schema import ELECTRICAL, ENERGY_15M, Field, Tag
from plantems.store.query import COUNT_ALIAS, SiteScope, agg

__all__ = [
    "MeterReconciliation",
    "Reconciliation",
    "counter_difference",
    "first_page_lines",
    "read_counters",
    "read_interval_sums",
    "read_reconciliation",
    "reconcile",
    "reconciliation_html",
    "reconciliation_table",
]

RELATIVE_TOLERANCE: Final = 1e-6
ABSOLUTE_TOLERANCE_KWH: Final = 1e-3
_NS: Final = 1_000_000_000
_COUNTER: Final = Field.E_IMP_KWH
_INTERVALS: Final = Field.ENERGY_KWH


# --- pure ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeterReconciliation:
    device: str
    counter_kwh: float | None  # None: the meter has no import counter readings (power-integrated or silent)
    intervals_kwh: float
    rejected: int = 0  # counter readings rejected as implausible
    replaced: int = 0  # meter replacements / resets
    wraps: int = 0
    has_counter: bool = False  # the device delivers an import counter (its readings may still be missing)

    @property
    def difference_kwh(self) -> float | None:
        return None if self.counter_kwh is None else self.intervals_kwh - self.counter_kwh

    @property
    def tolerance_kwh(self) -> float:
        return RELATIVE_TOLERANCE * abs(self.counter_kwh or 0.0) + ABSOLUTE_TOLERANCE_KWH

    @property
    def reconciled(self) -> bool | None:
        """True / False, or None where there is no counter to reconcile with."""
        difference = self.difference_kwh
        return None if difference is None else abs(difference) <= self.tolerance_kwh

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "counter_kwh": self.counter_kwh, "intervals_kwh": self.intervals_kwh,
                "difference_kwh": self.difference_kwh, "tolerance_kwh": self.tolerance_kwh,
                "reconciled": self.reconciled, "rejected_readings": self.rejected, "replacements": self.replaced,
                "wraps": self.wraps}


@dataclass(frozen=True)
class Reconciliation:
    site: str
    month: str
    meters: tuple[MeterReconciliation, ...]

    @property
    def differing(self) -> tuple[MeterReconciliation, ...]:
        return tuple(m for m in self.meters if m.reconciled is False)

    @property
    def ok(self) -> bool:
        return not self.differing

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "month": self.month, "reconciled": self.ok,
                "relative_tolerance": RELATIVE_TOLERANCE, "absolute_tolerance_kwh": ABSOLUTE_TOLERANCE_KWH,
                "differing": [m.device for m in self.differing], "meters": [m.to_json() for m in self.meters]}


def counter_difference(times_ns: np.ndarray, values: np.ndarray, spec: Any, start_ns: int, end_ns: int,
                       judge: Callable[..., Any]) -> tuple[float, Any]:
    """Energy the counter recorded in [start_ns, end_ns) and the judged steps (pure).

    The judged steps' running total, linear between accepted readings, is read at both edges:
    nothing before the first or after the last reading (no energy is invented outside the data).
    """
    steps = judge(times_ns, values, spec)
    accepted = np.asarray(steps.times_ns, dtype=np.int64)
    if len(accepted) < 2:
        return 0.0, steps
    running = np.concatenate(([0.0], np.cumsum(np.asarray(steps.energy, dtype=float))))
    at = np.interp(np.array([start_ns, end_ns], dtype=float), accepted.astype(float), running)
    return float(at[1] - at[0]), steps


def _count_in(times_ns: Any, start_ns: int, end_ns: int) -> int:
    times = np.asarray(times_ns, dtype=np.int64)
    return int(((times >= start_ns) & (times < end_ns)).sum())


def reconcile(plant: PlantConfig, month: str, *, start_ns: int, end_ns: int, counters: dict[str, pd.DataFrame],
              intervals_kwh: dict[str, float], spec_of: Callable[[Device], Any],
              judge: Callable[..., Any]) -> Reconciliation:
    """Per device with energy: counter difference (from ``counters[device]``: time, e_imp_kwh) vs
    the sum of its stored intervals (pure)."""
    meters = []
    for device in plant.devices:
        frame = counters.get(device.id)
        stored = float(intervals_kwh.get(device.id, 0.0))
        if frame is None or frame[_COUNTER.value].notna().sum() < 2:
            if device.id in intervals_kwh:
                meters.append(MeterReconciliation(device.id, None, stored,
                                                  has_counter=_COUNTER.value in plant.quantities_of(device)))
            continue
        frame = frame.dropna(subset=[_COUNTER.value])
        kwh, steps = counter_difference(frame["time"].to_numpy(dtype=np.int64),
                                        frame[_COUNTER.value].to_numpy(dtype=float), spec_of(device), start_ns,
                                        end_ns, judge)
        meters.append(MeterReconciliation(device.id, kwh, stored, _count_in(steps.rejected_ns, start_ns, end_ns),
                                          _count_in(steps.replaced_ns, start_ns, end_ns), int(steps.wraps), True))
    return Reconciliation(plant.site.id, month, tuple(meters))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f}"


def reconciliation_table(result: Reconciliation) -> list[list[str]]:
    """Rows: device, counter kWh, intervals kWh, difference, status (for the CLI and the report)."""
    rows = []
    for m in result.meters:
        status = {True: "reconciled", False: "DIFFERS",
                  None: "no counter readings" if m.has_counter else "no counter"}[m.reconciled]
        rows.append([m.device, _fmt(m.counter_kwh), _fmt(m.intervals_kwh), _fmt(m.difference_kwh), status])
    return rows


RECONCILIATION_HEADER: Final = ["meter", "counter kWh", "intervals kWh", "difference kWh", "status"]


def first_page_lines(result: Reconciliation | None) -> list[str]:
    """Warnings for the report's first page: every meter whose intervals do not add up."""
    if result is None:
        return []
    return [f"Reconciliation: meter {m.device}'s 15-minute energy sums to {m.intervals_kwh:,.3f} kWh but its "
            f"counter recorded {m.counter_kwh:,.3f} kWh (difference {m.difference_kwh:+,.3f} kWh); the month's "
            f"figures for it are not signable until it is recomputed." for m in result.differing]


def reconciliation_html(result: Reconciliation | None) -> str:
    if result is None:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in RECONCILIATION_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in reconciliation_table(result))
    verdict = ("every meter reconciles" if result.ok else
               f"{len(result.differing)} meter(s) differ: " + ", ".join(m.device for m in result.differing))
    return (f'<h2 id="reconciliation">Reconciliation: 15-minute sums vs counter differences</h2>'
            f"<p>{html.escape(verdict)} (tolerance {RELATIVE_TOLERANCE:g} relative + {ABSOLUTE_TOLERANCE_KWH:g} kWh)."
            f"</p><table><tr>{head}</tr>{body}</table>")


# --- I/O -------------------------------------------------------------------------------------------

def read_counters(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int, *,
                  devices: Iterable[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    """Per device: its counter readings for the month as the energy job reads a window (the real
    readings at both edges - the last few before the start and the first few after the end, as far
    as the raw retention - and the last reading of each minute in between); yields device by device."""
    raw_db = plant.influxdb.raw_database
    reach_ns = plant.influxdb.raw_retention_days * 86_400 * _NS

    def edge(a: int, b: int, *, newest_first: bool) -> dict[str, Rows]:
        return _by_device(client.query(_edge_query(plant, a, b, newest_first=newest_first), database=raw_db))

    site = SiteScope(plant.site.id)
    before = edge(start_ns - reach_ns, start_ns, newest_first=True)
    first, last = edge(start_ns, end_ns, newest_first=False), edge(start_ns, end_ns, newest_first=True)
    after = edge(end_ns, end_ns + reach_ns, newest_first=False)
    for device in devices:
        if device not in before and device not in first and device not in after:
            continue
        query = site.select(ELECTRICAL, [agg("last", _COUNTER.value, alias=_COUNTER.value),
                                         agg("count", _COUNTER.value, alias=COUNT_ALIAS)],
                            tags={Tag.DEVICE.value: device}, start_ns=start_ns, end_ns=end_ns, every="60s",
                            fill_none=True)
        series = client.query(query, database=raw_db)
        minutes = Rows.of(series[0]) if series else None
        yield device, assemble_samples(before=before.get(device), first=first.get(device), minutes=minutes,
                                       last=last.get(device), after=after.get(device))


def read_interval_sums(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, float]:
    query = SiteScope(plant.site.id).select(ENERGY_15M, [agg("sum", _INTERVALS.value)], start_ns=start_ns,
                                            end_ns=end_ns, group_by=[Tag.DEVICE.value])
    series = client.query(query, database=plant.influxdb.derived_database)
    return {s.tags[Tag.DEVICE.value]: float(s.values[0][1]) for s in series if s.values}


def read_reconciliation(client: InfluxClient, plant: PlantConfig, month: str, *,
                        progress: Callable[[Sequence[str]], Iterable[str]] = lambda d: d) -> Reconciliation:
    """The month's reconciliation from InfluxDB (site-scoped reads only). ``progress`` wraps the
    device list (e.g. a tqdm bar)."""
    from plantems.analytics.rollup import month_bounds

    start, end = month_bounds(month, plant.site.tz)
    devices = [d.id for d in plant.devices]
    counters = dict(read_counters(client, plant, start.value, end.value, devices=progress(devices)))
    return reconcile(plant, month, start_ns=start.value, end_ns=end.value, counters=counters,
                     intervals_kwh=read_interval_sums(client, plant, start.value, end.value),
                     spec_of=lambda device: counter_spec(plant, device, _COUNTER), judge=judge_counter)


