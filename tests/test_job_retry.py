"""A failed recompute never leaves a hole; the job is retried with backoff and reports its health.

Real servers: InfluxDB, and between the analytics' writer and InfluxDB a local HTTP relay that
can answer 500 (an InfluxDB that fails mid-recompute).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from plantems.analytics.energy_job import run_energy_15m
from plantems.analytics.jobstatus import RetryingJob, backoff_s, schedule_retrying
from plantems.analytics.service import DailyEnergy, RecentEnergy
from plantems.config import load_plant
from plantems.influx import InfluxClient, V1Writer, replace_window
from plantems.lineproto import Point
from plantems.localservers import free_port
from plantems.schema import Job
from plantems.tariffs import load_tariffs
from tests.support import REPO, rows, wait_for, write_plant

NOW_S = datetime(2026, 11, 2, 4, 5, tzinfo=UTC).timestamp()  # 12:05 local: the last hour is 11:00-12:00
WINDOW_START_S = NOW_S - 5 * 60 - 3600
INTERVALS_NS = [int((WINDOW_START_S + 900 * k) * 1e9) for k in range(4)]


class Relay:
    """Forwards ``/write`` to InfluxDB; after ``budget`` writes while ``failing``, answers 500."""

    def __init__(self, target: str) -> None:
        self.target, self.failing, self.budget, self.refused = target, False, 0, 0
        self.lock = threading.Lock()

    def decide(self) -> bool:
        with self.lock:
            if not self.failing:
                return True
            if self.budget > 0:
                self.budget -= 1
                return True
            self.refused += 1
            return False


@contextmanager
def relay_server(relay: Relay) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if relay.decide():
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "content-encoding")}
                answer = requests.post(relay.target + self.path, data=body, headers=headers, timeout=10)
                status, payload = answer.status_code, answer.content
            else:
                status, payload = 500, b'{"error":"engine: cache full (test relay)"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _raw_counter(kw: float) -> list[str]:
    """A 100 % covered counter at constant ``kw`` from the hour before the window to NOW_S."""
    start = WINDOW_START_S - 3600
    lines = []
    for minute in range(int((NOW_S - start) // 60) + 1):
        t = start + 60 * minute
        lines.append(f"electrical,site=testsite,area=a,device=m1,kind=pump e_imp_kwh={1000 + kw * minute / 60},"
                      f"p_kw={kw} {int(t * 1e9)}")
    return lines


@pytest.fixture
def setup(influx_url, db, tmp_path):
    body = ("devices:\n  - {id: m1, area: a, kind: pump, meter: generic_float32, host: 127.0.0.1, port: 1502, "
            "rated_kw: 400}\n")
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=body)
    plant = load_plant(config)
    return plant, load_tariffs(REPO / "config" / "tariffs")


def _energy(influx_url: str, db: str) -> dict[int, float]:
    found = rows(influx_url, f"{db}_derived", "SELECT energy_kwh FROM energy_15m WHERE site = 'testsite'")
    return {r["time"]: r["energy_kwh"] for r in found}


def test_backoff_doubles_up_to_its_cap():
    assert [backoff_s(n, base_s=30, cap_s=900) for n in (1, 2, 3, 5, 6, 9)] == [30, 60, 120, 480, 900, 900]


def test_failed_write_keeps_the_window_and_the_retry_completes_it(setup, influx_url, db):
    plant, tariffs = setup
    direct = V1Writer(plant.influxdb)
    client = InfluxClient(plant.influxdb)
    direct.write(db, _raw_counter(100.0))
    run_energy_15m(plant, tariffs, client, direct, int(WINDOW_START_S * 1e9), int((WINDOW_START_S + 3600) * 1e9))
    assert _energy(influx_url, db) == pytest.approx({t: 25.0 for t in INTERVALS_NS})  # 100 kW x 0.25 h
    # a stale point (a tariff period that no longer applies) and another site's point in the window
    direct.write(f"{db}_derived", [f"energy_15m,site=testsite,area=a,device=m1,kind=pump,tou=sharp energy_kwh=9 "
                                   f"{INTERVALS_NS[1] + 1}",
                                   f"energy_15m,site=other,area=a,device=m1,kind=pump,tou=flat energy_kwh=7 "
                                   f"{INTERVALS_NS[2]}"])
    direct.write(db, _raw_counter(200.0))  # the counter is re-read: the recompute gives 50 kWh

    relay = Relay(influx_url)
    with relay_server(relay) as relay_url:
        plant_via_relay = plant.model_copy(update={"influxdb": plant.influxdb.model_copy(
            update={"url": relay_url, "batch_lines": 2})})
        writer = V1Writer(plant_via_relay.influxdb)
        energy = RecentEnergy(plant_via_relay, tariffs, client, writer, clock=lambda: NOW_S)
        job = RetryingJob(Job.ENERGY_15M, energy.run, plant=plant, writer=writer, base_s=0.2, cap_s=0.4)
        relay.failing, relay.budget = True, 1  # the first batch lands, then InfluxDB fails
        scheduler = BackgroundScheduler(timezone="UTC")
        schedule_retrying(scheduler, job, DateTrigger(run_date=datetime.now(UTC)))
        scheduler.start()
        try:
            wait_for(lambda: job.failures >= 2, timeout_s=20, what="two failed attempts")
            # mid-recompute failure: every interval still has its point (new for the first batch, old after)
            stored = _energy(influx_url, db)
            assert sorted(stored) == sorted([*INTERVALS_NS, INTERVALS_NS[1] + 1])
            assert [stored[t] for t in INTERVALS_NS] == pytest.approx([50.0, 50.0, 25.0, 25.0])
            relay.failing = False
            wait_for(lambda: job.failures == 0, timeout_s=20, what="a successful retry")
        finally:
            scheduler.shutdown(wait=True)
    assert _energy(influx_url, db) == pytest.approx({t: 50.0 for t in INTERVALS_NS})  # the stale point is gone
    other = rows(influx_url, f"{db}_derived", "SELECT energy_kwh FROM energy_15m WHERE site = 'other'")
    assert [r["energy_kwh"] for r in other] == [7.0]  # another site's point is never touched
    status = rows(influx_url, f"{db}_derived", "SELECT * FROM analytics_status")
    assert [(s["ok"], s["consecutive_failures"]) for s in status][:2] == [(0.0, 1.0), (0.0, 2.0)]
    assert "HTTP 500" in status[0]["last_error"] and status[0]["source"] == "energy_15m"
    assert (status[-1]["ok"], status[-1]["consecutive_failures"]) == (1.0, 0.0)


def test_replace_window_deletes_only_stale_points_of_its_site_and_scope(setup, influx_url, db):
    plant, _ = setup
    derived = f"{db}_derived"
    t0, t1 = 1_700_000_000 * 10**9, 1_700_000_900 * 10**9
    V1Writer(plant.influxdb).write(derived, [
        f"opportunity,site=testsite,granularity=day,type=t1,device=d1 a=1 {t0}",
        f"opportunity,site=testsite,granularity=day,type=t1 a=2 {t0}",  # no device tag: stale
        f"opportunity,site=testsite,granularity=day,type=t2 a=1,b=2 {t1}",  # field b no longer computed
        f"opportunity,site=testsite,granularity=month,type=t1 a=3 {t0}",  # another scope
        f"opportunity,site=other,granularity=day,type=t1 a=4 {t0}"])  # another site
    new = [Point("opportunity", {"site": "testsite", "granularity": "day", "type": "t1", "device": "d1"},
                 {"a": 5.0}, t0),
           Point("opportunity", {"site": "testsite", "granularity": "day", "type": "t2"}, {"a": 6.0}, t1)]
    deleted = replace_window(InfluxClient(plant.influxdb), V1Writer(plant.influxdb), database=derived,
                             measurement="opportunity", scope={"site": "testsite", "granularity": "day"},
                             start_ns=t0, end_ns=t1 + 1, points=new)
    assert deleted == 2
    found = rows(influx_url, derived, "SELECT * FROM opportunity GROUP BY *")
    got = sorted((r["site"], r["granularity"], r["type"], r["device"], r["a"], r["b"]) for r in found)
    assert got == [("other", "day", "t1", "", 4.0, None), ("testsite", "day", "t1", "d1", 5.0, None),
                   ("testsite", "day", "t2", "", 6.0, None), ("testsite", "month", "t1", "", 3.0, None)]


def test_a_day_whose_nightly_run_failed_is_redone_the_next_night(setup, influx_url, db):
    plant, tariffs = setup
    day1 = datetime(2026, 11, 3, tzinfo=plant.site.tz)  # two local days of 60 kW: 15 kWh per interval
    t0 = int(day1.timestamp()) - 600
    V1Writer(plant.influxdb).write(db, [f"electrical,site=testsite,area=a,device=m1,kind=pump e_imp_kwh={m},"
                                        f"p_kw=60 {(t0 + 60 * m) * 10**9}" for m in range(2 * 1440 + 20)])
    relay = Relay(influx_url)
    with relay_server(relay) as relay_url:
        writer = V1Writer(plant.influxdb.model_copy(update={"url": relay_url}))
        now = {"s": day1.timestamp() + 86_400 + 1800}  # 00:30 after day 1
        daily = DailyEnergy(plant, tariffs, InfluxClient(plant.influxdb), writer, clock=lambda: now["s"])
        job = RetryingJob(Job.ENERGY_DAILY, daily.run, plant=plant, writer=writer)
        relay.failing = True
        assert job.attempt() == 30.0 and job.failures == 1  # retried in 30 s
        relay.failing = False
        now["s"] += 86_400  # it only succeeds the next night: day 1 is still done, with day 2
        assert job.attempt() is None and not daily.pending
    stored = _energy(influx_url, db)
    assert len(stored) == 2 * 96 and list(stored.values()) == pytest.approx([15.0] * 2 * 96)
