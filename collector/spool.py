"""Durable outbox between the sources and InfluxDB (SQLite, WAL).

Every line is committed here before any write to InfluxDB is tried, and is
deleted only after InfluxDB acknowledged it, so a crash (even ``kill -9``)
or an InfluxDB outage loses nothing that reached the spool. Lines leave in
the order they came (at least once: a line can be sent twice after a crash,
which InfluxDB absorbs because the same series and timestamp overwrite).

Bounded in bytes: when full, the oldest *instantaneous* lines are dropped
first; counter lines (energy totals) go last because the next counter value
heals the gap in interval energy. Lines InfluxDB rejects as malformed are
moved to a dead-letter table, never retried forever, never silently lost.

Two connections: the producer side (event loop) appends and flushes, the
writer thread peeks, acknowledges and dead-letters.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Batch", "Spool", "SpoolStats"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    counter INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_counter ON outbox (counter, id);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    line TEXT NOT NULL,
    error TEXT NOT NULL,
    at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_DROP_CHUNK_ROWS = 5000


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive spooled lines for one target, oldest first."""

    target: str
    first_id: int
    last_id: int
    ids: tuple[int, ...]
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpoolStats:
    used_bytes: int
    pending_lines: int
    dropped_lines: int
    dead_lettered_lines: int


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash or
    # power cut can lose the last transactions. FULL would fsync every flush.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class Spool:
    """A bounded, durable FIFO of line-protocol lines per target database."""

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._producer = _connect(path)
        self._producer.executescript(_SCHEMA)
        self._consumer = _connect(path)
        self._buffer: list[tuple[str, int, str]] = []
        self._buffer_lock = threading.Lock()
        self._pending = threading.Event()
        self._page_size = int(self._producer.execute("PRAGMA page_size").fetchone()[0])

    # -- producer side -------------------------------------------------------------
    def append(self, target: str, lines: Sequence[tuple[str, bool]]) -> None:
        """Queue ``(line, is_counter)`` pairs; they are durable after the next ``flush()``."""
        with self._buffer_lock:
            self._buffer.extend((target, int(counter), line) for line, counter in lines)

    def flush(self) -> int:
        """Commit queued lines in one transaction, then enforce the size bound. Returns lines committed."""
        with self._buffer_lock:
            rows, self._buffer = self._buffer, []
        if not rows:
            return 0
        with self._producer:
            self._producer.execute("BEGIN IMMEDIATE")
            self._producer.executemany("INSERT INTO outbox (target, counter, line) VALUES (?, ?, ?)", rows)
        self._enforce_bound()
        self._pending.set()
        return len(rows)

    def used_bytes(self) -> int:
        pages, free = (int(self._producer.execute(f"PRAGMA {p}").fetchone()[0])
                       for p in ("page_count", "freelist_count"))
        return (pages - free) * self._page_size

    def _enforce_bound(self) -> None:
        while self.used_bytes() > self.max_bytes:
            for counter in (0, 1):
                dropped = self._drop_oldest(counter)
                if dropped:
                    level = logging.ERROR if counter else logging.WARNING
                    log.log(level, "spool %s is full (%d bytes > max %d): dropped the %d oldest %s lines",
                            self.path, self.used_bytes(), self.max_bytes, dropped,
                            "counter" if counter else "instantaneous")
                    break
            else:
                return  # nothing left to drop

    def _drop_oldest(self, counter: int) -> int:
        with self._producer:
            self._producer.execute("BEGIN IMMEDIATE")
            cur = self._producer.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE counter = ? ORDER BY id LIMIT ?)",
                (counter, _DROP_CHUNK_ROWS))
            self._bump(self._producer, "dropped_lines", cur.rowcount)
        return cur.rowcount

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str, amount: int) -> None:
        if amount:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value", (key, amount))

    # -- consumer side -------------------------------------------------------------
    def wait(self, timeout_s: float) -> None:
        """Block the writer until lines are flushed or ``timeout_s`` passes."""
        self._pending.wait(timeout_s)
        self._pending.clear()

    def peek(self, limit: int) -> Batch | None:
        """The oldest up-to-``limit`` lines that share the oldest line's target."""
        rows = self._consumer.execute("SELECT id, target, line FROM outbox ORDER BY id LIMIT ?",
                                      (limit,)).fetchall()
        if not rows:
            return None
        target = rows[0][1]
        same = []
        for row in rows:
            if row[1] != target:
                break
            same.append(row)
        return Batch(target, same[0][0], same[-1][0], tuple(r[0] for r in same), tuple(r[2] for r in same))

    def ack(self, first_id: int, last_id: int) -> None:
        """Delete lines InfluxDB acknowledged (a consecutive id range of one batch)."""
        with self._consumer:
            self._consumer.execute("BEGIN IMMEDIATE")
            self._consumer.execute("DELETE FROM outbox WHERE id BETWEEN ? AND ?", (first_id, last_id))

    def dead_letter(self, spooled_id: int, target: str, line: str, error: str) -> None:
        """Move one rejected line out of the outbox, keeping it and the reason for inspection."""
        with self._consumer:
            self._consumer.execute("BEGIN IMMEDIATE")
            self._consumer.execute("INSERT INTO dead_letter (target, line, error, at_ns) VALUES (?, ?, ?, ?)",
                                   (target, line, error, time.time_ns()))
            self._consumer.execute("DELETE FROM outbox WHERE id = ?", (spooled_id,))
            self._bump(self._consumer, "dead_lettered_lines", 1)

    def dead_letters(self) -> list[tuple[str, str, str]]:
        """``(target, line, error)`` of every dead-lettered line, oldest first."""
        return self._consumer.execute("SELECT target, line, error FROM dead_letter ORDER BY id").fetchall()

    def stats(self) -> SpoolStats:
        """Called from the producer's thread (health reporting)."""
        meta = dict(self._producer.execute("SELECT key, value FROM meta").fetchall())
        pending = int(self._producer.execute("SELECT count(*) FROM outbox").fetchone()[0])
        return SpoolStats(self.used_bytes(), pending, int(meta.get("dropped_lines", 0)),
                          int(meta.get("dead_lettered_lines", 0)))

    def close(self) -> None:
        self.flush()
        self._producer.close()
        self._consumer.close()
