"""Monthly rollup end to end: a back-filled month -> energy_15m -> scope2 points and report files."""

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantems.cli import main
from plantems.config import load_plant
from plantems.influx import V1Writer, init_databases
from plantems.localservers import free_port
from plantems.simulator.run import backfill
from tests.support import REPO, copy_reference_data, drop_simulated, rows, write_plant
from tests.test_simulator import BODY

MONTH = "2026-10"


@pytest.fixture(scope="module")
def month_plant(tmp_path_factory, influx_url):
    tmp = tmp_path_factory.mktemp("rollup")
    body = BODY.format(gw=free_port(), inc=free_port(), pv=free_port()).replace(
        "rated_kw: 250}", "rated_kw: 250, shiftable: true}") + (
        "  - {id: furnace-1, area: util, kind: furnace, meter: generic_gas_flow, gateway: gw, unit_id: 9,"
        " max_flow_m3h: 150}\n"
        "  - {id: air-1, area: util, kind: air_flow, meter: generic_air_flow, gateway: gw, unit_id: 10,"
        " compressors: [comp]}\n"
        "demand:\n  groups: [{id: grid, meters: [inc], limit_kw: 3000}]\n")
    body = ("production_lines:\n  - {id: cast-1, name: Caster line, areas: [util]}\n"
            "  - {id: roll-1, name: Cold rolling, areas: [roll]}\n") + body
    path = write_plant(tmp, influx_url=influx_url, db="rollupdb", body=body, init=False)
    # cast then rolled: the site's product is the rolled coil (site.output_lines)
    path.write_text(path.read_text().replace("timezone: Asia/Shanghai}",
                                             "timezone: Asia/Shanghai, output_lines: [roll-1]}"))
    init_databases(load_plant(path).influxdb)
    copy_reference_data(tmp)
    (tmp / "green_power.csv").write_text(
        (REPO / "config" / "green_power.csv").read_text().replace(",changsha,", ",testsite,"))
    (tmp / "production.csv").write_text("date,line,output_t\n" + "".join(
        f"2026-10-{d:02d},cast-1,{100 + d}\n2026-10-{d:02d},roll-1,{90 + d}\n" for d in range(1, 32))
        + "2026-11-01,cast-1,999\n")
    plant = load_plant(path)
    end = datetime(2026, 11, 1, 1, 0, tzinfo=plant.site.tz).timestamp()
    backfill(plant, V1Writer(plant.influxdb), days=32, end_s=end, progress=False)
    # the furnace's gas counter: 100 Nm3 per hour, read every 10 minutes, wrapping at 2^32 x 0.1 on Oct 15
    t0 = int(datetime(2026, 9, 30, 22, tzinfo=plant.site.tz).timestamp())
    wrap = 2**32 * 0.1
    # and one glitch: Oct 20 13:50, the hour's last reading, a million Nm3 too high (above max_flow_m3h, rejected)
    glitch_k = (19 * 24 + 15) * 6 + 5
    fuel = [f"fuel,area=util,device=furnace-1,kind=furnace,site=testsite "
            f"gas_m3={((wrap - 33_000 + 100 * k / 6) % wrap) + (1e6 if k == glitch_k else 0.0)!r} "
            f"{(t0 + 600 * k) * 10**9}" for k in range(6 * 24 * 33)]
    drop_simulated(influx_url, "rollupdb", "fuel", "furnace-1")
    V1Writer(plant.influxdb).write("rollupdb", fuel)
    result = CliRunner().invoke(main, ["production", "import", "--config", str(path), str(tmp / "production.csv")])
    assert result.exit_code == 0 and "imported 63 production rows" in result.output, result.output
    return plant, path, tmp


def run_rollup(path: Path, reports: Path) -> dict:
    result = CliRunner().invoke(main, ["rollup", "--config", str(path), "--month", MONTH, "--reports", str(reports)])
    assert result.exit_code == 0, result.output
    return json.loads((reports / MONTH / "rollup.json").read_text())


