"""``plantems analyze``: the scheduled analytics jobs, and back-fills over a date range.

APScheduler (3.x) runs in the site's timezone; a job that missed its time (the
process was down) runs once when it can (coalesced), never twice at once.
Every job recomputes whole windows, so running late or twice changes nothing.
A failed job is retried with backoff until it succeeds, redoing what it missed,
and reports each attempt as an `analytics_status` point (analytics.jobstatus).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from tqdm import tqdm

if TYPE_CHECKING:
    import pandas as pd

    from plantems.analytics.demand_job import DemandMonitor
    from plantems.analytics.rollup import Rollup

from plantems.analytics.energy import INTERVAL_S
from plantems.analytics.energy_job import run_energy_15m
from plantems.analytics.jobstatus import RetryingJob, schedule_retrying
from plantems.analytics.opportunity_job import run_daily_load_shift
from plantems.config import PlantConfig
from plantems.i18n import ALL_LANGS, Lang, Named
from plantems.influx import InfluxClient, InfluxError, LineWriter
from plantems.reference import reference_path
from plantems.schema import Job
from plantems.tariffs import Tariff

__all__ = ["DailyEnergy", "RecentEnergy", "backfill_energy", "recent_window", "restate_provisional", "run_rollup",
           "run_scheduler"]

log = logging.getLogger(__name__)

_NS = 1_000_000_000
RECOMPUTE_S = 3600  # each run redoes the last hour: late samples and short spool backlogs land
# ...and every night the whole previous local day, for backlogs after longer outages


def recent_window(now_s: float, *, span_s: int = RECOMPUTE_S) -> tuple[int, int]:
    """[start, end) in ns: the ``span_s`` before the last whole 15 minutes (pure)."""
    end_s = int(now_s // INTERVAL_S * INTERVAL_S)
    return (end_s - span_s) * _NS, end_s * _NS


class RecentEnergy:
    """The 15-minute energy job: the last hour, and every window since the last success.

    A failed run leaves its start pending, so the next attempt recomputes from there: an
    outage longer than the hour each run redoes leaves no interval behind.
    """

    def __init__(self, plant: PlantConfig, tariffs: Sequence[Tariff], client: InfluxClient, writer: LineWriter, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.plant, self.tariffs, self.client, self.writer, self.clock = plant, tariffs, client, writer, clock
        self.pending_start_ns: int | None = None

    def run(self) -> None:
        start, end = recent_window(self.clock())
        if self.pending_start_ns is not None:
            start = min(start, self.pending_start_ns)
        self.pending_start_ns = start
        count = run_energy_15m(self.plant, self.tariffs, self.client, self.writer, start, end)
        self.pending_start_ns = None
        log.info("energy_15m: %d points for %s .. %s", count, datetime.fromtimestamp(start / _NS, self.plant.site.tz),
                 datetime.fromtimestamp(end / _NS, self.plant.site.tz))


class DailyEnergy:
    """The nightly job: the previous local day, and every day whose run has not yet succeeded."""

    def __init__(self, plant: PlantConfig, tariffs: Sequence[Tariff], client: InfluxClient, writer: LineWriter, *,
                 clock: Callable[[], float] = time.time, config_dir: Path | None = None) -> None:
        self.plant, self.tariffs, self.client, self.writer, self.clock = plant, tariffs, client, writer, clock
        self.config_dir = config_dir  # where the emission factors are (None: no EnPI points)
        self.pending: set[date] = set()

    def run(self) -> None:
        from plantems.analytics.enpi_job import run_enpi

        now = datetime.fromtimestamp(self.clock(), self.plant.site.tz)
        self.pending.add((now - timedelta(days=1)).date())
        for day in sorted(self.pending):
            backfill_energy(self.plant, self.tariffs, self.client, self.writer, day, day, progress=False)
            if self.config_dir is not None:  # the day's EnPIs and its month so far, from the energy just written
                run_enpi(self.plant, self.client, self.writer, day, day, config_dir=self.config_dir,
                         as_of=now.date())
            self.pending.discard(day)


def local_day_bounds(plant: PlantConfig, day: date) -> tuple[int, int]:
    tz = plant.site.tz
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end_day = day + timedelta(days=1)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
    return int(start.timestamp()) * _NS, int(end.timestamp()) * _NS


def backfill_energy(plant: PlantConfig, tariffs: Sequence[Tariff], client: InfluxClient, writer: LineWriter,
                    first: date, last: date, *, progress: bool = True) -> int:
    """Recompute energy_15m for every local day from ``first`` to ``last`` inclusive."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    written = 0
    with tqdm(days, unit="day", desc="energy_15m", disable=not progress) as bar:
        for day in bar:
            bounds = local_day_bounds(plant, day)
            written += run_energy_15m(plant, tariffs, client, writer, *bounds)
            run_daily_load_shift(plant, tariffs, client, writer, day, *bounds)
            bar.set_postfix(points=written)
    return written


