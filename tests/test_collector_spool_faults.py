"""End to end: ``plantems collect`` (a child process) with its spool on a disk that fills up, stays
full, or cannot be written, and with a corrupt spool at start.

The disk is a small tmpfs (mounting needs root; elsewhere these tests are skipped) filled with a
ballast file, so SQLite meets a real ENOSPC. Sequence meters number the polls they serve, so "nothing
lost" is checked exactly.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantems.localservers import free_port, start_mosquitto
from tests.mqtt.plant_body import MQTT_BODY
from tests.support import CollectorProcess, Publisher, SequenceMeter, rows, start_endpoint, wait_for
from tests.test_mqtt_e2e import all_stored, counters, run_publisher

INTERVAL_S = 0.2
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


def plant_file(tmp: Path, *, influx_url: str, db: str, spool: Path, devices: str = "", body: str = "",
               unusable_exit_s: float = 600.0, init: bool = True) -> Path:
    """A plant file (and its databases, as `plantems influx init` creates them)."""
    from plantems.config import load_plant
    from plantems.influx import init_databases

    path = tmp / "plant.yaml"
    path.write_text(f"""\
site: {{id: testsite, timezone: Asia/Shanghai}}
influxdb: {{url: "{influx_url}", api: v1, raw_database: {db}, derived_database: {db}_derived,
            flush_interval_s: 0.2, timeout_s: 2}}
spool: {{path: "{spool}", max_bytes: 50000000, unusable_exit_s: {unusable_exit_s}, min_free_disk_bytes: 1000000}}
status_interval_s: 1
{f"devices:{chr(10)}{devices}" if devices else body}""")
    if init:
        init_databases(load_plant(path).influxdb)
    return path


def device(dev_id: str, port: int, unit_id: int) -> str:
    return (f"  - {{id: {dev_id}, area: rolling, kind: cold_mill, meter: generic_float32, host: 127.0.0.1, "
            f"port: {port}, unit_id: {unit_id}, poll_interval_s: {INTERVAL_S}, rated_kw: 500}}\n")


def stored_sequence(url: str, db: str, dev_id: str) -> list[int]:
    points = rows(url, db, f"SELECT e_imp_kwh FROM electrical WHERE device = '{dev_id}'")
    return sorted(int(p["e_imp_kwh"]) for p in points)


def spool_status(url: str, db: str) -> dict:
    found = rows(url, db, "SELECT last(up) AS up, last(spool_errors) AS spool_errors FROM collector_status "
                          "WHERE source = 'spool'")
    return found[0] if found else {}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk has no space left."""
    ballast = disk / "ballast"
    with ballast.open("wb", buffering=0) as out:
        for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0" * 512):
            try:
                while True:
                    out.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return ballast


@pytest.fixture
def collectors() -> Iterator[list[CollectorProcess]]:
    started: list[CollectorProcess] = []
    yield started
    for proc in started:
        proc.stop()


@needs_root
def test_full_disk_is_reported_and_survived_without_loss(influx_url, db, tmp_path, meters, loop_thread,
                                                         small_disk, collectors):
    port = free_port()
    units = {n: SequenceMeter(meters["generic_float32"]) for n in (1, 2, 3)}
    start_endpoint(loop_thread, port, units)
    config = plant_file(tmp_path, influx_url=influx_url, db=db, spool=small_disk / "spool.sqlite",
                        devices="".join(device(f"m{n}", port, n) for n in units))
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    collectors.append(collector)
    wait_for(lambda: len(stored_sequence(influx_url, db, "m1")) >= 3, timeout_s=20, what="first points")

    ballast = fill(small_disk)
    wait_for(lambda: "keeping" in collector.output(), timeout_s=20, what="the spool error in the log")
    polls_while_full = units[1].seq
    time.sleep(3.0)  # the disk stays full; polling goes on, readings wait in memory
    assert units[1].seq >= polls_while_full + 5 and collector.proc.poll() is None
    # the fault is visible now, not only once the spool works again: health bypasses the failing spool
    wait_for(lambda: spool_status(influx_url, db).get("up") == 0.0, timeout_s=10, what="spool up = 0 in InfluxDB")
    assert spool_status(influx_url, db)["spool_errors"] >= 1
    ballast.unlink()  # space returns: no restart
    targets = {n: unit.seq for n, unit in units.items()}
    wait_for(lambda: all(len(stored_sequence(influx_url, db, f"m{n}")) >= targets[n] for n in units),
             timeout_s=30, what="the readings held in memory")
    collector.stop()
    assert collector.proc.returncode == 0
    for n, unit in units.items():
        assert stored_sequence(influx_url, db, f"m{n}") == list(range(1, unit.seq + 1)), n

    status = rows(influx_url, db, "SELECT min(up) AS up, max(spool_errors) AS errors, max(buffered_lines) AS "
                                  "buffered, max(buffer_dropped_lines) AS dropped FROM collector_status "
                                  "WHERE source = 'spool'")[0]
    assert status["up"] == 0.0 and status["errors"] >= 1 and status["buffered"] > 0 and status["dropped"] == 0.0
    log = collector.output()
    spool_errors = [x for x in log.splitlines() if " ERROR " in x and "keeping" in x]
    assert 1 <= len(spool_errors) <= 2  # rate-limited: once, then a summary a minute at most
    assert str(small_disk / "spool.sqlite") in spool_errors[0]
    assert "bytes left on its disk, below spool.min_free_disk_bytes = 1000000" in spool_errors[0]
    assert log.count("writable again") == 1