def test_rollup_writes_the_months_enpi_points(month_plant, influx_url):
    """The site's month EnPI agrees with the rollup's intensity (same boundaries); every day is there."""
    _, path, tmp = month_plant
    first = run_rollup(path, tmp / "reports-enpi")
    (site,) = rows(influx_url, "rollupdb_derived", "SELECT * FROM enpi WHERE granularity = 'month' AND line = ''")
    assert site["output_t"] == first["production_t"] and site["production_completeness"] == 1
    assert site["t_co2e_per_t"] == pytest.approx(first["intensity"]["location_t_per_t"], rel=1e-9)
    assert site["kwh_per_t"] == pytest.approx(first["consumption_kwh"] / first["production_t"], rel=1e-9)
    days = rows(influx_url, "rollupdb_derived", "SELECT * FROM enpi WHERE granularity = 'day' AND line = 'cast-1'")
    assert len(days) == 31 and sum(d["output_t"] for d in days) == first["lines"]["cast-1"]["production_t"]
    # the report's EnPI section reads those points back: the site row of the month (and of the year to date,
    # October being the year's only month with data) states the same sums and production completeness
    enpi = first["sections"]["enpi"]
    month_site, ytd_site = enpi["month"][-1], enpi["year_to_date"][-1]
    assert month_site["entity"] == "" and month_site["output_t"] == site["output_t"]
    assert month_site["kwh_per_t"] == pytest.approx(site["kwh_per_t"], rel=1e-9)
    assert month_site["production_completeness"] == 1 and ytd_site["calendar_days"] == 304
    assert ytd_site["production_completeness"] == pytest.approx(31 / 304)


def counter_at(influx_url: str, device: str, t: datetime, field: str = "e_imp_kwh",
               measurement: str = "electrical") -> float:
    ns = int(t.timestamp()) * 10**9
    query = f"SELECT {field} FROM {measurement} WHERE device = '{device}' AND time = {ns}"
    (row,) = rows(influx_url, "rollupdb", query)
    return row[field]


