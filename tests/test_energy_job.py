"""energy_15m end to end: back-filled simulator data in InfluxDB -> job -> derived points."""

import time
from datetime import datetime
from pathlib import Path

import pytest

from plantems.analytics.energy_job import run_energy_15m
from plantems.config import load_plant
from plantems.influx import InfluxClient, V1Writer
from plantems.localservers import free_port
from plantems.simulator.run import backfill
from plantems.tariffs import load_tariffs, tariff_for
from tests.support import REPO, rows, write_plant
from tests.test_simulator import BODY

H = 3600 * 10**9


@pytest.fixture
def filled(tmp_path: Path, influx_url: str, db: str):
    path = write_plant(tmp_path, influx_url=influx_url, db=db,
                       body=BODY.format(gw=free_port(), inc=free_port(), pv=free_port()))
    plant = load_plant(path)
    end_s = time.time() // 900 * 900  # the last whole quarter hour: the scheduler's window has data
    backfill(plant, V1Writer(plant.influxdb), days=0.25, end_s=end_s, progress=False)
    return plant, int(end_s) * 10**9


def test_energy_matches_counter_differences_and_is_idempotent(filled, influx_url, db):
    plant, end_ns = filled
    start_ns = end_ns - 4 * H
    tariffs = load_tariffs(REPO / "config" / "tariffs")
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    first = run_energy_15m(plant, tariffs, client, writer, start_ns, end_ns)
    again = run_energy_15m(plant, tariffs, client, writer, start_ns, end_ns)
    assert first == again == 5 * 16  # 5 devices x 16 intervals, written once however often it runs
    derived = f"{db}_derived"
    stored = rows(influx_url, derived, "SELECT * FROM energy_15m GROUP BY device")
    assert len(stored) == 80
    for device in ("inc", "mill", "caster", "pv"):
        raw = {r["time"]: r["e_imp_kwh"] for r in rows(
            influx_url, db, f"SELECT e_imp_kwh FROM electrical WHERE device = '{device}' "
                            f"AND time >= {start_ns} AND time <= {end_ns}")}
        mine = sorted((r for r in stored if r["device"] == device), key=lambda r: r["time"])
        for point in mine:  # an independent calculation: the counter at both interval edges
            t = point["time"]
            assert point["energy_kwh"] == pytest.approx(raw[t + H // 4] - raw[t], rel=1e-9, abs=1e-9)
            assert point["demand_kw"] == pytest.approx(point["energy_kwh"] * 4)
            assert point["coverage"] == 1.0 and point["from_power"] == 0.0
            local = datetime.fromtimestamp(t / 1e9, plant.site.tz)
            assert point["tou"] == tariff_for(tariffs, local.date()).period_at(local).value
        assert sum(p["energy_kwh"] for p in mine) == pytest.approx(raw[end_ns] - raw[start_ns], rel=1e-9)
    pv = [r for r in stored if r["device"] == "pv"]
    assert all(r["energy_exp_kwh"] >= 0 for r in pv)


def test_recent_window_is_whole_quarter_hours():
    from plantems.analytics.service import recent_window

    now_s = 1_795_000_450.0
    start, end = recent_window(now_s)
    assert end == 1_794_999_600 * 10**9  # the last quarter hour that has ended (14:00 local)
    assert end <= now_s * 1e9 < end + 900 * 10**9
    assert end - start == H


def test_cli_backfill_and_scheduler(filled, influx_url, db, tmp_path):
    import signal
    import subprocess
    import sys

    from click.testing import CliRunner

    from plantems.cli import main
    from tests.support import wait_for

    plant, end_ns = filled
    config = tmp_path / "plant.yaml"
    day = datetime.fromtimestamp(end_ns / 1e9, plant.site.tz).date().isoformat()
    tariffs = str(REPO / "config" / "tariffs")
    result = CliRunner().invoke(main, ["analyze", "--config", str(config), "--tariffs", tariffs,
                                       "--backfill", day, day])
    assert result.exit_code == 0, result.output
    import re

    count = int(re.search(r"energy_15m: (\d+) points for", result.output).group(1))
    stored = rows(influx_url, f"{db}_derived", "SELECT count(energy_kwh) FROM energy_15m")
    assert count > 0 and stored[0]["count"] == count
    bad = CliRunner().invoke(main, ["analyze", "--config", str(config), "--tariffs", str(tmp_path / "none")])
    assert bad.exit_code == 2 and "no tariff in" in bad.output
    # the scheduler runs the job once at start, then every quarter hour
    rows(influx_url, f"{db}_derived", "DROP MEASUREMENT energy_15m")
    proc = subprocess.Popen([sys.executable, "-m", "plantems.cli", "analyze", "--config", str(config), "--tariffs",
                             str(REPO / "config" / "tariffs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: rows(influx_url, f"{db}_derived", "SELECT count(energy_kwh) FROM energy_15m"), timeout_s=20,
                 what="the first scheduled run")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


COVERAGE_BODY = """\
devices:
  - {id: fast, area: a, kind: feeder, meter: generic_float32, host: 127.0.0.1, poll_interval_s: 1, max_kw: 500}
  - {id: slow, area: a, kind: feeder, meter: generic_float32, host: 127.0.0.1, port: 503, poll_interval_s: 15,
     max_kw: 500}
  - {id: brief, area: a, kind: feeder, meter: generic_float32, host: 127.0.0.1, port: 504, max_kw: 500}
"""


def test_coverage_from_the_real_sample_times(tmp_path: Path, influx_url: str, db: str):
    """1-s polls with one missed poll and one 190-s hole, 15-s polls with 1 % missed, a 5-minute run."""
    import numpy as np

    from plantems.lineproto import Point, format_line
    from plantems.schema import ELECTRICAL, Field, Tag

    plant = load_plant(write_plant(tmp_path, influx_url=influx_url, db=db, body=COVERAGE_BODY))
    t0 = 1_794_931_200  # 2026-11-18 00:00 local
    fast = np.setdiff1d(np.arange(t0 - 60, t0 + 3660), np.concatenate([[t0 + 100], np.arange(t0 + 1231, t0 + 1420)]))
    slow = np.delete(np.arange(t0 - 60, t0 + 3660, 15), np.arange(7, 250, 100))  # every 100th poll missed
    brief = np.arange(t0 + 180, t0 + 481)
    lines = [format_line(Point(ELECTRICAL, {Tag.SITE.value: "testsite", Tag.DEVICE.value: device},
                               {Field.E_IMP_KWH.value: 5000.0 + (t - t0) / 36.0}, int(t) * 10**9))  # 100 kW
             for device, times in (("fast", fast), ("slow", slow), ("brief", brief)) for t in times.tolist()]
    V1Writer(plant.influxdb).write(db, lines)
    tariffs = load_tariffs(REPO / "config" / "tariffs")
    run_energy_15m(plant, tariffs, InfluxClient(plant.influxdb), V1Writer(plant.influxdb), t0 * 10**9,
                   (t0 + 3600) * 10**9)
    got = {(r["device"], (r["time"] // 10**9 - t0) // 900): r for r in rows(
        influx_url, f"{db}_derived", "SELECT * FROM energy_15m GROUP BY device")}
    # fast: a missed 1-s poll leaves a 2-s gap, within 60 s: covered; the hole 1230 s -> 1420 s is not
    assert [got["fast", i]["coverage"] for i in range(4)] == pytest.approx([1.0, (900 - 190) / 900, 1.0, 1.0])
    assert [got["slow", i]["coverage"] for i in range(4)] == pytest.approx([1.0] * 4)  # 30-s gaps: covered
    assert [k for k in got if k[0] == "brief"] == [("brief", 0)]  # nothing moved or sampled after its run
    assert got["brief", 0]["coverage"] == pytest.approx(300 / 900)
    for device in ("fast", "slow"):
        assert sum(got[device, i]["energy_kwh"] for i in range(4)) == pytest.approx(100.0)  # 100 kW for 1 h
    assert got["fast", 1]["interp_kwh"] == pytest.approx(190 / 36.0)  # the hole's energy, interpolated


def test_only_minutes_short_of_samples_are_read_for_holes():
    import numpy as np

    from plantems.analytics.energy_read import hole_ranges

    t0, m = 1_794_931_200 * 10**9, 60 * 10**9
    buckets = t0 + np.arange(60) * m
    counts = np.full(60, 60.0)
    counts[5] = 59  # one missed poll: no hole possible
    assert hole_ranges(buckets, counts, start_ns=t0, end_ns=t0 + 60 * m, poll_interval_s=1) == []
    counts[20], keep = 31, np.arange(60) != 21  # minute 21 missing, minute 20 half empty
    got = hole_ranges(buckets[keep], counts[keep], start_ns=t0, end_ns=t0 + 60 * m, poll_interval_s=1)
    assert got == [(t0 + 19 * m, t0 + 23 * m)]
    got = hole_ranges(buckets[1:], counts[1:], start_ns=t0, end_ns=t0 + 60 * m, poll_interval_s=1)
    assert got[0] == (t0, t0 + 2 * m)  # clamped to the window
    # 60-s polls: a hole must exceed 180 s, so it empties two whole minutes; one sample a minute is fine
    ones = np.ones(60)
    assert hole_ranges(buckets, ones, start_ns=t0, end_ns=t0 + 60 * m, poll_interval_s=60) == []
    assert hole_ranges(buckets[keep], ones[keep], start_ns=t0, end_ns=t0 + 60 * m,
                       poll_interval_s=60) == [(t0 + 20 * m, t0 + 23 * m)]


def test_suspect_ranges_are_read_in_a_few_bands():
    from plantems.analytics.energy_read import bands

    ranges = {"a": [(0, 10), (50, 60)], "b": [(5, 20), (100, 110)], "c": [(200, 210)]}
    assert bands(ranges) == [(0, 20, ["a", "b"]), (50, 60, ["a"]), (100, 110, ["b"]), (200, 210, ["c"])]
    # fewer queries: the bands closest together merge (50-60 and 100-110 are 40 apart, 0-20 and 50-60 30)
    assert bands(ranges, max_bands=2) == [(0, 110, ["a", "b"]), (200, 210, ["c"])]
