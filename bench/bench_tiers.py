"""Dashboard tiers benchmark (issue 15): CPU of the tier jobs, and the longest request of a back-fill.

N meters of ``--fields`` values (all electrical fields, 29 at most) every second for ``--minutes`` are
written into InfluxDB 1.6 (Debian) first; then:

1. one 15-minute window of the scheduled tier job: 15 minute runs plus its hourly lookback's share
   (a quarter of an hour's recompute, i.e. the 15 minutes again with the hourly tiers). CPU seconds of
   this process and of influxd (from /proc/<pid>/stat) against the goal of 2 s per 15 minutes.
2. ``--backfill``: the requests of ``analyze --backfill`` (energy_15m and the tiers) over the data,
   the slowest ones, their time and size, against the default ``influxdb.timeout_s`` of 10 s.

Prints figures; asserts nothing.

    .venv/bin/python bench/bench_tiers.py [--devices 500] [--minutes 15] [--fields 29] [--backfill]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NS = 1_000_000_000
GOAL_CPU_S = 2.0


def plant_file(folder: Path, influx_url: str, devices: int) -> Path:
    lines = ["site: {id: bench, timezone: Asia/Shanghai}",
             f"influxdb: {{url: '{influx_url}', api: v1, raw_database: raw, derived_database: derived}}",
             "devices:",
             "  - {id: inc, area: sub, kind: incomer, meter: generic_float32, host: 127.0.0.1, port: 1502, "
             "max_kw: 50000}"]
    lines += [f"  - {{id: d{i}, area: a{i % 20}, kind: other, meter: generic_float32, host: 127.0.0.1, "
              f"port: 1502, unit_id: {i % 200 + 1}, max_kw: 200}}" for i in range(devices - 1)]
    lines += ["demand:", "  groups: [{id: grid, meters: [inc], limit_kw: 50000}]"]
    path = folder / "plant.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def electrical_fields(count: int) -> list[str]:
    from plantems.schema import AIR_FIELDS, COUNTER_FIELDS, FUEL_FIELDS, Field

    instantaneous = [f.value for f in Field if f.value.startswith(("p_", "q_", "s_", "pf", "v_", "i_", "f_"))
                     and f not in FUEL_FIELDS | AIR_FIELDS]
    counters = [f.value for f in (Field.E_IMP_KWH, Field.E_EXP_KWH, Field.EQ_IMP_KVARH, Field.EQ_EXP_KVARH)
                if f in COUNTER_FIELDS]
    return (counters + instantaneous)[:max(count, 5)]


def write_raw(writer: Any, plant: Any, start_s: int, end_s: int, fields: list[str]) -> int:
    """Every device every second in [start_s, end_s): a counter climbing 72 kW, noisy instantaneous values;
    collector status every 10 s."""
    from plantems.schema import COUNTER_FIELDS

    counters = {f.value for f in COUNTER_FIELDS}
    rng = np.random.default_rng(1)
    times = np.arange(start_s, end_s)
    count = 0
    for device in plant.devices:
        climb = np.arange(len(times)) * 0.02  # counters: 72 kW (kvar)
        values = {f: (10_000 + climb if f in counters else 50.0 + rng.normal(0, 5, len(times))) for f in fields}
        body = [",".join(f"{f}={values[f][i]:.4f}" for f in fields) for i in range(len(times))]
        prefix = f"electrical,area={device.area},device={device.id},kind={device.kind.value},site={plant.site.id} "
        lines = [f"{prefix}{b} {t * NS}" for b, t in zip(body, times.tolist(), strict=True)]
        lines += [f"collector_status,site={plant.site.id},source={device.id} up=1,errors={i // 60},"
                  f"missed_polls={i // 90},latency_ms={20 + i % 7} {t * NS}"
                  for i, t in enumerate(times[::10].tolist())]
        for i in range(0, len(lines), 5_000):
            writer.write("raw", lines[i:i + 5_000])
        count += len(times)
    return count


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (and its waited-for children), seconds."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in parts[11:15]) / os.sysconf("SC_CLK_TCK")


def measured(influxd_pid: int, run: Callable[[], object]) -> tuple[float, float, float]:
    """(own CPU s, influxd CPU s, wall s) of ``run()``."""
    own, server, wall = time.process_time(), cpu_s(influxd_pid), time.monotonic()
    run()
    return time.process_time() - own, cpu_s(influxd_pid) - server, time.monotonic() - wall


class TimedClient:
    """An InfluxClient that records each request's time and response size."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, []

    def query(self, q: str, **kw: Any) -> Any:
        t0 = time.monotonic()
        series = self.client.query(q, **kw)
        values = sum(len(s.values) * len(s.columns) for s in series)
        self.calls.append((time.monotonic() - t0, values, q))
        return series


