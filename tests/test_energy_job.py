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
