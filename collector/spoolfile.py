"""The spool's file: opening it (a corrupt one is moved aside and its readable rows salvaged; an
unwritable place is one clear error naming the path, never a raw traceback or a restart loop), and
keeping room on its disk so that it can always drain.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["SCHEMA", "SpoolError", "check_room", "checkpoint_if_full", "connect", "open_spool_file"]

log = logging.getLogger(__name__)


class SpoolError(Exception):
    """The spool cannot be read or written (disk full, I/O error, corrupt file): a fault to report
    and recover from, never a reason for a thread to die silently."""


SCHEMA = """
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
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_SALVAGE_CHUNK_ROWS = 1000
_SALVAGED = {"outbox": "target, line, shed", "dead_letter": "target, line, error, at_ns"}
_COLUMN_TYPES = {"outbox": (str, str, int), "dead_letter": (str, str, str, int)}


class _Corrupt(Exception):
    pass


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash or
    # power cut can lose the last transactions. FULL would fsync every flush.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def open_spool_file(path: Path) -> sqlite3.Connection:
    """A checked connection to the spool at ``path`` with its schema; a corrupt file is moved aside
    (its readable rows copied into the new one). Raises SpoolError naming the path otherwise."""
    _check_directory(path.parent)
    try:
        return _open_checked(path)
    except _Corrupt as exc:
        detail = str(exc)
    except (sqlite3.Error, OSError) as exc:
        raise SpoolError(f"spool {path}: cannot open it: {_describe(exc)}; check the file's owner and "
                         "permissions and the disk (dmesg), or set spool.path to a writable place") from exc
    aside = _move_aside(path)
    try:
        conn = _open_checked(path)
        outbox, dead = _salvage(aside, conn)
    except (sqlite3.Error, OSError, _Corrupt) as exc:
        raise SpoolError(f"spool {path} was corrupt ({detail}) and is moved aside to {aside}, but a new spool "
                         f"cannot be started there: {_describe(exc)}; check the disk") from exc
    log.error("spool %s is corrupt (%s): moved it aside to %s and started a new spool, salvaging %d pending "
              "lines and %d dead letters from it. Readings on its unreadable pages are lost; keep the file "
              "for inspection (sqlite3 %s .recover), delete it when done, and check the disk (dmesg, smartctl) "
              "if this happens again", path, detail, aside, outbox, dead, aside)
    return conn


def check_room(conn: sqlite3.Connection, path: Path, min_free_bytes: int) -> None:
    """Refuse new lines (ENOSPC, so they wait in memory) when the spool's disk is nearly full.

    Deleting what InfluxDB acknowledged also needs disk space (WAL frames): a spool that filled
    its disk to the last byte could never drain again. While the disk is low, every commit first
    folds the WAL into the database and truncates it (the WAL, where every commit rewrites whole
    pages, is often most of the file), and pages the writer already freed count as room, so a
    drained spool goes on without the disk growing.
    """
    if not min_free_bytes or _disk_free_bytes(path) >= min_free_bytes:
        return
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    page_bytes = conn.execute("PRAGMA page_size").fetchone()[0]
    room = _disk_free_bytes(path) + conn.execute("PRAGMA freelist_count").fetchone()[0] * page_bytes
    if room < min_free_bytes:
        raise OSError(errno.ENOSPC, f"{room} bytes left on its disk, below spool.min_free_disk_bytes = "
                      f"{min_free_bytes} (kept so the spool can still drain)")


def _disk_free_bytes(path: Path) -> int:
    disk = os.statvfs(path.parent)
    return disk.f_bavail * disk.f_frsize


def checkpoint_if_full(conn: sqlite3.Connection, write: Callable[[], None]) -> None:
    """Run ``write``; on a full disk fold the WAL into the database, truncate it, and try once more.

    A delete rewrites pages the database already has, so after the checkpoint it needs no new
    space: this is how a spool on a full disk still drains."""
    try:
        write()
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            raise
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        write()


def _check_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpoolError(f"spool directory {directory}: cannot create it ({exc.strerror}); create it writable "
                         "for the collector's user, or set spool.path") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        # SQLite creates the -wal and -shm files next to the spool: the directory must be writable
        raise SpoolError(f"spool directory {directory} is not writable by this user (uid {os.getuid()}) or is on "
                         "a read-only file system; make it writable for the collector, or set spool.path")