def run_scheduler(plant: PlantConfig, tariffs: Sequence[Tariff], client: InfluxClient, writer: LineWriter, *,
                  config_dir: Path, reports_dir: Path, monitor: DemandMonitor | None = None) -> None:
    """Run the jobs until SIGINT/SIGTERM."""
    from plantems.analytics.tiers_job import LAG_S, RecentTiers
    from plantems.calendar import previous_month

    energy = RecentEnergy(plant, tariffs, client, writer)
    tiers = RecentTiers(plant, client, writer)
    daily = DailyEnergy(plant, tariffs, client, writer, config_dir=config_dir)

    def rollup_job() -> None:
        now = datetime.now(plant.site.tz)
        pending_months.add(previous_month(now))
        for month in sorted(pending_months):  # a month whose rollup failed is redone until it succeeds
            paths = run_rollup(plant, month, config_dir=config_dir, client=client, writer=writer,
                               out_root=reports_dir, as_of=now.date(), progress=False)
            pending_months.discard(month)
            log.info("monthly rollup %s written: %s", month, ", ".join(str(p) for p in paths))
        restate_provisional(plant, config_dir=config_dir, client=client, writer=writer, reports_dir=reports_dir,
                            as_of=now.date())

    pending_months: set[str] = set()
    pending_quarters: set[str] = set()

    def quarter_job() -> None:
        from plantems.analytics.quarter_job import previous_quarter, run_quarter

        today = datetime.now(plant.site.tz).date()
        pending_quarters.add(previous_quarter(today))
        for quarter in sorted(pending_quarters):
            paths = run_quarter(plant, quarter, config_dir=config_dir, client=client, out_root=reports_dir / "quarter",
                                as_of=today)
            pending_quarters.discard(quarter)
            log.info("quarterly report %s written: %s", quarter, ", ".join(str(p) for p in paths))

    scheduler = BlockingScheduler(timezone=plant.site.timezone)
    # "Running job"/"executed successfully" every few seconds would bury the log; failures still show
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    tz = plant.site.timezone
    retrying = {job: RetryingJob(job, run, plant=plant, writer=writer)
                for job, run in ((Job.ENERGY_15M, energy.run), (Job.ENERGY_DAILY, daily.run),
                                 (Job.MONTHLY_ROLLUP, rollup_job), (Job.QUARTER_REPORT, quarter_job),
                                 (Job.TIERS, tiers.run))}
    # a minute past each quarter hour: the interval just closed has its samples spooled by then
    schedule_retrying(scheduler, retrying[Job.ENERGY_15M], CronTrigger(minute="1,16,31,46", timezone=tz),
                      coalesce=True, max_instances=1, misfire_grace_time=600, next_run_time=datetime.now(plant.site.tz))
    # the dashboard tiers: each minute LAG_S after it closed (its samples are in by then); hourly lookback inside
    schedule_retrying(scheduler, retrying[Job.TIERS], CronTrigger(second=LAG_S + 5, timezone=tz), coalesce=True,
                      max_instances=1, misfire_grace_time=60, next_run_time=datetime.now(plant.site.tz))
    schedule_retrying(scheduler, retrying[Job.ENERGY_DAILY], CronTrigger(hour=0, minute=30, timezone=tz),
                      coalesce=True, max_instances=1, misfire_grace_time=12 * 3600)
    # the first of the month, 02:00 local: the month before, once its last intervals are in
    schedule_retrying(scheduler, retrying[Job.MONTHLY_ROLLUP], CronTrigger(day=1, hour=2, minute=0, timezone=tz),
                      coalesce=True, max_instances=1, misfire_grace_time=7 * 86400)
    # the quarter's first day, after the monthly rollup has recomputed the quarter's last month
    schedule_retrying(scheduler, retrying[Job.QUARTER_REPORT],
                      CronTrigger(month="1,4,7,10", day=1, hour=4, minute=0, timezone=tz),
                      coalesce=True, max_instances=1, misfire_grace_time=7 * 86400)
    if monitor is not None:
        _add_demand_job(scheduler, monitor)
    log.info("analytics: energy_15m every 15 minutes (recomputing the last %d h) and nightly for the day "
             "before, dashboard tiers every minute (the hour before again each hour), monthly rollup on the 1st "
             "at 02:00, quarterly report on the quarter's 1st at 04:00, "
             "timezone %s", RECOMPUTE_S // 3600, plant.site.timezone)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("analytics stopping")
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        if monitor is not None:
            monitor.close()  # a few seconds for deliveries in progress; the rest are recorded as failed
        log.info("analytics stopped")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # a second SIGTERM must not cut short the (bounded) shutdown that records undelivered alerts
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)  # systemd and docker stop with SIGTERM: finish like Ctrl-C


