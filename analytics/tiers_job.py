"""The dashboard tiers job (InfluxDB I/O): reads minute aggregates, writes the tiers (``analytics.tiers``).

InfluxDB computes every aggregate (``GROUP BY time(1m)``): no raw 1-s point is pulled into
Python. A window is processed an hour at a time and the devices a batch at a time, so no request
grows with the plant or the range (a back-fill over 500 devices stays far below the timeout).
Each window is written with ``replace_window`` inside the site: re-running it leaves exactly one
result, and two sites in one database never touch each other's tiers.

The scheduled job (:class:`RecentTiers`) runs every minute for the minutes just closed, and once an
hour recomputes the previous hour (late samples, a spool draining after an outage) and writes the
hourly tiers. A failed run leaves its start pending; the next runs redo everything from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Final

from tqdm import tqdm  # type: ignore[import-untyped]

from plantems.analytics.tiers import (
    COLLECTOR_COUNTERS,
    ENERGY_FIELDS,
    HOUR_NS,
    MINUTE_NS,
    Rows,
    collector_points,
    device_hour_points,
    device_minute_points,
    energy_hour_points,
    power_points,
    rows_by_tag,
)
from plantems.config import PlantConfig
from plantems.influx import InfluxClient, LineWriter
from plantems.lineproto import Point
from plantems.schema import (
    COLLECTOR_1M,
    COLLECTOR_STATUS,
    DEVICE_1H,
    DEVICE_1M,
    ELECTRICAL,
    ENERGY_1H,
    ENERGY_15M,
    POWER_1M,
    TIER_FIELDS,
    Field,
    Stat,
    Tag,
    tier_field,
)
from plantems.store.query import SiteScope, agg
from plantems.store.window import replace_window

__all__ = ["DEVICE_BATCH", "LAG_S", "RecentTiers", "backfill_tiers", "run_tiers", "tier_range", "tier_windows"]

log = logging.getLogger(__name__)

_NS: Final = 1_000_000_000
DEVICE_BATCH: Final = 100  # devices per aggregate query: 100 x 60 minutes x 28 columns is about 2 MB of JSON
LAG_S: Final = 15  # a minute is summarised this long after it ends (the collector flushes within seconds)
OVERLAP_MIN: Final = 2  # each minute run redoes the minute before too: samples that came in just late
_COLLECTOR_CONTEXT_NS: Final = 10 * MINUTE_NS  # status rows before a window: the running counts' start
_ENERGY_LOOKBACK_NS: Final = 2 * HOUR_NS  # energy_15m of the last quarter lands after the hour has ended
_NIGHTLY_LOOKBACK_NS: Final = 26 * HOUR_NS  # at 01:xx local: the day the nightly energy job has just redone
_OUTAGE_LOOKBACKS: Final = 3  # hourly recomputes that still include a failed window (the spool drains)


def _minute_columns() -> list[str]:
    columns = [agg(stat.value, f.value, alias=tier_field(f, stat)) for f in TIER_FIELDS for stat in Stat]
    return [*columns, agg("count", Field.P_KW.value, alias=Field.SAMPLES.value)]


def read_minutes(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, Rows]:
    """Per device: the minute min/mean/max of the tier fields and the sample count in [start, end),
    aggregated by InfluxDB, ``DEVICE_BATCH`` devices per query."""
    site, ids = SiteScope(plant.site.id), [d.id for d in plant.devices]
    out: dict[str, Rows] = {}
    for i in range(0, len(ids), DEVICE_BATCH):
        query = site.select(ELECTRICAL, _minute_columns(), any_of={Tag.DEVICE.value: ids[i:i + DEVICE_BATCH]},
                            start_ns=start_ns, end_ns=end_ns, every="1m", group_by=[Tag.DEVICE.value],
                            fill_none=True)
        out.update(rows_by_tag(client.query(query, database=plant.influxdb.raw_database), Tag.DEVICE.value))
    return out


def read_collector(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, Rows]:
    """Per collector source and minute of [start - context, end): latency min/mean/max, up min and
    the last and highest value of each running count."""
    columns = [agg(stat.value, Field.LATENCY_MS.value, alias=tier_field(Field.LATENCY_MS, stat)) for stat in Stat]
    columns.append(agg("min", Field.UP.value, alias=tier_field(Field.UP, Stat.MIN)))
    columns += [agg("last", f.value, alias=f.value) for f in COLLECTOR_COUNTERS]
    columns += [agg("max", f.value, alias=tier_field(f, Stat.MAX)) for f in COLLECTOR_COUNTERS]
    query = SiteScope(plant.site.id).select(COLLECTOR_STATUS, columns, start_ns=start_ns - _COLLECTOR_CONTEXT_NS,
                                            end_ns=end_ns, every="1m", group_by=[Tag.SOURCE.value], fill_none=True)
    sources: dict[str, Rows] = rows_by_tag(client.query(query, database=plant.influxdb.raw_database),
                                           Tag.SOURCE.value)
    return sources


def read_energy_hours(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> list[Point]:
    """``energy_1h`` points: ``energy_15m`` of [start, end) summed per hour by InfluxDB."""
    columns = [agg("sum", f.value, alias=f.value) for f in ENERGY_FIELDS]
    query = SiteScope(plant.site.id).select(ENERGY_15M, columns, start_ns=start_ns, end_ns=end_ns, every="1h",
                                            group_by_all=True, fill_none=True)
    points: list[Point] = energy_hour_points(client.query(query, database=plant.influxdb.derived_database))
    return points


def _replace(client: InfluxClient, writer: LineWriter, plant: PlantConfig, measurement: str, start_ns: int,
             end_ns: int, points: Sequence[Point]) -> int:
    replace_window(client, writer, site=SiteScope(plant.site.id), database=plant.influxdb.derived_database,
                   measurement=measurement, tags={}, start_ns=start_ns, end_ns=end_ns, points=points)
    return len(points)


def run_tiers(plant: PlantConfig, client: InfluxClient, writer: LineWriter, start_ns: int, end_ns: int, *,
              hourly: bool) -> int:
    """The minute tiers of [start, end) (whole minutes), and with ``hourly`` the hourly ones of the hours
    from ``start`` (a whole hour) up to ``end`` (the last one so far). Returns the points written."""
    if start_ns % MINUTE_NS or end_ns % MINUTE_NS or (hourly and start_ns % HOUR_NS):
        raise ValueError(f"tiers of site {plant.site.id}: window [{start_ns}, {end_ns}) must be whole minutes "
                         "(and start on an hour when the hourly tiers are written)")
    if end_ns <= start_ns:
        return 0
    site, devices = plant.site.id, {d.id: d for d in plant.devices}
    minutes = read_minutes(client, plant, start_ns, end_ns)
    written = _replace(client, writer, plant, DEVICE_1M, start_ns, end_ns,
                       device_minute_points(site, devices, minutes))
    written += _replace(client, writer, plant, POWER_1M, start_ns, end_ns, power_points(site, plant, minutes))
    sources = read_collector(client, plant, start_ns, end_ns)
    written += _replace(client, writer, plant, COLLECTOR_1M, start_ns, end_ns,
                        collector_points(site, sources, start_ns=start_ns))
    if hourly:
        hours_end = -(-end_ns // HOUR_NS) * HOUR_NS
        written += _replace(client, writer, plant, DEVICE_1H, start_ns, hours_end,
                            device_hour_points(site, devices, minutes))
        written += _replace(client, writer, plant, ENERGY_1H, start_ns, hours_end,
                            read_energy_hours(client, plant, start_ns, hours_end))
    return written


def tier_windows(start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """[start, end) cut at the hours (pure): one window per hour, ``start`` floored to its hour."""
    first = start_ns // HOUR_NS * HOUR_NS
    return [(t, min(t + HOUR_NS, end_ns)) for t in range(first, end_ns, HOUR_NS)]


def _run_hours(plant: PlantConfig, client: InfluxClient, writer: LineWriter, start_ns: int, end_ns: int, *,
               progress: bool) -> int:
    windows = tier_windows(start_ns, end_ns)
    written = 0
    with tqdm(windows, unit="h", desc="tiers", disable=not progress) as bar:
        for a, b in bar:
            written += run_tiers(plant, client, writer, a, b, hourly=True)
            bar.set_postfix(points=written)
    return written


def backfill_tiers(plant: PlantConfig, client: InfluxClient, writer: LineWriter, start: datetime, end: datetime,
                   *, progress: bool = True) -> int:
    """Recompute every tier from ``start`` (floored to its hour) to ``end`` (floored to its minute), an hour
    at a time, with a progress bar. Returns the points written."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError(f"tiers back-fill of site {plant.site.id}: start {start} and end {end} need a timezone")
    start_ns = int(start.timestamp()) * _NS
    end_ns = int(end.timestamp()) * _NS // MINUTE_NS * MINUTE_NS
    if end_ns <= start_ns:
        raise ValueError(f"tiers back-fill of site {plant.site.id}: end {end} is not after start {start}")
    return _run_hours(plant, client, writer, start_ns, end_ns, progress=progress)


