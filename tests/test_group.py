"""Group rollup end to end: two small plants, each back-filled for a month, consolidated.

Shape (b): each site has its own InfluxDB server (two influxd processes). Shape (a): both sites
write to one central InfluxDB (same databases, told apart by the site tag). Expected figures come
from the raw counters in each site's own server and the ledger rows, never from the rollup code.
"""

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantems.cli import main
from plantems.config import load_plant
from plantems.influx import V1Writer, init_databases
from plantems.localservers import free_port, start_influxd
from plantems.simulator.run import backfill
from tests.support import REPO, copy_reference_data, drop_simulated, rows

MONTH = "2026-10"
LOCATION = {"alpha": 0.5271, "beta": 0.5306}  # central China 2023 vs national 2023 (each site's own region)
RESIDUAL = 0.6096  # national residual mix 2023
GAS_KG_PER_M3 = 2.162
GAS_M3 = 744 * 100.0  # alpha's furnace: 100 Nm3 per hour for October's 744 hours
BETA_SERIAL = "4301232024031500720261000000"  # + 4 digits: beta's own 200 certificates

ALPHA = """\
site: {{id: alpha, name: Alpha works, timezone: Asia/Shanghai, output_lines: [roll-a]}}
influxdb: {{url: "{url}", api: v1, raw_database: {db}, derived_database: {db}_derived}}
spool: {{path: "{tmp}/spool.sqlite"}}
production_lines:
  - {{id: cast-a, name: Caster, areas: [util]}}
  - {{id: roll-a, name: Mill, areas: [roll]}}
devices:
  - {{id: a-inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: {p1}, feeds: [roll, util],
     max_kw: 20000}}
  - {{id: a-mill, area: roll, kind: cold_mill, meter: chint_dtsu666_ct, host: 127.0.0.1, port: {p2}, unit_id: 1,
     rated_kw: 3000}}
  - {{id: a-comp, area: util, kind: compressor, meter: eastron_sdm630, host: 127.0.0.1, port: {p2}, unit_id: 2,
     rated_kw: 250}}
  - {{id: a-furnace, area: util, kind: furnace, meter: generic_gas_flow, host: 127.0.0.1, port: {p2}, unit_id: 9}}
"""
BETA = """\
site: {{id: beta, name: Beta works, timezone: Asia/Shanghai, grid_factor_regions: [national]}}
influxdb: {{url: "{url}", api: v1, raw_database: {db}, derived_database: {db}_derived}}
spool: {{path: "{tmp}/spool.sqlite"}}
production_lines:
  - {{id: roll-b, name: Mill, areas: [roll]}}
devices:
  - {{id: b-inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: {p1}, feeds: [roll, pv],
     max_kw: 20000}}
  - {{id: b-mill, area: roll, kind: cold_mill, meter: chint_dtsu666_ct, host: 127.0.0.1, port: {p2}, unit_id: 1,
     rated_kw: 2000}}
  - {{id: b-pv, area: pv, kind: pv, meter: generic_float32, host: 127.0.0.1, port: {p2}, unit_id: 3, rated_kw: 400}}
"""


def _ledger(site_rows: str) -> str:
    header = (REPO / "config" / "green_power.csv").read_text().splitlines()[0]
    return header + "\n" + site_rows


ALPHA_ROWS = (REPO / "config" / "green_power.csv").read_text().split("\n", 1)[1].replace(",changsha,", ",alpha,")
BETA_ROW = (f"beta-2026-10-wind,beta,green_trade,200,{BETA_SERIAL}5001,{BETA_SERIAL}5200,2026-10-01,2026-10-31,"
            "wind,Hunan,2026-11-10,2026-10\n")


