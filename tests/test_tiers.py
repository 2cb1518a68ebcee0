"""The dashboard tiers against a real InfluxDB: raw points from an analytic profile, tiers compared with
aggregates computed here independently (numpy over the generated samples)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from plantems.analytics.tiers import counter_increments
from plantems.analytics.tiers_job import RecentTiers, backfill_tiers, late_quarters, run_tiers
from plantems.config import PlantConfig, load_plant
from plantems.influx import InfluxClient, InfluxError, V1Writer
from tests.support import rows, write_plant

NS = 10**9
SPAN_S = 90 * 60
# device -> (area, kind, p0 kW, p slope kW/s, q0 kvar, q slope kvar/s)
DEVICES = {"inc": ("sub", "incomer", 900.0, 0.02, 300.0, 0.005),
           "inc2": ("sub", "incomer", 400.0, -0.01, 100.0, 0.0),
           "a1": ("east", "other", 100.0, 0.01, 40.0, 0.002),
           "a2": ("east", "compressor", 50.0, -0.004, 20.0, 0.001),
           "a3": ("west", "pump", 30.0, 0.003, 10.0, 0.0),
           "a4": ("west", "lighting", 10.0, 0.0005, 2.0, 0.0),
           "pv": ("west", "pv", -80.0, 0.001, 0.0, 0.0)}
GAPS_S = {"a2": (100, 160), "a4": (65 * 60, 66 * 60)}  # samples not written: a partial and a whole minute
BODY = "devices:\n" + "".join(
    f"  - {{id: {d}, area: {a}, kind: {k}, meter: generic_float32, host: 127.0.0.1, port: 1502, unit_id: {i + 1}, "
    "max_kw: 5000}\n"
    for i, (d, (a, k, *_)) in enumerate(DEVICES.items())) + "demand:\n  groups: [{id: grid, meters: [inc, inc2], " \
    "limit_kw: 5000}]\n"


def profile(device: str, s: np.ndarray) -> dict[str, np.ndarray]:
    """The analytic profile of ``device`` at seconds ``s`` from the start."""
    _, _, p0, dp, q0, dq = DEVICES[device]
    p, q = p0 + dp * s, q0 + dq * s
    return {"p_kw": p, "q_kvar": q, "pf": p / np.hypot(p, q), "i_l1_a": np.abs(p) / 0.69,
            "v_l1_v": 230.0 + 3.0 * np.sin(s / 97.0)}


def assert_kept(row: dict, field: str, expected: tuple[float, float, float]) -> None:
    """The statistics kept of ``field`` equal the expected (min, mean, max); the others are absent."""
    for stat, value in zip(("min", "mean", "max"), expected, strict=True):
        kept = row.get(f"{field}_{stat}")
        assert kept == pytest.approx(value, rel=1e-9) if stat in KEPT[field] else kept is None, (field, stat)


# What the dashboards read, so what the tiers keep: the min-max bands of P and Q, the means of currents and
# voltages, and nothing of PF (panels derive it from the P and Q means).
KEPT = {"p_kw": ("min", "mean", "max"), "q_kvar": ("min", "mean", "max"), "pf": (), "i_l1_a": ("mean",),
        "v_l1_v": ("mean",)}


def seconds(device: str) -> np.ndarray:
    s = np.arange(SPAN_S)
    gap = GAPS_S.get(device)
    return s if gap is None else s[(s < gap[0]) | (s >= gap[1])]


def write_raw(writer: V1Writer, plant: PlantConfig, t0_s: int, *, only: dict[str, np.ndarray] | None = None) -> None:
    site = plant.site.id
    for d in plant.devices:
        device, area, kind = d.id, d.area, d.kind.value
        s = seconds(device) if only is None else only.get(device)
        if s is None:
            continue
        values = {f: v.tolist() for f, v in profile(device.replace("b1", "a1"), s).items()}
        lines = [f"electrical,area={area},device={device},kind={kind},site={site} "
                 + ",".join(f"{f}={values[f][i]!r}" for f in values) + f" {(t0_s + int(x)) * NS}"
                 for i, x in enumerate(s.tolist())]
        for i in range(0, len(lines), 10_000):
            writer.write(plant.influxdb.raw_database, lines[i:i + 10_000])


def collector_raw(s: np.ndarray) -> dict[str, np.ndarray]:
    """A source's status every 10 s: errors +1 per 30 s, restarting from 0 at 1234 s (collector restart)."""
    errors = np.where(s < 1234, s // 30, (s - 1234) // 30)
    missed = np.where(s < 3000, s // 45, (s - 3000) // 45 + 0.0)
    return {"errors": errors.astype(float), "missed_polls": missed.astype(float),
            "latency_ms": 5.0 + (s % 17), "up": np.where((s > 600) & (s < 700), 0.0, 1.0)}


# A second device source whose status comes every 4 s in the first 25 minutes, then every 20 s (so the hour's
# mean weighs its minutes by their samples), slower than a1; and the collector's spool, which is no device.
A2_S = np.concatenate([np.arange(0, 1500, 4), np.arange(1500, SPAN_S, 20)])


def collector_a2(s: np.ndarray) -> dict[str, np.ndarray]:
    return {"errors": (s // 50).astype(float), "missed_polls": (s // 200).astype(float),
            "latency_ms": 40.0 + 30.0 * (s < 1500) + (s % 13), "up": np.ones(len(s))}


def collector_spool(s: np.ndarray) -> dict[str, np.ndarray]:
    return {"errors": (s // 20).astype(float), "spool_lines": (s % 7).astype(float)}


COLLECTOR_SOURCES = {"a1": (np.arange(0, SPAN_S, 10), collector_raw), "a2": (A2_S, collector_a2),
                     "spool": (np.arange(0, SPAN_S, 10), collector_spool)}


def status_lines(site: str, t0_s: int, source: str, s: np.ndarray, values: dict[str, np.ndarray]) -> list[str]:
    as_lists = {k: v.tolist() for k, v in values.items()}
    return [f"collector_status,site={site},source={source} " + ",".join(f"{k}={v[i]!r}" for k, v in as_lists.items())
            + f" {(t0_s + int(x)) * NS}" for i, x in enumerate(s.tolist())]


def increments(s: np.ndarray, v: np.ndarray, t0_s: int, bucket_s: int) -> dict[int, float]:
    """A running count's increments per bucket start (ns), pair by pair from the samples (a drop counts from 0),
    each in the bucket of its later sample; the first minute has nothing before it to count from."""
    steps = np.where(np.diff(v) >= 0, np.diff(v), v[1:])
    out: dict[int, float] = {}
    for x, step in zip(s[1:].tolist(), steps.tolist(), strict=True):
        if x >= 60:
            key = (t0_s + x // bucket_s * bucket_s) * NS
            out[key] = out.get(key, 0.0) + step
    return out


@pytest.fixture
def site(tmp_path: Path, influx_url: str, db: str) -> tuple[PlantConfig, int]:
    plant = load_plant(write_plant(tmp_path, influx_url=influx_url, db=db, body=BODY))
    t0_s = int(time.time()) // 3600 * 3600 - 3 * 3600
    writer = V1Writer(plant.influxdb)
    write_raw(writer, plant, t0_s)
    for source, (s, values) in COLLECTOR_SOURCES.items():
        writer.write(plant.influxdb.raw_database, status_lines(plant.site.id, t0_s, source, s, values(s)))
    # energy_15m as the energy job writes it: two tariff periods in the first hour
    energy = [f"energy_15m,area=east,device=a1,kind=other,site={plant.site.id},tou={'peak' if q < 2 else 'flat'} "
              f"energy_kwh={10.0 + q!r},energy_exp_kwh=0.0 {(t0_s + 900 * q) * NS}" for q in range(6)]
    writer.write(plant.influxdb.derived_database, energy)
    return plant, t0_s


def minute_stats(s: np.ndarray, v: np.ndarray, t0_s: int) -> dict[int, tuple[float, float, float, int]]:
    """Expected (min, mean, max, count) per minute start (ns), straight from the samples."""
    out = {}
    for m in np.unique(s // 60):
        x = v[s // 60 == m]
        out[(t0_s + int(m) * 60) * NS] = (float(x.min()), float(x.mean()), float(x.max()), len(x))
    return out


def test_minute_and_hour_tiers_match_the_raw_samples(site):
    plant, t0_s = site
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    start, end = datetime.fromtimestamp(t0_s, UTC), datetime.fromtimestamp(t0_s + SPAN_S, UTC)
    written = backfill_tiers(plant, client, writer, start, end, progress=False)
    derived, url = plant.influxdb.derived_database, plant.influxdb.url
    stored = rows(url, derived, "SELECT * FROM device_1m GROUP BY *")
    assert written > len(stored) > 0
    assert {r["device"] for r in stored} == set(DEVICES)
    by = {(r["device"], r["time"]): r for r in stored}
    for device in DEVICES:
        s = seconds(device)
        values = profile(device, s)
        for field, v in values.items():
            for t, (lo, mean, hi, n) in minute_stats(s, v, t0_s).items():
                row = by[(device, t)]
                assert_kept(row, field, (lo, mean, hi))
                assert row["samples"] == n
            assert row.get("i_l2_a_mean") is None  # never written: absent, not zero
        assert sum(1 for d, _ in by if d == device) == len(np.unique(s // 60))
    # hours: straight from the samples of the hour (the mean over a partial minute is weighted by its samples)
    hours = {(r["device"], r["time"]): r for r in rows(url, derived, "SELECT * FROM device_1h GROUP BY *")}
    assert len(hours) == 2 * len(DEVICES)
    for device in DEVICES:
        s = seconds(device)
        for field, v in profile(device, s).items():
            for h in (0, 1):
                x = v[s // 3600 == h]
                row = hours[(device, (t0_s + 3600 * h) * NS)]
                assert_kept(row, field, (x.min(), x.mean(), x.max()))
                assert row["samples"] == len(x)
    # areas: loads only (no incomer, no pv); the billing group: its meters
    power = rows(url, derived, "SELECT * FROM power_1m GROUP BY *")
    members = {("area", "east"): ["a1", "a2"], ("area", "west"): ["a3", "a4"], ("meter_group", "grid"): ["inc", "inc2"]}
    for (tag, value), ids in members.items():
        mine = {r["time"]: r for r in power if r.get(tag) == value}
        expected: dict[int, list[float]] = {}
        q_expected: dict[int, float] = {}
        for device in ids:
            s = seconds(device)
            values = profile(device, s)
            for t, (_, mean, _, _) in minute_stats(s, values["p_kw"], t0_s).items():
                expected.setdefault(t, []).append(mean)
            for t, (_, mean, _, _) in minute_stats(s, values["q_kvar"], t0_s).items():
                q_expected[t] = q_expected.get(t, 0.0) + mean
        assert set(mine) == set(expected)
        for t, means in expected.items():
            assert mine[t]["p_kw"] == pytest.approx(sum(means), rel=1e-9)
            assert mine[t]["q_kvar"] == pytest.approx(q_expected[t], rel=1e-9)
            assert mine[t]["devices"] == len(means)
    west = {r["time"]: r for r in power if r.get("area") == "west"}
    assert west[(t0_s + 65 * 60) * NS]["devices"] == 1  # a4 sent nothing that minute: visible
    # energy_1h: the quarter hours of each hour and tariff period summed
    energy = {(r["time"], r["tou"]): r["energy_kwh"] for r in rows(url, derived, "SELECT * FROM energy_1h GROUP BY *")}
    h0, h1 = t0_s * NS, (t0_s + 3600) * NS
    assert energy == {(h0, "peak"): pytest.approx(21.0), (h0, "flat"): pytest.approx(25.0),
                      (h1, "flat"): pytest.approx(29.0)}


@pytest.mark.parametrize("by_quarter", [False, True], ids=["backfill", "quarter-runs"])
def test_collector_tiers_match_the_raw_status(site, by_quarter):
    """collector_1m per source and for all devices, collector_1h per source: latency mean (every sample weighs
    the same) and max, the counts' increments (across a restart), against the raw status samples. Built by the
    back-fill (whole hours) or quarter by quarter as the scheduled job does (each hour so far rewritten, its
    earlier minutes read back from collector_1m)."""
    plant, t0_s = site
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    if by_quarter:
        for q in range(0, SPAN_S, 900):
            run_tiers(plant, client, writer, (t0_s + q) * NS, (t0_s + q + 900) * NS)
    else:
        backfill_tiers(plant, client, writer, datetime.fromtimestamp(t0_s, UTC),
                       datetime.fromtimestamp(t0_s + SPAN_S, UTC), progress=False)
    url, derived = plant.influxdb.url, plant.influxdb.derived_database
    minutes = {(r["source"], r["time"]): r for r in rows(url, derived, "SELECT * FROM collector_1m GROUP BY *")}
    hours = {(r["source"], r["time"]): r for r in rows(url, derived, "SELECT * FROM collector_1h GROUP BY *")}
    assert {source for source, _ in minutes} == {"a1", "a2", "spool", "all-devices"}
    assert {source for source, _ in hours} == {"a1", "a2", "spool"}
    assert all("latency_ms_min" not in r and "up_min" not in r for r in [*minutes.values(), *hours.values()])
    raw = {source: (s, values(s)) for source, (s, values) in COLLECTOR_SOURCES.items()}
    for bucket_s, stored in ((60, minutes), (3600, hours)):
        for source, (s, values) in raw.items():
            for name in ("errors", "missed_polls"):
                if name not in values:
                    continue
                expected = increments(s, values[name], t0_s, bucket_s)
                assert {t: stored[(source, t)][name] for t in expected} == pytest.approx(expected), (source, name)
                assert all(r.get(name) is None or r[name] >= 0 for (src, _), r in stored.items() if src == source)
            if "latency_ms" not in values:
                assert all(r.get("latency_ms_mean") is None for (src, _), r in stored.items() if src == source)
                continue
            for b in np.unique(s // bucket_s).tolist():
                x = values["latency_ms"][s // bucket_s == b]
                row = stored[(source, (t0_s + b * bucket_s) * NS)]
                assert row["latency_ms_mean"] == pytest.approx(x.mean(), rel=1e-12), (source, bucket_s, b)
                assert row["latency_ms_max"] == x.max()
                assert row["samples"] == len(x)
    # the hour of a2 is not the plain mean of its minute means: its first 25 minutes have 5 times the samples
    s, values = raw["a2"]
    first = values["latency_ms"][s < 3600]
    minute_means = [first[s[s < 3600] // 60 == m].mean() for m in range(60)]
    assert abs(float(np.mean(minute_means)) - first.mean()) > 1.0
    # all devices: a1 and a2 pooled per minute (not the spool, whose errors are failed writes)
    for m in range(1, SPAN_S // 60):
        together = [(s, v) for source, (s, v) in raw.items() if source != "spool"]
        latency = np.concatenate([v["latency_ms"][s // 60 == m] for s, v in together])
        row = minutes[("all-devices", (t0_s + 60 * m) * NS)]
        assert row["latency_ms_mean"] == pytest.approx(latency.mean(), rel=1e-12)
        assert row["latency_ms_max"] == latency.max()
        assert row["samples"] == len(latency)
        for name in ("errors", "missed_polls"):
            key = (t0_s + 60 * m) * NS
            assert row[name] == pytest.approx(sum(increments(s, v[name], t0_s, 60).get(key, 0.0) for s, v in together))


def test_counter_increments_pure():
    last = np.array([np.nan, 5.0, 7.0, 2.0, np.nan, 4.0])
    peak = np.array([np.nan, 5.0, 7.0, 9.0, np.nan, 4.0])
    # 7 -> (climbs to 9, restarts, reaches 2): 2 + 2; the gap minute is skipped, then 2 -> 4
    assert np.array_equal(counter_increments(last, peak), np.array([np.nan, np.nan, 2.0, 4.0, np.nan, 2.0]),
                          equal_nan=True)


def _snapshot(plant: PlantConfig, site_id: str | None = None) -> dict[str, list[dict[str, object]]]:
    where = f" WHERE site = '{site_id}'" if site_id else ""
    def found(measurement: str) -> list[dict[str, object]]:  # GROUP BY * lists tag keys a series lacks as ''
        return [{k: v for k, v in r.items() if v != ""} for r in rows(
            plant.influxdb.url, plant.influxdb.derived_database, f"SELECT * FROM {measurement}{where} GROUP BY *")]

    return {m: sorted(found(m), key=lambda r: sorted((k, str(v)) for k, v in r.items()))
            for m in ("device_1m", "device_1h", "power_1m", "collector_1m", "collector_1h", "energy_1h")}


def test_rerun_is_idempotent_and_two_sites_stay_apart(site, tmp_path, influx_url, db):
    plant, t0_s = site
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    start, end = datetime.fromtimestamp(t0_s, UTC), datetime.fromtimestamp(t0_s + SPAN_S, UTC)
    (tmp_path / "b").mkdir()
    other = _other_site(tmp_path / "b", influx_url, db)
    write_raw(writer, other, t0_s, only={"b1": np.arange(0, 600)})
    b1_s = np.arange(0, 600, 10)  # the other site's device source, slow and steady
    writer.write(plant.influxdb.raw_database, status_lines("siteb", t0_s, "b1", b1_s, {
        "latency_ms": np.full(len(b1_s), 999.0), "errors": np.zeros(len(b1_s)), "missed_polls": np.zeros(len(b1_s))}))
    backfill_tiers(other, client, writer, start, end, progress=False)
    theirs = _snapshot(plant, "siteb")
    assert theirs["device_1m"] and {r["device"] for r in theirs["device_1m"]} == {"b1"}
    assert {r["source"] for r in theirs["collector_1h"]} == {"b1"}
    assert {r["latency_ms_mean"] for r in theirs["collector_1m"]} == {999.0}  # b1's and its site's all-devices
    first = backfill_tiers(plant, client, writer, start, end, progress=False)
    once = _snapshot(plant, plant.site.id)
    again = backfill_tiers(plant, client, writer, start, end, progress=False)
    assert first == again
    assert _snapshot(plant, plant.site.id) == once  # same points, no duplicates
    assert _snapshot(plant, "siteb") == theirs  # the other site's tiers untouched by both runs
    assert "b1" not in {r["device"] for r in once["device_1m"]}
    assert {r["source"] for r in once["collector_1m"]} == {"a1", "a2", "spool", "all-devices"}
    assert max(r["latency_ms_max"] or 0.0 for r in once["collector_1m"]) < 999.0


def _other_site(folder: Path, influx_url: str, db: str) -> PlantConfig:
    path = write_plant(folder, influx_url=influx_url, db=db, body=BODY.replace("id: a1,", "id: b1,"), init=False)
    path.write_text(path.read_text().replace("id: testsite", "id: siteb"))
    return load_plant(path)


def test_scheduled_job_recomputes_quarters_that_got_late_samples(site):
    plant, t0_s = site
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    now = [t0_s + SPAN_S + 20.0]
    job = RecentTiers(plant, client, writer, clock=lambda: now[0])
    job.run()  # first run: the quarter just closed, and the hour before it (nothing written there yet)
    late_minute = (t0_s + 65 * 60) * NS
    url, derived = plant.influxdb.url, plant.influxdb.derived_database

    def west_devices() -> float:
        return rows(url, derived, f"SELECT devices FROM power_1m WHERE area = 'west' AND time = {late_minute}")[0][
            "devices"]

    def a4_hour_samples() -> float:
        return rows(url, derived, f"SELECT samples FROM device_1h WHERE device = 'a4' AND time = {(t0_s + 3600) * NS}"
                    )[0]["samples"]

    assert west_devices() == 1
    assert a4_hour_samples() == SPAN_S - 3600 - 60
    write_raw(writer, plant, t0_s, only={"a4": np.arange(65 * 60, 66 * 60)})  # a4's spool drains: late samples
    now[0] += 60
    job.run()  # a minute run: power_1m of the last minutes only
    assert west_devices() == 1
    broken = RecentTiers(plant, InfluxClient(plant.influxdb.model_copy(update={"url": "http://127.0.0.1:9"})),
                         writer, clock=lambda: now[0] + 15 * 60)
    broken.full_from_ns, broken.quarter_done_ns = job.full_from_ns, job.quarter_done_ns
    with pytest.raises(InfluxError):
        broken.run()  # InfluxDB away at the next quarter: nothing written, the window stays pending
    assert broken.full_from_ns == job.full_from_ns
    now[0] = t0_s + SPAN_S + 15 * 60 + 20.0
    job.run()  # the next quarter: the late samples are found by their count and their quarter redone
    assert west_devices() == 2
    assert a4_hour_samples() == SPAN_S - 3600
    a4 = rows(url, derived, f"SELECT p_kw_mean, samples FROM device_1m WHERE device = 'a4' AND time = {late_minute}")
    assert a4[0]["samples"] == 60
    assert a4[0]["p_kw_mean"] == pytest.approx(profile("a4", np.arange(65 * 60, 66 * 60))["p_kw"].mean(), rel=1e-9)


def test_late_quarters_by_sample_count():
    assert late_quarters({1: 900.0, 2: 900.0, 3: 40.0}, {1: 900.0, 2: 840.0}) == [2, 3]


def test_cli_backfill_writes_the_tiers_and_the_scheduler_runs_the_job(site, tmp_path):
    import re
    import signal
    import subprocess
    import sys

    from click.testing import CliRunner

    from plantems.cli import main
    from tests.support import REPO, copy_reference_data, wait_for

    plant, t0_s = site
    copy_reference_data(tmp_path)
    config, tariffs = str(tmp_path / "plant.yaml"), str(REPO / "config" / "tariffs")
    days = [datetime.fromtimestamp(t, plant.site.tz).date().isoformat() for t in (t0_s, t0_s + SPAN_S)]
    result = CliRunner().invoke(main, ["analyze", "--config", config, "--tariffs", tariffs, "--backfill", *days])
    assert result.exit_code == 0, result.output
    count = int(re.search(r"dashboard tiers: (\d+) points", result.output).group(1))
    url, derived = plant.influxdb.url, plant.influxdb.derived_database
    minutes = sum(len(np.unique(seconds(d) // 60)) for d in DEVICES)
    assert rows(url, derived, "SELECT count(samples) FROM device_1m")[0]["count"] == minutes
    assert count > minutes
    rows(url, derived, "DROP MEASUREMENT device_1m")
    proc = subprocess.Popen([sys.executable, "-m", "plantems.cli", "analyze", "--config", config, "--tariffs",
                             tariffs], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:  # the job runs at start (catching up the hour before), then every minute
        wait_for(lambda: rows(url, derived, "SELECT ok FROM analytics_status WHERE source = 'tiers'"), timeout_s=30,
                 what="the first tiers run")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert rows(url, derived, "SELECT ok FROM analytics_status WHERE source = 'tiers'")[0]["ok"] == 1


def test_first_run_catches_up_from_the_last_tiers_written(site):
    """An analytics process that was down for hours resumes after the newest device_1m minute."""
    plant, t0_s = site
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    backfill_tiers(plant, client, writer, datetime.fromtimestamp(t0_s, UTC),
                   datetime.fromtimestamp(t0_s + 1800, UTC), progress=False)
    url, derived = plant.influxdb.url, plant.influxdb.derived_database
    minute_70 = f"SELECT samples FROM device_1m WHERE device = 'a1' AND time = {(t0_s + 70 * 60) * NS}"
    assert rows(url, derived, minute_70) == []
    job = RecentTiers(plant, client, writer, clock=lambda: t0_s + SPAN_S + 2 * 3600 + 20.0)
    job.run()  # 2 h after the data ended: past the late-sample check, within the catch-up
    assert rows(url, derived, minute_70)[0]["samples"] == 60
    stored = rows(url, derived, "SELECT count(samples) FROM device_1m WHERE device = 'a1'")[0]["count"]
    assert stored == SPAN_S // 60
