"""``plantems analyze`` with a channel whose peer trickles one byte a second, at DEBUG: the other
channels get every alert, SIGTERM ends the process (without waiting for the peer), the alert
records say which channel failed and why, and no robot key or signature is in the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.parse import quote

from plantems.config import load_plant
from plantems.influx import InfluxApi, make_writer
from plantems.lineproto import Point, format_line
from plantems.schema import ELECTRICAL, Field, Tag
from tests.receivers import SECRET
from tests.support import REPO, rows, wait_for, write_plant

LIMIT_KW, LOAD_KW = 4000.0, 6000.0  # a steady 6 MW against a 4 MW limit: warning and critical at once
ROBOT_TOKEN = "robot-token-5be1"

BODY = """
devices:
  - {{id: incomer-1, area: substation, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: 1,
     poll_interval_s: 5, max_kw: 20000}}
demand:
  evaluate_every_s: 1
  groups:
    - {{id: grid, meters: [incomer-1], limit_kw: {limit}}}
alerts:
  attempts: 2
  backoff_s: 0.2
  attempt_deadline_s: 300   # far beyond SIGTERM's bound: only the shutdown can end the slow attempt
  channels:
    - {{id: hook, type: webhook, url: "{url}/hook"}}
    - {{id: ding, type: dingtalk, url: {{env: TEST_DING_URL}}, secret: {{env: TEST_DING_SECRET}}}}
    - {{id: slow, type: webhook, url: "{slow}/hook"}}
  shifts:
    - {{id: day, start: "08:00", end: "20:00", notify: {{hook: [], ding: [], slow: []}}}}
    - {{id: night, start: "20:00", end: "08:00", notify: {{hook: [], ding: [], slow: []}}}}
"""


def _steady_load(plant_path, now_s: float) -> None:
    """The incomer's counter and power every 5 s, from 20 min ago to 5 min ahead (fresh while the test runs)."""
    plant = load_plant(plant_path)
    lines = []
    for step in range(-240, 61):
        t_s = int(now_s) + 5 * step
        lines.append(format_line(Point(ELECTRICAL, {Tag.SITE.value: plant.site.id, Tag.DEVICE.value: "incomer-1"},
                                       {Field.E_IMP_KWH.value: 1000.0 + LOAD_KW * (5 * (step + 240)) / 3600,
                                        Field.P_KW.value: LOAD_KW}, t_s * 1_000_000_000)))
    make_writer(plant.influxdb, InfluxApi.V1).write(plant.influxdb.raw_database, lines)


def test_sigterm_ends_analyze_and_records_the_stuck_channel_as_failed(influx_url, db, tmp_path, receiver, trickle):
    url, received = receiver
    config = write_plant(tmp_path, influx_url=influx_url, db=db,
                         body=BODY.format(limit=LIMIT_KW, url=url, slow=trickle.url))
    _steady_load(config, time.time())
    log_path = tmp_path / "analyze.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TEST_DING_URL": f"{url}/ding?access_token={ROBOT_TOKEN}",
           "TEST_DING_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "plantems.cli", "--log-level", "DEBUG", "analyze", "--config",
                             str(config), "--tariffs", str(REPO / "config" / "tariffs")],
                            stdout=log_path.open("ab"), stderr=subprocess.STDOUT, env=env)
    try:
        def delivered(path: str) -> set[str]:
            return {r["body"]["level"] if path == "/hook" else r["body"]["markdown"]["title"].split(":")[0]
                    for r in received if r["path"] == path}

        # the healthy channels get both alerts while the slow peer holds both of its connections
        wait_for(lambda: delivered("/hook") == {"warning", "critical"} and len(delivered("/ding")) == 2
                 and len(trickle.paths) == 2, timeout_s=90, what="both alerts at the healthy channels")
        assert {r["deliveries"] for r in rows(influx_url, f"{db}_derived", "SELECT * FROM alert")} == {"pending"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # a generous bound: without the fix it waits for the 300 s deadline
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = rows(influx_url, f"{db}_derived", "SELECT * FROM alert")
    assert sorted(r["level"] for r in records) == ["critical", "warning"]
    for record in records:
        assert record["delivered"] == 2 and record["failed"] == 1, record
        assert "hook: ok" in record["deliveries"] and "ding: ok" in record["deliveries"]
        assert "slow: failed after 1 (shutting down during attempt 1, no answer yet)" in record["deliveries"], record
    log = log_path.read_text()
    assert "analytics stopped" in log
    assert "/ding?access_token=***&timestamp=***&sign=*** HTTP/1.1" in log  # urllib3's DEBUG line, masked
    for request in (r for r in received if r["path"] == "/ding"):
        assert quote(request["query"]["sign"], safe="") not in log and request["query"]["sign"] not in log
    assert ROBOT_TOKEN not in log and SECRET not in log
