"""Demand alerts end to end with real servers: the simulator's mills-peak scenario, read by the
collector into InfluxDB, evaluated by ``plantems analyze``, delivered to a local HTTP receiver
(webhook and DingTalk, signature checked), aiosmtpd and Mosquitto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from plantems.localservers import free_port, start_mosquitto
from tests.receivers import SECRET, SMTP_PASSWORD
from tests.support import REPO, CollectorProcess, rows, wait_for, write_plant

LIMIT_KW = 4000.0


def _plant_body(ports: dict[str, int], url: str, smtp_port: int, broker_port: int) -> str:
    return f"""
gateways:
  - {{id: gw-mills, host: 127.0.0.1, port: {ports['mills']}, timeout_s: 0.5}}
devices:
  - {{id: incomer-1, area: substation, kind: incomer, meter: janitza_umg604, host: 127.0.0.1,
     port: {ports['incomer']}, feeds: [rolling, utilities], max_kw: 20000}}
  - {{id: mill-1, area: rolling, kind: cold_mill, meter: chint_dtsu666_ct, gateway: gw-mills, unit_id: 1,
     rated_kw: 3000}}
  - {{id: mill-2, area: rolling, kind: cold_mill, meter: chint_dtsu666_ct, gateway: gw-mills, unit_id: 2,
     rated_kw: 2000, shiftable: true}}
  - {{id: comp-1, area: utilities, kind: compressor, meter: eastron_sdm630, gateway: gw-mills, unit_id: 3,
     rated_kw: 250, shiftable: true}}
demand:
  evaluate_every_s: 2
  projection_min: 15
  groups:
    - {{id: grid, meters: [incomer-1], limit_kw: {LIMIT_KW}}}
alerts:
  attempts: 3
  backoff_s: 0.2
  channels:
    - {{id: hook, type: webhook, url: "{url}/hook"}}
    - {{id: broken, type: webhook, url: "{url}/broken"}}
    - {{id: ding, type: dingtalk, url: {{env: TEST_DING_URL}}, secret: {{env: TEST_DING_SECRET}}}}
    - {{id: mail, type: email, host: 127.0.0.1, port: {smtp_port}, sender: plantems@plant, starttls: false,
       username: plantems, password: {{env: TEST_SMTP_PASSWORD}}}}
    - {{id: board, type: mqtt, host: 127.0.0.1, port: {broker_port}}}
  shifts:
    - {{id: day, start: "08:00", end: "20:00", notify: {{hook: [], broken: [], ding: ["13800000001"],
       mail: [day-lead@plant], board: []}}}}
    - {{id: night, start: "20:00", end: "08:00", notify: {{hook: [], broken: [], ding: ["13800000002"],
       mail: [night-lead@plant], board: []}}}}
simulator:
  scenarios: ["light-night@00:00/1440"]   # mills idle all day: the base load stays far below the limit
