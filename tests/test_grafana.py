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
from plantems.grafana import macros
from plantems.grafana.build import drift, render
from plantems.grafana.dashboards import DASHBOARDS
from plantems.tariffs import load_tariffs
from tests.support import REPO, copy_reference_data, influx_query, rows

TARIFFS = load_tariffs(REPO / "config" / "tariffs")
FACTORS = load_factors(REPO / "config" / "emission_factors.yaml")
DEMO = REPO / "config" / "plant.demo.yaml"
CHANGDE = REPO / "config" / "plant.changde.yaml"
SITES = {"changsha": DEMO, "changde": CHANGDE}  # the demo's two parks, one dashboard set


def committed() -> dict[str, dict[str, Any]]:
    return {name: json.loads((REPO / "grafana" / "dashboards" / f"{name}.json").read_text()) for name in DASHBOARDS}


def _sites_args() -> list[str]:
    return [arg for path in SITES.values() for arg in ("--config", str(path))]


def test_committed_files_are_what_the_demo_configuration_generates():
    files = render([load_plant(path) for path in SITES.values()], TARIFFS, FACTORS)
    assert drift(REPO / "grafana", files) == [], "run: .venv/bin/plantems grafana build"
    result = CliRunner().invoke(main, ["grafana", "build", *_sites_args(), "--out", str(REPO / "grafana"), "--check"])
    assert result.exit_code == 0, result.output


def test_check_names_a_drifted_file(tmp_path):
    files = render([load_plant(path) for path in SITES.values()], TARIFFS, FACTORS)
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text.replace("Site power", "Site Power") if "overview" in relative else text)
    result = CliRunner().invoke(main, ["grafana", "build", *_sites_args(), "--out", str(tmp_path), "--check"])
    assert result.exit_code == 1 and "dashboards/overview.json: differs" in result.output


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_query_follows_the_site_variable(name):
    """The first variable is `site`; every other query (variables, panels, annotations) is filtered by it."""
    model = committed()[name]
    variables = model["templating"]["list"]
    assert variables[0]["name"] == "site" and "WITH KEY = \"site\"" in variables[0]["query"]
    assert variables[0]["includeAll"] == (name == "group")  # one site at a time; the group board compares any
    queries = [v["query"] for v in variables[1:]] + [t["query"] for p in model["panels"] for t in p["targets"]]
    queries += [a["target"]["query"] for a in model.get("annotations", {}).get("list", [])]
    unfiltered = [q for q in queries if q.count('"site" =~ /^$site$/') < q.count(' FROM "')]
    assert queries and not unfiltered, unfiltered


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
        # bounded by the dashboard's range: $timeFilter, or both ends of it (the hours overlapping it)
        for t in panel["targets"]:
            bounded = "$timeFilter" in t["query"] or ("${__from}" in t["query"] and "${__to}" in t["query"])
            assert t["rawQuery"] and bounded, where
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


