"""Alert channels against local receivers: an HTTP server that checks DingTalk's signature,
an SMTP server (aiosmtpd) and Mosquitto; one failing channel does not stop the others."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from plantems.analytics.notify import Alert, Dispatcher, deliver
from plantems.analytics.notify.email import Email
from plantems.analytics.notify.http import DingTalk, Webhook, WeCom, dingtalk_signature
from plantems.analytics.notify.mqtt import MqttTopic
from plantems.localservers import free_port, start_mosquitto
from tests.receivers import SECRET
from tests.support import wait_for

ALERT = Alert(site="changsha", rule="demand", level="critical", title="Demand 9,850 kW: limit 10,000 kW in 4 min",
              text="Projected 10,240 kW at 10:45.\nShiftable now: mill-2 2,400 kW, comp-1 240 kW", value=10240.0,
              threshold=10000.0, time_ns=1_795_000_000 * 10**9)


def test_every_channel_delivers_and_a_broken_one_does_not_stop_them(receiver, smtp, tmp_path):
    url, received = receiver
    smtp_port, mails = smtp
    broker = start_mosquitto(tmp_path / "mosquitto", free_port())
    try:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        published: list[bytes] = []
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="display")
        sub.on_message = lambda c, u, m: published.append(m.payload)
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe("plantems/changsha/alerts/#", qos=1)
        sub.loop_start()
        time.sleep(0.3)
        channels = [Webhook(f"{url}/broken", name="broken-webhook"), Webhook(f"{url}/hook"),
                    WeCom(f"{url}/wecom?key=k1"), DingTalk(f"{url}/ding?access_token=t1", SECRET),
                    Email("127.0.0.1", smtp_port, sender="plantems@plant", recipients=["shift-a@plant"],
                          starttls=False, username="plantems", password="mail-secret"),
                    MqttTopic("127.0.0.1", broker.port, "plantems/{site}/alerts/{level}")]
        results = deliver(ALERT, channels, attempts=2, backoff_s=0.05)
        wait_for(lambda: len(published) == 1, timeout_s=5, what="the MQTT alert")
        sub.loop_stop()
    finally:
        broker.stop()
    by_name = {r.channel: r for r in results}
    assert not by_name["broken-webhook"].ok and by_name["broken-webhook"].attempts == 2
    assert "HTTP 500" in by_name["broken-webhook"].error
    assert all(by_name[n].ok for n in ("webhook", "wecom", "dingtalk", "email", "mqtt"))
    hook = next(r for r in received if r["path"] == "/hook")
    assert hook["body"]["value"] == 10240.0 and hook["body"]["level"] == "critical"
    wecom = next(r for r in received if r["path"] == "/wecom")
    assert wecom["body"]["msgtype"] == "markdown" and "mill-2 2,400 kW" in wecom["body"]["markdown"]["content"]
    ding = next(r for r in received if r["path"] == "/ding")
    assert ding["query"]["access_token"] == "t1" and "sign" in ding["query"]  # and the receiver verified it
    assert mails[0].rcpt_tos == ["shift-a@plant"] and b"Subject: [changsha] Demand 9,850 kW" in mails[0].content
    assert json.loads(published[0])["rule"] == "demand"


def test_a_wrong_dingtalk_secret_is_reported(receiver):
    url, _ = receiver
    (result,) = deliver(ALERT, [DingTalk(f"{url}/ding?access_token=t1", "wrong")], attempts=1)
    assert not result.ok and "errcode 310000 sign not match" in result.error
    assert "access_token" not in result.error  # the robot's token is a secret: never in a message


def test_a_failing_url_is_reported_without_its_login_or_query(receiver):
    url, _ = receiver
    secret_url = url.replace("http://", "http://bot:hunter2@") + "/broken?key=k-77d1e2"
    (result,) = deliver(ALERT, [Webhook(secret_url, name="hook")], attempts=1)
    assert result.error == f"hook: {url}/broken: HTTP 500"


def test_dingtalk_signature_matches_the_documented_algorithm():
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"s", b"1700000000000\ns", hashlib.sha256).digest()).decode()
    assert dingtalk_signature("s", 1_700_000_000_000) == expected


def test_a_trickling_channel_never_holds_up_the_others(receiver, trickle):
    """12 alerts, a peer that answers one byte a second and a deadline far beyond the test: every
    alert reaches the healthy channel while the slow peer holds its two workers, and every record
    is completed (the slow channel's as failed, with the reason)."""
    url, received = receiver
    finished: dict[int, list] = {}
    dispatcher = Dispatcher(attempts=1, backoff_s=0.0, deadline_s=600.0)
    channels = [Webhook(f"{trickle.url}/slow", name="slow"), Webhook(f"{url}/hook", name="healthy")]
    for n in range(12):
        dispatcher.submit(replace(ALERT, time_ns=ALERT.time_ns + n), channels,
                          lambda alert, results: finished.__setitem__(alert.time_ns, results))
    wait_for(lambda: len(received) == 12 and len(trickle.paths) == 2, timeout_s=30,
             what="all 12 alerts at the healthy receiver, two held by the slow peer")
    assert finished == {}  # no alert is complete: the slow channel answered none
    dispatcher.close(grace_s=0)
    assert sorted(r["body"]["time_ns"] for r in received) == [ALERT.time_ns + n for n in range(12)]
    assert len(finished) == 12 and all(healthy.ok for _, healthy in finished.values())
    errors = sorted(slow.error for slow, _ in finished.values())
    assert errors == ["not sent: shutting down before this attempt"] * 10 + [
        "shutting down during attempt 1, no answer yet"] * 2


def test_closing_records_what_was_not_delivered_with_the_reason(receiver, trickle):
    """Shutdown does not wait for a stuck peer: the alert in flight and the ones queued behind it
    are reported as failed, saying why; the healthy channel's deliveries are kept."""
    url, received = receiver
    finished: dict[int, list] = {}
    dispatcher = Dispatcher(attempts=3, backoff_s=0.0, deadline_s=600.0, workers_per_channel=1)
    channels = [Webhook(f"{url}/hook", name="healthy"), Webhook(f"{trickle.url}/slow", name="slow")]
    for n in range(3):
        dispatcher.submit(replace(ALERT, time_ns=ALERT.time_ns + n), channels,
                          lambda alert, results: finished.__setitem__(alert.time_ns, results))
    wait_for(lambda: len(trickle.paths) == 1 and len(received) == 3, timeout_s=30,
             what="the first alert stuck at the slow peer, all three at the healthy one")
    dispatcher.close(grace_s=0.2)  # bounded: the deadline of 600 s is not waited for
    assert len(finished) == 3
    first, *queued = (finished[ALERT.time_ns + n] for n in range(3))
    assert all(healthy.ok for healthy, _ in finished.values())
    assert first[1].attempts == 1 and first[1].error == "shutting down during attempt 1, no answer yet"
    assert first[1].summary() == "slow: failed after 1 (shutting down during attempt 1, no answer yet)"
    for _, slow in queued:
        assert not slow.ok and slow.attempts == 0 and slow.error == "not sent: shutting down before this attempt"
        assert slow.summary() == "slow: failed, not attempted (not sent: shutting down before this attempt)"
    late: list = []
    dispatcher.submit(ALERT, channels, lambda alert, results: late.extend(results))
    assert [d.error for d in late] == ["not sent: alert delivery has stopped (shutdown)"] * 2


def test_a_peer_that_holds_its_connections_holds_a_bounded_number(trickle):
    """Abandoned attempts stay with the peer until it lets go; past max_stuck the channel fails at once."""
    results: list = []
    dispatcher = Dispatcher(attempts=1, backoff_s=0.0, deadline_s=0.3, workers_per_channel=1, max_stuck=2)
    for n in range(4):
        dispatcher.submit(replace(ALERT, time_ns=ALERT.time_ns + n), [Webhook(f"{trickle.url}/slow", name="slow")],
                          lambda alert, found: results.extend(found))
    wait_for(lambda: len(results) == 4, timeout_s=30, what="the results of all 4 alerts")
    dispatcher.close(grace_s=0)
    assert [d.error for d in results] == ["slow: no answer within 0.3 s (attempt abandoned)"] * 2 + [
        "slow: not sent: 2 earlier attempts are still held by the peer"] * 2
    assert len(trickle.paths) == 2 and trickle.open_connections[0] == 2
