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

Dead letters are bounded too, in rows and bytes, oldest first (counted).

Faults (disk full, I/O error, corrupt page) surface as SpoolError from every
method, never as a raw sqlite3 error: a failed flush puts its lines back into a
bounded memory buffer for the next try, and the caller logs, counts and
retries. Opening a corrupt file moves it aside and salvages its readable rows
(spoolfile.py). The spool keeps a headroom of free disk so that it can always
delete what InfluxDB acknowledged, and thus drain, after filling its disk.

Two connections: the producer side (event loop) appends and flushes, the
writer thread peeks, acknowledges and dead-letters.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from plantems.collector.spoolfile import SpoolError, check_room, checkpoint_if_full, connect, open_spool_file
from plantems.ratelog import ConditionLog
from plantems.schema import COUNTER_FIELDS

__all__ = ["Batch", "Spool", "SpoolError", "SpoolStats"]

log = logging.getLogger(__name__)

_DROP_CHUNK_ROWS = 5000
_ROW_BYTES = "length(line)"
_DEAD_LETTER_BYTES = "length(line) + length(error)"
# meta keys kept in step with the tables (computed once for a spool from before they existed)
_ACCOUNTS = {"bytes": f"SELECT total({_ROW_BYTES}) FROM outbox",
             "dead_letter_rows": "SELECT count(*) FROM dead_letter",
             "dead_letter_bytes": f"SELECT total({_DEAD_LETTER_BYTES}) FROM dead_letter"}


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
    dead_letters_dropped: int = 0  # oldest dead letters deleted to keep the table within its bounds
    buffered_lines: int = 0  # readings in memory, not yet committed (nonzero while the spool fails)
    buffer_dropped_lines: int = 0  # readings lost because the memory buffer was full (this process)
    errors: int = 0  # failed spool operations (this process)
    ok: bool = True  # False while committing or draining fails



