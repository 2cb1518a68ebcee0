"""The dashboard tiers job (InfluxDB I/O): reads minute aggregates, writes the tiers (``analytics.tiers``).

InfluxDB computes every aggregate (``GROUP BY time(1m)``): no raw 1-s point is pulled into
Python. A window is processed an hour at a time, each read cut into requests of at most
``ROWS_PER_QUERY`` device minutes (by devices, or by time for the collector sources), so no request
grows with the plant or the range (a back-fill over 500 devices stays far below the timeout).
Each window is written with ``replace_window`` inside the site: re-running it leaves exactly one
result, and two sites in one database never touch each other's tiers.

InfluxDB 1.x pays per aggregate call and series, whatever the window (each call reads the series'
recent values): the 28 calls of the per-device tiers cost about as much for 2 minutes as for 15. So
the scheduled job (:class:`RecentTiers`) splits its work by what each tier is for:

- every minute, ``power_1m`` (3 calls) for the minutes just closed: the live "Power by area";
- every quarter hour, all minute tiers of the quarter just closed, ``device_1h`` when it closes an
  hour, ``collector_1h`` of the hour so far (the collector dashboard's worst-N tables follow the
  current hour), and ``energy_1h`` of the last hours;
- at each quarter, late data: the raw sample count of each of the last hour's quarters is compared
  with the ``samples`` the tiers hold, and a quarter that gained samples (a spool drained after an
  outage) is recomputed. A failed run leaves its windows pending; the next run redoes them.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Final

from tqdm import tqdm  # type: ignore[import-untyped]

from plantems.analytics.energy_read import time_parts
from plantems.analytics.tiers import (
    COLLECTOR_COUNTERS,
    ENERGY_FIELDS,
    HOUR_NS,
    MINUTE_NS,
    Rows,
    SeriesLike,
    collector_columns,
    collector_hour_points,
    collector_minute_points,
    collector_minutes,
    device_hour_points,
    device_minute_points,
    energy_hour_points,
    join_rows,
    power_points,
    rows_by_tag,
)
from plantems.config import PlantConfig
from plantems.influx import InfluxClient, LineWriter
from plantems.lineproto import Point
from plantems.schema import (
    COLLECTOR_1H,
    COLLECTOR_1M,
    COLLECTOR_STATUS,
    DEVICE_1H,
    DEVICE_1M,
    ELECTRICAL,
    ENERGY_1H,
    ENERGY_15M,
    POWER_1M,
    Field,
    Stat,
    Tag,
    tier_columns,
    tier_field,
)
from plantems.store.query import SiteScope, agg, col
from plantems.store.window import replace_window

__all__ = ["CATCH_UP_NS", "LAG_S", "ROWS_PER_QUERY", "RecentTiers", "backfill_tiers", "find_late", "late_quarters",
           "run_power", "run_tiers", "tier_range", "tier_windows"]

log = logging.getLogger(__name__)

_NS: Final = 1_000_000_000
ROWS_PER_QUERY: Final = 3000  # device minutes per aggregate query: 50 devices x 1 h x 28 columns, 1 MB, ~2 s
LAG_S: Final = 15  # a minute is summarised this long after it ends (the collector flushes within seconds)
QUARTER_NS: Final = 900 * _NS
OVERLAP_MIN: Final = 2  # each minute run redoes the minute before too: samples that came in just late
LATE_CHECK_NS: Final = HOUR_NS  # quarters checked for late samples at each quarter run
CATCH_UP_NS: Final = 24 * HOUR_NS  # at start, tiers missing since the last ones written are caught up this far back
_COLLECTOR_CONTEXT_NS: Final = 5 * MINUTE_NS  # status rows before a window: the running counts' start
_ENERGY_LOOKBACK_NS: Final = 2 * HOUR_NS  # energy_15m of the last quarter lands after the hour has ended
_NIGHTLY_LOOKBACK_NS: Final = 26 * HOUR_NS  # at 01:xx local: the day the nightly energy job has just redone
_OUTAGE_CHECKS: Final = 8  # quarter runs that still check a failed window for late samples (spools drain)


def _minute_columns() -> list[str]:
    columns = [agg(stat.value, f.value, alias=name) for f, stat, name in tier_columns()]
    return [*columns, agg("count", Field.P_KW.value, alias=Field.SAMPLES.value)]


def _power_columns() -> list[str]:
    return [agg(Stat.MEAN.value, f.value, alias=tier_field(f, Stat.MEAN)) for f in (Field.P_KW, Field.Q_KVAR)]


def read_minutes(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int, *,
                 columns: Sequence[str] | None = None) -> dict[str, Rows]:
    """Per device: the minute min/mean/max of the tier fields and the sample count in [start, end)
    (or only ``columns``), aggregated by InfluxDB, at most ``ROWS_PER_QUERY`` device minutes per query."""
    site, ids = SiteScope(plant.site.id), [d.id for d in plant.devices]
    batch = max(1, ROWS_PER_QUERY // max(1, (end_ns - start_ns) // MINUTE_NS))
    out: dict[str, Rows] = {}
    for i in range(0, len(ids), batch):
        # one query for the whole site needs no device list (devices not configured are left out later)
        devices = None if batch >= len(ids) else {Tag.DEVICE.value: ids[i:i + batch]}
        query = site.select(ELECTRICAL, columns or _minute_columns(), any_of=devices, start_ns=start_ns,
                            end_ns=end_ns, every="1m", group_by=[Tag.DEVICE.value], fill_none=True)
        out.update(rows_by_tag(client.query(query, database=plant.influxdb.raw_database), Tag.DEVICE.value))
    return out


def read_stored_minutes(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, Rows]:
    """The ``device_1m`` rows already written for [start, end) (to complete an hour), per device."""
    names = [name for _, _, name in tier_columns()] + [Field.SAMPLES.value]
    query = SiteScope(plant.site.id).select(DEVICE_1M, [col(n) for n in names], start_ns=start_ns, end_ns=end_ns,
                                            group_by=[Tag.DEVICE.value])
    stored: dict[str, Rows] = rows_by_tag(client.query(query, database=plant.influxdb.derived_database),
                                          Tag.DEVICE.value)
    return stored


def read_collector(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, Rows]:
    """Per collector source and minute of [start - context, end): the kept latency statistics, the latency sample
    count and the last and highest value of each running count."""
    columns = [agg(stat.value, Field.LATENCY_MS.value, alias=name) for stat, name in collector_columns()
               if stat is not None]
    columns.append(agg("count", Field.LATENCY_MS.value, alias=Field.SAMPLES.value))
    columns += [agg("last", f.value, alias=f.value) for f in COLLECTOR_COUNTERS]
    columns += [agg("max", f.value, alias=tier_field(f, Stat.MAX)) for f in COLLECTOR_COUNTERS]
    site, found = SiteScope(plant.site.id), []
    # a source per device and a few more (spool, MQTT): cut in time like the energy reads, never in sources,
    # so each source's running counts stay in one joined series
    for a, b in time_parts(start_ns - _COLLECTOR_CONTEXT_NS, end_ns, devices=len(plant.devices) + 2,
                           rows=ROWS_PER_QUERY):
        query = site.select(COLLECTOR_STATUS, columns, start_ns=a, end_ns=b, every="1m", group_by=[Tag.SOURCE.value],
                            fill_none=True)
        found += client.query(query, database=plant.influxdb.raw_database)
    sources: dict[str, Rows] = rows_by_tag(found, Tag.SOURCE.value)
    return sources


def read_stored_collector(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> dict[str, Rows]:
    """The ``collector_1m`` rows already written for [start, end) (to complete an hour), per source."""
    names = [name for _, name in collector_columns()] + [Field.SAMPLES.value]
    query = SiteScope(plant.site.id).select(COLLECTOR_1M, [col(n) for n in names], start_ns=start_ns, end_ns=end_ns,
                                            group_by=[Tag.SOURCE.value])
    stored: dict[str, Rows] = rows_by_tag(client.query(query, database=plant.influxdb.derived_database),
                                          Tag.SOURCE.value)
    return stored


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


def _check_window(plant: PlantConfig, start_ns: int, end_ns: int) -> None:
    if start_ns % MINUTE_NS or end_ns % MINUTE_NS:
        raise ValueError(f"tiers of site {plant.site.id}: window [{start_ns}, {end_ns}) must be whole minutes")


def run_power(plant: PlantConfig, client: InfluxClient, writer: LineWriter, start_ns: int, end_ns: int) -> int:
    """``power_1m`` alone for [start, end) (whole minutes): the live overview's minute run."""
    _check_window(plant, start_ns, end_ns)
    if end_ns <= start_ns:
        return 0
    minutes = read_minutes(client, plant, start_ns, end_ns, columns=_power_columns())
    return _replace(client, writer, plant, POWER_1M, start_ns, end_ns, power_points(plant.site.id, plant, minutes))