def test_rollup_numbers_match_the_raw_counters(month_plant, influx_url):
    plant, path, tmp = month_plant
    first = run_rollup(path, tmp / "reports")
    tz = plant.site.tz
    start, end = datetime(2026, 10, 1, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz)
    grid = counter_at(influx_url, "inc", end) - counter_at(influx_url, "inc", start)
    pv_gen = counter_at(influx_url, "pv", end, "e_exp_kwh") - counter_at(influx_url, "pv", start, "e_exp_kwh")
    assert first["grid_import_kwh"] == pytest.approx(grid, rel=1e-9)
    assert first["pv_generation_kwh"] == pytest.approx(pv_gen, rel=1e-9)
    assert first["scope2_kgco2e"]["location"] == pytest.approx(grid * 0.5271, rel=1e-9)  # central China 2023
    assert first["green_kwh"]["monthly"] == 300_000.0  # the October wind trade in the ledger
    assert first["scope2_kgco2e"]["market"] == pytest.approx((grid - 300_000) * 0.6096, rel=1e-9)
    assert first["green_kwh"]["hourly"] <= first["green_kwh"]["monthly"]
    # the site's output is the rolled metal only (cast 3,596 t, rolled 3,286 t of it); November's row is not October's
    assert first["production_t"] == sum(90 + d for d in range(1, 32))
    # across the wrap, the glitch rejected
    assert first["scope1_kgco2e"] == {"furnace-1": pytest.approx(744 * 100 * 2.162, rel=1e-9)}
    scope1_t = 744 * 100 * 2.162 / 1000
    assert first["intensity"]["location_t_per_t"] == pytest.approx((scope1_t + grid * 0.5271 / 1000)
                                                                   / first["production_t"])
    assert first["intensity"]["target_t_per_t"] == 0.32
    cast = first["lines"]["cast-1"]  # util area: comp, caster, furnace (gas)
    util_location = sum(first["allocation"][d]["location_kg"] for d in ("comp", "caster"))
    assert cast["production_t"] == sum(100 + d for d in range(1, 32))  # a line's intensity uses its own output
    assert cast["scope1_kgco2e"] == pytest.approx(744 * 100 * 2.162, rel=1e-9)
    assert cast["intensity_location_t_per_t"] == pytest.approx((cast["scope1_kgco2e"] + util_location) / 1000
                                                               / cast["production_t"])
    assert first["lines"]["roll-1"]["production_t"] == first["production_t"]
    assert first["intensity"]["output_lines"] == ["roll-1"]
    provenance = first["provenance"]
    assert provenance["location_factor"]["id"] == "mee-central-2023" and provenance["location_factor"]["provisional"]
    assert provenance["tariff"]["status"] == "to-be-confirmed"
    _check_ledger(first)
    assert all(c == 1.0 for c in provenance["coverage_per_meter"].values())
    assert provenance["scope1"]["coverage"] == {"furnace-1": 1.0}  # the gas meter's completeness
    assert provenance["config_sha256"] == plant.config_sha256
    mill = next(m for m in first["meters"] if m["device"] == "mill")
    assert sum(mill[f"kwh_{p}"] for p in ("sharp", "peak", "flat", "valley")) == pytest.approx(mill["energy_kwh"])
    assert sum(mill[f"cost_{p}_cny"] for p in ("sharp", "peak", "flat", "valley")) == pytest.approx(mill["cost_cny"])
    assert mill["cost_valley_cny"] == pytest.approx(mill["kwh_valley"] * 0.3055)
    mill_kwh = counter_at(influx_url, "mill", end) - counter_at(influx_url, "mill", start)
    assert mill["energy_kwh"] == pytest.approx(mill_kwh)
    allocation = first["allocation"]
    assert sum(line["location_kg"] for line in allocation.values()) == pytest.approx(first["scope2_kgco2e"]["location"])
    points = rows(influx_url, "rollupdb_derived", "SELECT kgco2e, scope1_kgco2e FROM scope2 WHERE area = 'site' "
                                                  "GROUP BY method")
    assert {p["method"]: p["kgco2e"] for p in points} == pytest.approx(first["scope2_kgco2e"])
    assert all(p["scope1_kgco2e"] == pytest.approx(744 * 100 * 2.162) for p in points)  # for Scope 1+2 panels
    _check_opportunities(first, influx_url, start, end)
    again = run_rollup(path, tmp / "reports")  # re-running changes nothing
    assert again == first
    assert len(rows(influx_url, "rollupdb_derived", "SELECT kgco2e FROM scope2 WHERE area = 'site'")) == 3
    _check_files(tmp / "reports" / MONTH, first)


def _check_files(folder, report: dict) -> None:
    """Both languages' report and workbook beside the one CSV and JSON, with the same figures."""
    from openpyxl import load_workbook

    assert {p.name for p in folder.iterdir()} == {
        "report.html", "report.zh.html", "scope2.csv", "scope2.xlsx", "scope2.zh.xlsx", "rollup.json"}
    sheet = load_workbook(folder / "scope2.xlsx")["Scope 2"]
    assert sheet["E2"].value == pytest.approx(report["scope2_kgco2e"]["location"])
    sheet_zh = load_workbook(folder / "scope2.zh.xlsx")["范围二"]
    assert [sheet_zh["A1"].value, sheet_zh["C2"].value] == ["范围", "基于位置"]
    assert sheet_zh["E2"].value == pytest.approx(report["scope2_kgco2e"]["location"])


