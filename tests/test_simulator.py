"""The demo plant: physics of the profiles, back-fill into InfluxDB, live servers read by the collector."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from plantems.config import load_plant
from plantems.influx import V1Writer
from plantems.localservers import free_port
from plantems.simulator.plant import GRID_S, SimulatedPlant
from plantems.simulator.run import Simulator, backfill
from tests.support import CollectorProcess, rows, wait_for, write_plant

BODY = """\
gateways:
  - {{id: gw, host: 127.0.0.1, port: {gw}, timeout_s: 0.5}}
devices:
  - {{id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: {inc}, feeds: [roll, util, pv],
     max_kw: 20000}}
  - {{id: mill, area: roll, kind: cold_mill, meter: chint_dtsu666_ct, gateway: gw, unit_id: 1, rated_kw: 3000}}
  - {{id: comp, area: util, kind: compressor, meter: eastron_sdm630, gateway: gw, unit_id: 2, rated_kw: 250}}
  - {{id: caster, area: util, kind: caster, meter: schneider_iem3255, gateway: gw, unit_id: 3, max_kw: 5000}}
  - {{id: pv, area: pv, kind: pv, meter: generic_float32, host: 127.0.0.1, port: {pv}, rated_kw: 500}}
"""


@pytest.fixture
def plant_path(tmp_path: Path, influx_url: str, db: str) -> Path:
    return write_plant(tmp_path, influx_url=influx_url, db=db,
                       body=BODY.format(gw=free_port(), inc=free_port(), pv=free_port()))


def test_profiles_behave_like_the_plant(plant_path):
    model = SimulatedPlant(load_plant(plant_path))
    t = np.arange(1_795_000_000.0, 1_795_000_000.0 + 2 * 86_400, 10.0)
    values = model.instantaneous(t)
    mill, pv, inc = values["mill"], values["pv"], values["inc"]
    assert mill["p_kw"].max() > 0.8 * 3000 * 0.55  # rolling passes reach MW scale
    assert np.percentile(mill["p_kw"], 5) < 0.1 * 3000  # ... and idle between coils
    assert mill["pf"][mill["p_kw"] < 300].mean() < mill["pf"][mill["p_kw"] > 1500].mean()  # PF falls at light load
    hour = ((t + 8 * 3600) % 86_400) / 3600
    assert np.all(pv["p_kw"][(hour < 5) | (hour > 20)] == 0) and pv["p_kw"][(hour > 11) & (hour < 13)].min() < -100
    fed = sum(values[d]["p_kw"] for d in ("mill", "comp", "caster", "pv"))
    assert np.all(inc["p_kw"] > fed)  # incomer = loads + losses
    assert np.all(inc["p_kw"] - fed < 0.05 * np.abs(fed) + 0.01 * 4650)


def test_counters_are_continuous_between_grid_and_history(plant_path):
    model = SimulatedPlant(load_plant(plant_path))
    start = 1_795_000_000.0 - 1_795_000_000.0 % GRID_S
    _, counters = model.counters_on_grid(start, start + 3600)
    later = model.counters_at(start + 3600)
    for dev in ("mill", "inc", "pv"):
        series = counters[dev]["e_imp_kwh"]
        assert np.all(np.diff(series) >= 0)
        assert series[-1] == pytest.approx(later[dev]["e_imp_kwh"], rel=1e-12)
    assert counters["pv"]["e_exp_kwh"][-1] >= counters["pv"]["e_exp_kwh"][0]


def test_backfill_writes_the_models_quantities(plant_path, influx_url, db):
    plant = load_plant(plant_path)
    end_s = time.time() // 60 * 60
    count = backfill(plant, V1Writer(plant.influxdb), days=0.5, end_s=end_s, progress=False)
    assert count == 5 * (12 * 60 + 1)
    caster = rows(influx_url, db, "SELECT * FROM electrical WHERE device = 'caster'")
    assert len(caster) == 12 * 60 + 1
    assert all(r["pf"] is None for r in caster)  # the iEM3255 model reads no PF: none is invented
    energy = [r["e_imp_kwh"] for r in caster]
    assert energy == sorted(energy) and energy[-1] > energy[0]
    mill = rows(influx_url, db, "SELECT p_kw FROM electrical WHERE device = 'mill'")
    expected = SimulatedPlant(plant).instantaneous(np.array([r["time"] / 1e9 for r in mill]))["mill"]["p_kw"]
    assert [r["p_kw"] for r in mill] == pytest.approx(list(expected), rel=1e-12)


def test_live_simulator_is_read_through_every_meter_model(plant_path, influx_url, db, loop_thread, tmp_path):
    import asyncio

    plant = load_plant(plant_path)
    simulator = Simulator(plant, tick_s=0.25)
    stop = asyncio.Event()
    future = asyncio.run_coroutine_threadsafe(simulator.run(stop), loop_thread.loop)
    collector = CollectorProcess(plant_path, tmp_path / "collector.log").start()
    try:
        wait_for(lambda: len(rows(influx_url, db, "SELECT p_kw FROM electrical WHERE device = 'caster'")) >= 4,
                 timeout_s=20, what="live points")
    finally:
        collector.stop()
        loop_thread.loop.call_soon_threadsafe(stop.set)
        future.result(10)
    model = SimulatedPlant(plant)
    for dev in ("inc", "mill", "comp", "caster", "pv"):
        points = rows(influx_url, db, f"SELECT p_kw, e_imp_kwh FROM electrical WHERE device = '{dev}'")
        assert len(points) >= 3, dev
        for point in points:
            t = point["time"] / 1e9
            ticks = np.array([np.floor(t / 0.25) * 0.25 - k * 0.25 for k in range(3)])
            candidates = model.instantaneous(ticks)[dev]["p_kw"]
            # float32 registers and the meter's own units (0.1 W, W, kW) bound the difference
            assert min(abs(candidates - point["p_kw"])) <= max(1e-3, 1e-6 * abs(point["p_kw"])), (dev, point)
        energy = [p["e_imp_kwh"] for p in points]
        assert energy == sorted(energy)
        t0 = points[0]["time"] / 1e9
        grid_t = np.floor(t0 / GRID_S) * GRID_S
        fine = np.linspace(grid_t, t0, 400)
        since_grid = np.trapezoid(np.clip(model.instantaneous(fine)[dev]["p_kw"], 0, None), fine) / 3600.0
        expected = model.counters_at(grid_t)[dev]["e_imp_kwh"] + since_grid
        # live counters continue the history; float32 Wh registers (Janitza) resolve 2 kWh at 16 GWh
        assert energy[0] == pytest.approx(expected, abs=5.0)