def time_backfill(plant: Any, client: Any, writer: Any, start_s: int, end_s: int) -> None:
    """Every request of ``analyze --backfill`` over the data's day: the slowest ones."""
    from plantems.analytics.service import backfill_energy
    from plantems.analytics.tiers_job import backfill_tiers
    from plantems.tariffs import load_tariffs

    timed = TimedClient(client)
    tariffs = load_tariffs(REPO / "config" / "tariffs")
    day = datetime.fromtimestamp(start_s, plant.site.tz).date()
    t0 = time.monotonic()
    backfill_energy(plant, tariffs, timed, writer, day, day, progress=False)
    backfill_tiers(plant, timed, writer, datetime.fromtimestamp(start_s - 60, UTC), datetime.fromtimestamp(end_s, UTC),
                   progress=False)
    print(f"2. analyze --backfill {day} ({len(plant.devices)} devices): {len(timed.calls)} requests in "
          f"{time.monotonic() - t0:.1f} s; the slowest:")
    for seconds, values, q in sorted(timed.calls, reverse=True)[:5]:
        print(f"   {seconds:6.2f} s {values:>10,} values  {q[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--minutes", type=int, default=15)
    parser.add_argument("--fields", type=int, default=29, help="values per meter reading (29 at most)")
    parser.add_argument("--backfill", action="store_true", help="also time every request of analyze --backfill")
    args = parser.parse_args()
    from plantems.analytics.tiers import HOUR_NS
    from plantems.analytics.tiers_job import RecentTiers, run_tiers
    from plantems.config import load_plant
    from plantems.influx import InfluxClient, V1Writer, init_databases
    from plantems.localservers import free_port, start_influxd

    folder = Path(tempfile.mkdtemp(prefix="plantems-bench-tiers-"))
    influxd = start_influxd(folder / "influxd", free_port())
    assert influxd.proc is not None
    pid = influxd.proc.pid
    try:
        plant = load_plant(plant_file(folder, f"http://127.0.0.1:{influxd.port}", args.devices))
        init_databases(plant.influxdb)
        client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
        fields = electrical_fields(args.fields)
        # the window: whole minutes, the last ones of an hour (the lookback sees the whole window)
        end_s = int(time.time()) // 3600 * 3600 - 3600 + 60 * args.minutes + 60
        start_s = end_s - 60 * args.minutes
        t0 = time.monotonic()
        points = write_raw(writer, plant, start_s - 60, end_s, fields)
        print(f"setup: {points:,} raw points ({len(fields)} fields, 1 s, {args.devices} devices, "
              f"{args.minutes + 1} min) in {time.monotonic() - t0:.0f} s")
        time.sleep(2)  # let influxd settle after the writes before measuring its CPU

        job = RecentTiers(plant, client, writer, clock=lambda: 0.0)
        job.hour_done_ns = start_s * NS // HOUR_NS * HOUR_NS  # no lookback: only the minute runs

        def minute_runs() -> None:
            for m in range(1, args.minutes + 1):
                job.clock = lambda m=m: start_s + 60 * m + 20.0
                job.run()

        own, server, wall = measured(pid, minute_runs)
        print(f"1a. {args.minutes} minute runs ({args.devices} devices): own {own:.2f} s + influxd {server:.2f} s "
              f"CPU, {wall:.1f} s wall")
        hour_start = start_s * NS // HOUR_NS * HOUR_NS
        share = 60.0 / args.minutes * 15 / 60  # a lookback redoes an hour every hour: 15 minutes' worth per 15 min
        own2, server2, wall2 = measured(pid, lambda: run_tiers(plant, client, writer, hour_start, end_s * NS,
                                                               hourly=True))
        print(f"1b. the hourly lookback over the same {args.minutes} min (with device_1h): own {own2:.2f} s + "
              f"influxd {server2:.2f} s CPU, {wall2:.1f} s wall")
        per_15 = (own + server) * 15 / args.minutes + (own2 + server2) * share
        print(f"=> tier jobs per 15 minutes for {args.devices} devices: {per_15:.2f} s CPU "
              f"({per_15 / GOAL_CPU_S:.2f} x the {GOAL_CPU_S:g} s goal)")

        if args.backfill:
            time_backfill(plant, client, writer, start_s, end_s)
    finally:
        influxd.stop()


if __name__ == "__main__":
    main()