def _hours_of(start_ns: int, end_ns: int, *, every_hour: bool) -> list[int]:
    """Hours whose ``device_1h`` a window [start, end) rewrites: those it covers from their start, and the one
    it completes (the hour's other minutes are read back from ``device_1m``); with ``every_hour`` all it touches."""
    first = start_ns // HOUR_NS * HOUR_NS
    return [h for h in range(first, end_ns, HOUR_NS) if every_hour or h >= start_ns or end_ns >= h + HOUR_NS]


def _with_stored(minutes: dict[str, Rows], ranges: Sequence[tuple[int, int]],
                 read: Callable[[int, int], dict[str, Rows]]) -> dict[str, Rows]:
    """``minutes`` completed with the minute rows already written in ``ranges`` (``read(start, end)``)."""
    for a, b in ranges:
        if b > a:
            stored = read(a, b)
            minutes = {d: join_rows(stored[d], r) if d in stored else r for d, r in minutes.items()} | {
                d: r for d, r in stored.items() if d not in minutes}
    return minutes


def run_tiers(plant: PlantConfig, client: InfluxClient, writer: LineWriter, start_ns: int, end_ns: int, *,
              every_hour: bool = False) -> int:
    """Every tier of [start, end) (whole minutes): the minute tiers, ``device_1h`` of the hours the window
    covers from their start or completes (``every_hour``: of every hour it touches, e.g. for late samples),
    ``energy_1h`` of the hours it touches. Returns the points written."""
    _check_window(plant, start_ns, end_ns)
    if end_ns <= start_ns:
        return 0
    site, devices = plant.site.id, {d.id: d for d in plant.devices}
    minutes = read_minutes(client, plant, start_ns, end_ns)
    written = _replace(client, writer, plant, DEVICE_1M, start_ns, end_ns,
                       device_minute_points(site, devices, minutes))
    written += _replace(client, writer, plant, POWER_1M, start_ns, end_ns, power_points(site, plant, minutes))
    sources = collector_minutes(read_collector(client, plant, start_ns, end_ns), start_ns=start_ns)
    written += _replace(client, writer, plant, COLLECTOR_1M, start_ns, end_ns, collector_minute_points(site, sources))
    hours = _hours_of(start_ns, end_ns, every_hour=every_hour)
    if hours:
        hours_start = hours[0]
        hours_end = hours[-1] + HOUR_NS if every_hour else min(hours[-1] + HOUR_NS, -(-end_ns // HOUR_NS) * HOUR_NS)
        whole = _with_stored(minutes, [(hours_start, start_ns)] + ([(end_ns, hours_end)] if every_hour else []),
                             lambda a, b: read_stored_minutes(client, plant, a, b))
        written += _replace(client, writer, plant, DEVICE_1H, hours_start, hours_end,
                            device_hour_points(site, devices, whole))
    written += _collector_hours(plant, client, writer, sources, start_ns, end_ns, every_hour=every_hour)
    energy_start, energy_end = start_ns // HOUR_NS * HOUR_NS, -(-end_ns // HOUR_NS) * HOUR_NS
    written += _replace(client, writer, plant, ENERGY_1H, energy_start, energy_end,
                        read_energy_hours(client, plant, energy_start, energy_end))
    return written


def _collector_hours(plant: PlantConfig, client: InfluxClient, writer: LineWriter, sources: dict[str, Rows],
                     start_ns: int, end_ns: int, *, every_hour: bool) -> int:
    """``collector_1h`` of every hour [start, end) touches, its earlier minutes (and with ``every_hour`` its later
    ones) read back from ``collector_1m``: the current hour is rewritten at each quarter, so the worst-N tables
    over a short range follow it."""
    hours_start, hours_end = start_ns // HOUR_NS * HOUR_NS, -(-end_ns // HOUR_NS) * HOUR_NS
    whole = _with_stored(sources, [(hours_start, start_ns)] + ([(end_ns, hours_end)] if every_hour else []),
                         lambda a, b: read_stored_collector(client, plant, a, b))
    return _replace(client, writer, plant, COLLECTOR_1H, hours_start, hours_end,
                    collector_hour_points(plant.site.id, whole))


def tier_windows(start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """[start, end) cut at the hours (pure): no window spans two hours."""
    cuts = [start_ns, *range(start_ns // HOUR_NS * HOUR_NS + HOUR_NS, end_ns, HOUR_NS), end_ns]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _run_windows(plant: PlantConfig, client: InfluxClient, writer: LineWriter, start_ns: int, end_ns: int, *,
                 progress: bool) -> int:
    windows = tier_windows(start_ns, end_ns)
    written = 0
    with tqdm(windows, unit="h", desc="tiers", disable=not progress) as bar:
        for a, b in bar:
            written += run_tiers(plant, client, writer, a, b)
            bar.set_postfix(points=written)
    return written


def backfill_tiers(plant: PlantConfig, client: InfluxClient, writer: LineWriter, start: datetime, end: datetime,
                   *, progress: bool = True) -> int:
    """Recompute every tier from ``start`` (floored to its hour) to ``end`` (floored to its minute), an hour
    at a time, with a progress bar. Returns the points written."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError(f"tiers back-fill of site {plant.site.id}: start {start} and end {end} need a timezone")
    start_ns = int(start.timestamp()) * _NS // HOUR_NS * HOUR_NS
    end_ns = int(end.timestamp()) * _NS // MINUTE_NS * MINUTE_NS
    if end_ns <= start_ns:
        raise ValueError(f"tiers back-fill of site {plant.site.id}: end {end} is not after start {start}")
    return _run_windows(plant, client, writer, start_ns, end_ns, progress=progress)


def tier_range(plant: PlantConfig, first: date, last: date, *, now: datetime | None = None
               ) -> tuple[datetime, datetime]:
    """The back-fill range of the local days ``first`` .. ``last`` (inclusive), ending now at the latest."""
    tz = plant.site.tz
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    after = last + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=tz)
    return start, min(end, now or datetime.now(tz))


def late_quarters(raw_counts: Mapping[int, float], stored_samples: Mapping[int, float]) -> list[int]:
    """Quarter starts whose raw sample count differs from the samples the tiers summarised (pure)."""
    return sorted(t for t, n in raw_counts.items() if n != stored_samples.get(t, 0.0))


def _per_quarter(series: Sequence[SeriesLike]) -> dict[int, float]:
    return {int(row[0]): float(row[1]) for s in series for row in s.values if row[1] is not None}


def find_late(client: InfluxClient, plant: PlantConfig, start_ns: int, end_ns: int) -> list[int]:
    """Quarters of [start, end) whose raw samples (of the configured devices) outnumber what the tiers hold."""
    site, ids = SiteScope(plant.site.id), [d.id for d in plant.devices]
    raw = site.select(ELECTRICAL, [agg("count", Field.P_KW.value)], any_of={Tag.DEVICE.value: ids},
                      start_ns=start_ns, end_ns=end_ns, every="15m", fill_none=True)
    stored = site.select(DEVICE_1M, [agg("sum", Field.SAMPLES.value)], start_ns=start_ns, end_ns=end_ns,
                         every="15m", fill_none=True)
    return late_quarters(_per_quarter(client.query(raw, database=plant.influxdb.raw_database)),
                         _per_quarter(client.query(stored, database=plant.influxdb.derived_database)))


class RecentTiers:
    """The scheduled tiers job: ``power_1m`` every minute, every tier each quarter hour, late samples
    recomputed (see the module doc). A failed run leaves its windows to the next one."""

    def __init__(self, plant: PlantConfig, client: InfluxClient, writer: LineWriter, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.plant, self.client, self.writer, self.clock = plant, client, writer, clock
        self.full_from_ns: int | None = None  # start of the first quarter not yet fully written
        self.quarter_done_ns: int | None = None  # the last quarter end whose full run succeeded
        self.check_from_ns: int | None = None  # a failed window: checked for late samples at the next quarters,
        self.checks_left = 0  # ... while the collectors' spools drain into InfluxDB

    def run(self) -> None:
        now_s = self.clock()
        end = int((now_s - LAG_S) * _NS) // MINUTE_NS * MINUTE_NS
        quarter = end // QUARTER_NS * QUARTER_NS
        written = 0
        if quarter != self.quarter_done_ns:
            written += self._quarter(quarter, now_s)
        written += run_power(self.plant, self.client, self.writer, max(quarter, end - OVERLAP_MIN * MINUTE_NS), end)
        log.debug("tiers: %d points up to %s", written, datetime.fromtimestamp(end / _NS, self.plant.site.tz))

    def _resume_from(self, quarter: int) -> int:
        """Where the first run starts: after the newest ``device_1m`` minute (the tiers written before this
        process started), at most CATCH_UP_NS back; the quarter before ``quarter`` when there is none."""
        query = SiteScope(self.plant.site.id).select(DEVICE_1M, [agg("last", Field.SAMPLES.value)],
                                                     start_ns=quarter - CATCH_UP_NS, end_ns=quarter)
        series = self.client.query(query, database=self.plant.influxdb.derived_database)
        newest = [int(row[0]) for s in series for row in s.values]
        if not newest:
            log.warning("tiers: none written in the %d h before %s; older days: plantems analyze --backfill FROM TO",
                        CATCH_UP_NS // HOUR_NS, datetime.fromtimestamp(quarter / _NS, self.plant.site.tz))
            return quarter - QUARTER_NS
        start: int = min(quarter - QUARTER_NS, (max(newest) + MINUTE_NS) // QUARTER_NS * QUARTER_NS)
        if start < quarter - QUARTER_NS:
            log.info("tiers: catching up from %s", datetime.fromtimestamp(start / _NS, self.plant.site.tz))
        return start

    def _quarter(self, quarter: int, now_s: float) -> int:
        """Every tier of the quarters since the last full run, and of quarters that got late samples."""
        start = self._resume_from(quarter) if self.full_from_ns is None else self.full_from_ns
        if self.quarter_done_ns is not None and start < self.quarter_done_ns:
            start = self.quarter_done_ns
        if self.full_from_ns is not None and self.full_from_ns < quarter - QUARTER_NS:  # a run failed
            self.check_from_ns = min(self.full_from_ns, self.check_from_ns or self.full_from_ns)
            self.checks_left = _OUTAGE_CHECKS
        self.full_from_ns = start
        check_from = min(quarter - LATE_CHECK_NS, self.check_from_ns or quarter)
        late = [q for q in find_late(self.client, self.plant, check_from, start) if q < start]
        written = _run_windows(self.plant, self.client, self.writer, start, quarter, progress=False)
        for q in late:  # after the new quarters: a late quarter's hour then includes them
            written += run_tiers(self.plant, self.client, self.writer, q, q + QUARTER_NS, every_hour=True)
        back_ns = _NIGHTLY_LOOKBACK_NS if datetime.fromtimestamp(now_s, self.plant.site.tz).hour == 1 \
            else _ENERGY_LOOKBACK_NS  # energy_15m lands after its quarter; the nightly energy job redoes the day
        hour = quarter // HOUR_NS * HOUR_NS
        written += _replace(self.client, self.writer, self.plant, ENERGY_1H, hour - back_ns, hour,
                            read_energy_hours(self.client, self.plant, hour - back_ns, hour))
        self.full_from_ns, self.quarter_done_ns = quarter, quarter
        self.checks_left -= 1
        if self.checks_left <= 0:
            self.check_from_ns = None
        if late:
            log.info("tiers: late samples in %d quarter(s) from %s recomputed", len(late),
                     datetime.fromtimestamp(late[0] / _NS, self.plant.site.tz))
        log.info("tiers: %d points for %s .. %s", written, datetime.fromtimestamp(start / _NS, self.plant.site.tz),
                 datetime.fromtimestamp(quarter / _NS, self.plant.site.tz))
        return written
