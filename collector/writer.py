"""Spool drainer: sends spooled lines to InfluxDB in order, deletes what was acknowledged.

InfluxDB's answers are classified as Telegraf's InfluxDB v2 output does (plantems.influx.classify):

- 2xx: the batch is deleted from the spool.
- 400 and 422: the batch is split in halves until the bad lines are isolated; each bad line is
  dead-lettered (kept with the server's reason), the good ones land.
- 413: the batch is split in halves until the parts are small enough; a single line that is still too
  large is dead-lettered.
- 429 and 503: nothing is deleted; the next request waits at least the server's Retry-After.
- 401, 403 and 404: nothing is deleted; ERROR once with what to fix, retried until someone fixes it.
- connection errors, timeouts, other statuses: nothing is deleted; retried with jittered, capped
  exponential backoff. A WARNING when it starts failing (a restart or a blip), ERROR once the outage has
  lasted ``outage_error_s`` (then a rate-limited summary a minute), INFO when it recovers.

A spool that cannot be read or written (SpoolError) or any unexpected exception is logged at ERROR,
counted, backed off and retried: the thread never dies while the collector runs.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from plantems.collector.spool import Batch, Spool, SpoolError
from plantems.influx import (
    InfluxBadRequest,
    InfluxNeedsFix,
    InfluxRejected,
    InfluxThrottled,
    InfluxTooLarge,
    InfluxUnavailable,
    LineWriter,
)
from plantems.ratelog import ConditionLog

__all__ = ["SpoolWriter", "WriterCounters"]

log = logging.getLogger(__name__)


@dataclass
class WriterCounters:
    written_lines: int = 0
    write_requests: int = 0
    failed_requests: int = 0  # writes that did not land and are retried (unavailable, throttled, needs a fix)
    throttled_requests: int = 0  # 429/503 answers (part of failed_requests)
    dead_lettered_lines: int = 0  # lines InfluxDB refused for good (400/422, or one line alone too large)
    split_batches: int = 0  # 413 answers that split a batch
    spool_errors: int = 0  # spool peek/ack/dead-letter faults (SpoolError)
    unexpected_errors: int = 0  # anything else the thread survived (a bug: logged with its traceback)


def _halves(batch: Batch) -> Iterator[Batch]:
    half = len(batch.lines) // 2
    for ids, lines in ((batch.ids[:half], batch.lines[:half]), (batch.ids[half:], batch.lines[half:])):
        yield Batch(batch.target, ids[0], ids[-1], ids, lines)


class SpoolWriter:
    """Drains a Spool into InfluxDB on its own thread."""

    def __init__(self, spool: Spool, make_writer: Callable[[], LineWriter], *, batch_lines: int,
                 flush_interval_s: float, backoff_max_s: float = 30.0, backoff_min_s: float = 0.5,
                 outage_error_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.spool = spool
        spool.wake_after_lines = batch_lines  # full batches go at once, partial ones every interval
        self._make_writer = make_writer
        self._writer: LineWriter | None = None
        self.batch_lines = batch_lines
        self.flush_interval_s = flush_interval_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.counters = WriterCounters()
        # Rate-limited conditions (first at once, then a summary a minute); the status loop calls flush_logs().
        self.conditions = ConditionLog(log)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self.outage_error_s = outage_error_s
        self._clock = clock
        self._failing_since: float | None = None  # clock() of the first failure of the current outage
        self._needs_fix: set[int] = set()  # 401/403/404 statuses already reported in this episode
        self._spool_failing = False
        self._traced: set[str] = set()  # unexpected exception types already logged with a traceback

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, drain_timeout_s: float = 5.0) -> None:
        """Stop after trying to drain what is pending for up to ``drain_timeout_s``; the rest stays spooled."""
        self._stop.set()
        self._thread.join(drain_timeout_s + 5.0)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def flush_logs(self) -> None:
        """Emit the held-back summaries of rate-limited conditions (call from a status loop)."""
        self.conditions.flush()

    # -- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._drop_writer()

    def _loop(self) -> None:
        delay_s = self.backoff_min_s
        while True:
            try:
                if self._cycle():
                    return
                delay_s = self.backoff_min_s
                continue
            except InfluxUnavailable as exc:
                wait_s = self._influx_failed(exc, delay_s)
            except SpoolError as exc:
                wait_s = self._spool_failed(exc, delay_s)
            except Exception as exc:  # the thread must outlive any bug: logged, counted, retried
                wait_s = self._unexpected(exc, delay_s)
            if self._stop.is_set():
                return  # the spool keeps what is left for the next start
            self._stop.wait(wait_s)
            delay_s = min(delay_s * 2, self.backoff_max_s)

    def _cycle(self) -> bool:
        """One batch sent (or one wait for lines); True when stopping with nothing left to send."""
        batch = self.spool.peek(self.batch_lines)
        if self._spool_failing:
            log.info("spool readable again: writing to InfluxDB resumes")
            self._spool_failing = False
            self.conditions.clear("spool")
        if batch is None:
            if self._stop.is_set():
                return True
            self.spool.wait(self.flush_interval_s)
            return False
        self._send(batch)
        if self._failing_since is not None or self._needs_fix:
            lasted = "" if self._failing_since is None else f" after {self._clock() - self._failing_since:.0f} s"
            log.info("InfluxDB writes recovered%s", lasted)
            self._failing_since = None
            self._needs_fix.clear()
            self.conditions.clear("influx-down")
        if len(batch.lines) < self.batch_lines and not self._stop.is_set():
            # A partial batch means the spool is nearly empty: wait for more (<= flush interval).
            self.spool.wait(self.flush_interval_s)
        return False

    def _jittered(self, delay_s: float) -> float:
        return delay_s * random.uniform(0.5, 1.0)

    def _influx_failed(self, exc: InfluxUnavailable, delay_s: float) -> float:
        self.counters.failed_requests += 1
        self._drop_writer()  # a fresh connection after a failure
        wait_s = self._jittered(delay_s)
        if isinstance(exc, InfluxThrottled):
            self.counters.throttled_requests += 1
        if exc.retry_after_s is not None:
            wait_s = max(wait_s, exc.retry_after_s)
        if isinstance(exc, InfluxNeedsFix):
            if exc.status not in self._needs_fix:
                log.error("InfluxDB refuses writes until this is fixed; lines stay in the spool and are retried: %s",
                          exc)
                self._needs_fix.add(exc.status or 0)
        elif self._failing_since is None:
            log.warning("InfluxDB write failed, keeping the lines in the spool and retrying in %.1f s: %s",
                        wait_s, exc)
            self._failing_since = self._clock()
        elif (down_s := self._clock() - self._failing_since) >= self.outage_error_s:
            # A blip is a warning; an outage this long means nothing reaches the dashboards or alerts.
            self.conditions.log(logging.ERROR, "influx-down", "InfluxDB has refused writes for %.0f s: readings "
                                "wait in the spool, retrying in %.1f s: %s", down_s, wait_s, exc)
        return wait_s

    def _spool_failed(self, exc: SpoolError, delay_s: float) -> float:
        self.counters.spool_errors += 1
        self._spool_failing = True
        wait_s = self._jittered(delay_s)
        self.conditions.log(logging.ERROR, "spool", "spool cannot be read or written, writing to InfluxDB paused, "
                            "retrying in %.1f s: %s", wait_s, exc)
        return wait_s

    def _unexpected(self, exc: Exception, delay_s: float) -> float:
        self.counters.unexpected_errors += 1
        self._drop_writer()
        wait_s = self._jittered(delay_s)
        key = f"unexpected {type(exc).__name__}"
        if key not in self._traced:
            self._traced.add(key)
            log.exception("spool writer: unexpected error, retrying in %.1f s", wait_s)
        else:
            self.conditions.log(logging.ERROR, key, "spool writer: unexpected error again, retrying in %.1f s: %r",
                                wait_s, exc)
        return wait_s

    # -- sending -----------------------------------------------------------------------
    def _write(self, database: str, lines: tuple[str, ...]) -> None:
        if self._writer is None:
            self._writer = self._make_writer()
        self.counters.write_requests += 1
        self._writer.write(database, lines)

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as exc:  # closing a broken connection may fail; it is gone anyway
                log.debug("closing the InfluxDB writer failed: %r", exc)

    def _send(self, batch: Batch) -> None:
        """Write ``batch``; split a refused one until its bad lines stand alone, and dead-letter those."""
        try:
            self._write(batch.target, batch.lines)
        except InfluxRejected as exc:
            if len(batch.lines) == 1:
                self._dead_letter(batch, exc)
                return
            if isinstance(exc, InfluxTooLarge):
                self.counters.split_batches += 1
                self.conditions.log(logging.WARNING, "too large", "InfluxDB refused a request as too large, "
                                    "sending it in halves (a smaller influxdb.batch_lines avoids this): %s", exc)
            for part in _halves(batch):
                self._send(part)
            return
        self.spool.ack(batch.first_id, batch.last_id)
        self.counters.written_lines += len(batch.lines)

    def _dead_letter(self, batch: Batch, exc: InfluxRejected) -> None:
        self.spool.dead_letter(batch.first_id, batch.target, batch.lines[0], str(exc))
        self.counters.dead_lettered_lines += 1
        what = "rejected a line" if isinstance(exc, InfluxBadRequest) else "refused a line as too large"
        self.conditions.log(logging.ERROR, "dead letter", "InfluxDB %s, moved to the dead-letter table: %s | %s",
                            what, batch.lines[0][:300], exc)
