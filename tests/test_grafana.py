"""Grafana dashboards: generated from the configuration, committed, complete, and every panel's
InfluxQL (macros expanded as Grafana expands them) returns data from a real InfluxDB holding the
simulator's history and the analytics' results. Grafana itself cannot run here."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from plantems.cli import main
from plantems.config import load_plant
from plantems.factors import load_factors
from plantems.grafana.build import drift, render
from plantems.grafana.dashboards import DASHBOARDS
from plantems.tariffs import load_tariffs
from tests.support import REPO, copy_reference_data, influx_query

TARIFFS = load_tariffs(REPO / "config" / "tariffs")
FACTORS = load_factors(REPO / "config" / "emission_factors.yaml")
DEMO = REPO / "config" / "plant.demo.yaml"


def committed() -> dict[str, dict[str, Any]]:
    return {name: json.loads((REPO / "grafana" / "dashboards" / f"{name}.json").read_text()) for name in DASHBOARDS}


def test_committed_files_are_what_the_demo_configuration_generates():
    files = render(load_plant(DEMO), TARIFFS, FACTORS)
    assert drift(REPO / "grafana", files) == [], "run: .venv/bin/plantems grafana build"
    result = CliRunner().invoke(main, ["grafana", "build", "--config", str(DEMO), "--out", str(REPO / "grafana"),
                                       "--check"])
    assert result.exit_code == 0, result.output


def test_check_names_a_drifted_file(tmp_path):
    files = render(load_plant(DEMO), TARIFFS, FACTORS)
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text.replace("Site power", "Site Power") if "overview" in relative else text)
    result = CliRunner().invoke(main, ["grafana", "build", "--config", str(DEMO), "--out", str(tmp_path), "--check"])
    assert result.exit_code == 1 and "dashboards/overview.json: differs" in result.output


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    across = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
    return across and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_panel_has_a_datasource_a_unit_and_a_place(name):
    model = committed()[name]
    panels = model["panels"]
    assert panels and len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        where = f"{name}: {panel['title']}"
        assert panel["datasource"]["uid"] in ("plantems-raw", "plantems-derived"), where
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), where
        assert panel["fieldConfig"]["defaults"].get("unit"), where
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, where
        assert all(t["rawQuery"] and "$timeFilter" in t["query"] for t in panel["targets"]), where
    for i, a in enumerate(panels):
        assert not any(_overlaps(a["gridPos"], b["gridPos"]) for b in panels[i + 1:]), f"{name}: {a['title']}"
    assert model["refresh"] in ("10s", "5m")


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboards_follow_grafanas_dashboard_model(name):
    """Read back through grafana-foundation-sdk's typed model: nothing is unknown to it (the
    InfluxDB annotation's query fields are the InfluxDB plugin's, which the SDK does not type)."""
    model = committed()[name]
    back = json.loads(JSONEncoder(sort_keys=True).encode(Dashboard.from_json(model)))
    model.pop("annotations", None)
    back.pop("annotations", None)
    assert back == model


def test_the_configuration_drives_the_panels(tmp_path):
    group = "    - {id: mills, name_zh: 轧机需量, meters: [mill-1, mill-2], limit_kw: 5000, method: fixed}\n"
    text = DEMO.read_text().replace("\nalerts:", group + "\nalerts:")
    text = re.sub(r"  - \{id: air-1,[^}]*\}\n", "", text)  # a plant without compressed-air metering
    path = tmp_path / "plant.yaml"
    path.write_text(text)
    files = render(load_plant(path), TARIFFS, FACTORS)
    overview = json.loads(files["dashboards/overview.json"])
    titles = [p["title"] for p in overview["panels"]]
    assert "15-minute demand 需量: mills 轧机需量" in titles and "Demand mills 当前需量" in titles
    energy = json.loads(files["dashboards/energy-cost.json"])
    assert not any("Compressed air" in p["title"] for p in energy["panels"])
    assert any("Compressed air" in p["title"] for p in committed()["energy-cost"]["panels"])  # the demo has air-1
    demand = next(p for p in overview["panels"] if p["title"] == "15-minute demand 需量: mills 轧机需量")
    assert [s["value"] for s in demand["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 4500.0, 5000.0]


# ---- every query against real data -------------------------------------------------------------------------------


def _last_noon(tz: Any) -> datetime:
    now = datetime.now(tz)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon < now else noon - timedelta(days=1)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, influx_url):
    """The demo plant's history (3 days to the last local noon), its energy, daily and monthly
    analytics, production, live-style demand evaluations and collector status."""
    from plantems.analytics.demand_job import DemandMonitor
    from plantems.analytics.notify.roster import Roster
    from plantems.analytics.service import backfill_energy, run_rollup
    from plantems.collector.points import status_line
    from plantems.demo import write_demo_production
    from plantems.influx import InfluxClient, V1Writer, init_databases
    from plantems.production import read_production_csv
    from plantems.schema import COLLECTOR_STATUS, MQTT_SOURCE, SPOOL_SOURCE
    from plantems.simulator.run import backfill
    from plantems.simulator.scenarios import scenarios_for

    tmp = tmp_path_factory.mktemp("grafana")
    text = DEMO.read_text().replace("http://127.0.0.1:18086", influx_url).replace(
        "raw_database: plantems\n", "raw_database: gfraw\n").replace(
        "derived_database: plantems_derived", "derived_database: gfderived").replace(
        "path: var/spool/collector.sqlite", f"path: {tmp}/spool.sqlite")
    config = tmp / "plant.yaml"
    config.write_text(text)
    copy_reference_data(tmp)
    plant = load_plant(config)
    init_databases(plant.influxdb)
    tz = plant.site.tz
    end = _last_noon(tz)
    writer, client = V1Writer(plant.influxdb), InfluxClient(plant.influxdb)
    backfill(plant, writer, days=3, end_s=end.timestamp(), progress=False,
             scenarios=scenarios_for(plant.simulator.scenarios))
    first = (end - timedelta(days=3)).date()
    backfill_energy(plant, TARIFFS, client, writer, first, end.date(), progress=False)
    write_demo_production(plant, tmp / "production.csv", first, end.date())
    writer.write(plant.influxdb.raw_database, read_production_csv(tmp / "production.csv", plant))
    monitor = DemandMonitor(plant.model_copy(update={"alerts": None}), client, writer,
                            Roster(plant.model_copy(update={"alerts": None})))
    for t in np.arange(end.timestamp() - 26 * 3600, end.timestamp(), 300.0):
        monitor.evaluate(now_s=float(t) + 1.0)  # just after a 60-s grid sample, as if live
    monitor.close()
    for month in sorted({first.strftime("%Y-%m"), end.strftime("%Y-%m")}):
        run_rollup(plant, month, config_dir=tmp, client=client, writer=writer, out_root=tmp / "reports",
                   as_of=end.date(), progress=False)
    status = []
    for k in range(120):  # the last hour of collector status, every 30 s
        t_ns = int(end.timestamp() - 3600 + 30 * k) * 10**9
        for device in plant.modbus_devices:
            status.append(status_line(COLLECTOR_STATUS, site=plant.site.id, source=device.id, time_ns=t_ns, fields={
                "up": 1.0, "latency_ms": 12.0 + k % 5, "requests": 30.0 * k, "errors": float(k // 40),
                "missed_polls": 0.0, "invalid_values": 0.0}))
        status.append(status_line(COLLECTOR_STATUS, site=plant.site.id, source=MQTT_SOURCE, time_ns=t_ns, fields={
            "up": 1.0, "messages": 60.0 * k, "rejected": float(k // 60), "unknown": 0.0}))
        status.append(status_line(COLLECTOR_STATUS, site=plant.site.id, source=SPOOL_SOURCE, time_ns=t_ns, fields={
            "spool_bytes": 1000.0, "spool_lines": float(k % 7), "dropped_lines": 0.0, "shed_lines": 0.0,
            "dead_lettered_lines": 0.0, "errors": float(k // 50)}))
    writer.write(plant.influxdb.raw_database, status)
    client.close()
    return plant, end


def _range(panel: dict[str, Any], dashboard_from: str, end: datetime) -> tuple[datetime, datetime]:
    """The time range Grafana queries a panel with: the panel's relative time, else the dashboard's."""
    relative = panel.get("timeFrom") or dashboard_from.removeprefix("now-")
    if relative == "now/d":
        return end.replace(hour=0, minute=0, second=0, microsecond=0), end
    if relative == "now/M":
        return end.replace(day=1, hour=0, minute=0, second=0, microsecond=0), end
    amount, unit = int(relative[:-1]), relative[-1]
    hours = {"h": 1, "d": 24, "y": 24 * 365}[unit] * amount
    return end - timedelta(hours=hours), end


def _interval(start: datetime, end: datetime) -> str:
    """$__interval: the range over ~1,000 points, rounded up to Grafana's steps."""
    seconds = (end - start).total_seconds() / 1000
    for step, text in ((1, "1s"), (10, "10s"), (60, "1m"), (300, "5m"), (600, "10m"), (1800, "30m"), (3600, "1h"),
                       (86400, "1d")):
        if seconds <= step:
            return text
    return "1d"


