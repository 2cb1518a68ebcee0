"""The spool under faults: a full disk (SQLite's max_page_count), corrupt and truncated files, an
unwritable directory, dead-letter bounds, and the rate-limited "full" log."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantems.collector.spool import Spool, SpoolError

PAGE_BYTES = 4096  # SQLite's default page size (asserted below)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def line(n: int) -> str:
    return f"electrical,device=m{n % 7} p_kw={n}.5,e_imp_kwh={n}.0 {n}"


def drain(spool: Spool) -> list[str]:
    out: list[str] = []
    while (batch := spool.peek(1000)) is not None:
        out.extend(batch.lines)
        spool.ack(batch.first_id, batch.last_id)
    return out


def limit_pages(spool: Spool, extra_pages: int) -> None:
    """A disk that is full ``extra_pages`` pages from now (SQLite refuses to grow the file beyond)."""
    for conn in (spool._producer, spool._consumer):  # the test stand-in for a full disk
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")


def test_disk_full_keeps_committed_lines_buffers_the_rest_and_recovers(tmp_path, caplog):
    clock = FakeClock()
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9, max_buffer_lines=300, clock=clock)
    limit_pages(spool, 20)
    committed: list[int] = []  # what flush() reported durable, by sequence number
    fault_at = None
    for n in range(5000):
        spool.append("raw", [line(n)])
        if n % 10 == 9:
            try:
                spool.flush()
                committed = list(range(n + 1))
            except SpoolError as exc:
                fault_at = n
                assert "database or disk is full" in str(exc) and str(tmp_path / "s.sqlite") in str(exc)
                break
    assert fault_at is not None, "the page limit never filled the spool"
    stats = spool.last_stats()
    assert not stats.ok and stats.errors == 1 and stats.buffered_lines == fault_at + 1 - len(committed)

    # The disk stays full: new readings are kept in memory up to the bound, the oldest dropped and counted.
    clock.now_s += 30.0
    for n in range(fault_at + 1, fault_at + 1001):
        spool.append("raw", [line(n)])
        if n % 10 == 9:
            with pytest.raises(SpoolError):
                spool.flush()
    last = fault_at + 1000
    assert spool.unusable_for_s() == 30.0
    stats = spool.last_stats()
    assert stats.buffered_lines == 300
    assert stats.buffer_dropped_lines == last + 1 - len(committed) - 300
    assert [r.levelno for r in caplog.records if "memory buffer full" in r.getMessage()] == [logging.ERROR]

    # The writer drains what was committed before the fault (nothing of it lost), which frees pages.
    assert drain(spool) == [line(n) for n in committed]
    spool.flush()  # space is back: the buffered readings are committed without a restart
    assert spool.unusable_for_s() == 0.0 and spool.last_stats().ok
    assert drain(spool) == [line(n) for n in range(last + 1 - 300, last + 1)]  # the newest, in order
    spool.close()


def test_every_method_raises_spool_error_not_sqlite_errors(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9)
    spool._producer.close()  # any sqlite3 failure will do
    spool._consumer.close()
    spool.append("raw", ["m v=1.0 1"])
    calls = [spool.flush, lambda: spool.peek(10), lambda: spool.ack(1, 1), spool.used_bytes, spool.stats,
             lambda: spool.dead_letter(1, "raw", "x", "bad"), spool.dead_letters, spool.close]
    for call in calls:
        with pytest.raises(SpoolError):
            call()
    assert spool.last_stats().errors == len(calls)
    assert spool.last_stats().buffered_lines == 1  # the failed flushes kept the line


def test_deletes_failing_between_successful_reads_still_count_as_unusable(tmp_path):
    clock = FakeClock()
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9, clock=clock)
    spool.append("raw", [line(n) for n in range(10)])
    spool.flush()
    spool._consumer.execute("PRAGMA query_only = ON")  # the writer can read but not delete
    for _ in range(3):
        batch = spool.peek(100)
        with pytest.raises(SpoolError, match="deleting written lines failed"):
            spool.ack(batch.first_id, batch.last_id)
        clock.now_s += 10.0
    assert spool.unusable_for_s() == 30.0 and not spool.last_stats().ok
    spool._consumer.execute("PRAGMA query_only = OFF")
    spool.ack(batch.first_id, batch.last_id)
    assert spool.unusable_for_s() == 0.0 and spool.peek(100) is None
    spool.close()


def make_spool_file(path: Path, lines: list[str]) -> None:
    spool = Spool(path, max_bytes=10**9)
    spool.append("raw", lines)
    spool.flush()
    spool.close()  # the last connection checkpoints the WAL into the file and removes it
    assert not Path(f"{path}-wal").exists()


def table_leaf_pages(data: bytes) -> Iterator[tuple[int, int]]:
    """(page number, cell count) of every table b-tree leaf page (type 0x0D), from the file format."""
    assert int.from_bytes(data[16:18], "big") == PAGE_BYTES
    for number in range(2, len(data) // PAGE_BYTES + 1):
        page = data[(number - 1) * PAGE_BYTES:number * PAGE_BYTES]
        if page[0] == 0x0D:
            yield number, int.from_bytes(page[3:5], "big")


def test_corrupt_page_is_moved_aside_and_the_rest_salvaged(tmp_path, caplog):
    path = tmp_path / "s.sqlite"
    originals = [line(n) for n in range(3000)]
    make_spool_file(path, originals)
    data = bytearray(path.read_bytes())
    leaves = [leaf for leaf in table_leaf_pages(bytes(data)) if leaf[1] > 10]  # outbox pages
    bad_page, bad_cells = leaves[len(leaves) // 2]
    data[(bad_page - 1) * PAGE_BYTES + 8:bad_page * PAGE_BYTES] = b"\xff" * (PAGE_BYTES - 8)
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.ERROR):
        spool = Spool(path, max_bytes=10**9)
    asides = list(tmp_path.glob("s.sqlite.corrupt-*Z"))
    assert len(asides) == 1 and asides[0].read_bytes() == bytes(data)  # kept as it was, for inspection
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(path) in errors[0] and str(asides[0]) in errors[0] and f"salvaging {3000 - bad_cells} " in errors[0]
    salvaged = drain(spool)
    assert len(salvaged) == 3000 - bad_cells  # exactly the rows of the broken page are lost
    assert salvaged == [x for x in originals if x in set(salvaged)]  # in order, unchanged
    spool.append("raw", ["m v=1.0 1"])
    spool.flush()
    assert spool.peek(10).lines == ("m v=1.0 1",)
    spool.close()


def test_truncated_file_is_moved_aside_and_its_first_pages_salvaged(tmp_path, caplog):
    path = tmp_path / "s.sqlite"
    originals = [line(n) for n in range(3000)]
    make_spool_file(path, originals)
    data = path.read_bytes()
    cut_pages = len(data) // PAGE_BYTES // 2
    lost = sum(cells for number, cells in table_leaf_pages(data) if number > cut_pages)
    path.write_bytes(data[:cut_pages * PAGE_BYTES])

    with caplog.at_level(logging.ERROR):
        spool = Spool(path, max_bytes=10**9)
    assert len(list(tmp_path.glob("s.sqlite.corrupt-*Z"))) == 1
    salvaged = drain(spool)
    assert 0 < lost < 3000 and len(salvaged) == 3000 - lost
    assert salvaged == [x for x in originals if x in set(salvaged)]
    assert [r.levelno for r in caplog.records].count(logging.ERROR) == 1
    spool.close()


def test_a_file_that_is_no_database_is_moved_aside(tmp_path, caplog):
    path = tmp_path / "s.sqlite"
    path.write_bytes(os.urandom(20_000))
    with caplog.at_level(logging.ERROR):
        spool = Spool(path, max_bytes=10**9)
    assert "salvaging 0 pending lines" in caplog.records[-1].getMessage()
    assert spool.peek(10) is None
    spool.append("raw", ["m v=1.0 1"])
    assert spool.flush() == 1
    spool.close()


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory the collector cannot write: a read-only tmpfs as root, else mode 0555."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(target)], check=True)
        yield target
        subprocess.run(["umount", str(target)], check=True)
    else:
        target.chmod(0o555)
        yield target
        target.chmod(0o755)


def test_read_only_directory_is_one_clear_error(read_only_dir):
    with pytest.raises(SpoolError) as caught:
        Spool(read_only_dir / "spool" / "collector.sqlite", max_bytes=10**9)
    assert str(read_only_dir / "spool") in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(SpoolError, match=re.escape(f"spool directory {read_only_dir} is not writable")):
        Spool(read_only_dir / "collector.sqlite", max_bytes=10**9)


def test_dead_letters_are_bounded_in_bytes_and_rows_oldest_first(tmp_path, caplog):
    path = tmp_path / "s.sqlite"
    spool = Spool(path, max_bytes=10**9, max_dead_letter_rows=1000, max_dead_letter_bytes=200_000)
    reason = "field value is not a number"
    for n in range(5000):  # 5,000 bad 10 KB payloads: 50 MB unbounded
        spool.reject(f"mqtt:plant/m{n}", f"{n:05d}" + "x" * 9995, reason)
        if n % 100 == 99:
            spool.flush()
    row_bytes = 10_000 + len(reason)
    kept = 200_000 // row_bytes  # the newest that fit the byte bound (fewer than the row bound)
    letters = spool.dead_letters()
    assert [int(payload[:5]) for _, payload, _ in letters] == list(range(5000 - kept, 5000))
    assert spool.stats().dead_letters_dropped == 5000 - kept
    assert path.stat().st_size < 5_000_000
    assert len([r for r in caplog.records if "dead-letter table full" in r.getMessage()]) == 1
    spool.close()


def test_dead_lettered_lines_are_bounded_in_rows(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9, max_dead_letter_rows=3)
    spool.append("raw", [f"bad{n}" for n in range(5)])
    spool.flush()
    for row_id, text in zip(spool.peek(10).ids, [f"bad{n}" for n in range(5)], strict=True):
        spool.dead_letter(row_id, "raw", text, "HTTP 400: unable to parse")
    assert [letter[1] for letter in spool.dead_letters()] == ["bad2", "bad3", "bad4"]
    stats = spool.stats()
    assert (stats.dead_lettered_lines, stats.dead_letters_dropped, stats.pending_lines) == (5, 2, 0)
    spool.close()


def test_full_spool_logs_once_then_a_summary(tmp_path, caplog):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1_000_000)
    with caplog.at_level(logging.WARNING, logger="plantems.collector.spool"):
        for chunk in range(40):  # every flush from the 10th on sheds or drops
            spool.append("raw", [f"m,d=x e_imp_kwh={n}.0,eq_imp_kvarh={'9' * 100}.0,p_kw={'9' * 100}.0 {n}"
                                 for n in range(chunk * 500, chunk * 500 + 500)])
            spool.flush()
        full = [r for r in caplog.records if "is full" in r.getMessage()]
        assert spool.stats().shed_lines > 0 and spool.stats().dropped_lines > 0
        assert len(full) == 2  # the first shed and the first drop; the rest wait for the summary
    spool.close()


def test_sqlite_page_size_is_the_default():
    conn = sqlite3.connect(":memory:")
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_BYTES


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_spool_that_fills_its_disk_can_still_drain_and_go_on(tiny_disk):
    spool = Spool(tiny_disk / "s.sqlite", max_bytes=10**9, min_free_disk_bytes=300_000)
    n = 0
    with pytest.raises(SpoolError, match=r"below spool\.min_free_disk_bytes = 300000"):
        while True:  # InfluxDB is away: nothing drains
            spool.append("raw", [line(i) for i in range(n, n + 50)])
            spool.flush()
            n += 50
    assert spool.last_stats().errors == 1 and n > 1000  # the headroom refused the growth before SQLite hit ENOSPC
    assert drain(spool) == [line(i) for i in range(n)]  # InfluxDB is back: deleting needs (and has) room
    assert spool.flush() == 50  # the lines that waited in memory go into the freed pages
    for chunk in range(200):  # and collection goes on: 10,000 more lines, with WAL far more than the disk
        spool.append("raw", [line(i) for i in range(n + 50 + chunk * 50, n + 100 + chunk * 50)])
        spool.flush()
        assert len(drain(spool)) == (50 if chunk else 100)
    spool.close()


DEVICES = "devices: [{id: m1, area: a, kind: feeder, meter: generic_float32, host: 127.0.0.1, rated_kw: 50}]"


@pytest.mark.parametrize(("spool_yaml", "expected"), [
    ("{unusable_exit_s: 0}", r"plant.yaml:3 spool: unusable_exit_s = 0: Input should be greater than 0"),
    ("{max_dead_letter_rows: 0}", r"plant.yaml:3 spool: max_dead_letter_rows = 0: Input should be greater than or "
                                  r"equal to 1"),
    ("{memory_buffer_lines: -5}", r"plant.yaml:3 spool: memory_buffer_lines = -5: Input should be greater than or "
                                  r"equal to 1"),
    ("{min_free_disk_bytes: lots}", r"plant.yaml:3 spool: min_free_disk_bytes = 'lots': Input should be a valid "
                                    r"integer"),
], ids=["exit-0", "dead-letter-rows-0", "negative-buffer", "not-a-number"])
def test_bad_spool_settings_refuse_to_start_with_one_clear_message(tmp_path, spool_yaml, expected):
    from plantems.config import load_plant
    from plantems.yamlconf import ConfigError

    path = tmp_path / "plant.yaml"
    path.write_text("site: {id: cs, timezone: Asia/Shanghai}\n"
                    f"{DEVICES}\n"
                    f"spool: {spool_yaml}\n")
    with pytest.raises(ConfigError) as info:
        load_plant(path)
    assert len(info.value.problems) == 1 and re.search(expected, info.value.problems[0]), info.value.problems


def test_spool_settings_reach_the_collector_spool(tmp_path):
    from plantems.collector.service import Collector
    from plantems.config import load_plant

    path = tmp_path / "plant.yaml"
    path.write_text("site: {id: cs, timezone: Asia/Shanghai}\n"
                    f"{DEVICES}\n"
                    f"spool: {{path: {tmp_path / 'spool.sqlite'}, max_dead_letter_rows: 7, "
                    "max_dead_letter_bytes: 70000, memory_buffer_lines: 77, min_free_disk_bytes: 7777}\n")
    spool = Collector(load_plant(path)).spool
    assert (spool.max_dead_letter_rows, spool.max_dead_letter_bytes, spool.max_buffer_lines,
            spool.min_free_disk_bytes) == (7, 70_000, 77, 7777)
    spool.close()