def _site(folder: Path, template: str, *, url: str, db: str, ledger: str, output: dict[str, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    copy_reference_data(folder)
    (folder / "green_power.csv").write_text(_ledger(ledger))
    path = folder / "plant.yaml"
    path.write_text(template.format(url=url, db=db, tmp=folder, p1=free_port(), p2=free_port()))
    (folder / "production.csv").write_text("date,line,output_t\n" + "".join(
        f"2026-10-{d:02d},{line},{tonnes + d}\n" for d in range(1, 32) for line, tonnes in output.items()))
    return path


def _fill(path: Path) -> None:
    """A month of simulated history (and alpha's gas counter), and the month's production."""
    plant = load_plant(path)
    init_databases(plant.influxdb)
    end = datetime(2026, 11, 1, 1, 0, tzinfo=plant.site.tz).timestamp()
    backfill(plant, V1Writer(plant.influxdb), days=32, end_s=end, progress=False)
    if plant.site.id == "alpha":
        t0 = int(datetime(2026, 9, 30, 22, tzinfo=plant.site.tz).timestamp())
        fuel = [f"fuel,area=util,device=a-furnace,kind=furnace,site=alpha gas_m3={5000 + 100 * k / 6!r} "
                f"{(t0 + 600 * k) * 10**9}" for k in range(6 * 24 * 33)]
        drop_simulated(plant.influxdb.url, plant.influxdb.raw_database, "fuel", "a-furnace")
        V1Writer(plant.influxdb).write(plant.influxdb.raw_database, fuel)
    result = CliRunner().invoke(main, ["production", "import", "--config", str(path),
                                       str(path.parent / "production.csv")])
    assert result.exit_code == 0, result.output


def _group_file(folder: Path, alpha: Path, beta: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "group.yaml"
    path.write_text(f"group: {{id: grp, name: Test group, name_zh: 测试集团}}\n"
                    f"sites:\n  - plant: {alpha}\n  - plant: {beta}\n")
    return path


@pytest.fixture(scope="module")
def second_influx(tmp_path_factory):
    server = start_influxd(tmp_path_factory.mktemp("influxd-b"), free_port())
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture(scope="module")
def sites(tmp_path_factory, influx_url, second_influx):
    """alpha in the central server; beta in its own server (shape b) and also in the central one (shape a)."""
    tmp = tmp_path_factory.mktemp("group")
    alpha = _site(tmp / "alpha", ALPHA, url=influx_url, db="grp", ledger=ALPHA_ROWS, output={"cast-a": 120,
                                                                                              "roll-a": 100})
    # beta's ledger holds a shared copy of alpha's rows: beta must not count them
    beta_b = _site(tmp / "beta-b", BETA, url=second_influx, db="grp", ledger=ALPHA_ROWS + BETA_ROW,
                   output={"roll-b": 80})
    beta_a = _site(tmp / "beta-a", BETA, url=influx_url, db="grp", ledger=ALPHA_ROWS + BETA_ROW,
                   output={"roll-b": 80})
    for path in (alpha, beta_b, beta_a):
        _fill(path)
    return tmp, alpha, beta_b, beta_a


def _counter(url: str, device: str, t: datetime, field: str = "e_imp_kwh") -> float:
    (row,) = rows(url, "grp", f"SELECT {field} FROM electrical WHERE device = '{device}' AND time = "
                               f"{int(t.timestamp()) * 10**9}")
    return row[field]


def _group_rollup(group: Path, reports: Path) -> dict:
    result = CliRunner().invoke(main, ["group", "rollup", "--group", str(group), "--month", MONTH,
                                       "--reports", str(reports)])
    assert result.exit_code == 0, result.output
    return json.loads((reports / "grp" / MONTH / "group.json").read_text())


def _expected(alpha_url: str, beta_url: str) -> dict:
    """The group's figures by hand from each site's raw counters, factors and ledger rows."""
    tz = load_plant(REPO / "config" / "plant.demo.yaml").site.tz
    start, end = datetime(2026, 10, 1, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz)
    grid = {"alpha": _counter(alpha_url, "a-inc", end) - _counter(alpha_url, "a-inc", start),
            "beta": _counter(beta_url, "b-inc", end) - _counter(beta_url, "b-inc", start)}
    green = {"alpha": 300_000.0, "beta": 200_000.0}  # each site's own October trade, once
    assert all(grid[s] > green[s] for s in grid)  # all of it matches grid import
    scope1 = GAS_M3 * GAS_KG_PER_M3
    location = sum(grid[s] * LOCATION[s] for s in grid)
    market = sum((grid[s] - green[s]) * RESIDUAL for s in grid)
    output_t = sum(100 + d for d in range(1, 32)) + sum(80 + d for d in range(1, 32))  # roll-a + roll-b, not cast-a
    return {"grid_import_kwh": sum(grid.values()), "scope1_kgco2e": scope1, "scope2_location_kgco2e": location,
            "scope2_market_kgco2e": market, "green_monthly_kwh": 500_000.0, "production_t": output_t,
            "location_t_per_t": (scope1 + location) / 1000 / output_t,
            "market_t_per_t": (scope1 + market) / 1000 / output_t}


def _check(doc: dict, expected: dict) -> None:
    for key in ("grid_import_kwh", "scope1_kgco2e", "scope2_location_kgco2e", "scope2_market_kgco2e",
                "green_monthly_kwh", "production_t"):
        assert doc[key] == pytest.approx(expected[key], rel=1e-9), key
    assert doc["intensity"]["location_t_per_t"] == pytest.approx(expected["location_t_per_t"], rel=1e-9)
    assert doc["intensity"]["market_t_per_t"] == pytest.approx(expected["market_t_per_t"], rel=1e-9)
    assert doc["intensity"]["target_t_per_t"] == 0.32  # the group pathway for 2026
    # the 80 certificates of alpha's roof PV are alpha's only, though beta's ledger copy lists them
    by_site = {s["site"]: s for s in doc["sites"]}
    assert by_site["alpha"]["certificates_kwh"] == 380_000.0 and by_site["beta"]["certificates_kwh"] == 200_000.0
    assert doc["certificates_kwh"] == 580_000.0
    assert doc["ledger_entries"] == {"alpha": ["demo-2026-10-wind", "demo-2026-10-pv"],
                                     "beta": ["beta-2026-10-wind"]}
    consumption = sum(s["consumption_kwh"] for s in doc["sites"])
    renewable = sum(s["green_monthly_kwh"] + s["pv_self_kwh"] for s in doc["sites"])
    assert by_site["beta"]["pv_self_kwh"] > 0
    assert doc["renewable_share"] == pytest.approx(renewable / consumption)
    assert by_site["alpha"]["location_factor"] == "mee-central-2023"
    assert by_site["beta"]["location_factor"] == "mee-national-2023"
    assert all(s["reconciled"] is True and s["coverage_min"] == 1.0 for s in doc["sites"])


def test_shape_b_two_influxdb_servers(sites, influx_url, second_influx):
    tmp, alpha, beta_b, _ = sites
    group = _group_file(tmp / "b", alpha, beta_b)
    result = CliRunner().invoke(main, ["check-config", str(group)])
    assert result.exit_code == 0 and "group grp, 2 sites" in result.output, result.output
    reports = tmp / "b" / "reports"
    first = _group_rollup(group, reports)
    _check(first, _expected(influx_url, second_influx))
    for site in ("alpha", "beta"):  # each site's row carries its own rollup's provenance
        doc = json.loads((reports / site / MONTH / "rollup.json").read_text())
        row = next(s for s in first["sites"] if s["site"] == site)
        assert row["config_sha256"] == doc["provenance"]["config_sha256"]
        assert row["scope2_location_kgco2e"] == doc["scope2_kgco2e"]["location"]
    assert first["sites"][0]["config_sha256"] == load_plant(alpha).config_sha256
    assert {p.name for p in (reports / "grp" / MONTH).iterdir()} == {"report.html", "report.zh.html", "group.xlsx",
                                                                      "group.zh.xlsx", "group.json"}
    zh = (reports / "grp" / MONTH / "report.zh.html").read_text()
    # the group's three charts, its plan page's, then its EnPI and metering sections' (no metal ledger here)
    assert zh.count("<svg") == 6 and 'id="chart-enpi"' in zh and 'id="metal"' in zh
    assert "<h1>测试集团：2026年" in zh and "<th>范围一排放 (t CO2e)</th>" in zh
    html = (reports / "grp" / MONTH / "report.html").read_text()
    assert html.count("<svg") == 6 and "测试集团" in html
    assert '<h2 id="plan">集团规划目标：两园区合并</h2>' in zh and '<h2 id="plan">Group plan' in html
    from openpyxl import load_workbook

    sheet = load_workbook(reports / "grp" / MONTH / "group.xlsx")["Sites"]
    assert [sheet.cell(r, 1).value for r in (2, 3)] == ["alpha", "beta"]


def _numbers(doc: dict) -> dict:
    """A group document without its run dates."""
    return {**{k: v for k, v in doc.items() if k != "as_of"},
            "sites": [{k: v for k, v in site.items() if k != "as_of"} for site in doc["sites"]]}


def test_shape_a_one_central_influxdb(sites, influx_url):
    tmp, alpha, _, beta_a = sites
    group = _group_file(tmp / "a", alpha, beta_a)
    doc = _group_rollup(group, tmp / "a" / "reports")
    _check(doc, _expected(influx_url, influx_url))
    # `plantems group analyze`'s job on Nov 1 redoes October: re-running the month gives the same numbers
    from plantems.analytics.group_job import GroupMonthly
    from plantems.group import load_group

    nov_1 = datetime(2026, 11, 1, 3, tzinfo=load_plant(alpha).site.tz).timestamp()
    GroupMonthly(load_group(group), tmp / "a" / "reports", clock=lambda: nov_1).run()
    again = json.loads((tmp / "a" / "reports" / "grp" / MONTH / "group.json").read_text())
    assert again["as_of"] == "2026-11-01" and _numbers(again) == _numbers(doc)
    # each site's points side by side in one server; one site's recompute never replaced the other's
    points = rows(influx_url, "grp_derived", "SELECT kgco2e FROM scope2 WHERE area = 'site' AND method = 'location' "
                                             "GROUP BY site")
    assert len(points) == 2
    assert {p["site"]: p["kgco2e"] for p in points} == pytest.approx(
        {s["site"]: s["scope2_location_kgco2e"] for s in doc["sites"]})


def test_a_ledger_row_claimed_by_both_sites_is_refused(sites, tmp_path):
    _, alpha, beta_b, _ = sites
    beta = tmp_path / "beta"
    shutil.copytree(beta_b.parent, beta, ignore=shutil.ignore_patterns("spool*"))
    # beta claims 50 of alpha's wind certificates as its own
    claimed = ALPHA_ROWS.splitlines()[0].split(",")
    claimed[0:4] = ["beta-stolen", "beta", "green_trade", "50"]
    claimed[5] = claimed[4][:-4] + "0050"
    (beta / "green_power.csv").write_text(_ledger(BETA_ROW + ",".join(claimed) + "\n"))
    group = _group_file(tmp_path, alpha, beta / "plant.yaml")
    reports = tmp_path / "reports"
    for args in (["check-config", str(group)],
                 ["group", "rollup", "--group", str(group), "--month", MONTH, "--reports", str(reports)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert (f"{beta / 'green_power.csv'}:3 entry 'beta-stolen'" in result.output
                and "site 'alpha'" in result.output and "claimed twice" in result.output), result.output
    assert not reports.exists()  # refused before anything is computed


def test_group_file_errors_name_file_line_and_rule(sites, tmp_path):
    _, alpha, beta_b, _ = sites
    group = tmp_path / "group.yaml"
    group.write_text(f"group: {{id: alpha}}\nsites:\n  - plant: {alpha}\n  - {{plant: {beta_b}, output_lines: [x]}}\n"
                     f"  - plant: {tmp_path}/missing.yaml\n")
    result = CliRunner().invoke(main, ["check-config", str(group)])
    assert result.exit_code == 2
    assert f"{group}:3 site 1: site id 'alpha' equals the group id" in result.output
    assert f"{group}:4 site 2: output_lines = ['x']: ['x'] not under the production_lines" in result.output
    assert f"{group}:5 site 3: plant = '{tmp_path}/missing.yaml': no such file" in result.output
    group.write_text("group: {id: g, colour: red}\nsites: []\n")
    result = CliRunner().invoke(main, ["check-config", "--group", str(group)])
    assert result.exit_code == 2
    assert f"{group}:1 group 'g': colour = 'red': unknown key" in result.output, result.output
    assert f"{group}:2: sites: a group lists at least one plant file" in result.output, result.output


def _doc(site: str, *, grid: float, pv_self: float, green: float, certificates: float, by_line: dict[str, float],
         entries: tuple[str, ...], output_lines: tuple[str, ...]) -> dict:
    """A minimal rollup.json of a site (the fields the group reads)."""
    consumption = grid + pv_self
    return {"site": site, "month": MONTH, "as_of": "2026-11-02", "grid_import_kwh": grid, "grid_export_kwh": 0.0,
            "pv_generation_kwh": pv_self, "pv_self_kwh": pv_self, "consumption_kwh": consumption,
            "scope2_kgco2e": {"location": grid * 0.5, "market": (grid - green) * 0.6, "market_hourly": grid * 0.6},
            "scope1_kgco2e": {"furnace": 1000.0}, "green_kwh": {"monthly": green, "hourly": 0.0},
            "certificates_kwh": certificates, "poor_coverage": [], "reconciliation": None,
            "provenance": {"config_sha256": f"sha-{site}", "coverage_per_meter": {"inc": 1.0},
                           "site_output": {"output_lines": list(output_lines), "production_t_by_line": by_line},
                           "location_factor": {"id": "loc", "provisional": False},
                           "residual_factor": {"id": "res", "provisional": False}, "tariff": {"id": "t"},
                           "ledger_entries_used": list(entries[:1]),
                           "ledger_entries_excluded": [{"entry_id": e} for e in entries[1:]]}}


def _targets():
    from plantems.targets import load_targets

    return load_targets(REPO / "config" / "targets.yaml")


def test_consolidation_sums_numerators_and_refuses_an_instrument_counted_twice():
    from datetime import date

    from plantems.analytics.group import GroupError, consolidate

    a = _doc("a", grid=1000.0, pv_self=0.0, green=500.0, certificates=2000.0, by_line={"cast": 10.0, "roll": 8.0},
             entries=("w1", "pv1"), output_lines=("roll",))
    b = _doc("b", grid=3000.0, pv_self=1000.0, green=0.0, certificates=0.0, by_line={"roll": 2.0},
             entries=(), output_lines=("roll",))
    kwargs = {"group": "g", "name": "G", "name_zh": "", "month": MONTH, "as_of": date(2026, 11, 2),
              "targets": _targets()}
    doc = consolidate(docs=[a, b], output_lines={}, **kwargs).to_json()
    # renewable share of the group: (500 + 1000) / (1000 + 4000), not the mean of 0.5 and 0.25
    assert doc["renewable_share"] == pytest.approx(1500 / 5000)
    # a's 2,000 kWh of certificates count only up to its own 1,000 kWh consumption
    assert doc["certificate_share"] == pytest.approx(1000 / 5000)
    assert doc["production_t"] == 10.0  # roll lines only
    assert doc["intensity"]["location_t_per_t"] == pytest.approx((2000 + 500 + 1500) / 1000 / 10)
    assert doc["intensity"]["market_t_per_t"] == pytest.approx((2000 + 300 + 1800) / 1000 / 10)
    # the group may count another line of a site (e.g. cast metal sold, not rolled on)
    assert consolidate(docs=[a, b], output_lines={"a": ("cast",)}, **kwargs).production_t == 12.0
    missing = _doc("b", grid=1.0, pv_self=0.0, green=0.0, certificates=0.0, by_line={}, entries=(),
                   output_lines=("roll",))
    none = consolidate(docs=[a, missing], output_lines={}, **kwargs).to_json()
    assert none["intensity"]["location_t_per_t"] is None and none["sites_without_output"] == ["b"]
    twice = _doc("b", grid=1.0, pv_self=0.0, green=0.0, certificates=0.0, by_line={}, entries=("w1",),
                 output_lines=("roll",))
    with pytest.raises(GroupError, match="ledger entry 'w1' is counted by site a and site b"):
        consolidate(docs=[a, twice], output_lines={}, **kwargs)
    with pytest.raises(GroupError, match="site a: given twice"):
        consolidate(docs=[a, a], output_lines={}, **kwargs)


def test_one_ledger_file_refuses_a_row_claimed_by_both_sites(tmp_path):
    from plantems.ledger import load_ledger
    from plantems.yamlconf import ConfigError

    first = ALPHA_ROWS.splitlines()[0]
    second = first.replace("demo-2026-10-wind", "beta-copy").replace(",alpha,", ",beta,")
    path = tmp_path / "green_power.csv"
    path.write_text(_ledger(first + "\n" + second + "\n"))
    with pytest.raises(ConfigError) as caught:
        load_ledger(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:3 entry 'beta-copy'") and "site 'alpha'; this row: site 'beta'" in problem


def test_an_unreachable_site_server_fails_the_group_month(sites, tmp_path, second_influx):
    _, alpha, beta_b, _ = sites
    beta = tmp_path / "beta"
    shutil.copytree(beta_b.parent, beta, ignore=shutil.ignore_patterns("spool*"))
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: the site's server is down or the WAN is cut
    (beta / "plant.yaml").write_text((beta / "plant.yaml").read_text().replace(second_influx, dead))
    group = _group_file(tmp_path, beta / "plant.yaml", alpha)
    reports = tmp_path / "reports"
    result = CliRunner().invoke(main, ["group", "rollup", "--group", str(group), "--month", MONTH,
                                       "--reports", str(reports)])
    assert result.exit_code == 1, result.output
    assert f"group rollup {MONTH} failed" in result.output and dead in result.output, result.output
    assert not (reports / "grp").exists()  # the group month is never stated without a site
    from plantems.analytics.group_job import GroupMonthly
    from plantems.group import load_group
    from plantems.influx import InfluxError

    job = GroupMonthly(load_group(group), reports, clock=lambda: datetime(2026, 11, 1, 3).timestamp())
    with pytest.raises(InfluxError, match=dead):
        job.run()
    assert job.pending == {MONTH}  # redone at the next attempt


def test_the_demo_group_file_is_valid(tmp_path):
    """config/group.demo.yaml with its sites (a stand-in for Changde until its plant file is in config/)."""
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    changde = folder / "plant.changde.yaml"
    if not changde.exists():
        changde.write_text((folder / "plant.demo.yaml").read_text().replace("id: changsha", "id: changde"))
    result = CliRunner().invoke(main, ["check-config", str(folder / "group.demo.yaml")])
    assert result.exit_code == 0, result.output
    assert "group hunan-al, 2 sites" in result.output
    assert "site changsha (Asia/Shanghai)" in result.output and "site changde" in result.output
