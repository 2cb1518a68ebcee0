"""Local receivers: an HTTP server that records requests (JSON, or raw bodies such as gzipped line
protocol) and answers what a route says, with any status and headers; for alert tests it checks
DingTalk's signature (path /ding) and answers 500 on /broken; an SMTP server (aiosmtpd) with login."""

from __future__ import annotations

import gzip
import json
import socket
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
    body: Any  # the JSON body parsed, or None
    time: float
    raw: bytes = b""  # the body as sent, un-gzipped when Content-Encoding is gzip

    @property
    def text(self) -> str:
        return self.raw.decode()


# An answer: (status, JSON body) or (status, JSON body, extra headers); a None body sends none.
Route = Callable[[Request], tuple[int, Any] | tuple[int, Any, dict[str, str]]]


@contextmanager
def json_http_server(route: Route, *, headers: dict[str, str] | None = None) -> Iterator[str]:
    """A local HTTP server whose every request (JSON in, JSON out) is answered by ``route``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            request = Request(self.command, url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                              self.headers, body, time.time(), raw)
            status, answer, *extra = route(request)
            payload = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            if answer is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in {**(headers or {}), **(extra[0] if extra else {})}.items():
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


@dataclass
class Trickle:
    """A peer that accepts, reads the request, then answers one byte a second and never finishes."""

    url: str
    paths: list[str]  # the request line's path of every connection
    open_connections: list[int]  # [count], updated by the connection threads
    release: threading.Event  # set at teardown: every connection is closed
    lock: threading.Lock


def _trickle_connection(conn: socket.socket, peer: Trickle) -> None:
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(65536)
            if not chunk:
                return
            request += chunk
        with peer.lock:
            peer.paths.append(request.split(b" ", 2)[1].decode())
            peer.open_connections[0] += 1
        answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000  # never reaches the end of the headers
        try:
            for byte in answer:
                if peer.release.wait(1.0):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass  # the client gave up
        finally:
            with peer.lock:
                peer.open_connections[0] -= 1


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    """An HTTP peer on 127.0.0.1 that sends one byte a second: no per-read timeout ever trips."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    peer = Trickle(f"http://127.0.0.1:{listener.getsockname()[1]}", [], [0], threading.Event(), threading.Lock())

    def accept() -> None:
        while not peer.release.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_trickle_connection, args=(conn, peer), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield peer
    finally:
        peer.release.set()
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
