"""Glitches and wraps end to end with real servers: the simulator serves a meter whose energy
registers read 0 one second in seven, and a SENTRON PAC3200 (T1 + T2 summed) whose T1 register
passes its rollover; the collector stores what it reads, ``plantems analyze`` runs the live demand
monitor, the 15-minute energy is recomputed and the month verified. Expected energy comes from the
simulator's own plant model, integrated here on its 0.25-s tick grid."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner

from plantems.cli import main
from plantems.config import load_plant
from plantems.localservers import free_port
from plantems.simulator.plant import SimulatedPlant
from tests.support import REPO, CollectorProcess, copy_reference_data, rows, wait_for, write_plant

TICK_S = 0.25
LIMIT_KW = 5000.0


def _body(ports: dict[str, int], url: str) -> str:
    return f"""
devices:
  - {{id: cast-1, area: melt, kind: caster, meter: schneider_iem3255, host: 127.0.0.1, port: {ports['cast']},
     rated_kw: 900}}
  - {{id: pac-1, area: util, kind: pump, meter: siemens_pac3200, host: 127.0.0.1, port: {ports['pac']},
     rated_kw: 400}}
demand:
  evaluate_every_s: 2
  groups:
    - {{id: melt, meters: [cast-1], limit_kw: {LIMIT_KW}}}
    - {{id: util, meters: [pac-1], limit_kw: {LIMIT_KW}}}
alerts:
  channels:
    - {{id: hook, type: webhook, url: "{url}/hook"}}
  shifts:
    - {{id: day, start: "08:00", end: "20:00", notify: {{hook: []}}}}
    - {{id: night, start: "20:00", end: "08:00", notify: {{hook: []}}}}
