"""The spool: ordered, acknowledged deletes, bounded with counters kept longest, survives kill -9."""

import subprocess
import sys
import textwrap

from collector.spool import Spool


def test_fifo_per_target_and_ack(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9)
    spool.append("raw", [("a 1", False), ("b 2", True)])
    spool.append("derived", [("c 3", False)])
    spool.append("raw", [("d 4", False)])
    assert spool.flush() == 4
    batch = spool.peek(10)
    assert (batch.target, batch.lines) == ("raw", ("a 1", "b 2"))  # stops where the target changes
    spool.ack(batch.first_id, batch.last_id)
    batch = spool.peek(10)
    assert (batch.target, batch.lines) == ("derived", ("c 3",))
    spool.ack(batch.first_id, batch.last_id)
    assert spool.peek(1).lines == ("d 4",)
    assert spool.stats().pending_lines == 1


def test_full_spool_drops_instantaneous_before_counters(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=400_000)
    filler = "x" * 200
    spool.append("raw", [(f"counter {i} {filler}", True) for i in range(500)])
    spool.flush()
    for chunk in range(10):
        spool.append("raw", [(f"inst {chunk}-{i} {filler}", False) for i in range(500)])
        spool.flush()
    lines = []
    while (batch := spool.peek(5000)) is not None:
        lines.extend(batch.lines)
        spool.ack(batch.first_id, batch.last_id)
    counters = [line for line in lines if line.startswith("counter")]
    instantaneous = [line for line in lines if line.startswith("inst")]
    assert len(counters) == 500  # every counter line kept
    assert 0 < len(instantaneous) < 5000  # the oldest instantaneous lines were dropped
    assert instantaneous[-1].startswith("inst 9-499")  # ... and the newest kept
    stats = spool.stats()
    assert stats.dropped_lines == 5000 - len(instantaneous)


def test_survives_kill_9(tmp_path):
    path = tmp_path / "s.sqlite"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from collector.spool import Spool
        spool = Spool(Path({str(path)!r}), max_bytes=10**9)
        for i in range(20):
            spool.append("raw", [(f"m v={{i * 100 + j}}.0 {{i}}", False) for j in range(100)])
            spool.flush()
        print("flushed", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "flushed"
    proc.kill()  # SIGKILL: no atexit, no close
    proc.wait()
    spool = Spool(path, max_bytes=10**9)
    batch = spool.peek(5000)
    assert len(batch.lines) == 2000
    assert [float(line.split("=")[1].split()[0]) for line in batch.lines] == [float(i) for i in range(2000)]


def test_dead_letter_keeps_line_and_reason(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9)
    spool.append("raw", [("good 1", False), ("bad", False)])
    spool.flush()
    batch = spool.peek(10)
    spool.dead_letter(batch.ids[1], "raw", "bad", "HTTP 400: unable to parse")
    assert spool.dead_letters() == [("raw", "bad", "HTTP 400: unable to parse")]
    assert spool.peek(10).lines == ("good 1",)
    assert spool.stats().dead_lettered_lines == 1