@needs_root
def test_mqtt_messages_wait_unacknowledged_while_the_disk_is_full(influx_url, db, tmp_path, small_disk, collectors):
    broker = start_mosquitto(tmp_path / "mosquitto", free_port())
    started: list = []
    try:
        config = plant_file(tmp_path, influx_url=influx_url, db=db, spool=small_disk / "spool.sqlite",
                            body=MQTT_BODY.format(port=broker.port, client_id=f"collector-{db}"))
        collector = CollectorProcess(config, tmp_path / "collector.log").start()
        collectors.append(collector)
        wait_for(lambda: "MQTT connected" in collector.output(), timeout_s=15, what="subscribed")
        publisher = Publisher(broker.port)
        started.append(publisher)
        sent, stop = run_publisher(publisher, started)
        wait_for(lambda: len(counters(influx_url, db, "fan-1")) >= 10, timeout_s=15, what="first readings")
        ballast = fill(small_disk)
        wait_for(lambda: "not acknowledging" in collector.output(), timeout_s=20, what="the MQTT worker waiting")
        sent_when_full = len(sent)
        time.sleep(3.0)  # the PLC keeps publishing; the broker keeps what the collector has not acknowledged
        assert len(sent) >= sent_when_full + 10
        ballast.unlink()
        assert all_stored(influx_url, db, sent, stop) == list(range(1, len(sent) + 1))
    finally:
        for thing in reversed(started):
            (thing.stop if hasattr(thing, "stop") else thing.close)()
        broker.stop()


@needs_root
def test_spool_unusable_too_long_exits_non_zero_and_keeps_what_was_committed(influx_url, db, tmp_path, meters,
                                                                              loop_thread, small_disk, collectors):
    port = free_port()
    unit = SequenceMeter(meters["generic_float32"])
    start_endpoint(loop_thread, port, {1: unit})
    spool = small_disk / "spool.sqlite"
    down_url = f"http://127.0.0.1:{free_port()}"  # InfluxDB unreachable: everything stays spooled
    config = plant_file(tmp_path, influx_url=down_url, db=db, spool=spool, devices=device("m1", port, 1),
                        unusable_exit_s=2.0, init=False)
    first = CollectorProcess(config, tmp_path / "first.log").start()
    collectors.append(first)
    wait_for(lambda: unit.seq >= 10, timeout_s=20, what="polls")
    committed = unit.seq
    time.sleep(0.5)  # every reading served so far is committed (flushed every 50 ms)
    ballast = fill(small_disk)
    first.proc.wait(30)  # exits on its own
    assert first.proc.returncode == 3
    assert "(spool.unusable_exit_s = 2): exiting with status 3" in first.output()

    ballast.unlink()
    config = plant_file(tmp_path, influx_url=influx_url, db=db, spool=spool, devices=device("m1", port, 1))
    second = CollectorProcess(config, tmp_path / "second.log").start()
    collectors.append(second)
    wait_for(lambda: len(stored_sequence(influx_url, db, "m1")) >= committed + 3, timeout_s=30, what="the backlog")
    second.stop()
    stored = stored_sequence(influx_url, db, "m1")
    assert stored[:committed] == list(range(1, committed + 1))  # committed before the fault: all there


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
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


def test_read_only_spool_directory_refuses_to_start_with_one_line(tmp_path, read_only_dir):
    config = plant_file(tmp_path, influx_url=f"http://127.0.0.1:{free_port()}", db="x",
                        spool=read_only_dir / "collector.sqlite", devices=device("m1", free_port(), 1), init=False)
    proc = CollectorProcess(config, tmp_path / "collector.log").start()
    assert proc.proc.wait(30) == 4
    out = proc.output()
    assert "Traceback" not in out
    errors = [x for x in out.splitlines() if " ERROR " in x]
    assert len(errors) == 1 and f"spool directory {read_only_dir} is not writable" in errors[0]


def test_corrupt_spool_at_start_is_moved_aside_and_collection_starts(influx_url, db, tmp_path, meters,
                                                                     loop_thread, collectors):
    port = free_port()
    unit = SequenceMeter(meters["generic_float32"])
    start_endpoint(loop_thread, port, {1: unit})
    spool = tmp_path / "spool" / "collector.sqlite"
    spool.parent.mkdir()
    spool.write_bytes(b"SQLite format 3\0" + os.urandom(8000))  # a header, then garbage
    config = plant_file(tmp_path, influx_url=influx_url, db=db, spool=spool, devices=device("m1", port, 1))
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    collectors.append(collector)
    wait_for(lambda: len(stored_sequence(influx_url, db, "m1")) >= 5, timeout_s=20, what="points after the move")
    collector.stop()
    assert collector.proc.returncode == 0
    asides = list(spool.parent.glob("collector.sqlite.corrupt-*Z"))
    assert len(asides) == 1
    errors = [x for x in collector.output().splitlines() if " ERROR " in x]
    assert len(errors) == 1 and "is corrupt" in errors[0] and str(asides[0]) in errors[0]
    assert stored_sequence(influx_url, db, "m1") == list(range(1, unit.seq + 1))
