"""Scheduled jobs that retry with backoff until they succeed, and report their health.

Every attempt writes an `analytics_status` point (tag ``source`` = the job): ``ok`` 1 or 0,
``consecutive_failures`` and, after a failure, ``last_error``. A failure is logged at ERROR
with the time of the next attempt. Status points that cannot be written (InfluxDB is what
failed) are kept and written with the next attempt's, so the failure shows up once it is back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from plantems.config import PlantConfig
from plantems.influx import InfluxError, LineWriter
from plantems.lineproto import Point, format_line
from plantems.schema import ANALYTICS_STATUS, Field, Job, Tag

__all__ = ["RetryingJob", "backoff_s", "schedule_retrying", "status_point"]

log = logging.getLogger(__name__)

_MAX_HELD_POINTS: Final = 1000  # status points kept while InfluxDB is away (~10 days at the 15-min cap)
_ERROR_CHARS: Final = 500


def backoff_s(failures: int, *, base_s: float, cap_s: float) -> float:
    """Delay before the next attempt after ``failures`` consecutive failures: doubling, capped (pure)."""
    return min(cap_s, base_s * 2.0 ** max(failures - 1, 0))


def status_point(plant: PlantConfig, job: Job, *, failures: int, error: str | None, time_ns: int) -> Point:
    fields: dict[str, float | str] = {Field.OK.value: 0.0 if failures else 1.0,
                                      Field.CONSECUTIVE_FAILURES.value: float(failures)}
    if error is not None:
        fields[Field.LAST_ERROR.value] = error[:_ERROR_CHARS]
    return Point(ANALYTICS_STATUS, {Tag.SITE.value: plant.site.id, Tag.SOURCE.value: job.value}, fields, time_ns)


class RetryingJob:
    """One job's attempts: ``attempt()`` runs it and returns the delay before a retry, or None."""

    def __init__(self, job: Job, run: Callable[[], None], *, plant: PlantConfig, writer: LineWriter,
                 base_s: float = 30.0, cap_s: float = 900.0, clock: Callable[[], float] = time.time) -> None:
        self.job, self.run, self.plant, self.writer = job, run, plant, writer
        self.base_s, self.cap_s, self.clock = base_s, cap_s, clock
        self.failures = 0
        self._held: list[Point] = []
        self._lock = threading.Lock()  # the regular run and a retry never overlap

    def attempt(self) -> float | None:
        with self._lock:
            try:
                self.run()
            except Exception as exc:  # the loop boundary: whatever failed, report it and retry
                self.failures += 1
                delay = backoff_s(self.failures, base_s=self.base_s, cap_s=self.cap_s)
                error = f"{type(exc).__name__}: {exc}"
                log.error("job %s failed (%d in a row): %s; retrying in %g s", self.job.value, self.failures,
                          error, delay, exc_info=not isinstance(exc, InfluxError | OSError))
                self._record(error)
                return delay
            if self.failures:
                log.info("job %s succeeded again after %d failure(s)", self.job.value, self.failures)
            self.failures = 0
            self._record(None)
            return None

    def _record(self, error: str | None) -> None:
        self._held.append(status_point(self.plant, self.job, failures=self.failures, error=error,
                                       time_ns=int(self.clock() * 1e9)))
        del self._held[:-_MAX_HELD_POINTS]
        try:
            self.writer.write(self.plant.influxdb.derived_database, [format_line(p) for p in self._held])
        except InfluxError as exc:
            log.warning("job %s: status not written yet (%s); kept for the next attempt", self.job.value, exc)
            return
        self._held.clear()


def schedule_retrying(scheduler: BaseScheduler, job: RetryingJob, trigger: BaseTrigger, **options: Any) -> None:
    """Run ``job`` on ``trigger``; after a failure, once more after its backoff, until it succeeds."""
    retry_id = f"{job.job.value}-retry"

    def fire() -> None:
        delay = job.attempt()
        if delay is None:
            with contextlib.suppress(JobLookupError):  # a pending retry is no longer needed
                scheduler.remove_job(retry_id)
            return
        when = datetime.now(scheduler.timezone) + timedelta(seconds=delay)
        scheduler.add_job(fire, DateTrigger(run_date=when), id=retry_id, replace_existing=True,
                          misfire_grace_time=None)

    scheduler.add_job(fire, trigger, id=job.job.value, **options)
