"""`plantems influx init` for InfluxDB 2.x/3.x: buckets and DBRP mappings through /api/v2. No
InfluxDB 2 package runs here, so a local HTTP server answers the four endpoints as InfluxDB 2.7
documents them and records every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import CliRunner

from plantems.cli import main
from plantems.localservers import free_port
from tests.support import write_plant

TOKEN = "v2-admin-token"


@pytest.fixture
def influx2() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"buckets": [], "dbrps": [], "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Influxdb-Version", "v2.7.11")
            self.end_headers()
            self.wfile.write(payload)

        def _serve(self) -> None:  # noqa: PLR0911 (a router: one answer per endpoint)
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state["requests"].append((self.command, url.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Token {TOKEN}":
                return self._answer(401, {"code": "unauthorized", "message": "unauthorized access"})
            if url.path == "/api/v2/orgs":
                return self._answer(200, {"orgs": [{"id": "org1", "name": "plant"}] if query.get("org") == "plant"
                                          else []})
            if url.path == "/api/v2/buckets" and self.command == "GET":
                return self._answer(200, {"buckets": [b for b in state["buckets"] if b["name"] == query["name"]]})
            if url.path == "/api/v2/buckets":
                bucket = {**body, "id": f"b{len(state['buckets']) + 1}"}
                state["buckets"].append(bucket)
                return self._answer(201, bucket)
            if url.path == "/api/v2/dbrps" and self.command == "GET":
                return self._answer(200, {"content": [d for d in state["dbrps"] if d["database"] == query["db"]]})
            if url.path == "/api/v2/dbrps":
                state["dbrps"].append(body)
                return self._answer(201, {"content": body})
            return self._answer(404, {"code": "not found", "message": url.path})

        do_GET = do_POST = _serve  # noqa: N815 (http.server's names)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", state
    server.shutdown()


def test_v2_init_creates_buckets_and_dbrp_mappings_once(influx2, tmp_path):
    url, state = influx2
    config = write_plant(tmp_path, influx_url=url, db="site", init=False, body="""
devices:
  - {id: m1, area: a, kind: feeder, meter: generic_float32, host: 127.0.0.1}
""")
    config.write_text(config.read_text().replace("api: v1,", "api: v2, org: plant, token: {env: TEST_V2_TOKEN},"))
    env = {"TEST_V2_TOKEN": TOKEN}
    first = CliRunner().invoke(main, ["influx", "init", "--config", str(config)], env=env)
    assert first.exit_code == 0, first.output
    assert [(b["name"], b["retentionRules"]) for b in state["buckets"]] == [
        ("site", [{"type": "expire", "everySeconds": 400 * 86400}]), ("site_derived", [])]
    assert [(d["database"], d["retention_policy"], d["bucketID"], d["default"]) for d in state["dbrps"]] == [
        ("site", "raw", "b1", True), ("site_derived", "forever", "b2", True)]
    assert all(auth == f"Token {TOKEN}" for _, _, auth in state["requests"])
    posts = len([r for r in state["requests"] if r[0] == "POST"])
    second = CliRunner().invoke(main, ["influx", "init", "--config", str(config)], env=env)
    assert second.exit_code == 0 and "bucket site: kept" in second.output
    assert len([r for r in state["requests"] if r[0] == "POST"]) == posts  # nothing created twice


def test_v2_init_names_a_missing_organisation(influx2, tmp_path):
    url, _ = influx2
    config = write_plant(tmp_path, influx_url=url, db="site", init=False, body="""
devices:
  - {id: m1, area: a, kind: feeder, meter: generic_float32, host: 127.0.0.1}
""")
    config.write_text(config.read_text().replace("api: v1,", "api: v2, org: nowhere, token: {env: TEST_V2_TOKEN},"))
    result = CliRunner().invoke(main, ["influx", "init", "--config", str(config)], env={"TEST_V2_TOKEN": TOKEN})
    assert result.exit_code == 1 and "organisation 'nowhere' not found" in result.output