def _check_ledger(report: dict) -> None:
    """The October wind trade is matched; the roof PV's 80 non-tradable GECs count in the certificate
    share only, never against grid import."""
    provenance = report["provenance"]
    assert provenance["ledger_entries_used"] == ["demo-2026-10-wind"]
    assert [e["entry_id"] for e in provenance["ledger_entries_excluded"]] == ["demo-2026-10-pv"]
    assert report["certificates_kwh"] == 380_000.0
    assert report["certificate_share"] == pytest.approx(380_000 / report["consumption_kwh"])


def _check_opportunities(report: dict, influx_url: str, start: datetime, end: datetime) -> None:
    """The month's opportunities against the raw counters and energy_15m, and as points."""
    from plantems.analytics.reactive import monthly_pf

    found = report["opportunities"]
    comp = next(m for m in report["meters"] if m["device"] == "comp")
    (shift,) = found["load_shift"]  # the one shiftable device
    assert shift["device"] == "comp" and shift["move_to"] == "valley"
    assert shift["peak_sharp_kwh"] == pytest.approx(comp["kwh_peak"] + comp["kwh_sharp"])
    assert shift["saving_cny"] == pytest.approx(comp["cost_peak_cny"] + comp["cost_sharp_cny"]
                                                - shift["peak_sharp_kwh"] * 0.3055)
    window = f"time >= {int(start.timestamp()) * 10**9} AND time < {int(end.timestamp()) * 10**9}"
    (top,) = rows(influx_url, "rollupdb_derived", f"SELECT max(energy_kwh) FROM energy_15m WHERE device = 'inc' "
                                                  f"AND {window}")
    (demand,) = found["max_demand"]
    assert demand["max_kw"] == pytest.approx(top["max"] * 4)
    assert demand["contributors_kw"][0][0] == "mill"  # the largest load in that interval
    kvarh = {f: counter_at(influx_url, "inc", end, f) - counter_at(influx_url, "inc", start, f)
             for f in ("e_imp_kwh", "eq_imp_kvarh", "eq_exp_kvarh")}
    (reactive,) = found["reactive"]
    # one energy balance: the group (the site's only incomer) has the losses the allocation shows as unmetered
    assert reactive["losses_kwh_upper_bound"] == pytest.approx(report["allocation"]["unmetered"]["kwh"], rel=1e-9)
    assert report["unmetered_kwh"] == pytest.approx(report["consumption_kwh"] - sum(
        m["energy_kwh"] for m in report["meters"] if m["kind"] not in ("incomer", "feeder", "pv")), rel=1e-9)
    assert reactive["pf"] == monthly_pf(kvarh["e_imp_kwh"], kvarh["eq_imp_kvarh"], kvarh["eq_exp_kvarh"])
    assert reactive["capacitor_kvar_p95"] >= reactive["capacitor_kvar_average"] > 0
    (air,) = found["compressed_air"]  # the simulated header meter behind the compressor
    free_air_m3 = counter_at(influx_url, "air-1", end, "air_m3", "air") - counter_at(influx_url, "air-1", start,
                                                                                      "air_m3", "air")
    assert free_air_m3 > 0 and air["air_m3"] == pytest.approx(free_air_m3, rel=1e-9)
    assert air["air_coverage"] == 1.0  # recorded beside the figure: the meter reported all month
    assert air["specific_power_kw_per_m3min"] == pytest.approx(comp["energy_kwh"] / free_air_m3 * 60)
    assert 6.2 < air["specific_power_kw_per_m3min"] < 12  # loaded 6.2, plus the unloaded running
    (bar,) = rows(influx_url, "rollupdb", f"SELECT mean(air_bar) FROM air WHERE {window}")
    assert air["mean_bar"] == pytest.approx(bar["mean"])
    assert air["saving_kwh"] == pytest.approx(0.07 * 0.5 * comp["energy_kwh"])  # 7 % per bar, 0.5 bar lower
    points = rows(influx_url, "rollupdb_derived", "SELECT * FROM opportunity WHERE granularity = 'month'")
    assert {p["type"] for p in points} == {"load_shift", "max_demand", "reactive", "low_pf", "compressed_air"}
    daily = rows(influx_url, "rollupdb_derived", f"SELECT sum(energy_kwh) FROM opportunity WHERE "
                                                 f"granularity = 'day' AND type = 'load_shift' AND {window}")
    assert daily[0]["sum"] == pytest.approx(shift["peak_sharp_kwh"])  # the days add up to the month


