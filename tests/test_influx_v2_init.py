"""`plantems influx init` for InfluxDB 2.x/3.x: buckets and DBRP mappings through /api/v2. No
InfluxDB 2 package runs here, so a local HTTP server answers the four endpoints as InfluxDB 2.7
documents them and records every request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from plantems.cli import main
from tests.receivers import Request, json_http_server
from tests.support import write_plant

TOKEN = "v2-admin-token"


@pytest.fixture
def influx2() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"buckets": [], "dbrps": [], "requests": []}

    def route(request: Request) -> tuple[int, Any]:  # noqa: PLR0911 (a router: one answer per endpoint)
        query, body = request.query, request.body
        auth = request.headers.get("Authorization")
        state["requests"].append((request.method, request.path, auth))
        if auth != f"Token {TOKEN}":
            return 401, {"code": "unauthorized", "message": "unauthorized access"}
        if request.path == "/api/v2/orgs":
            return 200, {"orgs": [{"id": "org1", "name": "plant"}] if query.get("org") == "plant" else []}
        if request.path == "/api/v2/buckets" and request.method == "GET":
            return 200, {"buckets": [b for b in state["buckets"] if b["name"] == query["name"]]}
        if request.path == "/api/v2/buckets":
            bucket = {**body, "id": f"b{len(state['buckets']) + 1}"}
            state["buckets"].append(bucket)
            return 201, bucket
        if request.path == "/api/v2/dbrps" and request.method == "GET":
            return 200, {"content": [d for d in state["dbrps"] if d["database"] == query["db"]]}
        if request.path == "/api/v2/dbrps":
            state["dbrps"].append(body)
            return 201, {"content": body}
        return 404, {"code": "not found", "message": request.path}

    with json_http_server(route, headers={"X-Influxdb-Version": "v2.7.11"}) as url:
        yield url, state


def _v2_plant(tmp_path, url: str, *, org: str):
    body = "devices:\n  - {id: m1, area: a, kind: feeder, meter: generic_float32, host: 127.0.0.1, max_kw: 5000}\n"
    config = write_plant(tmp_path, influx_url=url, db="site", init=False, body=body)
    config.write_text(config.read_text().replace("api: v1,", f"api: v2, org: {org}, token: {{env: TEST_V2_TOKEN}},"))
    return config


def test_v2_init_creates_buckets_and_dbrp_mappings_once(influx2, tmp_path):
    url, state = influx2
    config = _v2_plant(tmp_path, url, org="plant")
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
    config = _v2_plant(tmp_path, url, org="nowhere")
    result = CliRunner().invoke(main, ["influx", "init", "--config", str(config)], env={"TEST_V2_TOKEN": TOKEN})
    assert result.exit_code == 1 and "organisation 'nowhere' not found" in result.output
