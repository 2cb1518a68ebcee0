"""Local receivers for alert tests: an HTTP server that records requests and checks DingTalk's
signature (path /ding), answers 500 on /broken; an SMTP server (aiosmtpd) with login."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from analytics.notify.http import dingtalk_signature
from plantems.localservers import free_port

SECRET = "SEC-test-secret"
SMTP_PASSWORD = "mail-secret"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            url = urlparse(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            received.append({"path": url.path, "query": query, "body": body, "time": time.time()})
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
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield port, messages
    controller.stop()
