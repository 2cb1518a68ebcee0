"""Streamed (chunked) InfluxQL answers equal the unchunked ones, against a real InfluxDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantems.config import load_plant
from plantems.influx import InfluxClient, InfluxError, V1Writer
from tests.support import write_plant

NS = 10**9


@pytest.fixture
def client(tmp_path: Path, influx_url: str, db: str) -> InfluxClient:
    body = "devices:\n  - {id: d0, area: a, kind: other, meter: generic_float32, host: 127.0.0.1, max_kw: 500}\n"
    plant = load_plant(write_plant(tmp_path, influx_url=influx_url, db=db, body=body))
    lines = [f"electrical,device=d{d},site=s p_kw={d * 1000 + i}.5,q_kvar={i % 7} {(1_790_000_000 + i) * NS}"
             for d in range(3) for i in range(2500)]
    V1Writer(plant.influxdb).write(db, lines)
    return InfluxClient(plant.influxdb)


@pytest.mark.parametrize("chunk_rows", [1, 999, 1000, 2500, 100_000])
def test_chunked_answer_equals_the_unchunked_one(client: InfluxClient, db: str, chunk_rows: int):
    queries = ['SELECT * FROM "electrical" GROUP BY "device"',
               'SELECT mean("p_kw"), max("q_kvar") FROM "electrical" WHERE time >= 0 GROUP BY time(7s), "device" '
               'fill(none)',
               # two statements: the second's series is not glued to the first's, though name and tags agree
               'SELECT "p_kw" FROM "electrical" WHERE "device" = \'d1\'; SELECT "p_kw" FROM "electrical" '
               'WHERE "device" = \'d1\' AND time >= 1790000100000000000']
    for q in queries:
        plain = client.query(q, database=db, chunk_rows=None)
        streamed = client.query(q, database=db, chunk_rows=chunk_rows)
        assert streamed == plain
        assert sum(len(s.values) for s in plain) > 0
    whole = client.query(queries[0], database=db, chunk_rows=chunk_rows)
    assert [len(s.values) for s in whole] == [2500, 2500, 2500]  # each device's rows, in one series
    two = client.query(queries[2], database=db, chunk_rows=chunk_rows)
    assert [len(s.values) for s in two] == [2500, 2400]


def test_an_error_inside_a_chunked_answer_raises(client: InfluxClient, db: str):
    with pytest.raises(InfluxError, match="database not found"):
        client.query('SELECT * FROM "electrical"', database="no_such_db", chunk_rows=10)


def test_time_parts_cut_on_the_minute_grid():
    from plantems.analytics.energy_read import time_parts

    m = 60 * NS
    assert time_parts(0, 60 * m, devices=500, rows=15_000) == [(0, 30 * m), (30 * m, 60 * m)]
    assert time_parts(10 * NS, 3 * m, devices=2, rows=2) == [(10 * NS, m), (m, 2 * m), (2 * m, 3 * m)]
    assert time_parts(0, 24 * 60 * m, devices=5, rows=15_000) == [(0, 24 * 60 * m)]  # a small plant: one request


def test_energy_read_in_time_parts_equals_one_request(tmp_path: Path, influx_url: str, db: str, monkeypatch):
    """energy_15m from minute aggregates read in many small requests is the one-request result."""
    import numpy as np

    from plantems.analytics import energy_read
    from plantems.analytics.energy_job import run_energy_15m
    from plantems.tariffs import load_tariffs
    from tests.support import REPO, rows

    body = "devices:\n" + "".join(f"  - {{id: m{i}, area: a, kind: other, meter: generic_float32, host: 127.0.0.1, "
                                  f"unit_id: {i + 1}, max_kw: 500}}\n" for i in range(3))
    plant = load_plant(write_plant(tmp_path, influx_url=influx_url, db=db, body=body))
    t0 = 1_794_931_200  # 2026-11-18 00:00 local
    times = np.setdiff1d(np.arange(t0 - 60, t0 + 3660), np.arange(t0 + 1000, t0 + 1300))  # a 5-minute hole
    V1Writer(plant.influxdb).write(db, [f"electrical,device=m{i},site=testsite e_imp_kwh={5000 + (t - t0) / (36 + i)} "
                                        f"{t * NS}" for i in range(3) for t in times.tolist()])
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    tariffs = load_tariffs(REPO / "config" / "tariffs")
    derived = plant.influxdb.derived_database

    def energy() -> list[dict[str, object]]:
        run_energy_15m(plant, tariffs, client, writer, t0 * NS, (t0 + 3600) * NS)
        return rows(influx_url, derived, "SELECT * FROM energy_15m GROUP BY device")

    whole = energy()
    monkeypatch.setattr(energy_read, "ROWS_PER_QUERY", 7)  # 3 devices: a request per 2 minutes
    assert len(energy_read.time_parts(t0 * NS, (t0 + 3600) * NS, devices=3)) == 30
    rows(influx_url, derived, "DROP MEASUREMENT energy_15m")
    assert energy() == whole and len(whole) == 12
