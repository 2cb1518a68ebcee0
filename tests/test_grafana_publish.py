"""`plantems grafana publish` against a local HTTP server that answers Grafana's API as Grafana
does (Grafana itself cannot run here) and records every request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from plantems.cli import main
from plantems.localservers import free_port
from tests.receivers import json_http_server
from tests.support import REPO

TOKEN = "glsa_test-token"
DEMO = REPO / "config" / "plant.demo.yaml"


class FakeGrafana:
    """The endpoints publish uses, with Grafana's status codes; state kept in memory."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}

    def handle(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:  # noqa: PLR0911 (a router)
        self.requests.append({"method": method, "path": path, "auth": auth, "body": body})
        if auth != f"Bearer {TOKEN}":
            return 401, {"message": "invalid API key"}
        if path == "/api/frontend/settings":
            return 200, {"buildInfo": {"version": "11.6.0", "commit": "test", "edition": "Open Source"}}
        if m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
            uid = m[1]
            if method == "GET":
                return (200, self.datasources[uid]) if uid in self.datasources else (404, {"message": "not found"})
            self.datasources[uid] = {**body, "version": body.get("version", 1) + 1}
            return 200, {"message": "Datasource updated"}
        if path == "/api/datasources" and method == "POST":
            self.datasources[body["uid"]] = {**body, "version": 1}
            return 200, {"message": "Datasource added"}
        if m := re.fullmatch(r"/api/folders/([\w-]+)", path):
            return (200, self.folders[m[1]]) if m[1] in self.folders else (404, {"message": "folder not found"})
        if path == "/api/folders" and method == "POST":
            self.folders[body["uid"]] = body
            return 200, body
        if path == "/api/dashboards/db" and method == "POST":
            self.dashboards[body["dashboard"]["uid"]] = body
            return 200, {"status": "success", "uid": body["dashboard"]["uid"]}
        return 404, {"message": "not found"}


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    fake = FakeGrafana()
    with json_http_server(lambda r: fake.handle(r.method, r.path, r.headers.get("Authorization"), r.body)) as url:
        yield url, fake


def _publish(url: str, token: str | None = TOKEN):
    env = {"PLANTEMS_GRAFANA_TOKEN": token} if token else {"PLANTEMS_GRAFANA_TOKEN": ""}
    return CliRunner().invoke(main, ["grafana", "publish", "--config", str(DEMO), "--url", url, "--influx-url",
                                     "http://influxdb:8086", "--influx-api", "v1"], env=env)


def test_publish_upserts_in_order_and_is_idempotent(grafana):
    url, fake = grafana
    first = _publish(url)
    assert first.exit_code == 0, first.output
    calls = [(r["method"], r["path"]) for r in fake.requests]
    assert calls[:6] == [("GET", "/api/frontend/settings"), ("GET", "/api/datasources/uid/plantems-raw"),
                         ("POST", "/api/datasources"), ("GET", "/api/datasources/uid/plantems-derived"),
                         ("POST", "/api/datasources"), ("GET", "/api/folders/plantems")]
    assert calls[6] == ("POST", "/api/folders")
    # six site dashboards, the group one, the plan and the EnPIs
    assert calls[7:] == [("POST", "/api/dashboards/db")] * 9
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in fake.requests)
    assert fake.datasources["plantems-derived"]["jsonData"]["dbName"] == "plantems_derived"
    assert fake.datasources["plantems-raw"]["url"] == "http://influxdb:8086"
    overview = fake.dashboards["plantems-overview"]
    assert overview["folderUid"] == "plantems" and overview["overwrite"] and overview["dashboard"]["id"] is None
    assert "datasource plantems-raw: created" in first.output

    fake.requests.clear()
    second = _publish(url)
    assert second.exit_code == 0, second.output
    methods = [(r["method"], r["path"]) for r in fake.requests]
    assert ("POST", "/api/datasources") not in methods and ("POST", "/api/folders") not in methods
    assert ("PUT", "/api/datasources/uid/plantems-raw") in methods
    assert len(fake.datasources) == 2 and len(fake.folders) == 1 and len(fake.dashboards) == 9
    assert "datasource plantems-raw: updated" in second.output


def test_a_wrong_token_and_a_wrong_url_give_clear_errors(grafana):
    url, _ = grafana
    result = _publish(url, token="wrong-token")
    assert result.exit_code == 1 and "Grafana refused the token (HTTP 401)" in result.output
    assert "wrong-token" not in result.output
    dead = f"http://127.0.0.1:{free_port()}"
    result = _publish(dead)
    assert result.exit_code == 1 and f"{dead}: cannot reach Grafana" in result.output
    result = _publish(url, token=None)
    assert result.exit_code == 2 and "PLANTEMS_GRAFANA_TOKEN is not set" in result.output
