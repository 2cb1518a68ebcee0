"""Analytics benchmark (issue 4 targets), against InfluxDB 1.6 from Debian.

1. 500 devices sampled every second: the incremental energy_15m job (the last hour).
   Target: under 2 s per run.
2. A monthly rollup from energy_15m of 500 devices. Target: under 10 s.
3. A month of energy_15m back-fill for 100 devices (raw data on a 60-s grid). Target: under 60 s.

Synthetic meters (a counter rising at a steady 1.2 kWh/min with noise in power) are written
straight into InfluxDB first; only the analytics are timed. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_analytics.py [--devices 500] [--backfill-devices 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NS = 1_000_000_000


def plant_file(folder: Path, influx_url: str, devices: int) -> Path:
    lines = ["site: {id: bench, timezone: Asia/Shanghai}",
             f"influxdb: {{url: '{influx_url}', api: v1, raw_database: raw, derived_database: derived}}",
             "devices:",
             "  - {id: inc, area: sub, kind: incomer, meter: generic_float32, host: 127.0.0.1, port: 1502, "
             "max_kw: 50000}"]
    lines += [f"  - {{id: d{i}, area: a{i % 20}, kind: other, meter: generic_float32, host: 127.0.0.1, "
              f"port: 1502, unit_id: {i % 200 + 1}, max_kw: 200{', shiftable: true' if i % 25 == 0 else ''}}}"
              for i in range(devices)]
    lines += ["demand:", "  groups: [{id: grid, meters: [inc], limit_kw: 50000}]"]  # one in 25 devices shiftable
    path = folder / "plant.yaml"
    path.write_text("\n".join(lines) + "\n")
    for name in ("emission_factors.yaml", "green_power.csv", "targets.yaml"):
        (folder / name).write_text((REPO / "config" / name).read_text())
    (folder / "tariffs").mkdir(exist_ok=True)
    for tariff in (REPO / "config" / "tariffs").glob("*.yaml"):
        (folder / "tariffs" / tariff.name).write_text(tariff.read_text())
    return path


def write_raw(writer, devices: list[str], start_s: int, end_s: int, step_s: int) -> int:
    """Counters and power for ``devices`` every ``step_s`` in [start_s, end_s)."""
    times = np.arange(start_s, end_s, step_s)
    rng = np.random.default_rng(1)
    count = 0
    for device in devices:
        power = 72.0 + rng.normal(0, 5, len(times))
        counter = 10_000 + np.cumsum(power * step_s / 3600)
        lines = [f"electrical,area=a,device={device},kind=other,site=bench p_kw={p!r},e_imp_kwh={c!r} {t * NS}"
                 for t, p, c in zip(times.tolist(), power.tolist(), counter.tolist(), strict=True)]
        for i in range(0, len(lines), 10_000):
            writer.write("raw", lines[i:i + 10_000])
        count += len(lines)
    return count


def write_energy_15m(writer, devices: list[str], start_s: int, end_s: int) -> int:
    times = np.arange(start_s, end_s, 900)
    count = 0
    for device in devices:
        lines = [f"energy_15m,area=a,device={device},kind=other,site=bench,tou=flat coverage=1.0,demand_kw=72.0,"
                 f"energy_kwh=18.0,energy_exp_kwh=0.0 {t * NS}" for t in times.tolist()]
        for i in range(0, len(lines), 10_000):
            writer.write("derived", lines[i:i + 10_000])
        count += len(lines)
    return count


def bench_opportunities(plant, rollup, hourly, client, tariffs, month_start: datetime, month_end: datetime) -> None:
    from plantems.analytics.opportunity_job import month_opportunities, read_month_energy

    t0 = time.monotonic()
    intervals, totals, at_peak = read_month_energy(client, plant, int(month_start.timestamp()) * NS,
                                                   int(month_end.timestamp()) * NS, hourly=hourly)
    found = month_opportunities(plant, rollup, intervals, tariffs, totals=totals, at_peak=at_peak)
    print(f"2b. the month's opportunities ({len(intervals):,} 15-minute rows of the billing meters and shiftable "
          f"loads, month totals of {len(totals)} devices, their loads at each group's peak): "
          f"{time.monotonic() - t0:.2f} s; {len(found.max_demand)} billing group(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--backfill-devices", type=int, default=100)
    args = parser.parse_args()
    from plantems.analytics.energy_job import run_energy_15m
    from plantems.analytics.rollup import compute_rollup, read_month
    from plantems.analytics.service import backfill_energy, recent_window
    from plantems.config import load_plant
    from plantems.factors import load_factors
    from plantems.influx import InfluxClient, V1Writer, init_databases
    from plantems.ledger import load_ledger
    from plantems.localservers import free_port, start_influxd
    from plantems.targets import load_targets
    from plantems.tariffs import load_tariffs

    folder = Path(tempfile.mkdtemp(prefix="plantems-bench-analytics-"))
    influxd = start_influxd(folder / "influxd", free_port())
    try:
        plant = load_plant(plant_file(folder, f"http://127.0.0.1:{influxd.port}", args.devices))
        init_databases(plant.influxdb)
        client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
        tariffs = load_tariffs(folder / "tariffs")
        devices = [d.id for d in plant.devices]

        start, end = recent_window(time.time())
        t0 = time.monotonic()
        points = write_raw(writer, devices, start // NS - 900, end // NS + 60, 1)
        print(f"setup: {points:,} raw points (1 s, {len(devices)} devices, 1 h 16 min) "
              f"in {time.monotonic() - t0:.0f} s")
        runs = []
        for _ in range(3):
            t0 = time.monotonic()
            written = run_energy_15m(plant, tariffs, client, writer, start, end)
            runs.append(time.monotonic() - t0)
        print(f"1. incremental energy_15m, {len(devices)} devices at 1 s, 1 h window: {written:,} points, "
              f"median {sorted(runs)[1]:.2f} s per run (target < 2 s)")

        month_start, month_end = (datetime(2026, m, 1, tzinfo=plant.site.tz) for m in (10, 11))
        write_energy_15m(writer, devices, int(month_start.timestamp()), int(month_end.timestamp()))
        t0 = time.monotonic()
        month = read_month(client, plant, "2026-10")
        rollup = compute_rollup(plant, "2026-10", month, tariffs=tariffs,
                                factors=load_factors(folder / "emission_factors.yaml"),
                                ledger=load_ledger(folder / "green_power.csv"),
                                targets=load_targets(folder / "targets.yaml"), as_of=date(2026, 11, 25))
        print(f"2. monthly rollup from energy_15m, {len(devices)} devices x 2,976 intervals: "
              f"{time.monotonic() - t0:.2f} s (target < 10 s); grid import {rollup.scope2.grid_import_kwh:,.0f} kWh")
        bench_opportunities(plant, rollup, month.intervals, client, tariffs, month_start, month_end)

        few = devices[:args.backfill_devices]
        t0 = time.monotonic()
        points = write_raw(writer, few, int(month_start.timestamp()) - 900, int(month_end.timestamp()) + 900, 60)
        print(f"setup: {points:,} raw points (60 s, {len(few)} devices, a month) in {time.monotonic() - t0:.0f} s")
        # the back-fill data is on a 60-s grid: configured so (coverage reads raw only where a hole may be)
        small = plant.model_copy(update={"devices": tuple(d.model_copy(update={"poll_interval_s": 60.0})
                                                          for d in plant.devices if d.id in set(few))})
        t0 = time.monotonic()
        written = backfill_energy(small, tariffs, client, writer, date(2026, 10, 1),
                                  date(2026, 10, 31), progress=False)
        print(f"3. a month of energy_15m back-fill, {len(few)} devices: {written:,} points in "
              f"{time.monotonic() - t0:.1f} s (target < 60 s)")
    finally:
        influxd.stop()


if __name__ == "__main__":
    main()