def expand(query: str, start: datetime, end: datetime, variables: dict[str, str]) -> str:
    """Grafana's InfluxDB macros: $timeFilter in epoch ms, $__interval, regex-escaped variables."""
    text = query.replace("$timeFilter", f"time >= {int(start.timestamp() * 1000)}ms and "
                                        f"time <= {int(end.timestamp() * 1000)}ms")
    text = text.replace("$__interval", _interval(start, end))
    for name, value in sorted(variables.items(), key=lambda item: -len(item[0])):
        text = text.replace(f"${name}", value)
    assert not re.search(r"\$[A-Za-z_{]", text), f"unexpanded macro or variable in {text}"
    return text


def _has_data(influx_url: str, database: str, query: str) -> bool:
    series = influx_query(influx_url, database, query)
    return any(v is not None for s in series for row in s["values"] for v in row[1:])


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_panel_query_returns_data(loaded, influx_url, name):
    plant, end = loaded
    model = committed()[name]
    databases = {"plantems-raw": plant.influxdb.raw_database, "plantems-derived": plant.influxdb.derived_database}
    variables = {}
    for variable in model.get("templating", {}).get("list", []):  # the first value of each, in order
        query = expand(variable["query"], end - timedelta(days=1), end, variables)
        values = [row[1] for s in influx_query(influx_url, databases[variable["datasource"]["uid"]], query)
                  for row in s["values"]]
        assert values, f"variable {variable['name']}: {query}"
        pick = "mill-1" if "mill-1" in values else values[0]
        variables[variable["name"]] = re.escape(pick) if variable["name"] == "device" else ".*"
    empty = []
    for panel in model["panels"]:
        start, stop = _range(panel, model["time"]["from"], end)
        for target in panel["targets"]:
            query = expand(target["query"], start, stop, variables)
            if not _has_data(influx_url, databases[target["datasource"]["uid"]], query):
                empty.append(f"{panel['title']}: {query}")
    for annotation in model.get("annotations", {}).get("list", []):
        query = expand(annotation["target"]["query"], end - timedelta(days=2), end, variables)
        if not _has_data(influx_url, databases[annotation["datasource"]["uid"]], query):
            empty.append(f"annotation {annotation['name']}: {query}")
    assert not empty, "\n".join(empty)
