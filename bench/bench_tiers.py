"""Dashboard tiers benchmark (issue 15): CPU of the tier jobs, and the longest request of a back-fill.

N meters of ``--fields`` values (all electrical fields, 29 at most) every second for 16 minutes are
written into InfluxDB 1.6 (Debian) first; then:

1. one 15-minute window of the scheduled tier job (``RecentTiers``): 14 minute runs (``power_1m``), the
   quarter run (every tier, the late-sample check, ``device_1h`` and ``energy_1h``), and a quarter's share of
   the hourly read-back of ``device_1m``. CPU seconds of this process and of influxd (from
   /proc/<pid>/stat) against the goal of 2 s per 15 minutes.
2. ``--backfill`` (``--backfill-hours`` of more data): the requests of ``analyze --backfill`` (energy_15m
   and the tiers) over the data, the slowest ones, their time and size, against the default
   ``influxdb.timeout_s`` of 10 s: as single unstreamed requests (before issue 15) and as now.

Prints figures; asserts nothing.

    .venv/bin/python bench/bench_tiers.py [--devices 500] [--fields 29] [--backfill [--backfill-hours 1]]
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
    """bench_analytics' plant with ``devices`` meters in all, its incomer among them."""
    from bench_analytics import plant_file as with_loads

    return with_loads(folder, influx_url, devices - 1)


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
        climb = (times - 1_790_000_000) * 0.02  # counters: 72 kW (kvar), continuous across writes
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

    def __init__(self, client: Any, *, chunk_rows: int | None = 10_000) -> None:
        self.client, self.chunk_rows, self.calls = client, chunk_rows, []

    def query(self, q: str, **kw: Any) -> Any:
        t0 = time.monotonic()
        series = self.client.query(q, chunk_rows=self.chunk_rows, **kw)
        values = sum(len(s.values) * len(s.columns) for s in series)
        self.calls.append((time.monotonic() - t0, values, q))
        return series


def time_backfill(plant: Any, client: Any, writer: Any, start_s: int, end_s: int, *, hours: float) -> None:
    """Every request of ``analyze --backfill`` over the data's day: the slowest ones, as one request each
    (before issue 15) and streamed in parts (now). ``hours`` more of 1-s counters and power are written first."""
    from plantems.analytics import energy_read
    from plantems.analytics.service import backfill_energy
    from plantems.analytics.tiers_job import backfill_tiers
    from plantems.tariffs import load_tariffs

    if hours:
        t0 = time.monotonic()
        points = write_raw(writer, plant, int(start_s - hours * 3600), start_s - 60, electrical_fields(5))
        print(f"setup: {points:,} more raw points (5 fields, {hours:g} h before) in {time.monotonic() - t0:.0f} s")
    tariffs = load_tariffs(REPO / "config" / "tariffs")
    day = datetime.fromtimestamp(start_s, plant.site.tz).date()
    for label, chunk_rows, rows_per_query in (("one request per query, unstreamed", None, 10**12),
                                              ("parts, streamed", 10_000, energy_read.ROWS_PER_QUERY)):
        energy_read.ROWS_PER_QUERY = rows_per_query
        timed = TimedClient(client, chunk_rows=chunk_rows)
        t0 = time.monotonic()
        backfill_energy(plant, tariffs, timed, writer, day, day, progress=False)
        backfill_tiers(plant, timed, writer, datetime.fromtimestamp(start_s - hours * 3600, UTC),
                       datetime.fromtimestamp(end_s, UTC), progress=False)
        print(f"2. analyze --backfill {day} ({len(plant.devices)} devices, {label}): {len(timed.calls)} requests in "
              f"{time.monotonic() - t0:.1f} s; the slowest:")
        for seconds, values, q in sorted(timed.calls, reverse=True)[:3]:
            print(f"   {seconds:6.2f} s {values:>10,} values  {q[:110]}")


def by_kind(calls: list[tuple[float, int, str]]) -> str:
    kinds: dict[str, float] = {}
    for seconds, _, q in calls:
        kind = q.split(" WHERE ")[0].split(" FROM ")[-1]
        kinds[kind] = kinds.get(kind, 0.0) + seconds
    return ", ".join(f"{kind} {seconds:.2f} s" for kind, seconds in sorted(kinds.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--fields", type=int, default=29, help="values per meter reading (29 at most)")
    parser.add_argument("--backfill", action="store_true", help="also time every request of analyze --backfill")
    parser.add_argument("--backfill-hours", type=float, default=0.0,
                        help="hours of 1-s counters and power written before the window for --backfill")
    args = parser.parse_args()
    from plantems.analytics.tiers_job import RecentTiers, read_stored_collector, read_stored_minutes
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
        end_s = int(time.time()) // 3600 * 3600  # the window: the last quarter of the hour before this one
        start_s = end_s - 900
        t0 = time.monotonic()
        points = write_raw(writer, plant, start_s - 60, end_s, fields)
        print(f"setup: {points:,} raw points ({len(fields)} fields, 1 s, {args.devices} devices, 16 min) "
              f"in {time.monotonic() - t0:.0f} s")
        time.sleep(2)  # let influxd settle after the writes before measuring its CPU

        timed = TimedClient(client)
        job = RecentTiers(plant, timed, writer, clock=lambda: 0.0)  # type: ignore[arg-type]
        job.full_from_ns = job.quarter_done_ns = start_s * NS  # the quarters before are done

        def minute_runs() -> None:
            for m in range(1, 15):
                job.clock = lambda m=m: start_s + 60 * m + 20.0
                job.run()

        own, server, wall = measured(pid, minute_runs)
        print(f"1a. 14 minute runs (power_1m): own {own:.2f} s + influxd {server:.2f} s CPU, {wall:.1f} s wall "
              f"({by_kind(timed.calls)})")
        timed.calls.clear()
        job.clock = lambda: end_s + 20.0
        own2, server2, wall2 = measured(pid, job.run)
        print(f"1b. the quarter run (every tier of the 15 min, late-sample check, device_1h, collector_1h, energy_1h): "
              f"own {own2:.2f} s + influxd {server2:.2f} s CPU, {wall2:.1f} s wall ({by_kind(timed.calls)})")
        # device_1h reads the hour's first 45 minutes back from device_1m once an hour: 3 quarters' rows per hour
        own3, server3, _ = measured(pid, lambda: read_stored_minutes(client, plant, start_s * NS, end_s * NS))
        print(f"1c. reading one quarter of device_1m back: own {own3:.2f} s + influxd {server3:.2f} s CPU "
              "(x 3 per hour, so x 3/4 per quarter)")
        # collector_1h of the current hour at each quarter reads its earlier minutes back: 0, 1, 2, 3 quarters
        own4, server4, _ = measured(pid, lambda: read_stored_collector(client, plant, start_s * NS, end_s * NS))
        print(f"1d. reading one quarter of collector_1m back: own {own4:.2f} s + influxd {server4:.2f} s CPU "
              "(0 + 1 + 2 + 3 quarters per hour, so x 1.5 per quarter)")
        per_15 = own + server + own2 + server2 + 0.75 * (own3 + server3) + 1.5 * (own4 + server4)
        print(f"=> tier jobs per 15 minutes for {args.devices} devices: {per_15:.2f} s CPU "
              f"({per_15 / GOAL_CPU_S:.2f} x the {GOAL_CPU_S:g} s goal)")
        if args.backfill:
            time_backfill(plant, client, writer, start_s, end_s, hours=args.backfill_hours)
    finally:
        influxd.stop()


if __name__ == "__main__":
    main()