def _open_checked(path: Path) -> sqlite3.Connection:
    conn: sqlite3.Connection | None = None
    try:
        conn = connect(path)
        conn.executescript(SCHEMA)
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            first = str(problems[0]).splitlines()[0][:200]
            raise _Corrupt(f"{first}, and {len(problems) - 1} more problems" if len(problems) > 1 else first)
        return conn
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        if getattr(exc, "sqlite_errorcode", None) in _CORRUPT_CODES:
            raise _Corrupt(str(exc)) from exc
        raise
    except _Corrupt:
        if conn is not None:
            conn.close()
        raise


def _move_aside(path: Path) -> Path:
    """Rename the bad spool (with its WAL, which holds its newest commits) to a name that says so."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    try:
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size == 0:
            wal.unlink()
        for suffix in ("-wal", ""):
            part = Path(f"{path}{suffix}")
            if part.exists():
                part.rename(Path(f"{aside}{suffix}"))
        Path(f"{path}-shm").unlink(missing_ok=True)  # an index of the WAL, rebuilt on open
    except OSError as exc:
        raise SpoolError(f"spool {path} is corrupt and cannot be moved aside to {aside} ({exc.strerror}): "
                         "move or delete it by hand, then start again") from None
    return aside


def _salvage(aside: Path, into: sqlite3.Connection) -> tuple[int, int]:
    """Copy the readable rows of both tables from the bad file; returns (outbox, dead letter) rows."""
    # Without a WAL (the usual case) open it immutable: nothing is written next to it or into it.
    has_wal = Path(f"{aside}-wal").exists()
    try:
        source = sqlite3.connect(f"{aside.as_uri()}{'' if has_wal else '?immutable=1'}", uri=True,
                                 isolation_level=None)
    except sqlite3.Error:
        return 0, 0
    try:
        source.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.Error:
        # A truncated file (its header promises more pages than it has) reads with this; it also
        # relaxes some checks, hence the type checks on every salvaged row. Only this connection.
        with contextlib.suppress(sqlite3.Error):
            source.execute("PRAGMA writable_schema = ON")
    counts = []
    with contextlib.closing(source):
        for table, columns in _SALVAGED.items():
            types = _COLUMN_TYPES[table]
            rows = [row for row in _readable_rows(source, table, columns)
                    if all(isinstance(value, kind) for value, kind in zip(row, types, strict=True))]
            marks = ", ".join("?" * len(columns.split(",")))
            with into:
                into.execute("BEGIN IMMEDIATE")
                into.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
            counts.append(len(rows))
    return counts[0], counts[1]


def _readable_rows(source: sqlite3.Connection, table: str, columns: str) -> Iterator[tuple[object, ...]]:
    """Rows in id order, leaving out only those on unreadable pages."""
    after: int | None = 0
    while after is not None:
        rows = _read(source, table, columns, after + 1, _SALVAGE_CHUNK_ROWS)
        if rows is None:  # somewhere in this chunk: go one row at a time up to the bad page
            rows = _read(source, table, columns, after + 1, 1)
        if rows is None:
            after = _first_readable(source, table, columns, after + 1)
            continue
        if not rows:
            return
        after = rows[-1][0]
        for row in rows:
            yield row[1:]


def _first_readable(source: sqlite3.Connection, table: str, columns: str, bad_id: int) -> int | None:
    """The id just before the first from which reading works again after ``bad_id``: a step that doubles
    until a read works, then bisection back to the end of the bad page (so no readable row is skipped)."""
    step = 1
    while _read(source, table, columns, bad_id + step, 1) is None:
        step *= 2
        if step > 2**62:
            return None
    bad, good = step // 2, step
    while good - bad > 1:
        mid = (bad + good) // 2
        bad, good = (bad, mid) if _read(source, table, columns, bad_id + mid, 1) is not None else (mid, good)
    return bad_id + good - 1


def _read(source: sqlite3.Connection, table: str, columns: str, first_id: int,
          limit: int) -> list[tuple[object, ...]] | None:
    """Rows from id ``first_id`` on (a seek straight to it), or None if a page on the way is unreadable."""
    try:
        return source.execute(f"SELECT id, {columns} FROM {table} WHERE id >= ? ORDER BY id LIMIT ?",
                              (first_id, limit)).fetchall()
    except sqlite3.Error:
        return None


def _describe(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({name})" if name else str(exc)