"""


def _start(args: list[str], log_path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "plantems.cli", *args], stdout=log_path.open("ab"),
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _model_kwh(model: SimulatedPlant, device: str, t0: float, t1: float) -> float:
    """Import energy the simulated device drew between the ticks that ``t0`` and ``t1`` read."""
    start, end = np.floor(t0 / TICK_S) * TICK_S, np.floor(t1 / TICK_S) * TICK_S
    grid = np.arange(start, end + TICK_S / 2, TICK_S)
    kw = np.clip(model.instantaneous(grid)[device]["p_kw"], 0.0, None)
    return float(np.sum((kw[1:] + kw[:-1]) * 0.5 * TICK_S) / 3600.0)


def test_glitching_and_wrapping_meters_give_exact_energy_and_no_alert(influx_url, db, tmp_path, receiver):
    url, received = receiver
    ports = {"cast": free_port(), "pac": free_port()}
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=_body(ports, url))
    copy_reference_data(tmp_path)
    plant = load_plant(config)
    sim = _start(["simulate", "--config", str(config), "--scenario", "meter-glitch:cast-1@+0/30",
                  "--scenario", "meter-glitch:pac-1@+0/30", "--scenario", "counter-wrap:pac-1@+15"],
                 tmp_path / "sim.log")
    collector = CollectorProcess(config, tmp_path / "collector.log")
    analyze = None
    try:
        time.sleep(1.5)
        collector.start()
        analyze = _start(["analyze", "--config", str(config)], tmp_path / "analyze.log")
        wrapped = "SELECT e_imp_kwh FROM electrical WHERE device = 'pac-1' AND e_imp_kwh > 0 AND e_imp_kwh < 1000000"
        wait_for(lambda: len(rows(influx_url, db, wrapped)) >= 10, timeout_s=60, what="readings after the wrap")
        wait_for(lambda: len(rows(influx_url, f"{db}_derived", "SELECT * FROM demand")) >= 6, timeout_s=20,
                 what="demand evaluations")
    finally:
        for proc in (analyze, sim):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        collector.stop()

    # the glitches and the wrap did reach InfluxDB: the analytics had something to reject
    stored = {d: rows(influx_url, db, f"SELECT e_imp_kwh FROM electrical WHERE device = '{d}'")
              for d in ("cast-1", "pac-1")}
    for device, readings in stored.items():
        assert any(r["e_imp_kwh"] == 0.0 for r in readings), f"{device}: no glitch was read"
    pac = [r["e_imp_kwh"] for r in stored["pac-1"] if r["e_imp_kwh"]]
    assert max(pac) > 0.99e9 and min(pac) < 1e6  # T1 passed 1e12 Wh

    # the demand monitor judged the same readings: no alert, and demand within the devices' ratings
    assert not rows(influx_url, f"{db}_derived", "SELECT * FROM alert")
    assert not [r for r in received if r["path"] == "/hook"]
    (peak,) = rows(influx_url, f"{db}_derived", "SELECT max(demand_kw), max(projected_kw) FROM demand")
    assert peak["max"] < 1300 and peak["max_1"] < 1300  # 900 + 400 kW rated

    # 15-minute energy of the day(s) the run touched, then the month verified
    today = datetime.now(plant.site.tz).date()
    result = CliRunner().invoke(main, ["analyze", "--config", str(config), "--tariffs", str(REPO / "config" /
                                       "tariffs"), "--backfill", str(today - timedelta(days=1)), str(today)])
    assert result.exit_code == 0, result.output
    model = SimulatedPlant(plant)
    for device, readings in stored.items():
        good = [r for r in readings if r["e_imp_kwh"]]
        expected = _model_kwh(model, device, good[0]["time"] / 1e9, good[-1]["time"] / 1e9)
        (got,) = rows(influx_url, f"{db}_derived", f"SELECT sum(energy_kwh) FROM energy_15m WHERE "
                                                   f"device = '{device}'")
        # one tick of the device's power either side bounds when a poll read its registers
        assert got["sum"] == pytest.approx(expected, abs=2 * 900 * TICK_S / 3600), device
    month = today.strftime("%Y-%m")
    verify = CliRunner().invoke(main, ["rollup", "--config", str(config), "--month", month, "--verify"])
    assert verify.exit_code == 0, verify.output
    assert "every meter reconciles" in verify.output


def test_device_scenarios_name_a_device_and_shape_the_registers(tmp_path, influx_url, db):
    from plantems.meters import RegisterType
    from plantems.simulator.run import Simulator
    from plantems.simulator.scenarios import parse_scenario

    for bad, rule in (("meter-glitch@+5", "name the device"), ("mills-peak:pac-1", "applies to no single device")):
        with pytest.raises(ValueError, match=rule):
            parse_scenario(bad)
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=_body({"cast": 1502, "pac": 1503}, "http://x"))
    plant = load_plant(config)
    with pytest.raises(ValueError, match="no Modbus device 'nope'"):
        Simulator(plant, scenarios=[parse_scenario("meter-glitch:nope")])
    refused = CliRunner().invoke(main, ["simulate", "--config", str(config), "--scenario", "meter-glitch:nope"])
    assert refused.exit_code == 2 and "meter-glitch:nope: no Modbus device 'nope'" in refused.output
    now = 1_799_999_999.0  # 7 x 257,142,857 s: a glitch second
    sim = Simulator(plant, scenarios=[parse_scenario("counter-wrap:pac-1@+3", now_s=now),
                                      parse_scenario("meter-glitch:cast-1@+0/1", now_s=now)])
    table = {d: sim.units[d].tables[RegisterType.HOLDING] for d in ("cast-1", "pac-1")}

    def t1_t2(words: dict[int, int]) -> tuple[float, float]:
        import struct

        raw = [struct.unpack(">d", struct.pack(">4H", *(words[a + k] for k in range(4))))[0] for a in (801, 805)]
        return raw[0] / 1000, raw[1] / 1000

    seen = []
    for k in range(24):  # 6 s on the 0.25-s tick grid
        sim.update(now + k * TICK_S)
        cast_wh = sum(table["cast-1"][3203 + i] << (16 * (3 - i)) for i in range(4))  # iem3255: int64 Wh
        seen.append((k * TICK_S, *t1_t2(table["pac-1"]), sim.counters["pac-1"]["e_imp_kwh"], cast_wh))
    before = [s for s in seen if s[0] < 3.0]
    after = [s for s in seen if s[0] >= 3.0]
    assert all(s[1] > 1e9 - 1 for s in before) and all(s[1] < 1 for s in after)  # T1 wraps at the start, exactly
    assert {s[2] for s in seen} == {4_321.5}  # T2 holds what the other tariff counted
    # the sum moves exactly as the counter does, minus the 1e9 kWh of the wrap
    pairs = list(itertools.pairwise(seen))
    assert [(b[1] + b[2]) - (a[1] + a[2]) for a, b in pairs] == pytest.approx(
        [b[3] - a[3] - (1e9 if b[0] == 3.0 else 0.0) for a, b in pairs], abs=1e-6)
    assert [s[0] for s in seen if s[4] == 0] == [0.0, 0.25, 0.5, 0.75]  # the glitch second reads 0
