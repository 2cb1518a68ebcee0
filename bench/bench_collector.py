"""Collector benchmark: N simulated meters x 40 registers polled every second into InfluxDB.

Prints meter-polls/s achieved, missed polls, p99 start lateness, collector CPU per 1,000 polls,
and, in the same run against the same servers, a bare pymodbus read loop's polls per CPU-second,
with the ratio. Target (issue 2): 5,000 meters at 1 s within one core, and at least half the
bare loop's polls per CPU-second. This prints figures; it asserts nothing.

The meters are served by a separate process (pymodbus servers, one port per "gateway" with
many unit ids) so the collector's CPU is measured alone; InfluxDB runs from Debian's package.

    .venv/bin/python bench/bench_collector.py --meters 5000 --gateways 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUANTITIES = ["p_kw", "p_l1_kw", "p_l2_kw", "p_l3_kw", "q_kvar", "q_l1_kvar", "q_l2_kvar", "q_l3_kvar", "s_kva",
              "pf", "v_l1_v", "v_l2_v", "v_l3_v", "i_l1_a", "i_l2_a", "i_l3_a", "f_hz", "e_imp_kwh", "e_exp_kwh",
              "eq_imp_kvarh"]  # 20 float32 values = 40 registers


def bench_model_yaml() -> str:
    regs = "\n".join(f"  - {{quantity: {q}, address: {2 * i}}}" for i, q in enumerate(QUANTITIES))
    return f"vendor: bench\nmodel: 40 registers\ndatasheet: bench\nmax_kw: 5000\nregisters:\n{regs}\n"


def free_port_range(count: int) -> int:
    """A base port with ``count`` consecutive free loopback ports after it."""
    import socket

    for base in range(20000, 60000, count + 7):
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(port_base: int, gateways: int, units: int) -> None:
    """Server process: ``gateways`` ports, each with ``units`` meters."""
    from plantems.meters import load_meter_model
    from plantems.simulator.server import MeterRegisters, ModbusEndpoint, encode_reading

    folder = Path(tempfile.mkdtemp())
    (folder / "bench_meter.yaml").write_text(bench_model_yaml())
    model = load_meter_model(folder / "bench_meter.yaml")

    async def main() -> None:
        for g in range(gateways):
            regs = {}
            for u in range(1, units + 1):
                unit = MeterRegisters()
                encode_reading(model, {q: float(u + i) for i, q in enumerate(QUANTITIES)}, {}, unit)
                regs[u] = unit
            await ModbusEndpoint("127.0.0.1", port_base + g, regs).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def plant_yaml(folder: Path, *, influx_url: str, port_base: int, gateways: int, units: int) -> Path:
    (folder / "meters").mkdir(exist_ok=True)
    (folder / "meters" / "bench_meter.yaml").write_text(bench_model_yaml())
    lines = ["site: {id: bench}", f"influxdb: {{url: '{influx_url}', api: v1, raw_database: bench}}",
             f"spool: {{path: '{folder}/spool.sqlite'}}", "meters_dirs: [meters]", "status_interval_s: 10",
             "gateways:"]
    lines += [f"  - {{id: gw{g}, host: 127.0.0.1, port: {port_base + g}, timeout_s: 0.9}}" for g in range(gateways)]
    lines.append("devices:")
    lines += [f"  - {{id: m{g}-{u}, area: a{g % 10}, kind: other, meter: bench_meter, gateway: gw{g}, unit_id: {u}}}"
              for g in range(gateways) for u in range(1, units + 1)]
    path = folder / "plant.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def run_collector(config: Path, seconds: float) -> dict[str, float]:
    from plantems.collector.service import Collector
    from plantems.config import load_plant
    from plantems.influx import init_databases

    plant = load_plant(config)
    init_databases(plant.influxdb)
    collector = Collector(plant)
    runner = asyncio.create_task(collector.run())
    await asyncio.sleep(3.0)  # connect and settle; measure the steady state only
    devices = [d for group in collector.groups.values() for d in group]
    polls0, missed0, cpu0, t0 = sum(d.polls for d in devices), sum(d.missed_polls for d in devices), cpu_s(), \
        time.monotonic()
    for d in devices:
        d.lateness_ms.clear()
    await asyncio.sleep(seconds)
    polls, missed, cpu, elapsed = (sum(d.polls for d in devices) - polls0, sum(d.missed_polls for d in devices)
                                   - missed0, cpu_s() - cpu0, time.monotonic() - t0)
    lateness = np.array([x for d in devices for x in d.lateness_ms])
    written = collector.writer.counters.written_lines
    collector.stop_event.set()
    await runner
    return {"polls_per_s": polls / elapsed, "missed": missed, "cpu_cores": cpu / elapsed,
            "cpu_ms_per_1000_polls": 1000 * cpu * 1000 / max(polls, 1), "p99_lateness_ms": float(
                np.percentile(lateness, 99)) if len(lateness) else float("nan"),
            "polls_per_cpu_s": polls / max(cpu, 1e-9), "lines_written": written}


async def run_bare(port_base: int, gateways: int, units: int, seconds: float, *, paced: bool) -> dict[str, float]:
    """A bare pymodbus loop: one client per gateway, reading 40 registers of each unit in turn.

    paced: every unit once per second on the collector's schedule (each gateway at its own
    phase of the second, see collector.modbus.poller.connection_phase), with no decode and no
    storage: the same workload minus plantems. Otherwise as fast as the servers answer (the
    saturated rate amortises event-loop wake-ups over many responses).
    """
    from pymodbus.client import AsyncModbusTcpClient

    from plantems.collector.modbus.poller import connection_phase

    clients = [AsyncModbusTcpClient("127.0.0.1", port=port_base + g, timeout=1, retries=0) for g in range(gateways)]
    for client in clients:
        await client.connect()
    count = 0
    stop_at = time.monotonic() + seconds

    async def loop(gateway: int, client: AsyncModbusTcpClient) -> None:
        nonlocal count
        unit = 1
        phase = connection_phase(f"gw{gateway}")
        while time.monotonic() < stop_at:
            if paced and unit == 1:
                await asyncio.sleep(1.0 - (time.time() - phase) % 1.0)
            await client.read_holding_registers(0, count=40, device_id=unit)
            count += 1
            unit = unit % units + 1

    cpu0, t0 = cpu_s(), time.monotonic()
    await asyncio.gather(*(loop(g, c) for g, c in enumerate(clients)))
    cpu, elapsed = cpu_s() - cpu0, time.monotonic() - t0
    for client in clients:
        client.close()
    return {"polls_per_s": count / elapsed, "cpu_cores": cpu / elapsed, "polls_per_cpu_s": count / max(cpu, 1e-9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", type=int, default=5000)
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--serve", nargs=3, type=int, metavar=("PORT_BASE", "GATEWAYS", "UNITS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    from plantems.localservers import free_port, start_influxd

    units = max(1, args.meters // args.gateways)
    port_base = free_port_range(args.gateways)
    folder = Path(tempfile.mkdtemp(prefix="plantems-bench-"))
    influxd = start_influxd(folder / "influxd", free_port())
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port_base), str(args.gateways), str(units)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        config = plant_yaml(folder, influx_url=f"http://127.0.0.1:{influxd.port}", port_base=port_base,
                            gateways=args.gateways, units=units)
        print(f"{args.gateways * units} meters x 40 registers @ 1 s, {args.gateways} gateways, {args.seconds:g} s")
        col = asyncio.run(run_collector(config, args.seconds))
        paced = asyncio.run(run_bare(port_base, args.gateways, units, args.seconds, paced=True))
        bare = asyncio.run(run_bare(port_base, args.gateways, units, args.seconds, paced=False))
    finally:
        server.kill()
        influxd.stop()
    print(f"collector: {col['polls_per_s']:,.0f} meter-polls/s, missed {col['missed']:.0f}, "
          f"p99 start lateness {col['p99_lateness_ms']:.1f} ms, CPU {col['cpu_cores']:.2f} cores, "
          f"{col['cpu_ms_per_1000_polls']:.0f} ms CPU per 1,000 polls, {col['lines_written']:,.0f} lines written")
    print(f"bare pymodbus loop, paced at 1 s: {paced['polls_per_s']:,.0f} polls/s at {paced['cpu_cores']:.2f} cores")
    print(f"bare pymodbus loop, saturated: {bare['polls_per_s']:,.0f} polls/s at {bare['cpu_cores']:.2f} cores")
    print(f"polls per CPU-second: collector {col['polls_per_cpu_s']:,.0f}; bare paced {paced['polls_per_cpu_s']:,.0f} "
          f"(ratio {col['polls_per_cpu_s'] / paced['polls_per_cpu_s']:.2f}, target >= 0.5); bare saturated "
          f"{bare['polls_per_cpu_s']:,.0f} (ratio {col['polls_per_cpu_s'] / bare['polls_per_cpu_s']:.2f})")


if __name__ == "__main__":
    main()
