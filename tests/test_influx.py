"""Writes into real servers: InfluxDB 1.x (v1 API), VictoriaMetrics (v2 API); 400 isolation."""

import time

import pytest
import requests

from plantems.collector.spool import Spool
from plantems.collector.writer import SpoolWriter
from plantems.config import InfluxApi, InfluxConfig
from plantems.influx import InfluxClient, V1Writer, V2Writer, detect_api, init_databases
from tests.support import rows, wait_for


def test_init_is_idempotent_with_finite_raw_and_infinite_derived(influx_url, db):
    cfg = InfluxConfig(url=influx_url, raw_database=db, derived_database=f"{db}_d", raw_retention_days=400)
    init_databases(cfg)
    init_databases(cfg)  # second run: ALTER, not an error
    client = InfluxClient(cfg)
    raw = client.query(f'SHOW RETENTION POLICIES ON "{db}"')[0]
    by_name = {row[0]: dict(zip(raw.columns, row, strict=True)) for row in raw.values}
    assert by_name["raw"]["duration"] == "9600h0m0s" and by_name["raw"]["default"] is True
    derived = client.query(f'SHOW RETENTION POLICIES ON "{db}_d"')[0]
    forever = next(dict(zip(derived.columns, r, strict=True)) for r in derived.values if r[0] == "forever")
    assert forever["duration"] == "0s" and forever["default"] is True


def test_auto_picks_v1_for_influxdb_1x(influx_url):
    assert detect_api(InfluxConfig(url=influx_url, api=InfluxApi.AUTO)) is InfluxApi.V1


def test_bad_lines_are_isolated_and_dead_lettered(influx_url, db, tmp_path):
    cfg = InfluxConfig(url=influx_url, raw_database=db, derived_database=f"{db}_d")
    init_databases(cfg)
    t0 = time.time_ns() - 10**12  # inside the retention policy (older points are refused too)
    V1Writer(cfg).write(db, [f"electrical,device=d p_kw=1.0 {t0}"])  # p_kw is a float field from now on
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9)
    good = [f"electrical,device=d p_kw={i}.5 {t0 + 1000 + i}" for i in range(37)]
    conflict = f'electrical,device=d p_kw="oops" {t0 + 5000}'  # field type conflict -> HTTP 400 partial write
    garbage = "electrical,device=d this is not line protocol"  # parse error -> HTTP 400
    lines = [*good[:10], conflict, *good[10:30], garbage, *good[30:]]
    spool.append(db, lines)
    spool.flush()
    writer = SpoolWriter(spool, lambda: V1Writer(cfg), batch_lines=5000, flush_interval_s=0.1)
    writer.start()
    wait_for(lambda: spool.peek(1) is None, timeout_s=20, what="spool drained")
    writer.stop()
    dead = spool.dead_letters()
    assert sorted(line for _, line, _ in dead) == sorted([conflict, garbage])
    assert all("HTTP 400" in reason for _, _, reason in dead)
    stored = rows(influx_url, db, f"SELECT p_kw FROM electrical WHERE time >= {t0 + 1000}")
    assert [r["p_kw"] for r in stored] == [i + 0.5 for i in range(37)]
    assert writer.counters.dead_lettered_lines == 2


def test_v2_write_api_against_victoria_metrics(victoria):
    url = f"http://127.0.0.1:{victoria.port}"
    cfg = InfluxConfig(url=url, api=InfluxApi.V2, org="plant")
    now_ns = time.time_ns() // 1_000_000 * 1_000_000
    lines = [f"electrical,site=cs,device=mill-{i} p_kw={100.0 + i},e_imp_kwh=5.5 {now_ns}" for i in range(3)]
    V2Writer(cfg).write("plantems", lines)
    requests.get(f"{url}/internal/force_flush", timeout=5)

    def landed() -> list[dict]:
        text = requests.post(f"{url}/api/v1/export", data={"match[]": '{__name__="electrical_p_kw"}'},
                             timeout=5).text
        import json
        return [json.loads(line) for line in text.splitlines() if line]

    wait_for(lambda: len(landed()) == 3, timeout_s=15, what="VictoriaMetrics to show the points")
    got = {s["metric"]["device"]: (s["values"], s["timestamps"]) for s in landed()}
    assert got == {f"mill-{i}": ([100.0 + i], [now_ns // 1_000_000]) for i in range(3)}


def test_unreachable_influx_keeps_lines_spooled(tmp_path):
    cfg = InfluxConfig(url="http://127.0.0.1:9", raw_database="x", timeout_s=0.5)
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9)
    spool.append("x", ["m v=1.0 1"])
    spool.flush()
    writer = SpoolWriter(spool, lambda: V1Writer(cfg), batch_lines=10, flush_interval_s=0.1)
    writer.start()
    wait_for(lambda: writer.counters.failed_requests >= 2, timeout_s=10, what="retries")
    writer.stop()
    assert spool.peek(10).lines == ("m v=1.0 1",)


@pytest.mark.parametrize("status", [401, 404, 500])
def test_non_400_errors_are_retryable(status):
    from plantems.influx import InfluxUnavailable, _raise_for

    response = requests.Response()
    response.status_code = status
    response._content = b'{"error": "nope"}'
    with pytest.raises(InfluxUnavailable, match=f"HTTP {status}"):
        _raise_for(response, "http://x/write")