def _add_demand_job(scheduler: BlockingScheduler, monitor: DemandMonitor) -> None:
    failing = False

    def demand_job() -> None:
        nonlocal failing
        try:
            monitor.evaluate()
        except InfluxError as exc:  # logged once per outage: the next round retries anyway
            if not failing:
                log.error("demand: cannot read InfluxDB (%s); retrying every %g s", exc,
                          monitor.config.evaluate_every_s)
            failing = True
            return
        if failing:
            log.info("demand: InfluxDB answers again")
        failing = False

    every_s = monitor.config.evaluate_every_s
    try:
        monitor.restore()
    except InfluxError as exc:
        log.warning("demand: could not read the last alerts (%s); a peak in progress may be alerted again", exc)
    scheduler.add_job(demand_job, IntervalTrigger(seconds=every_s), id="demand", coalesce=True, max_instances=1,
                      misfire_grace_time=max(1, int(every_s)), next_run_time=datetime.now(monitor.plant.site.tz))
    log.info("demand: %d billing group(s) evaluated every %g s: %s", len(monitor.config.groups), every_s,
             ", ".join(f"{g.id} limit {g.limit_kw:g} kW ({g.method})" for g in monitor.config.groups))


def plant_names(plant: PlantConfig) -> dict[str, Named]:
    """The plant's devices and production lines by id: the reports' display names (name_zh in Chinese)."""
    return {**{device.id: device for device in plant.devices}, **{line.id: line for line in plant.production_lines}}


def run_rollup(plant: PlantConfig, month: str, *, config_dir: Path, client: InfluxClient, writer: LineWriter,
               out_root: Path, as_of: date, progress: bool = True, restates: dict | None = None,
               langs: tuple[Lang, ...] = ALL_LANGS) -> list[Path]:
    """The month end to end: recompute its energy, compute, write `scope2` points and the report files
    (in the languages ``langs``: zh-CN and English by default)."""
    from plantems.analytics.enpi_job import run_enpi_month
    from plantems.analytics.reconcile import read_reconciliation
    from plantems.analytics.report import write_report
    from plantems.analytics.rollup import compute_rollup, month_bounds, read_month, write_scope2_points
    from plantems.factors import load_factors
    from plantems.ledger import load_ledger
    from plantems.targets import load_targets
    from plantems.tariffs import load_tariffs

    tariffs = load_tariffs(reference_path(config_dir, "tariffs"))
    factors = load_factors(reference_path(config_dir, "emission_factors.yaml"))
    ledger = load_ledger(config_dir / "green_power.csv")
    targets = load_targets(reference_path(config_dir, "targets.yaml"))
    start, end = month_bounds(month, plant.site.tz)
    last_day = (end - timedelta(days=1)).date()
    with tqdm(total=5, desc=f"rollup {month}", unit="step", disable=not progress) as bar:
        backfill_energy(plant, tariffs, client, writer, start.date(), last_day, progress=False)
        run_enpi_month(plant, client, writer, month, config_dir=config_dir, as_of=as_of)
        bar.update(1)
        data = read_month(client, plant, month)
        rollup = compute_rollup(plant, month, data, tariffs=tariffs, factors=factors,
                                ledger=ledger, targets=targets, as_of=as_of)
        if restates is not None:
            rollup = dataclasses.replace(rollup, provenance=dataclasses.replace(rollup.provenance, restates=restates))
        bar.update(1)
        write_scope2_points(plant, rollup, writer, client)
        bar.update(1)
        rollup = _with_opportunities(plant, rollup, tariffs, client, writer, hourly=data.intervals)
        rollup = dataclasses.replace(rollup, reconciliation=read_reconciliation(client, plant, month))
        if not rollup.reconciliation.ok:
            log.error("rollup %s: %d meter(s) do not reconcile (interval sum vs counter difference): %s", month,
                      len(rollup.reconciliation.differing),
                      ", ".join(f"{m.device} {m.difference_kwh:+.3f} kWh" for m in rollup.reconciliation.differing))
        bar.update(1)
        paths = write_report(rollup, out_root / month, langs=langs, names=plant_names(plant))
        bar.update(1)
    return paths


