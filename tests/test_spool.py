"""The spool: ordered, acknowledged deletes, bounded with counters kept longest, survives kill -9."""

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from plantems.collector.spool import Spool, counters_only


def test_fifo_per_target_and_ack(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9)
    spool.append("raw", ["a 1", "b 2"])
    spool.append("derived", ["c 3"])
    spool.append("raw", ["d 4"])
    assert spool.flush() == 4
    batch = spool.peek(10)
    assert (batch.target, batch.lines) == ("raw", ("a 1", "b 2"))  # stops where the target changes
    spool.ack(batch.first_id, batch.last_id)
    batch = spool.peek(10)
    assert (batch.target, batch.lines) == ("derived", ("c 3",))
    spool.ack(batch.first_id, batch.last_id)
    assert spool.peek(1).lines == ("d 4",)
    assert spool.stats().pending_lines == 1


def test_full_spool_sheds_instantaneous_values_before_counters(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=600_000)
    pad = ",".join(f"v{i}=230.0" for i in range(25))

    def reading(n: int) -> tuple[str, str]:
        return (f"electrical,device=d\\ 1 {pad},e_imp_kwh={n}.0,eq_exp_kvarh=1.0 {n}",
                f"electrical,device=d\\ 1 e_imp_kwh={n}.0,eq_exp_kvarh=1.0 {n}")

    for chunk in range(10):
        spool.append("raw", [reading(chunk * 500 + i)[0] for i in range(500)])
        spool.append("raw", [f"collector_status,source=x up=1.0 {chunk}{i}" for i in range(50)])
        spool.flush()
    assert spool.used_bytes() <= 600_000
    with sqlite3.connect(tmp_path / "s.sqlite") as check:  # the byte account matches the rows
        actual = check.execute("SELECT total(length(line)) FROM outbox")
        assert spool.used_bytes() == int(actual.fetchone()[0])
    lines = []
    while (batch := spool.peek(5000)) is not None:
        lines.extend(batch.lines)
        spool.ack(batch.first_id, batch.last_id)
    assert spool.used_bytes() == 0
    energy = [line for line in lines if line.startswith("electrical")]
    # every reading's counter survived, in order; the oldest lost their instantaneous values
    assert [int(line.rsplit(" ", 1)[1]) for line in energy] == list(range(5000))
    shed = [line for line in energy if "v0=" not in line]
    assert 0 < len(shed) < 5000 and "v0=" not in energy[0] and "v0=" in energy[-1]
    assert all(line == reading(int(line.rsplit(" ", 1)[1]))[1] for line in shed)
    status = [line for line in lines if line.startswith("collector_status")]
    assert 0 < len(status) < 500  # lines without counters went whole, oldest first
    stats = spool.stats()
    assert stats.shed_lines == len(shed) and stats.dropped_lines == 500 - len(status)


def test_full_spool_of_counters_drops_oldest_lines(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_bytes=300_000)
    for chunk in range(10):
        spool.append("raw", [f"m,d=x e_imp_kwh={n}.0,eq_imp_kvarh={'9' * 150}.0 {n}"
                             for n in range(chunk * 500, chunk * 500 + 500)])
        spool.flush()
    kept = []
    while (batch := spool.peek(5000)) is not None:
        kept.extend(int(line.rsplit(" ", 1)[1]) for line in batch.lines)
        spool.ack(batch.first_id, batch.last_id)
    assert kept == list(range(5000 - len(kept), 5000))  # the newest, contiguous
    assert 0 < len(kept) < 5000 and spool.stats().dropped_lines == 5000 - len(kept)


def test_survives_kill_9(tmp_path):
    path = tmp_path / "s.sqlite"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from plantems.collector.spool import Spool
        spool = Spool(Path({str(path)!r}), max_bytes=10**9)
        for i in range(20):
            spool.append("raw", [f"m v={{i * 100 + j}}.0 {{i}}" for j in range(100)])
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
    spool.append("raw", ["good 1", "bad"])
    spool.flush()
    batch = spool.peek(10)
    spool.dead_letter(batch.ids[1], "raw", "bad", "HTTP 400: unable to parse")
    assert spool.dead_letters() == [("raw", "bad", "HTTP 400: unable to parse")]
    assert spool.peek(10).lines == ("good 1",)
    assert spool.stats().dead_lettered_lines == 1


@pytest.mark.parametrize(("line", "expected"), [
    ("electrical,device=m1 p_kw=1.5,e_imp_kwh=10.0 7", "electrical,device=m1 e_imp_kwh=10.0 7"),
    ("electrical,device=a\\ b,area=x p_kw=1.5,eq_exp_kvarh=2.0,pf=0.9 7",
     "electrical,device=a\\ b,area=x eq_exp_kvarh=2.0 7"),
    ("collector_status,source=m1 up=1.0 7", None),
    ('alert,rule=x text="e_imp_kwh=1.0",value=2.0 7', None),
], ids=["counters-kept", "escaped-space-in-tag", "no-counters", "string-fields"])
def test_counters_only(line, expected):
    assert counters_only(line) == expected
