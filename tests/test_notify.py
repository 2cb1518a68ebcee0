"""Alert channels against local receivers: an HTTP server that checks DingTalk's signature,
an SMTP server (aiosmtpd) and Mosquitto; one failing channel does not stop the others."""

from __future__ import annotations

import json
import time

from plantems.analytics.notify import Alert, deliver
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


def test_dingtalk_signature_matches_the_documented_algorithm():
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"s", b"1700000000000\ns", hashlib.sha256).digest()).decode()
    assert dingtalk_signature("s", 1_700_000_000_000) == expected
