"""Demand-alert latency: from the meter reading that crosses the threshold to the alert at a
local webhook receiver, through the real chain (pymodbus meter -> collector -> InfluxDB ->
``plantems analyze`` -> webhook). Also the evaluation cost per billing group.

N meters, each its own billing group (one alert per group per window, so one run gives N
samples), sit at 100 kW against a 500 kW limit and step to 1,000 kW at random moments. The
groups use ``projection_min: 15`` so the step itself is the crossing (the projection of the
window ending 15 minutes out is present power); the evaluation interval is the default 5 s.
Target (issue 5): p99 under 15 s. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_alerts.py --groups 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from plantems.config import load_plant  # noqa: E402
from plantems.influx import InfluxClient, init_databases, make_writer  # noqa: E402
from plantems.localservers import free_port, start_influxd  # noqa: E402
from plantems.simulator.server import MeterRegisters, ModbusEndpoint, encode_reading  # noqa: E402

LIMIT_KW, BASE_KW, PEAK_KW = 500.0, 100.0, 1000.0


def plant_yaml(tmp: Path, influx_port: int, modbus_port: int, hook_port: int, groups: int) -> str:
    devices = "\n".join(f"  - {{id: m{i}, area: a{i}, kind: feeder, meter: generic_float32, gateway: gw, "
                        f"unit_id: {i}, max_kw: {4 * LIMIT_KW}}}" for i in range(1, groups + 1))
    group_lines = "\n".join(f"    - {{id: g{i}, meters: [m{i}], limit_kw: {LIMIT_KW}}}" for i in range(1, groups + 1))
    return f"""site: {{id: bench, timezone: Asia/Shanghai}}
influxdb: {{url: "http://127.0.0.1:{influx_port}", api: v1, raw_database: bench, derived_database: bench_derived,
            flush_interval_s: 1.0}}
spool: {{path: "{tmp}/spool.sqlite"}}
gateways:
  - {{id: gw, host: 127.0.0.1, port: {modbus_port}, timeout_s: 0.5}}
devices:
{devices}
demand:
  projection_min: 15
  groups:
{group_lines}
alerts:
  channels:
    - {{id: hook, type: webhook, url: "http://127.0.0.1:{hook_port}/hook"}}
  shifts:
    - {{id: all-day, start: "00:00", end: "24:00", notify: {{hook: []}}}}
"""


class Meters:
    """N float32 meters whose power this process sets; counters integrate it."""

    def __init__(self, plant, count: int) -> None:
        self.model = plant.meters["generic_float32"]
        self.units = {i: MeterRegisters() for i in range(1, count + 1)}
        self.power = {i: BASE_KW for i in self.units}
        self.energy = {i: 1000.0 for i in self.units}
        self.lock = threading.Lock()

    def tick(self, dt_s: float) -> None:
        with self.lock:
            for i, unit in self.units.items():
                self.energy[i] += self.power[i] * dt_s / 3600.0
                encode_reading(self.model, {"p_kw": self.power[i], "e_imp_kwh": self.energy[i], "pf": 0.9}, {}, unit)


def serve(meters: Meters, port: int, stop: threading.Event) -> None:
    async def main() -> None:
        endpoint = ModbusEndpoint("127.0.0.1", port, meters.units)
        await endpoint.start()
        while not stop.is_set():
            meters.tick(0.1)
            await asyncio.sleep(0.1)
        await endpoint.stop()

    asyncio.run(main())


def receiver(port: int, got: dict[str, float]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body["level"] == "warning":
                got.setdefault(body["group"], time.time())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def evaluation_cost(plant, groups: int, rounds: int = 20) -> float:
    """Seconds of one evaluation round per billing group, in this process against the live data."""
    import logging

    from plantems.analytics.demand_job import DemandMonitor
    from plantems.analytics.notify.roster import Roster

    logging.getLogger("analytics").setLevel(logging.ERROR)  # its alerts repeat the run's; not news
    silent = plant.model_copy(update={"alerts": None})
    monitor = DemandMonitor(silent, InfluxClient(plant.influxdb), make_writer(plant.influxdb, plant.influxdb.api),
                            Roster(silent))
    start = time.perf_counter()
    for _ in range(rounds):
        monitor.evaluate()
    monitor.close()
    return (time.perf_counter() - start) / rounds / groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--spread-s", type=float, default=90.0, help="steps fall at random in this span")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        influx_port, modbus_port, hook_port = free_port(), free_port(), free_port()
        influxd = start_influxd(tmp / "influxdb", influx_port)
        config = tmp / "plant.yaml"
        config.write_text(plant_yaml(tmp, influx_port, modbus_port, hook_port, args.groups))
        plant = load_plant(config)
        init_databases(plant.influxdb)
        meters, stop, got = Meters(plant, args.groups), threading.Event(), {}
        server_thread = threading.Thread(target=serve, args=(meters, modbus_port, stop), daemon=True)
        server_thread.start()
        hook = receiver(hook_port, got)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        logs = [(tmp / f"{name}.log").open("wb") for name in ("collector", "analyze")]
        procs = [subprocess.Popen([sys.executable, "-m", "plantems.cli", "collect", "--config", str(config)],
                                  stdout=logs[0], stderr=subprocess.STDOUT, env=env, cwd=tmp),
                 subprocess.Popen([sys.executable, "-m", "plantems.cli", "analyze", "--config", str(config),
                                   "--tariffs", str(REPO / "config" / "tariffs")],
                                  stdout=logs[1], stderr=subprocess.STDOUT, env=env, cwd=tmp)]
        try:
            print(f"{args.groups} groups at {BASE_KW:g} kW (limit {LIMIT_KW:g} kW); warming up 30 s...", flush=True)
            time.sleep(30)
            rng = random.Random(7)
            steps = sorted((rng.uniform(0, args.spread_s), i) for i in range(1, args.groups + 1))
            t0, stepped = time.time(), {}
            for offset, i in steps:
                time.sleep(max(0.0, t0 + offset - time.time()))
                with meters.lock:
                    meters.power[i] = PEAK_KW
                stepped[f"g{i}"] = time.time()
            deadline = time.time() + 60
            while len(got) < args.groups and time.time() < deadline:
                time.sleep(0.5)
            cost_s = evaluation_cost(plant, args.groups)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(20)
            stop.set()
            hook.shutdown()
            influxd.stop()
        latencies = np.array([got[g] - stepped[g] for g in stepped if g in got])
        print(f"alerts received: {len(latencies)} of {args.groups}")
        if len(latencies):
            print(f"latency reading -> webhook: median {np.median(latencies):.2f} s, "
                  f"p99 {np.percentile(latencies, 99):.2f} s, max {latencies.max():.2f} s "
                  f"(target p99 < 15 s; ratio p99/target {np.percentile(latencies, 99) / 15:.2f})")
        print(f"evaluation cost: {cost_s * 1000:.2f} ms per billing group per round "
              f"({args.groups} groups, one query for all; default interval 5 s)")


if __name__ == "__main__":
    main()
