"""Dashboard benchmark (issue 15): every panel of every dashboard at 1 h, 24 h, 7 d and 30 d, reading the
tiers (the dashboards as built now) beside the old raw queries (``plantems.grafana.legacy``), in one run.

N meters of ``--fields`` values every second for ``--hours`` (and collector status every 10 s) are written
into InfluxDB 1.6 (Debian) on this machine; ``backfill_tiers`` (the analytics job) builds the tiers from
them. The tiers the panels read for the site and the chosen device (power_1m, device_1h and collector_1h of
every device, collector_1m of all devices together, device_1m of the incomer and the equipment dashboard's
device) are then copied back over 30 days, so
tier panels are MEASURED at every range. Each query is sent as Grafana sends it: ``$timeFilter`` for the
range, ``$__interval`` for a 1,600-px panel (no finer than the panel's minimum interval, no more buckets
than its max data points), POST with epoch=ms; a panel with a fixed time override (the live raw views)
is queried over its own range. Medians of ``--repeat``.

Queries over raw points at ranges longer than the data are EXTRAPOLATED, marked ``~``: the query runs
over the whole range (Grafana's buckets, nulls included, are real), and its time above that of the same
query over an empty window of the same length is scaled by range / data span, as the points scanned
grow with the range. Sizes past the data count each null bucket as a full one. Panels over the
analytics' other results (energy_15m, scope2, ...), which this bench does not generate, are not timed.
Prints figures; asserts nothing.

    .venv/bin/python bench/bench_dashboards.py [--devices 200] [--hours 1] [--fields 20] [--repeat 3]
        [--dashboard collector ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
BUDGET_BYTES = 1_000_000


@dataclass
class Query:
    """One panel target as Grafana sends it."""

    dashboard: str
    title: str
    reads: str  # "tiers", "derived", "raw live" (fixed short range), "raw" (panels kept on raw) or "old raw"
    datasource_uid: str
    query: str
    min_interval: str = ""
    time_from: str = ""
    width_px: int = 1600
    seconds: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    extrapolated: dict[str, bool] = field(default_factory=dict)
    empty: bool = True  # no data at any range (a result this bench does not generate)


def shown_fields(available: list[str], count: int) -> list[str]:
    """``count`` of the meter's fields, the ones the dashboards show (the tier fields) first."""
    from plantems.schema import TIER_FIELDS

    first = [f.value for f in TIER_FIELDS]
    return (first + [f for f in available if f not in first])[:count]


def _reads(query: str, uid: str, time_from: str) -> str:
    from plantems.schema import COLLECTOR_1H, COLLECTOR_1M, DEVICE_1H, DEVICE_1M, ENERGY_1H, POWER_1M

    if uid == "plantems-derived":
        tiers = any(f'"{m}"' in query for m in (POWER_1M, DEVICE_1M, DEVICE_1H, COLLECTOR_1M, COLLECTOR_1H, ENERGY_1H))
        return "tiers" if tiers else "derived"
    return "raw live" if time_from and time_from.endswith(("m", "h")) else "raw"


def panel_queries(plant: Any) -> list[Query]:
    """Every target of every dashboard built for ``plant``, then the old raw panels."""
    from plantems.factors import load_factors
    from plantems.grafana.dashboards import build_dashboards
    from plantems.grafana.legacy import legacy_panels
    from plantems.tariffs import load_tariffs

    boards = build_dashboards([plant], load_tariffs(REPO / "config" / "tariffs"),
                              load_factors(REPO / "config" / "emission_factors.yaml"))
    out = []
    for name, model in boards.items():
        for panel in model["panels"]:
            for target in panel["targets"]:
                uid, time_from = target["datasource"]["uid"], panel.get("timeFrom", "")
                out.append(Query(name, panel["title"], _reads(target["query"], uid, time_from), uid,
                                 target["query"], panel.get("interval", ""), time_from,
                                 min(1600, panel.get("maxDataPoints") or 1600)))
    out += [Query(old.dashboard, old.title, "old raw", old.datasource_uid, old.query)
            for old in legacy_panels([plant])]
    return out


def history(devices_1m: list[str]) -> dict[str, tuple[str, int]]:
    """What is copied back over 30 days, by measurement: (filter, days). Of collector_1m only the site's
    all-devices rows (the trends'); the worst-N tables read collector_1h."""
    from plantems.schema import ALL_DEVICES_SOURCE, COLLECTOR_1H, COLLECTOR_1M, DEVICE_1H, DEVICE_1M, POWER_1M, Tag

    return {POWER_1M: ("", 30), DEVICE_1H: ("", 30), COLLECTOR_1H: ("", 30),
            COLLECTOR_1M: (f"AND {Tag.SOURCE.value} = '{ALL_DEVICES_SOURCE}'", 30),
            DEVICE_1M: (f"AND {Tag.DEVICE.value} =~ /^({'|'.join(devices_1m)})$/", 30)}