def tier_range(plant: PlantConfig, first: date, last: date, *, now: datetime | None = None
               ) -> tuple[datetime, datetime]:
    """The back-fill range of the local days ``first`` .. ``last`` (inclusive), ending now at the latest."""
    tz = plant.site.tz
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    after = last + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=tz)
    return start, min(end, now or datetime.now(tz))


class RecentTiers:
    """The scheduled tiers job: every minute the minutes just closed; once an hour the previous hour again
    and the hourly tiers; after a failure everything from the failed window on."""

    def __init__(self, plant: PlantConfig, client: InfluxClient, writer: LineWriter, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.plant, self.client, self.writer, self.clock = plant, client, writer, clock
        self.pending_start_ns: int | None = None  # start of a window not yet written (a run failed)
        self.hour_done_ns: int | None = None  # the hour whose lookback last ran
        self.redo_from_ns: int | None = None  # a failed window: redone by the next hourly lookbacks too,
        self.redo_left = 0  # ... while the collectors' spools drain into InfluxDB

    def run(self) -> None:
        now_s = self.clock()
        end = int((now_s - LAG_S) * _NS) // MINUTE_NS * MINUTE_NS
        hour = end // HOUR_NS * HOUR_NS
        start = end - OVERLAP_MIN * MINUTE_NS
        if self.pending_start_ns is not None:  # the last run failed: redo from there, now and at the next lookbacks
            start = min(start, self.pending_start_ns)
            self.redo_from_ns = start if self.redo_from_ns is None else min(self.redo_from_ns, start)
            self.redo_left = _OUTAGE_LOOKBACKS
        lookback = hour != self.hour_done_ns
        if lookback:
            start = min(start, hour - HOUR_NS, start if self.redo_from_ns is None else self.redo_from_ns)
        self.pending_start_ns = start
        if lookback or start < end - OVERLAP_MIN * MINUTE_NS:
            written = _run_hours(self.plant, self.client, self.writer, start, end, progress=False)
        else:
            written = run_tiers(self.plant, self.client, self.writer, start, end, hourly=False)
        if lookback:  # energy_15m of an hour's last quarter lands after the hour; the nightly job redoes the day
            back_ns = _NIGHTLY_LOOKBACK_NS if datetime.fromtimestamp(now_s, self.plant.site.tz).hour == 1 \
                else _ENERGY_LOOKBACK_NS
            energy = read_energy_hours(self.client, self.plant, hour - back_ns, hour)
            written += _replace(self.client, self.writer, self.plant, ENERGY_1H, hour - back_ns, hour, energy)
            self.hour_done_ns = hour
            self.redo_left -= 1
            if self.redo_left <= 0:
                self.redo_from_ns = None
        self.pending_start_ns = None
        log.info("tiers: %d points for %s .. %s", written, datetime.fromtimestamp(start / _NS, self.plant.site.tz),
                 datetime.fromtimestamp(end / _NS, self.plant.site.tz))