def test_sites_with_different_limits_and_factors_keep_their_own(tmp_path):
    """A billing group both sites have but with different limits gets no shared threshold colours (the
    limit series shows each); a site in another factor region gets its own factor in the Scope 2 stat."""
    other = CHANGDE.read_text().replace("site:\n", "site:\n  grid_factor_regions: [national]\n")
    path = tmp_path / "plant.changde.yaml"
    path.write_text(other)
    files = render([load_plant(DEMO), load_plant(path)], TARIFFS, FACTORS)
    overview = json.loads(files["dashboards/overview.json"])
    demand = next(p for p in overview["panels"] if p["title"] == "Demand grid 当前需量")
    assert "thresholds" not in demand["fieldConfig"]["defaults"]
    assert demand["description"] == "changsha: sliding window, limit 8000 kW; changde: sliding window, limit 2400 kW"
    stat = next(p for p in overview["panels"] if p["title"].startswith("Scope 2 this month"))
    assert [t["query"].split(" * ")[1].split(" ")[0] for t in stat["targets"]] == ["0.5271", "0.5306"]
    assert "/^(changsha)$/" in stat["targets"][0]["query"] and "/^(changde)$/" in stat["targets"][1]["query"]
    same = json.loads(render([load_plant(DEMO)], TARIFFS, FACTORS)["dashboards/overview.json"])
    alone = next(p for p in same["panels"] if p["title"] == "Demand grid 当前需量")
    assert [s["value"] for s in alone["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 7200.0, 8000.0]


def test_sites_in_different_timezones_are_refused(tmp_path):
    path = tmp_path / "plant.changde.yaml"
    path.write_text(CHANGDE.read_text().replace("timezone: Asia/Shanghai", "timezone: Asia/Urumqi"))
    result = CliRunner().invoke(main, ["grafana", "build", "--config", str(DEMO), "--config", str(path), "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "sites changsha (Asia/Shanghai), changde (Asia/Urumqi): the dashboards' days are in one timezone" \
        in result.output


def test_the_configuration_drives_the_panels(tmp_path):
    group = "    - {id: mills, name_zh: 轧机需量, meters: [mill-1, mill-2], limit_kw: 5000, method: fixed}\n"
    text = DEMO.read_text().replace("\nalerts:", group + "\nalerts:")
    text = re.sub(r"  - \{id: air-1,[^}]*\}\n", "", text)  # a plant without compressed-air metering
    path = tmp_path / "plant.yaml"
    path.write_text(text)
    files = render([load_plant(path)], TARIFFS, FACTORS)
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
    """Both demo parks' history (3 days to the last local noon) in one InfluxDB, their energy, daily and
    monthly analytics, production, live-style demand evaluations and collector status."""
    tmp = tmp_path_factory.mktemp("grafana")
    copy_reference_data(tmp)
    end = None
    plants = {}
    for site, source in SITES.items():
        text = re.sub(r"path: var/spool/\S+", f"path: {tmp}/{site}-spool.sqlite", source.read_text().replace(
            "http://127.0.0.1:18086", influx_url).replace("raw_database: plantems\n", "raw_database: gfraw\n").replace(
            "derived_database: plantems_derived", "derived_database: gfderived"))
        config = tmp / f"{site}.yaml"
        config.write_text(text)
        plants[site] = plant = load_plant(config)
        end = end or _last_noon(plant.site.tz)
        _load_site(plant, tmp, end)
    from tests.plan_support import load_group_plan  # the group rollup's `plan` points (Plan dashboard)

    first = (end - timedelta(days=3)).date()
    load_group_plan(plants, tmp, sorted({first.strftime("%Y-%m"), end.strftime("%Y-%m")}), end.date())
    return plants, end


def _load_site(plant: Any, tmp: Any, end: datetime) -> None:
    from plantems.analytics.demand_job import DemandMonitor
    from plantems.analytics.notify.roster import Roster
    from plantems.analytics.service import backfill_energy, run_rollup
    from plantems.analytics.tiers_job import backfill_tiers
    from plantems.collector.points import status_line
    from plantems.demo import write_demo_production
    from plantems.influx import InfluxClient, V1Writer, init_databases
    from plantems.production import read_production_csv
    from plantems.schema import COLLECTOR_STATUS, MQTT_SOURCE, SPOOL_SOURCE
    from plantems.simulator.run import backfill
    from plantems.simulator.scenarios import scenarios_for

    init_databases(plant.influxdb)
    writer, client = V1Writer(plant.influxdb), InfluxClient(plant.influxdb)
    backfill(plant, writer, days=3, end_s=end.timestamp(), progress=False,
             scenarios=scenarios_for(plant.simulator.scenarios))
    first = (end - timedelta(days=3)).date()
    backfill_energy(plant, TARIFFS, client, writer, first, end.date(), progress=False)
    production = tmp / f"{plant.site.id}-production.csv"
    write_demo_production(plant, production, first, end.date())
    writer.write(plant.influxdb.raw_database, read_production_csv(production, plant))
    monitor = DemandMonitor(plant.model_copy(update={"alerts": None}), client, writer,
                            Roster(plant.model_copy(update={"alerts": None})))
    for t in np.arange(end.timestamp() - 26 * 3600, end.timestamp(), 300.0):
        monitor.evaluate(now_s=float(t) + 1.0)  # just after a 60-s grid sample, as if live
    monitor.close()
    for month in sorted({first.strftime("%Y-%m"), end.strftime("%Y-%m")}):
        run_rollup(plant, month, config_dir=tmp, client=client, writer=writer, out_root=tmp / plant.site.id,
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
            "dead_lettered_lines": 0.0, "errors": float(k // 50), "spool_errors": float(k // 30),
            "buffered_lines": float(k % 3), "buffer_dropped_lines": 0.0}))
    writer.write(plant.influxdb.raw_database, status)
    from plantems.analytics.jobstatus import status_point
    from plantems.lineproto import format_line
    from plantems.schema import Job

    jobs = [format_line(status_point(plant, job, failures=k % 2, error="InfluxDB away" if k % 2 else None,
                                     time_ns=int(end.timestamp() - 3600 * (k + 1)) * 10**9))
            for k, job in enumerate(Job)]
    writer.write(plant.influxdb.derived_database, jobs)
    backfill_tiers(plant, client, writer, end - timedelta(days=3), end, progress=False)  # the dashboards' tiers
    client.close()


def _range(panel: dict[str, Any], dashboard_from: str, end: datetime) -> tuple[datetime, datetime]:
    """The time range Grafana queries a panel with: the panel's relative time, else the dashboard's."""
    relative = panel.get("timeFrom") or dashboard_from.removeprefix("now-")
    if relative == "now/d":
        return end.replace(hour=0, minute=0, second=0, microsecond=0), end
    if relative == "now/M":
        return end.replace(day=1, hour=0, minute=0, second=0, microsecond=0), end
    return end - timedelta(seconds=macros.parse_duration_s(relative)), end


def expand(query: str, start: datetime, end: datetime, variables: dict[str, str]) -> str:
    """Grafana's InfluxDB macros ($timeFilter in epoch ms, $__interval for a 1,600-px panel) and the
    regex-escaped variables."""
    return macros.expand(query, start, end, variables)


def _has_data(influx_url: str, database: str, query: str) -> bool:
    series = influx_query(influx_url, database, query)
    return any(v is not None for s in series for row in s["values"] for v in row[1:])


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_panel_query_returns_data(loaded, influx_url, name, site):
    """Each site chosen in the site variable: every panel has data (a panel one site lacks would be empty)."""
    plants, end = loaded
    plant = plants[site]
    model = committed()[name]
    databases = {"plantems-raw": plant.influxdb.raw_database, "plantems-derived": plant.influxdb.derived_database}
    variables: dict[str, str] = {}
    for variable in model.get("templating", {}).get("list", []):  # the site, then the first value of each
        query = expand(variable["query"], end - timedelta(days=1), end, variables)
        values = [row[1] for s in influx_query(influx_url, databases[variable["datasource"]["uid"]], query)
                  for row in s["values"]]
        assert values, f"variable {variable['name']}: {query}"
        if variable["name"] == "site":
            assert sorted(values) == sorted(SITES)
            variables["site"] = site
            continue
        pick = "mill-1" if "mill-1" in values else values[0]
        variables[variable["name"]] = re.escape(pick) if variable["name"] == "device" else ".*"
    empty = []
    for panel in model["panels"]:
        start, stop = _range(panel, model["time"]["from"], end)
        for target in panel["targets"]:
            query = macros.expand_target(panel, target["query"], start, stop, variables)
            if not _has_data(influx_url, databases[target["datasource"]["uid"]], query):
                empty.append(f"{panel['title']}: {query}")
    for annotation in model.get("annotations", {}).get("list", []):
        query = expand(annotation["target"]["query"], end - timedelta(days=2), end, variables)
        if not _has_data(influx_url, databases[annotation["datasource"]["uid"]], query):
            empty.append(f"annotation {annotation['name']}: {query}")
    assert not empty, "\n".join(empty)


def test_the_group_dashboard_shows_every_site_side_by_side(loaded, influx_url):
    """With all sites chosen, each per-site panel has one series per site, and each site's daily grid energy
    is the sum of its own incomers' intervals (a second query, by device), not the other site's."""
    plants, end = loaded
    model = committed()["group"]
    derived = plants["changsha"].influxdb.derived_database
    start = end - timedelta(days=30)
    daily = next(p for p in model["panels"] if p["title"].startswith("Grid energy per day by site"))
    query = expand(daily["targets"][0]["query"], start, end, {"site": ".*"})
    series = {s["tags"]["site"]: sum(v[1] or 0 for v in s["values"]) for s in influx_query(influx_url, derived, query)}
    assert sorted(series) == sorted(SITES)
    for site, total_kwh in series.items():
        by_device = influx_query(influx_url, derived, f"SELECT sum(energy_kwh) FROM energy_15m WHERE site = '{site}' "
                                                      f"AND kind = 'incomer' GROUP BY device")
        assert total_kwh == pytest.approx(sum(s["values"][0][1] for s in by_device), rel=1e-9)
        assert total_kwh > 0
    assert series["changsha"] != pytest.approx(series["changde"])
    for panel in model["panels"]:
        if panel["type"] != "timeseries" or "$tag_site" not in panel["targets"][0].get("alias", ""):
            continue
        a, b = _range(panel, model["time"]["from"], end)
        result = influx_query(influx_url, derived, expand(panel["targets"][0]["query"], a, b, {"site": ".*"}))
        assert {s["tags"]["site"] for s in result} == set(SITES), panel["title"]


# ---- the Plan dashboard's group figures -------------------------------------------------------------------------


def _plan_rows(influx_url: str, database: str, scope: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    found = rows(influx_url, database, f"SELECT * FROM plan WHERE scope = '{scope}' GROUP BY *")
    return {(r["site"], r["target"], r["time"]): r for r in found}


def test_the_group_page_consolidates_the_sites(loaded, influx_url):
    """Under each site's tag the same group point; its intensity is the sites' summed emissions over their summed
    output (from the sites' own points), and its metering coverage sums the sites' machines."""
    plants, _ = loaded
    derived = plants["changsha"].influxdb.derived_database
    group, site = _plan_rows(influx_url, derived, "group"), _plan_rows(influx_url, derived, "site")
    times = sorted({t for (_, target, t) in group if target == "intensity"})
    assert times
    for t in times:
        a, b = group[("changsha", "intensity", t)], group[("changde", "intensity", t)]
        assert a == {**b, "site": "changsha"}  # one figure, under both tags
        parts = [site[(s, "intensity", t)] for s in ("changsha", "changde")]
        assert a["numerator"] == pytest.approx(sum(p["numerator"] for p in parts), rel=1e-9)
        assert a["denominator"] == pytest.approx(sum(p["denominator"] for p in parts), rel=1e-9)
        assert a["actual_value"] == pytest.approx(sum(p["numerator"] for p in parts)
                                                  / sum(p["denominator"] for p in parts), rel=1e-9)
        machines = [site[(s, "metering_coverage", t)] for s in ("changsha", "changde")]
        coverage = group[("changsha", "metering_coverage", t)]
        assert coverage["denominator"] == sum(m["denominator"] for m in machines) > 0
        assert coverage["actual_value"] == pytest.approx(sum(m["numerator"] for m in machines)
                                                         / coverage["denominator"])
    raw = [r for (s, target, _), r in group.items() if target == "raw_material" and s == "changsha"]
    assert any(r.get("actual_ytd_value") for r in raw)  # the shipped example ledger's deliveries


def test_the_plan_table_shows_every_target_of_the_latest_month(loaded, influx_url):
    plants, end = loaded
    model = committed()["plan"]
    table = next(p for p in model["panels"] if p["title"].startswith("This site's targets"))
    query = expand(table["targets"][0]["query"], end - timedelta(days=365), end, {"site": "changsha"})
    series = influx_query(influx_url, plants["changsha"].influxdb.derived_database, query)
    by_target = {s["tags"]["target"]: dict(zip(s["columns"], s["values"][0], strict=True)) for s in series}
    assert sorted(by_target) == sorted(["intensity", "raw_material", "recycled_share", "renewable_share",
                                        "certificate_share", "metering_coverage"])
    latest = datetime(end.year, end.month, 1, tzinfo=end.tzinfo)
    assert {row["time"] for row in by_target.values()} == {int(latest.timestamp() * 1e9)}  # one month, the latest
    intensity = by_target["intensity"]
    assert (intensity["base year"], intensity["base value"], intensity["goal"]) == (2024, 0.33, 0.30)
    assert intensity["this year's target"] == {2026: 0.32, 2027: 0.31}.get(end.year, intensity["this year's target"])
    assert by_target["certificate_share"]["to be confirmed"] == 1