class Spool:
    """A bounded, durable FIFO of line-protocol lines per target database.

    Every method raises SpoolError (never a raw sqlite3 or OS error) when the file cannot be read or
    written. Lines not yet committed stay in a memory buffer of at most ``max_buffer_lines`` (the
    oldest go first, counted), so a failed flush loses nothing until that buffer overflows.
    """

    def __init__(self, path: Path, *, max_bytes: int, max_buffer_lines: int = 200_000,
                 max_dead_letter_rows: int = 10_000, max_dead_letter_bytes: int = 20_000_000,
                 min_free_disk_bytes: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_buffer_lines = max_buffer_lines
        self.max_dead_letter_rows = max_dead_letter_rows
        self.max_dead_letter_bytes = max_dead_letter_bytes
        self.min_free_disk_bytes = min_free_disk_bytes
        self.conditions = ConditionLog(log)  # the status loop calls its flush()
        self._clock = clock
        self._errors = 0
        self._buffer_dropped = 0
        # operation ("commit", "read", "delete") -> monotonic time of its first failure since its last success
        self._failing_since: dict[str, float] = {}
        self._health_lock = threading.Lock()  # the writer thread and the producers both report
        self._last_stats = SpoolStats(0, 0, 0, 0, 0)
        self._producer = open_spool_file(path)
        try:
            self._consumer = _connect_guarded(path)
            self._init_accounts()
        except SpoolError:
            self._producer.close()
            raise
        self._buffer: list[tuple[str, str]] = []
        self._rejects: list[tuple[str, str, str, int]] = []
        self._buffer_lock = threading.Lock()
        # Modbus (event loop) and MQTT (its own thread) both flush: one at a time on the producer
        # connection, and a flush that returns has committed everything appended before it.
        self._flush_lock = threading.Lock()
        self._pending = threading.Event()
        self._committed_since_wait = 0
        self.wake_after_lines = 1  # the writer raises it to its batch size

    def _init_accounts(self) -> None:
        with self._guarded(self._producer, "initialise its accounts"), self._producer:
            self._producer.execute("BEGIN IMMEDIATE")
            for key, query in _ACCOUNTS.items():
                if self._producer.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone() is None:
                    total = self._producer.execute(query).fetchone()[0]
                    self._producer.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, int(total)))

    @contextlib.contextmanager
    def _guarded(self, conn: sqlite3.Connection, what: str, side: str | None = None) -> Iterator[None]:
        """Turn any sqlite3/OS error into SpoolError (counted; ``side`` starts failing); success clears ``side``."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already, or be closed
                if conn.in_transaction:
                    conn.rollback()
            with self._health_lock:
                self._errors += 1
                if side is not None:
                    self._failing_since.setdefault(side, self._clock())
            name = getattr(exc, "sqlite_errorname", None)
            raise SpoolError(f"spool {self.path}: {what} failed: {exc}{f' ({name})' if name else ''}") from exc
        if side is not None and side in self._failing_since:
            with self._health_lock:
                self._failing_since.pop(side, None)

    def unusable_for_s(self) -> float:
        """How long committing or draining has been failing without a success in between (0: it works)."""
        with self._health_lock:
            since = min(self._failing_since.values(), default=None)
        return 0.0 if since is None else self._clock() - since

    # -- producer side -------------------------------------------------------------
    def append(self, target: str, lines: Sequence[str]) -> None:
        """Queue lines for ``target``; they are durable after the next ``flush()``."""
        with self._buffer_lock:
            self._buffer.extend((target, line) for line in lines)
            if len(self._buffer) > self.max_buffer_lines:
                self._trim_buffer()

    def reject(self, source: str, payload: str, reason: str) -> None:
        """Keep an input that never became a line (e.g. a bad MQTT payload) with the reason; it is
        committed to the dead-letter table by the next ``flush()``."""
        with self._buffer_lock:
            self._rejects.append((source, payload, reason, time.time_ns()))
            if len(self._rejects) > self.max_buffer_lines:
                self._trim_buffer()

    def _trim_buffer(self) -> None:
        """Drop the oldest buffered lines (and rejects) beyond the memory bound; caller holds the buffer lock."""
        dropped = max(0, len(self._buffer) - self.max_buffer_lines)
        del self._buffer[:dropped]
        del self._rejects[:max(0, len(self._rejects) - self.max_buffer_lines)]
        if dropped:
            self._buffer_dropped += dropped
            self.conditions.log(logging.ERROR, "buffer-full", "spool %s: memory buffer full (%d lines) while the "
                                "spool cannot be written: dropped the %d oldest readings (%d so far)", self.path,
                                self.max_buffer_lines, dropped, self._buffer_dropped)

    def flush(self) -> int:
        """Commit queued lines in one transaction, then enforce the size bounds. Returns lines committed.

        On failure the lines go back to the front of the memory buffer and SpoolError is raised."""
        with self._flush_lock:
            return self._flush()

    def _flush(self) -> int:
        with self._buffer_lock:
            rows, self._buffer = self._buffer, []
            rejects, self._rejects = self._rejects, []
        if not rows and not rejects:
            return 0
        conn = self._producer
        try:
            with self._guarded(conn, "committing new lines", "commit"), conn:
                check_room(conn, self.path, self.min_free_disk_bytes)
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO outbox (target, line) VALUES (?, ?)", rows)
                self._bump(conn, "bytes", sum(len(line) for _, line in rows))
                if rejects:
                    self._insert_dead_letters(conn, rejects)
        except SpoolError:
            with self._buffer_lock:
                self._buffer[:0] = rows
                self._rejects[:0] = rejects
                self._trim_buffer()
            raise
        with self._guarded(conn, "enforcing its size bound"):
            self._enforce_bound()
        self._committed_since_wait += len(rows)
        if self._committed_since_wait >= self.wake_after_lines:
            self._pending.set()
        return len(rows)

    def used_bytes(self) -> int:
        """Bytes of pending line text (the bound); the file is about 1.5x that with SQLite's overhead."""
        with self._guarded(self._producer, "reading its size"):
            row = self._producer.execute("SELECT value FROM meta WHERE key = 'bytes'").fetchone()
        return int(row[0]) if row else 0

    def _delete(self, conn: sqlite3.Connection, where: str, params: tuple[int, ...]) -> int:
        """Delete rows, keeping the byte count right; returns rows deleted."""
        freed = conn.execute(f"SELECT total({_ROW_BYTES}) FROM outbox WHERE {where}", params).fetchone()[0]
        count = conn.execute(f"DELETE FROM outbox WHERE {where}", params).rowcount
        self._bump(conn, "bytes", -int(freed))
        return count

    def _enforce_bound(self) -> None:
        while (excess := self._meta(self._producer, "bytes") - self.max_bytes) > 0:
            shed = self._shed_oldest(excess)
            if shed:
                self.conditions.log(logging.WARNING, "full-shed", "spool %s is full (max %d bytes): dropped the "
                                    "instantaneous values of the %d oldest readings (counters kept)",
                                    self.path, self.max_bytes, shed)
                continue
            dropped = self._drop_oldest(excess)
            if not dropped:
                return
            self.conditions.log(logging.ERROR, "full-drop", "spool %s is full (max %d bytes) with counters only: "
                                "dropped the %d oldest lines", self.path, self.max_bytes, dropped)

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

    # -- dead letters (bounded in rows and bytes, oldest dropped first) ---------------
    def _insert_dead_letters(self, conn: sqlite3.Connection, rows: Sequence[tuple[str, str, str, int]]) -> None:
        """Insert inside the caller's transaction, then drop the oldest beyond the bounds."""
        conn.executemany("INSERT INTO dead_letter (target, line, error, at_ns) VALUES (?, ?, ?, ?)", rows)
        self._bump(conn, "dead_letter_rows", len(rows))
        self._bump(conn, "dead_letter_bytes", sum(len(line) + len(error) for _, line, error, _ in rows))
        excess_rows = self._meta(conn, "dead_letter_rows") - self.max_dead_letter_rows
        excess_bytes = self._meta(conn, "dead_letter_bytes") - self.max_dead_letter_bytes
        if excess_rows <= 0 and excess_bytes <= 0:
            return
        count, freed, last_id = 0, 0, 0
        query = f"SELECT id, {_DEAD_LETTER_BYTES} FROM dead_letter ORDER BY id"
        with contextlib.closing(conn.execute(query)) as oldest:
            for row_id, row_bytes in oldest:  # lazily: only as far as the excess reaches
                if count >= excess_rows and freed >= excess_bytes:
                    break
                count, freed, last_id = count + 1, freed + row_bytes, row_id
        conn.execute("DELETE FROM dead_letter WHERE id <= ?", (last_id,))
        self._bump(conn, "dead_letter_rows", -count)
        self._bump(conn, "dead_letter_bytes", -freed)
        self._bump(conn, "dead_letters_dropped", count)
        self.conditions.log(logging.WARNING, "dead-letters-full", "spool %s: dead-letter table full (max %d rows, "
                            "%d bytes): dropped the %d oldest", self.path, self.max_dead_letter_rows,
                            self.max_dead_letter_bytes, count)

    @staticmethod
    def _bump(conn: sqlite3.Connection, key: str, amount: int) -> None:
        if amount:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value", (key, amount))

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    # -- consumer side -------------------------------------------------------------
    def wait(self, timeout_s: float) -> None:
        """Block the writer until ``wake_after_lines`` lines were committed or ``timeout_s`` passes."""
        self._pending.wait(timeout_s)
        self._pending.clear()
        self._committed_since_wait = 0

    def peek(self, limit: int) -> Batch | None:
        """The oldest up-to-``limit`` lines that share the oldest line's target."""
        with self._guarded(self._consumer, "reading pending lines", "read"):
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
        def delete() -> None:
            with self._consumer:
                self._consumer.execute("BEGIN IMMEDIATE")
                self._delete(self._consumer, "id BETWEEN ? AND ?", (first_id, last_id))

        with self._guarded(self._consumer, "deleting written lines", "delete"):
            checkpoint_if_full(self._consumer, delete)

    def dead_letter(self, spooled_id: int, target: str, line: str, error: str) -> None:
        """Move one rejected line out of the outbox, keeping it and the reason for inspection."""
        def move() -> None:
            with self._consumer:
                self._consumer.execute("BEGIN IMMEDIATE")
                self._insert_dead_letters(self._consumer, [(target, line, error, time.time_ns())])
                self._delete(self._consumer, "id = ?", (spooled_id,))
                self._bump(self._consumer, "dead_lettered_lines", 1)

        with self._guarded(self._consumer, "dead-lettering a line", "delete"):
            checkpoint_if_full(self._consumer, move)

    def dead_letters(self) -> list[tuple[str, str, str]]:
        """``(target, line, error)`` of every dead-lettered line, oldest first."""
        with self._guarded(self._consumer, "reading dead letters"):
            return self._consumer.execute("SELECT target, line, error FROM dead_letter ORDER BY id").fetchall()

    def stats(self) -> SpoolStats:
        """Health figures (read on the producer connection, between flushes)."""
        with self._flush_lock, self._guarded(self._producer, "reading its statistics"):
            meta = dict(self._producer.execute("SELECT key, value FROM meta").fetchall())
            pending = int(self._producer.execute("SELECT count(*) FROM outbox").fetchone()[0])
        self._last_stats = SpoolStats(int(meta.get("bytes", 0)), pending, int(meta.get("dropped_lines", 0)),
                                      int(meta.get("shed_lines", 0)), int(meta.get("dead_lettered_lines", 0)),
                                      int(meta.get("dead_letters_dropped", 0)))
        return self.last_stats()

    def last_stats(self) -> SpoolStats:
        """The figures of the last successful ``stats()`` with the current in-memory ones (no I/O, never fails)."""
        with self._buffer_lock:
            buffered = len(self._buffer)
        s = self._last_stats
        return SpoolStats(s.used_bytes, s.pending_lines, s.dropped_lines, s.shed_lines, s.dead_lettered_lines,
                          s.dead_letters_dropped, buffered, self._buffer_dropped, self._errors,
                          not self._failing_since)

    def close(self) -> None:
        """Flush and close; raises SpoolError (after closing) if the last flush failed."""
        try:
            self.flush()
        finally:
            self._producer.close()
            self._consumer.close()


def _connect_guarded(path: Path) -> sqlite3.Connection:
    try:
        return connect(path)
    except (sqlite3.Error, OSError) as exc:
        raise SpoolError(f"spool {path}: cannot open a second connection: {exc}") from exc
