"""Local receivers for alert tests: an HTTP server that records requests and checks DingTalk's
signature (path /ding), answers 500 on /broken; an SMTP server (aiosmtpd) with login."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from plantems.analytics.notify.http import dingtalk_signature
from plantems.localservers import free_port

SECRET = "SEC-test-secret"
SMTP_PASSWORD = "mail-secret"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: Any
    time: float


Route = Callable[[Request], tuple[int, Any]]


@contextmanager
def json_http_server(route: Route, *, headers: dict[str, str] | None = None) -> Iterator[str]:
    """A local HTTP server whose every request (JSON in, JSON out) is answered by ``route``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            request = Request(self.command, url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                              self.headers, body, time.time())
            status, answer = route(request)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve  # noqa: N815 (http.server's names)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """Webhook and robot receiver: /broken answers 500, /ding checks DingTalk's signature."""
    received: list[dict] = []

    def route(request: Request) -> tuple[int, Any]:
        query = request.query
        received.append({"path": request.path, "query": query, "body": request.body, "time": request.time})
        if request.path == "/broken":
            return 500, {"errcode": 0, "errmsg": "ok"}
        if request.path == "/ding" and query.get("sign") != dingtalk_signature(SECRET, int(query["timestamp"])):
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    with json_http_server(route) as url:
        yield url, received


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
