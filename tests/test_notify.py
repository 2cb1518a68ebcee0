"""Alert channels against local receivers: an HTTP server that checks DingTalk's signature,
an SMTP server (aiosmtpd) and Mosquitto; one failing channel does not stop the others."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from analytics.notify import Alert, deliver
from analytics.notify.email import Email
from analytics.notify.http import DingTalk, Webhook, WeCom, dingtalk_signature
from analytics.notify.mqtt import MqttTopic
from plantems.localservers import free_port, start_mosquitto
from tests.support import wait_for

SECRET = "SEC-test-secret"
ALERT = Alert(site="changsha", rule="demand", level="critical", title="Demand 9,850 kW: limit 10,000 kW in 4 min",
              text="Projected 10,240 kW at 10:45.\nShiftable now: mill-2 2,400 kW, comp-1 240 kW", value=10240.0,
              threshold=10000.0, time_ns=1_795_000_000 * 10**9)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            url = urlparse(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            received.append({"path": url.path, "query": query, "body": body})
            status, answer = 200, {"errcode": 0, "errmsg": "ok"}
            if url.path == "/broken":
                status = 500
            elif url.path == "/ding" and query.get("sign") != dingtalk_signature(SECRET, int(query["timestamp"])):
                answer = {"errcode": 310000, "errmsg": "sign not match"}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


@pytest.fixture
def smtp() -> Iterator[tuple[int, list]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    messages: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            messages.append(envelope)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"mail-secret"
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield port, messages
    controller.stop()


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
