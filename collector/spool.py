"""Durable outbox between the sources and InfluxDB (SQLite, WAL).

Every line is committed here before any write to InfluxDB is tried, and is
deleted only after InfluxDB acknowledged it, so a crash (even ``kill -9``)
or an InfluxDB outage loses nothing that reached the spool. Lines leave in
the order they came (at least once: a line can be sent twice after a crash,
which InfluxDB absorbs because the same series and timestamp overwrite).

Bounded in bytes: when full, the oldest lines first lose their instantaneous
fields (rewritten to their counter fields, or deleted if they have none);
lines go whole only when nothing is left to shed, because the next counter
value heals a gap in interval energy but nothing heals a lost total. Lines InfluxDB rejects as malformed are
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

from plantems.schema import COUNTER_FIELDS

__all__ = ["Batch", "Spool", "SpoolError", "SpoolStats"]

log = logging.getLogger(__name__)


class SpoolError(Exception):
    """The spool cannot be read or written (disk full, I/O error, corrupt file): a fault to report
    and recover from, never a reason for a thread to die silently."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    line TEXT NOT NULL,
    shed INTEGER NOT NULL DEFAULT 0  -- 1: only counter fields are left
);
CREATE INDEX IF NOT EXISTS outbox_shed ON outbox (shed, id);
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
_ROW_BYTES = "length(line)"


def counters_only(line: str) -> str | None:
    """``line`` with only its counter fields (schema COUNTER_FIELDS), or None if it has none.

    Lines with string fields are treated as having none (the collector writes only floats).
    """
    key, sep, rest = _split_unescaped_space(line)
    if not sep or '"' in rest:
        return None
    fields, _, time_ns = rest.rpartition(" ")
    kept = [f for f in fields.split(",") if f.partition("=")[0] in COUNTER_FIELDS]
    return f"{key} {','.join(kept)} {time_ns}" if kept else None


