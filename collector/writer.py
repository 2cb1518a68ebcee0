"""Spool drainer: sends spooled lines to InfluxDB in order, deletes what was acknowledged.

- 2xx: the batch is deleted from the spool.
- 400: the batch is split in halves until the bad lines are isolated; each bad
  line is dead-lettered (kept with the server's reason), the good ones land.
- connection errors, timeouts, 5xx, 401/403/404: nothing is deleted; retried
  with jittered, capped exponential backoff. Logged once when it starts
  failing and once when it recovers.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from plantems.collector.spool import Batch, Spool
from plantems.influx import InfluxBadRequest, InfluxUnavailable, LineWriter

__all__ = ["SpoolWriter", "WriterCounters"]

log = logging.getLogger(__name__)


@dataclass
class WriterCounters:
    written_lines: int = 0
    write_requests: int = 0
    failed_requests: int = 0
    dead_lettered_lines: int = 0


class SpoolWriter:
    """Drains a Spool into InfluxDB on its own thread."""

    def __init__(self, spool: Spool, make_writer: Callable[[], LineWriter], *, batch_lines: int,
                 flush_interval_s: float, backoff_max_s: float = 30.0) -> None:
        self.spool = spool
        spool.wake_after_lines = batch_lines  # full batches go at once, partial ones every interval
        self._make_writer = make_writer
        self._writer: LineWriter | None = None
        self.batch_lines = batch_lines
        self.flush_interval_s = flush_interval_s
        self.backoff_max_s = backoff_max_s
        self.counters = WriterCounters()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._failing = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, drain_timeout_s: float = 5.0) -> None:
        """Stop after trying to drain what is pending for up to ``drain_timeout_s``; the rest stays spooled."""
        self._stop.set()
        self._thread.join(drain_timeout_s + 5.0)

    def _run(self) -> None:
        backoff_s = 0.5
        while True:
            batch = self.spool.peek(self.batch_lines)
            if batch is None:
                if self._stop.is_set():
                    return
                self.spool.wait(self.flush_interval_s)
                continue
            try:
                self._send(batch)
            except InfluxUnavailable as exc:
                self.counters.failed_requests += 1
                if not self._failing:
                    log.warning("InfluxDB write failed, keeping %d+ lines in the spool and retrying: %s",
                                len(batch.lines), exc)
                    self._failing = True
                if self._stop.is_set():
                    return  # the spool keeps it for the next start
                self._stop.wait(backoff_s * random.uniform(0.5, 1.0))
                backoff_s = min(backoff_s * 2, self.backoff_max_s)
                self._writer = None  # fresh connection after a failure
                continue
            backoff_s = 0.5
            if self._failing:
                log.info("InfluxDB writes recovered")
                self._failing = False
            if len(batch.lines) < self.batch_lines and not self._stop.is_set():
                # A partial batch means the spool is nearly empty: wait for more (<= flush interval).
                self.spool.wait(self.flush_interval_s)

    def _write(self, database: str, lines: tuple[str, ...]) -> None:
        if self._writer is None:
            self._writer = self._make_writer()
        self.counters.write_requests += 1
        self._writer.write(database, lines)

    def _send(self, batch: Batch) -> None:
        try:
            self._write(batch.target, batch.lines)
        except InfluxBadRequest as exc:
            self._isolate(batch, str(exc))
            return
        self.spool.ack(batch.first_id, batch.last_id)
        self.counters.written_lines += len(batch.lines)

    def _isolate(self, batch: Batch, error: str) -> None:
        """Split a rejected batch until each bad line stands alone; dead-letter those."""
        if len(batch.lines) == 1:
            log.error("InfluxDB rejected a line, moved to the dead-letter table: %s | %s",
                      batch.lines[0][:300], error)
            self.spool.dead_letter(batch.first_id, batch.target, batch.lines[0], error)
            self.counters.dead_lettered_lines += 1
            return
        half = len(batch.lines) // 2
        for ids, lines in ((batch.ids[:half], batch.lines[:half]), (batch.ids[half:], batch.lines[half:])):
            self._send(Batch(batch.target, ids[0], ids[-1], ids, lines))