def covered_s(q: Query, copied: dict[str, tuple[str, int]], data_s: int) -> int:
    """How far back the data a query reads goes: the copied tiers' days, the raw data's span, and 30 d for
    the other derived results (energy_15m is written over 30 d; the rest is not generated)."""
    days = [d for m, (_, d) in copied.items() if f'"{m}"' in q.query]
    if days:
        return min(days) * 86400
    return data_s if q.datasource_uid == "plantems-raw" else 30 * 86400


def replicate_tiers(url: str, db: str, *, end_s: int, span_s: int, copied: dict[str, tuple[str, int]]) -> int:
    """Copies of the tiers of [end - span, end) back over each measurement's days before ``end``."""
    written = 0
    for measurement, (where, days) in copied.items():
        response = requests.post(f"{url}/query", data={"db": db, "epoch": "ns", "q": (
            f'SELECT * FROM "{measurement}" WHERE time >= {end_s - span_s}s AND time < {end_s}s {where} GROUP BY *')},
            timeout=600)
        response.raise_for_status()
        rows = []
        for series in response.json()["results"][0].get("series", []):
            tags = ",".join(f"{k}={v}" for k, v in sorted(series["tags"].items()) if v)
            for values in series["values"]:
                fields = ",".join(f"{c}={float(v)!r}" for c, v in zip(series["columns"][1:], values[1:], strict=True)
                                  if v is not None)
                rows.append((f"{measurement},{tags} {fields} ", int(values[0])))
        lines = [f"{head}{t - k * span_s * 1_000_000_000}" for k in range(1, days * 86400 // span_s)
                 for head, t in rows]
        for i in range(0, len(lines), 20_000):
            requests.post(f"{url}/write", params={"db": db}, data="\n".join(lines[i:i + 20_000]).encode(),
                          timeout=600).raise_for_status()
        written += len(lines)
    return written


def filled_size(body: bytes) -> tuple[int, int]:
    """(bytes, bytes if every all-null row had been a row of values like the others)."""
    result = json.loads(body)["results"][0]
    rows = [row for s in result.get("series", []) for row in s["values"]]
    empty, full = [], []
    for row in rows:
        (empty if all(v is None for v in row[1:]) else full).append(row)
    if not empty or not full:
        return len(body), len(body)
    per_full = sum(len(json.dumps(r)) for r in full[:200]) / min(len(full), 200)
    per_empty = sum(len(json.dumps(r)) for r in empty[:200]) / min(len(empty), 200)
    return len(body), int(len(body) + len(empty) * max(per_full - per_empty, 0.0))


def run(url: str, db: str, query: str, repeat: int) -> tuple[float, bytes]:
    times, body = [], b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = requests.post(f"{url}/query", data={"db": db, "q": query, "epoch": "ms"}, timeout=600)
        times.append(time.perf_counter() - t0)
        response.raise_for_status()
        body = response.content
    if b'"error"' in body[:300]:
        raise RuntimeError(f"{query}: {body[:300]!r}")
    return statistics.median(times), body


_fixed = {"now/d": timedelta(days=1), "now/M": timedelta(days=30)}  # at most: the bench takes the longest


def measure(q: Query, *, url: str, databases: dict[str, str], end: datetime, data_s: float, repeat: int) -> None:
    """Time and size ``q`` at each range; data_s: how far back its data goes."""
    from plantems.grafana import macros

    variables = {"site": "bench", "area": ".*", "kind": ".*", "device": "d0"}
    for label, span in RANGES.items():
        length = _fixed.get(q.time_from) or (timedelta(seconds=macros.parse_duration_s(q.time_from))
                                            if q.time_from else span)
        text = macros.expand(q.query, end - length, end, variables, width_px=q.width_px, min_interval=q.min_interval)
        seconds, body = run(url, databases[q.datasource_uid], text, repeat)
        factor = length.total_seconds() / data_s if b'"series"' in body else 1.0  # nothing to scale without data
        if factor > 1:  # the data covers part of the range: scale the cost above an empty window's
            empty_end = end - length - timedelta(days=1)
            idle, _ = run(url, databases[q.datasource_uid], macros.expand(
                q.query, empty_end - length, empty_end, variables, width_px=q.width_px, min_interval=q.min_interval),
                repeat)
            seconds = idle + max(seconds - idle, 0.0) * factor
        q.seconds[label], q.bytes[label], q.extrapolated[label] = seconds, filled_size(body)[1], factor > 1
        q.empty = q.empty and b'"series"' not in body


def table(queries: list[Query]) -> None:
    print(f"\n{'dashboard':<13} {'panel':<58} {'reads':<9}" + "".join(f"{r:>10}" for r in RANGES)
          + f"{'30d size':>11}")
    for q in queries:
        cells = "".join(f"{('~' if q.extrapolated[r] else '') + f'{q.seconds[r]:.3f}':>10}" for r in RANGES)
        size = "no data" if q.empty else ("~" if q.extrapolated["30d"] else "") + f"{q.bytes['30d'] / 1e6:.2f} MB"
        print(f"{q.dashboard:<13} {q.title[:58]:<58} {q.reads:<9}{cells}{size:>11}")


def slowest(queries: list[Query], reads: set[str], heading: str) -> None:
    chosen = sorted((q for q in queries if q.reads in reads), key=lambda q: -q.seconds["30d"])[:5]
    print(f"\n{heading}")
    for q in chosen:
        mark = "~" if q.extrapolated["30d"] else ""
        print(f"  {mark}{q.seconds['30d']:.2f} s, {mark}{q.bytes['30d'] / 1e6:.2f} MB  {q.dashboard}: {q.title}")


def report(queries: list[Query]) -> None:
    table(queries)
    slowest([q for q in queries if not q.empty], {"tiers", "derived", "raw live", "raw"}, "slowest panels now (30 d):")
    slowest(queries, {"old raw"}, "slowest old raw panels (30 d):")
    over = [q for q in queries if q.reads != "old raw" and max(q.bytes.values()) > BUDGET_BYTES]
    print(f"\npanels now over {BUDGET_BYTES / 1e6:g} MB at some range: "
          + (", ".join(f"{q.dashboard}: {q.title}" for q in over) or "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--hours", type=int, default=1, help="of 1-s data, whole hours (the hourly tier)")
    parser.add_argument("--fields", type=int, default=20, help="values per poll (a 40-register meter: 20 floats)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dashboard", action="append", default=[], help="only these dashboards (repeatable)")
    args = parser.parse_args()
    from bench_analytics import write_energy_15m
    from bench_tiers import electrical_fields, plant_file, write_raw

    from plantems.analytics.tiers_job import backfill_tiers
    from plantems.config import DeviceKind, load_plant
    from plantems.influx import InfluxClient, V1Writer, init_databases
    from plantems.localservers import free_port, start_influxd

    folder = Path(tempfile.mkdtemp(prefix="plantems-bench-dashboards-"))
    influxd = start_influxd(folder / "influxd", free_port())
    try:
        url = f"http://127.0.0.1:{influxd.port}"
        plant = load_plant(plant_file(folder, url, args.devices))
        plant = plant.model_copy(update={"influxdb": plant.influxdb.model_copy(update={"timeout_s": 120.0})})
        init_databases(plant.influxdb)
        client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
        end_s = int(time.time()) // 3600 * 3600
        start_s = end_s - int(args.hours * 3600)
        t0 = time.monotonic()
        polls = write_raw(writer, plant, start_s, end_s, shown_fields(electrical_fields(29), args.fields))
        print(f"setup: {polls:,} polls ({len(plant.devices)} devices x {args.fields} values at 1 s, "
              f"{args.hours:g} h, collector status every 10 s) in {time.monotonic() - t0:.0f} s")
        end = datetime.fromtimestamp(end_s, UTC)
        t0 = time.monotonic()
        written = backfill_tiers(plant, client, writer, end - timedelta(hours=args.hours), end, progress=False)
        print(f"tiers: backfill_tiers wrote {written:,} points in {time.monotonic() - t0:.1f} s")
        client.close()
        t0 = time.monotonic()
        queries = [q for q in panel_queries(plant) if not args.dashboard or q.dashboard in args.dashboard]
        copied = {m: kept for m, kept in history([d.id for d in plant.devices if d.kind is DeviceKind.INCOMER]
                                                 + ["d0"]).items() if any(f'"{m}"' in q.query for q in queries)}
        points = replicate_tiers(url, plant.influxdb.derived_database, end_s=end_s, span_s=args.hours * 3600,
                                 copied=copied)
        points += write_energy_15m(writer, [d.id for d in plant.devices], end_s - 30 * 86400, end_s)
        print(f"tiers copied back over 30 d: {', '.join(copied)}; energy_15m over 30 d: {points:,} points in "
              f"{time.monotonic() - t0:.0f} s")
        databases = {"plantems-raw": plant.influxdb.raw_database, "plantems-derived": plant.influxdb.derived_database}
        t0 = time.monotonic()
        for n, q in enumerate(queries, start=1):
            measure(q, url=url, databases=databases, end=end, data_s=covered_s(q, copied, args.hours * 3600),
                    repeat=args.repeat)
            print(f"\r{n}/{len(queries)} queries timed", end="", file=sys.stderr, flush=True)
        print(f"timed {len(queries)} queries x {len(RANGES)} ranges, median of {args.repeat}, in "
              f"{time.monotonic() - t0:.0f} s. '~' = EXTRAPOLATED from {args.hours:g} h of data (range / data "
              "span x the time above an empty window's; null buckets sized as full ones).")
        report(queries)
    finally:
        influxd.stop()
        shutil.rmtree(folder, ignore_errors=True)  # the bench's InfluxDB data (hundreds of MB)


if __name__ == "__main__":
    main()
