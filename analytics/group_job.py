"""``plantems group rollup`` and ``plantems group analyze``: every site's monthly rollup, then the group's.

Each site's month is computed by the site rollup (analytics/service.py run_rollup) from its own
plant file and its own InfluxDB - one central server for all sites or one per site, the code is
the same - into ``REPORTS/<site>/<month>/``; the group consolidates their rollup.json documents
into ``REPORTS/<group>/<month>/``. Every step recomputes whole months, so a re-run gives the same
numbers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from plantems.analytics.group import GroupRollup, consolidate
from plantems.analytics.group_report import write_group_report
from plantems.analytics.group_sections import SiteName, group_sections
from plantems.analytics.jobstatus import RetryingJob, schedule_retrying
from plantems.analytics.plan_job import run_group_plan
from plantems.analytics.service import _exit_on_sigterm, run_rollup
from plantems.calendar import previous_month
from plantems.config import PlantConfig
from plantems.group import Group
from plantems.i18n import ALL_LANGS, Lang, Named
from plantems.influx import InfluxClient, detect_api, make_writer
from plantems.metal import load_metal_ledger
from plantems.schema import Job

__all__ = ["GroupMonthly", "run_group_rollup", "run_group_scheduler"]

log = logging.getLogger(__name__)


def _site_rollup(plant: PlantConfig, group: Group, month: str, reports_dir: Path, as_of: date,
                 progress: bool, langs: tuple[Lang, ...]) -> Path:
    cfg = plant.influxdb
    client, writer = InfluxClient(cfg), make_writer(cfg, detect_api(cfg))
    try:
        run_rollup(plant, month, config_dir=group.plant_dir(plant), client=client, writer=writer,
                   out_root=reports_dir / plant.site.id, as_of=as_of, progress=progress, langs=langs)
    finally:
        writer.close()
    return reports_dir / plant.site.id / month / "rollup.json"


def run_group_rollup(group: Group, month: str, *, reports_dir: Path, as_of: date, progress: bool = True,
                     langs: tuple[Lang, ...] = ALL_LANGS) -> tuple[GroupRollup, list[Path]]:
    """Each site's rollup for ``month`` from its own InfluxDB, then the group's report files (in ``langs``)."""
    docs = []
    for plant in group.plants:
        path = _site_rollup(plant, group, month, reports_dir, as_of, progress, langs)
        docs.append(json.loads(path.read_text(encoding="utf-8")))
        log.info("group %s: site %s rolled up for %s (%s)", group.id, plant.site.id, month, path)
    info = group.config.group
    rollup = consolidate(group=info.id, name=info.name, name_zh=info.name_zh, month=month, as_of=as_of, docs=docs,
                         output_lines=group.output_lines, targets=group.targets)
    rollup = dataclasses.replace(rollup, plan=run_group_plan(group, rollup))
    sites: dict[str, Named] = {plant.site.id: plant.site for plant in group.plants}
    sites[info.id] = SiteName(info.id, info.name, info.name_zh)
    ledger = group.path.parent / "metal_purchases.csv"
    metal = load_metal_ledger(ledger, sites=[p.site.id for p in group.plants]) if ledger.exists() else None
    sections = group_sections(docs, group=info.id, month=month, metal=metal,
                              metal_ledger=str(ledger) if metal is not None else None, targets=group.targets)
    return rollup, write_group_report(rollup, reports_dir / group.id / month, langs=langs, names=sites,
                                      sections=sections)


class GroupMonthly:
    """The scheduled group rollup: the month before the clock's, and every month whose run failed."""

    def __init__(self, group: Group, reports_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.group, self.reports_dir, self.clock = group, reports_dir, clock
        self.pending: set[str] = set()

    def run(self) -> None:
        now = datetime.fromtimestamp(self.clock(), self.group.plants[0].site.tz)
        self.pending.add(previous_month(now))
        for month in sorted(self.pending):  # a month that failed is redone until it succeeds
            _, paths = run_group_rollup(self.group, month, reports_dir=self.reports_dir, as_of=now.date(),
                                        progress=False)
            self.pending.discard(month)
            log.info("group rollup %s written: %s", month, ", ".join(str(p) for p in paths))


def run_group_scheduler(group: Group, *, reports_dir: Path) -> None:
    """The group rollup on the 1st of each month at 03:00 (group timezone), an hour after the sites'
    own rollups (02:00); a failed run is retried with backoff until it succeeds, and every attempt
    is an `analytics_status` point (source group_rollup, site = the group id) in the first site's
    derived database."""
    tz = group.config.group.timezone
    monthly = GroupMonthly(group, reports_dir)
    first = group.plants[0]
    status_plant = first.model_copy(update={"site": first.site.model_copy(update={"id": group.id})})
    cfg = first.influxdb
    retrying = RetryingJob(Job.GROUP_ROLLUP, monthly.run, plant=status_plant, writer=make_writer(cfg, detect_api(cfg)))
    scheduler = BlockingScheduler(timezone=tz)
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    schedule_retrying(scheduler, retrying, CronTrigger(day=1, hour=3, minute=0, timezone=tz), coalesce=True,
                      max_instances=1, misfire_grace_time=7 * 86400)
    log.info("group %s: rollup of %s on the 1st at 03:00 %s", group.id,
             ", ".join(p.site.id for p in group.plants), tz)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("group analytics stopping")
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