def test_every_meter_reconciles_in_the_report_and_by_verify(month_plant, influx_url):
    plant, path, tmp = month_plant
    folder = tmp / "reports" / MONTH
    report = json.loads((folder / "rollup.json").read_text()) if folder.exists() else run_rollup(path, tmp / "reports")
    tz = plant.site.tz
    grid = counter_at(influx_url, "inc", datetime(2026, 11, 1, tzinfo=tz)) - counter_at(
        influx_url, "inc", datetime(2026, 10, 1, tzinfo=tz))
    recon = {m["device"]: m for m in report["reconciliation"]["meters"]}
    assert report["reconciliation"]["reconciled"] and recon["inc"]["counter_kwh"] == pytest.approx(grid, rel=1e-9)
    html = (folder / "report.html").read_text()
    assert 'id="reconciliation"' in html and "every meter reconciles" in html and "DIFFERS" not in html
    result = CliRunner().invoke(main, ["rollup", "--config", str(path), "--month", MONTH, "--verify"])
    assert result.exit_code == 0 and "every meter reconciles" in result.output, result.output


def test_report_renders_in_headless_chromium(month_plant, tmp_path):
    _, path, tmp = month_plant
    run_rollup(path, tmp / "reports2")
    html = tmp / "reports2" / MONTH / "report.html"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "install Debian's chromium (deploy/setup-debian.sh does)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", html.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False).stdout
    for chart in ("chart-daily", "chart-areas", "chart-emissions", "chart-intensity", "chart-share", "chart-coverage",
                  "chart-opportunities"):
        section = dom.split(f'id="{chart}"')[1].split("</figure>")[0]
        assert "<svg" in section and "<path" in section, chart
    assert "Provisional: mee-central-2023 (2023) stands in for 2026" in dom
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1100,1600", html.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 20_000


def test_provisional_month_is_restated_when_its_factor_is_published(month_plant):
    _, path, tmp = month_plant
    reports = tmp / "reports3"
    before = run_rollup(path, reports)
    assert before["provenance"]["location_factor"]["provisional"]
    factors = tmp / "emission_factors.yaml"
    original = factors.read_text()
    try:
        factors.write_text(original + (
            "  - {id: mee-central-2026, method: location, region: central_china, year: 2026, kg_per_unit: 0.5000,\n"
            "     status: verified, published: 2026-11-01, source: test publication}\n"))
        result = CliRunner().invoke(main, ["rollup", "--config", str(path), "--restate", "--reports", str(reports)])
        assert result.exit_code == 0 and "restated: 2026-10" in result.output, result.output
        after = json.loads((reports / MONTH / "rollup.json").read_text())
        assert after["provenance"]["location_factor"]["id"] == "mee-central-2026"
        assert not after["provenance"]["location_factor"]["provisional"]
        assert after["scope2_kgco2e"]["location"] == pytest.approx(after["grid_import_kwh"] * 0.5)
        assert after["provenance"]["restates"]["factors"]["location_factor"] == {"was": "mee-central-2023",
                                                                                 "now": "mee-central-2026"}
        assert after["provenance"]["restates"]["scope2_kgco2e"] == before["scope2_kgco2e"]
        assert "Restated: this report replaces" in (reports / MONTH / "report.html").read_text()
        again = CliRunner().invoke(main, ["rollup", "--config", str(path), "--restate", "--reports", str(reports)])
        assert "restated: nothing" in again.output  # the residual stays provisional, but has no successor
    finally:
        factors.write_text(original)