"""


def _start(args: list[str], log_path, env=None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "plantems.cli", *args], stdout=log_path.open("ab"),
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def _shift_board(port: int) -> tuple[paho.Client, list[dict]]:
    """An MQTT subscriber to the alert topics, as a shift-room display would be."""
    published: list[dict] = []
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="shift-board")
    sub.on_message = lambda c, u, m: published.append({"topic": m.topic, **json.loads(m.payload)})
    sub.connect("127.0.0.1", port)
    sub.subscribe("plantems/testsite/alerts/#", qos=1)
    sub.loop_start()
    return sub, published


def test_peak_alerts_reach_every_channel_once_per_level(influx_url, db, tmp_path, receiver, smtp):
    url, received = receiver
    smtp_port, mails = smtp
    broker = start_mosquitto(tmp_path / "mosquitto", free_port())
    sub, published = _shift_board(broker.port)
    ports = {"mills": free_port(), "incomer": free_port()}
    config = write_plant(tmp_path, influx_url=influx_url, db=db,
                         body=_plant_body(ports, url, smtp_port, broker.port))
    env = {"TEST_DING_URL": f"{url}/ding?access_token=robot-token", "TEST_DING_SECRET": SECRET,
           "TEST_SMTP_PASSWORD": SMTP_PASSWORD}
    procs = [_start(["simulate", "--config", str(config), "--scenario", "mills-peak@+25/10"], tmp_path / "sim.log")]
    collector = CollectorProcess(config, tmp_path / "collector.log")
    try:
        time.sleep(1.0)
        collector.start()
        procs.append(_start(["analyze", "--config", str(config), "--tariffs", str(REPO / "config" / "tariffs")],
                            tmp_path / "analyze.log", env))
        derived = f"{db}_derived"
        wait_for(lambda: rows(influx_url, derived, "SELECT * FROM demand"), timeout_s=40, what="demand points")
        before = rows(influx_url, derived, "SELECT max(projected_kw) FROM demand")[0]["max"]
        assert before < 0.9 * LIMIT_KW  # no alert before the peak
        hooks = lambda level: [r for r in received if r["path"] == "/hook" and r["body"]["level"] == level]  # noqa: E731
        wait_for(lambda: hooks("warning") and hooks("critical") and len(mails) >= 2 and len(published) >= 2,
                 timeout_s=60, what="warning and critical on the webhook, e-mail and MQTT")
        procs[-1].terminate()  # a restart during the peak: the new process must not repeat the alerts
        procs[-1].wait(20)
        procs.append(_start(["analyze", "--config", str(config), "--tariffs", str(REPO / "config" / "tariffs")],
                            tmp_path / "analyze.log", env))
        wait_for(lambda: "alert(s) of the last 15 minutes restored" in (tmp_path / "analyze.log").read_text(),
                 timeout_s=20, what="the restarted analyze restoring its alert state")
        time.sleep(8)  # several more evaluations above the limit: nothing is repeated
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        collector.stop()
        sub.loop_stop()
        broker.stop()
    log = (tmp_path / "analyze.log").read_text()
    assert "robot-token" not in log and SECRET not in log and SMTP_PASSWORD not in log

    raised = datetime.fromtimestamp(hooks("warning")[0]["body"]["time_ns"] / 1e9, ZoneInfo("Asia/Shanghai"))
    shift = "day" if 8 <= raised.hour < 20 else "night"  # the roster, by the alert's own local time
    for level in ("warning", "critical"):
        (hook,) = hooks(level)  # exactly once per level
        assert hook["body"]["shift"] == shift and hook["body"]["group"] == "grid"
        assert hook["body"]["threshold"] == LIMIT_KW
        text = hook["body"]["text"]
        # the shiftable loads running now, largest first: mill-2 at 95 % of 2000 kW, then the compressor
        assert text.index("mill-2 1,9") < text.index("comp-1"), text
        assert [r for r in received if r["path"] == "/ding" and f"Demand {level}" in
                r["body"]["markdown"]["title"]], f"DingTalk {level}"
        assert len([m for m in published if m["level"] == level]) == 1
        # a failing webhook is retried, and does not hold up the others
        assert len([r for r in received if r["path"] == "/broken" and r["body"]["level"] == level]) == 3
    assert len([r for r in received if r["path"] == "/ding"]) == 2  # and each signature checked out (errcode 0)
    ding = next(r for r in received if r["path"] == "/ding")
    assert ding["body"]["at"]["atMobiles"] == ["13800000001" if shift == "day" else "13800000002"]
    assert len(mails) == 2 and all(m.rcpt_tos == [f"{shift}-lead@plant"] for m in mails)
    assert {m["topic"] for m in published} == {"plantems/testsite/alerts/warning", "plantems/testsite/alerts/critical"}

    _assert_points(influx_url, f"{db}_derived", shift)


def _assert_points(influx_url: str, derived: str, shift: str) -> None:
    """Every alert is an `alert` point with its delivery result; `demand` points carry the limit."""
    alerts = rows(influx_url, derived, "SELECT * FROM alert")
    assert sorted(a["level"] for a in alerts) == ["critical", "warning"]
    for alert in alerts:
        assert alert["delivered"] == 4 and alert["failed"] == 1, alert
        assert "broken: failed after 3 (broken: " in alert["deliveries"] and "HTTP 500" in alert["deliveries"]
        assert alert["meter_group"] == "grid" and alert["shift"] == shift and "mill-2" in alert["text"]
    peak = rows(influx_url, derived, "SELECT max(projected_kw), last(limit_kw) FROM demand")[0]
    assert peak["max"] > LIMIT_KW and peak["last"] == LIMIT_KW
