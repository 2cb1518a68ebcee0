"""Separate InfluxDB logins, against a real InfluxDB with authentication on: `plantems influx init`
creates them, and each command runs with only what its role needs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from click.testing import CliRunner

from plantems.cli import main
from plantems.localservers import free_port, start_influxd
from tests.support import REPO, copy_reference_data

PASSWORDS = {"PLANTEMS_INFLUX_ADMIN_USER": "admin", "PLANTEMS_INFLUX_ADMIN_PASSWORD": "adm'in-secret",
             "COLLECTOR_PW": "col-secret", "ANALYTICS_PW": "ana-secret", "GRAFANA_PW": "gra-secret"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    port = free_port()
    server = start_influxd(tmp / "influxdb", port, auth=True)
    url = f"http://127.0.0.1:{port}"
    # the first user of an auth-enabled InfluxDB must be an admin, and may be created without a login
    requests.post(f"{url}/query", data={"q": "CREATE USER admin WITH PASSWORD 'adm\\'in-secret' WITH ALL PRIVILEGES"},
                  timeout=10).raise_for_status()
    text = (REPO / "config" / "plant.demo.yaml").read_text().replace("http://127.0.0.1:18086", url).replace(
        "  raw_retention_days: 400\n", "  raw_retention_days: 400\n  users:\n"
        "    collector: {username: plantems_collector, password: {env: COLLECTOR_PW}}\n"
        "    analytics: {username: plantems_analytics, password: {env: ANALYTICS_PW}}\n"
        "    grafana: {username: plantems_grafana, password: {env: GRAFANA_PW}}\n").replace(
        "path: var/spool/collector.sqlite", f"path: {tmp}/spool.sqlite")
    config = tmp / "plant.yaml"
    config.write_text(text)
    copy_reference_data(tmp)
    yield url, config
    server.stop()


def _as(url: str, user: str, password: str) -> dict[str, Any]:
    def write(db: str) -> int:
        return requests.post(f"{url}/write", params={"db": db}, data="probe,site=x v=1", auth=(user, password),
                             timeout=10).status_code

    def read(db: str) -> bool:
        body = requests.post(f"{url}/query", data={"db": db, "q": "SELECT * FROM probe LIMIT 1"},
                             auth=(user, password), timeout=10).json()
        return "error" not in body["results"][0] if "results" in body else False

    return {"write_raw": write("plantems"), "write_derived": write("plantems_derived"),
            "read_raw": read("plantems"), "read_derived": read("plantems_derived")}


def test_init_creates_each_role_with_only_what_it_needs(secured):
    url, config = secured
    result = CliRunner().invoke(main, ["influx", "init", "--config", str(config)], env=PASSWORDS)
    assert result.exit_code == 0, result.output
    assert "user plantems_collector (collector): WRITE on plantems" in result.output
    assert not any(p in result.output for p in ("col-secret", "ana-secret", "gra-secret", "adm'in"))
    again = CliRunner().invoke(main, ["influx", "init", "--config", str(config)], env=PASSWORDS)
    assert again.exit_code == 0, again.output  # idempotent: existing users get their password set again
    assert _as(url, "plantems_collector", "col-secret") == {"write_raw": 204, "write_derived": 403,
                                                            "read_raw": False, "read_derived": False}
    assert _as(url, "plantems_analytics", "ana-secret") == {"write_raw": 403, "write_derived": 204,
                                                            "read_raw": True, "read_derived": True}
    assert _as(url, "plantems_grafana", "gra-secret") == {"write_raw": 403, "write_derived": 403,
                                                          "read_raw": True, "read_derived": True}


def test_each_command_runs_as_its_role(secured):
    """The back-fill writes raw as the collector; analytics reads it, and deletes and rewrites its
    windows in the derived database, as the analytics user."""
    url, config = secured
    env = {**PASSWORDS, "PLANTEMS_INFLUX_ADMIN_USER": ""}
    assert CliRunner().invoke(main, ["influx", "init", "--config", str(config)], env=PASSWORDS).exit_code == 0
    result = CliRunner().invoke(main, ["simulate", "--config", str(config), "--backfill", "0.5"], env=env)
    assert result.exit_code == 0, result.output
    day = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(hours=3)).strftime("%Y-%m-%d")  # within the data
    for _ in range(2):  # the second run deletes the first run's points: needs the analytics user's rights
        result = CliRunner().invoke(main, ["analyze", "--config", str(config), "--backfill", day, day], env=env)
        assert result.exit_code == 0, result.output
    query = {"db": "plantems_derived", "q": "SELECT count(energy_kwh) FROM energy_15m"}
    rows = requests.post(f"{url}/query", data=query, auth=("plantems_grafana", "gra-secret"),
                         timeout=10).json()["results"][0]["series"][0]
    assert rows["values"][0][1] > 0


def test_a_wrong_admin_password_is_a_clear_error(secured):
    _, config = secured
    env = {**PASSWORDS, "PLANTEMS_INFLUX_ADMIN_PASSWORD": "nope"}
    result = CliRunner().invoke(main, ["influx", "init", "--config", str(config)], env=env)
    assert result.exit_code == 1 and "influx init failed" in result.output and "401" in result.output
    assert "nope" not in result.output