def _split_unescaped_space(line: str) -> tuple[str, str, str]:
    index = 0
    while (index := line.find(" ", index)) > 0 and line[index - 1] == "\\":
        index += 1
    return (line[:index], " ", line[index + 1:]) if index > 0 else (line, "", "")


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
    dropped_lines: int  # whole lines lost (instantaneous-only lines first, counter lines last)
    shed_lines: int  # lines that lost their instantaneous fields but kept their counters
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
        self._buffer: list[tuple[str, str]] = []
        self._buffer_lock = threading.Lock()
        # Modbus (event loop) and MQTT (its own thread) both flush: one at a time on the producer
        # connection, and a flush that returns has committed everything appended before it.
        self._flush_lock = threading.Lock()
        self._pending = threading.Event()
        self._committed_since_wait = 0
        self.wake_after_lines = 1  # the writer raises it to its batch size
        if self._producer.execute("SELECT 1 FROM meta WHERE key = 'bytes'").fetchone() is None:
            with self._producer:  # a spool from before byte accounting, or a new one
                self._producer.execute("BEGIN IMMEDIATE")
                total = self._producer.execute(f"SELECT total({_ROW_BYTES}) FROM outbox").fetchone()[0]
                self._producer.execute("INSERT INTO meta (key, value) VALUES ('bytes', ?)", (int(total),))

    # -- producer side -------------------------------------------------------------
    def append(self, target: str, lines: Sequence[str]) -> None:
        """Queue lines for ``target``; they are durable after the next ``flush()``."""
        with self._buffer_lock:
            self._buffer.extend((target, line) for line in lines)

    def flush(self) -> int:
        """Commit queued lines in one transaction, then enforce the size bound. Returns lines committed."""
        with self._flush_lock:
            return self._flush()

    def _flush(self) -> int:
        with self._buffer_lock:
            rows, self._buffer = self._buffer, []
        if not rows:
            return 0
        with self._producer:
            self._producer.execute("BEGIN IMMEDIATE")
            self._producer.executemany("INSERT INTO outbox (target, line) VALUES (?, ?)", rows)
            self._bump(self._producer, "bytes", sum(len(line) for _, line in rows))
        self._enforce_bound()
        self._committed_since_wait += len(rows)
        if self._committed_since_wait >= self.wake_after_lines:
            self._pending.set()
        return len(rows)

    def used_bytes(self) -> int:
        """Bytes of pending line text (the bound); the file is about 1.5x that with SQLite's overhead."""
        row = self._producer.execute("SELECT value FROM meta WHERE key = 'bytes'").fetchone()
        return int(row[0]) if row else 0

    def _delete(self, conn: sqlite3.Connection, where: str, params: tuple[int, ...]) -> int:
        """Delete rows, keeping the byte count right; returns rows deleted."""
        freed = conn.execute(f"SELECT total({_ROW_BYTES}) FROM outbox WHERE {where}", params).fetchone()[0]
        count = conn.execute(f"DELETE FROM outbox WHERE {where}", params).rowcount
        self._bump(conn, "bytes", -int(freed))
        return count

    def _enforce_bound(self) -> None:
        while (excess := self.used_bytes() - self.max_bytes) > 0:
            shed = self._shed_oldest(excess)
            if shed:
                log.warning("spool %s is full (max %d bytes): dropped the instantaneous values of the %d "
                            "oldest readings (counters kept)", self.path, self.max_bytes, shed)
                continue
            dropped = self._drop_oldest(excess)
            if not dropped:
                return
            log.error("spool %s is full (max %d bytes) with counters only: dropped the %d oldest lines",
                      self.path, self.max_bytes, dropped)

    def _shed_oldest(self, excess: int) -> int:
        """Cut just enough of the oldest unshed lines down to their counter fields (deleting
        those without any) to free ``excess`` bytes. Returns lines touched."""
        conn = self._producer
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute("SELECT id, line FROM outbox WHERE shed = 0 ORDER BY id LIMIT ?",
                                (_DROP_CHUNK_ROWS,)).fetchall()
            freed, gone, shed = 0, [], []
            for row_id, line in rows:
                kept = counters_only(line)
                if kept is None:
                    gone.append((row_id,))
                    freed += len(line)
                else:
                    shed.append((kept, row_id))
                    freed += len(line) - len(kept)
                if freed >= excess:
                    break
            conn.executemany("DELETE FROM outbox WHERE id = ?", gone)
            conn.executemany("UPDATE outbox SET line = ?, shed = 1 WHERE id = ?", shed)
            self._bump(conn, "bytes", -freed)
            self._bump(conn, "dropped_lines", len(gone))
            self._bump(conn, "shed_lines", len(shed))
        return len(gone) + len(shed)

    def _drop_oldest(self, excess: int) -> int:
        """Delete just enough of the oldest lines to free ``excess`` bytes."""
        conn = self._producer
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(f"SELECT id, {_ROW_BYTES} FROM outbox ORDER BY id LIMIT ?",
                                (_DROP_CHUNK_ROWS,)).fetchall()
            freed, last = 0, None
            for row_id, row_bytes in rows:
                freed += row_bytes
                last = row_id
                if freed >= excess:
                    break
            if last is None:
                return 0
            count = self._delete(conn, "id <= ?", (last,))
            self._bump(conn, "dropped_lines", count)
        return count

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str, amount: int) -> None:
        if amount:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value", (key, amount))

    # -- consumer side -------------------------------------------------------------
    def wait(self, timeout_s: float) -> None:
        """Block the writer until ``wake_after_lines`` lines were committed or ``timeout_s`` passes."""
        self._pending.wait(timeout_s)
        self._pending.clear()
        self._committed_since_wait = 0

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
            self._delete(self._consumer, "id BETWEEN ? AND ?", (first_id, last_id))

    def dead_letter(self, spooled_id: int, target: str, line: str, error: str) -> None:
        """Move one rejected line out of the outbox, keeping it and the reason for inspection."""
        with self._consumer:
            self._consumer.execute("BEGIN IMMEDIATE")
            self._consumer.execute("INSERT INTO dead_letter (target, line, error, at_ns) VALUES (?, ?, ?, ?)",
                                   (target, line, error, time.time_ns()))
            self._delete(self._consumer, "id = ?", (spooled_id,))
            self._bump(self._consumer, "dead_lettered_lines", 1)

    def reject(self, source: str, payload: str, reason: str) -> None:
        """Keep an input that never became a line (e.g. a bad MQTT payload) with the reason."""
        with self._flush_lock, self._producer:
            self._producer.execute("BEGIN IMMEDIATE")
            self._producer.execute("INSERT INTO dead_letter (target, line, error, at_ns) VALUES (?, ?, ?, ?)",
                                   (source, payload, reason, time.time_ns()))

    def dead_letters(self) -> list[tuple[str, str, str]]:
        """``(target, line, error)`` of every dead-lettered line, oldest first."""
        return self._consumer.execute("SELECT target, line, error FROM dead_letter ORDER BY id").fetchall()

    def stats(self) -> SpoolStats:
        """Health figures (read on the producer connection, between flushes)."""
        with self._flush_lock:
            meta = dict(self._producer.execute("SELECT key, value FROM meta").fetchall())
            pending = int(self._producer.execute("SELECT count(*) FROM outbox").fetchone()[0])
        return SpoolStats(int(meta.get("bytes", 0)), pending, int(meta.get("dropped_lines", 0)),
                          int(meta.get("shed_lines", 0)), int(meta.get("dead_lettered_lines", 0)))

    def close(self) -> None:
        self.flush()
        self._producer.close()
        self._consumer.close()