def _with_opportunities(plant: PlantConfig, rollup: Rollup, tariffs: Sequence[Tariff], client: InfluxClient,
                        writer: LineWriter, *, hourly: pd.DataFrame) -> Rollup:
    """The month's load-shifting, maximum-demand and reactive-power opportunities, written as points."""
    from dataclasses import replace

    from plantems.analytics.opportunity_job import (
        month_opportunities,
        read_air,
        read_month_energy,
        write_opportunities,
    )
    from plantems.analytics.rollup import month_bounds
    from plantems.schema import DEMAND, Field, Granularity, Tag
    from plantems.store.query import SiteScope, agg

    start, end = month_bounds(rollup.month, plant.site.tz)
    intervals, totals, at_peak = read_month_energy(client, plant, start.value, end.value, hourly=hourly)
    air_m3, air_bar = read_air(client, plant, start.value, end.value)
    found = month_opportunities(plant, rollup, intervals, tariffs, totals=totals, at_peak=at_peak, air_m3=air_m3,
                                air_bar=air_bar)
    sliding = []
    for item in found.max_demand:  # the live monitor's sliding maximum, where it ran this month
        query = SiteScope(plant.site.id).select(DEMAND, [agg("max", Field.DEMAND_KW.value)],
                                                tags={Tag.METER_GROUP.value: item.group}, start_ns=start.value,
                                                end_ns=end.value)
        series = client.query(query, database=plant.influxdb.derived_database)
        sliding.append(item.with_sliding(float(series[0].values[0][1]) if series and series[0].values else None))
    found = replace(found, max_demand=tuple(sliding))
    points = found.to_points(site=plant.site.id, time_ns=start.value, granularity=Granularity.MONTH)
    write_opportunities(plant, client, writer, points, start_ns=start.value, end_ns=end.value,
                        granularity=Granularity.MONTH)
    return replace(rollup, opportunities=found)


def restate_provisional(plant: PlantConfig, *, config_dir: Path, client: InfluxClient, writer: LineWriter,
                        reports_dir: Path, as_of: date) -> list[str]:
    """Re-run every reported month whose factor was provisional once a better one is published.

    The new report keeps what it replaces under ``provenance.restates``: the previous factors,
    totals and run date, so the restatement is traceable.
    """
    import json

    from plantems.factors import load_factors, select_factor

    factors = load_factors(reference_path(config_dir, "emission_factors.yaml"))
    chains = {"location_factor": ("location", plant.site.grid_factor_regions),
              "residual_factor": ("residual", plant.site.residual_factor_regions)}
    restated = []
    for path in sorted(reports_dir.glob("*/rollup.json")):
        report = json.loads(path.read_text())
        year = int(report["month"][:4])
        changed = {}
        for key, (method, regions) in chains.items():
            old = report["provenance"][key]
            new = select_factor(factors, method=method, regions=regions, year=year, as_of=as_of)  # type: ignore[arg-type]
            if old["provisional"] and new.factor.id != old["id"]:
                changed[key] = {"was": old["id"], "now": new.factor.id}
        if not changed:
            continue
        previous = {"as_of": report["as_of"], "factors": changed, "scope2_kgco2e": report["scope2_kgco2e"]}
        run_rollup(plant, report["month"], config_dir=config_dir, client=client, writer=writer,
                   out_root=reports_dir, as_of=as_of, progress=False, restates=previous)
        log.warning("restated %s: %s", report["month"],
                    ", ".join(f"{c['was']} -> {c['now']}" for c in changed.values()))
        restated.append(report["month"])
    return restated
