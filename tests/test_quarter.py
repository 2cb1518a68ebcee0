"""`plantems quarter` end to end on a plant with hand-made days: verified savings, a fuel switch, EnPIs.

Energy follows tonnage exactly (kWh = a + b x t) plus a noise orthogonal to the intercept and the
tonnage, so the least-squares baseline is exactly (a, b) and the savings are known by hand."""

import json
import warnings
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from plantems.analytics.quarter import quarter_bounds
from plantems.analytics.quarter_job import previous_quarter
from plantems.cli import main
from plantems.config import load_plant
from plantems.influx import V1Writer, init_databases
from plantems.localservers import free_port
from tests.support import copy_reference_data, write_plant
from tests.test_enpi_job import BODY as ENPI_BODY

TZ = ZoneInfo("Asia/Shanghai")
BODY = ENPI_BODY + ("  - {{id: cleaner, area: util, kind: other, meter: eastron_sdm630, gateway: gw, unit_id: 4,"
                   " rated_kw: 100}}\n")
FIRST, GO_LIVE, LAST = date(2026, 8, 1), date(2026, 10, 1), date(2026, 10, 31)
MEASURES = """\
measures:
  - id: comp-pressure
    name: Compressor pressure lowered
    name_zh: 空压机降压运行
    type: operational
    boundary: {devices: [comp]}
    go_live: 2026-10-01
    ipmvp_option: B
    baseline: {start: 2026-08-01, end: 2026-09-30}
    claimed: {kwh_per_year: 73000, source: "test plan"}
  - id: furnace-switch
    name: Gas furnace replaced by an electric cleaner
    type: fuel_switch
    boundary: {lines: [cast-1]}
    go_live: 2026-10-01
    ipmvp_option: C
    baseline: {start: 2026-08-01, end: 2026-09-30}
    claimed: {gas_m3_per_year: 400000, kwh_per_year: -100000, t_co2e_per_year: 800, source: "test plan"}
"""
LOCATION, GAS_KG = 0.5271, 2.162


def tonnes(day: date) -> float:
    """Groups of four days t1, t2, t2, t1: with noise +e, -e, +e, -e the noise is orthogonal to t."""
    k = (day - FIRST).days
    t1 = 80.0 + 5 * ((k // 4) % 7)
    return t1 + 30.0 if k % 4 in (1, 2) else t1


def noise(day: date) -> float:
    k = (day - FIRST).days
    if k >= 60:  # whole groups of four only (Aug-Sep has 61 days)
        return 0.0
    return 10.0 if k % 4 in (0, 2) else -10.0


def comp_baseline_kwh(day: date) -> float:
    return 500.0 + 4.0 * tonnes(day)


def days() -> list[date]:
    return [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]


def daily_kwh(day: date) -> dict[str, float]:
    after = day >= GO_LIVE
    comp = 0.9 * comp_baseline_kwh(day) if after else comp_baseline_kwh(day) + noise(day)
    cleaner = 200.0 + tonnes(day) if after else 0.0
    mill = 1000.0 + 2.0 * 0.9 * tonnes(day) + noise(day)
    return {"comp": comp, "cleaner": cleaner, "mill": mill, "inc": comp + cleaner + mill + 50.0}


def gas_m3(day: date) -> float:
    return 0.0 if day >= GO_LIVE else 1000.0 + 10.0 * tonnes(day) + noise(day)


@pytest.fixture(scope="module")
def quarter_plant(tmp_path_factory, influx_url):
    tmp = tmp_path_factory.mktemp("quarter")
    path = write_plant(tmp, influx_url=influx_url, db="quarterdb", body=BODY.format(gw=free_port(), inc=free_port()),
                       init=False)
    path.write_text(path.read_text().replace("timezone: Asia/Shanghai}",
                                             "timezone: Asia/Shanghai, output_lines: [roll-1]}"))
    init_databases(load_plant(path).influxdb)
    copy_reference_data(tmp)
    (tmp / "measures.yaml").write_text(MEASURES)
    plant = load_plant(path)
    writer = V1Writer(plant.influxdb)
    energy, fuel, production = [], [], ["date,line,output_t"]
    counter = 5000.0
    for day in days():
        noon = int(datetime(day.year, day.month, day.day, 12, tzinfo=TZ).timestamp()) * 10**9
        for device, kwh in daily_kwh(day).items():
            energy.append(f"energy_15m,device={device},site=testsite,tou=flat energy_kwh={kwh!r},coverage=1 {noon}")
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=TZ).timestamp())
        for hour in range(24):  # the furnace's gas counter, hourly, the day's gas spread evenly
            fuel.append(f"fuel,area=util,device=furnace-1,kind=furnace,site=testsite gas_m3={counter!r} "
                        f"{(midnight + 3600 * hour) * 10**9}")
            counter += gas_m3(day) / 24
        production += [f"{day},cast-1,{tonnes(day)}", f"{day},roll-1,{0.9 * tonnes(day)}"]
    midnight = int(datetime(2026, 11, 1, tzinfo=TZ).timestamp())
    fuel.append(f"fuel,area=util,device=furnace-1,kind=furnace,site=testsite gas_m3={counter!r} {midnight * 10**9}")
    writer.write("quarterdb_derived", energy)
    writer.write("quarterdb", fuel)
    (tmp / "production.csv").write_text("\n".join(production) + "\n")
    result = CliRunner().invoke(main, ["production", "import", "--config", str(path), str(tmp / "production.csv")])
    assert result.exit_code == 0, result.output
    return path, tmp


def test_quarter_bounds_and_schedule():
    assert quarter_bounds("2026Q4") == (date(2026, 10, 1), date(2027, 1, 1))
    assert quarter_bounds("2026q1") == (date(2026, 1, 1), date(2026, 4, 1))
    with pytest.raises(ValueError, match="must be YYYYQn"):
        quarter_bounds("2026Q5")
    assert previous_quarter(date(2027, 1, 1)) == "2026Q4" and previous_quarter(date(2026, 7, 1)) == "2026Q2"


def run_quarter_cli(path, reports, monkeypatch) -> dict:
    from plantems import cli

    class Fixed(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 11, 1, 9, tzinfo=tz)

    monkeypatch.setattr(cli, "datetime", Fixed)  # the report is run on Nov 1: October is its last day
    result = CliRunner().invoke(main, ["quarter", "--config", str(path), "--quarter", "2026Q4",
                                       "--reports", str(reports)])
    assert result.exit_code == 0, result.output
    return json.loads((reports / "quarter" / "2026Q4" / "quarter.json").read_text())


def test_verified_savings_and_fuel_switch_by_hand(quarter_plant, tmp_path, monkeypatch):
    path, _ = quarter_plant
    report = run_quarter_cli(path, tmp_path, monkeypatch)
    october = [d for d in days() if d >= GO_LIVE]
    measures = {m["id"]: m for m in report["measures"]}
    comp = measures["comp-pressure"]
    (power,) = comp["carriers"]
    assert power["verified"] and power["baseline"]["valid"]
    assert power["baseline"]["coefficients"]["intercept"]["value"] == pytest.approx(500.0, rel=1e-9)
    assert power["baseline"]["coefficients"]["output_t"]["value"] == pytest.approx(4.0, rel=1e-9)
    expected = sum(0.1 * comp_baseline_kwh(d) for d in october)
    assert power["saving"] == pytest.approx(expected, rel=1e-9)
    assert 0 < power["uncertainty_68pct"] < 0.5 * expected
    assert comp["claimed"]["kwh"] == pytest.approx(73000 * 31 / 365)
    assert comp["verified_t_co2e"] == pytest.approx(expected * LOCATION / 1000, rel=1e-9)
    # the fuel switch on the casting line: gas removed, its line's electricity changed (compressor - cleaner)
    switch = measures["furnace-switch"]
    carriers = {c["carrier"]: c for c in switch["carriers"]}
    gas_saved = sum(1000.0 + 10.0 * tonnes(d) for d in october)
    kwh_saved = sum(0.1 * comp_baseline_kwh(d) - (200.0 + tonnes(d)) for d in october)
    assert carriers["gas_m3"]["saving"] == pytest.approx(gas_saved, rel=1e-6)
    assert carriers["electricity_kwh"]["saving"] == pytest.approx(kwh_saved, rel=1e-6)
    assert kwh_saved < 0  # the cleaner adds more than the compressor saves
    assert switch["scope1_removed_t_co2e"] == pytest.approx(gas_saved * GAS_KG / 1000, rel=1e-6)
    assert switch["scope2_added_t_co2e"] == pytest.approx(-kwh_saved * LOCATION / 1000, rel=1e-6)
    assert switch["verified_t_co2e"] == pytest.approx((gas_saved * GAS_KG + kwh_saved * LOCATION) / 1000, rel=1e-6)


def test_enpis_against_baseline_and_completeness(quarter_plant, tmp_path, monkeypatch):
    path, _ = quarter_plant
    report = run_quarter_cli(path, tmp_path, monkeypatch)
    october = [d for d in days() if d >= GO_LIVE]
    enpis = {e["entity"]: e for e in report["enpis"]}
    site = enpis["site"]
    kwh = sum(daily_kwh(d)["inc"] for d in october)
    rolled = sum(0.9 * tonnes(d) for d in october)
    assert site["kwh_per_t"] == pytest.approx(kwh / rolled, rel=1e-9)
    assert site["t_co2e_per_t"] == pytest.approx(kwh * LOCATION / 1000 / rolled, rel=1e-9)  # no gas in October
    assert site["target_t_co2e_per_t"] == 0.32
    assert report["pathway"]["status"] == ("on track" if site["t_co2e_per_t"] <= 0.32 else "off track")
    # the site's baseline (Aug-Sep, before any measure): inc = 1550 + (4 + 1.8) t_cast + noise; per rolled
    # tonne t_cast = t_roll / 0.9, so expected = 1550 + 5.8 / 0.9 x t_roll on each October day
    expected = sum(1550.0 + 5.8 / 0.9 * 0.9 * tonnes(d) for d in october)
    assert site["expected_kwh_per_t"] == pytest.approx(expected / rolled, rel=1e-9)
    assert site["improvement_kwh"] == pytest.approx(expected - kwh, rel=1e-9)
    assert site["cusum_kwh"][-1][1] == pytest.approx(kwh - expected, rel=1e-9)
    assert report["completeness"]["days_with_energy"] == 31 == report["completeness"]["days_expected"]
    assert report["provenance"]["enpi_baseline"] == ["2026-08-01", "2026-09-30"]
    assert report["provenance"]["location_factor"].startswith("mee-central-2023 (0.5271 kg/kWh")
    html = (tmp_path / "quarter" / "2026Q4" / "report.html").read_text()
    assert "comp-pressure" in html and "<svg" in html and report["pathway"]["status"] in html
    from openpyxl import load_workbook

    book = load_workbook(tmp_path / "quarter" / "2026Q4" / "quarter.xlsx")
    assert book.sheetnames == ["EnPIs", "Measures", "Claimed vs verified", "Baseline log", "Provenance"]


def test_the_quarterly_report_in_chinese(quarter_plant, tmp_path, monkeypatch):
    """zh-CN beside English (issue 14 item 5): headings, columns, measures by name_zh, the pathway status and
    measure types translated, charts drawn as paths with a CJK font; Chromium finds no missing glyph."""
    from openpyxl import load_workbook

    from tests.browser import missing_glyphs, rendered_fonts

    path, _ = quarter_plant
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_quarter_cli(path, tmp_path, monkeypatch)
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []  # no box in a chart
    folder = tmp_path / "quarter" / "2026Q4"
    assert {p.name for p in folder.iterdir()} == {"report.html", "report.zh.html", "quarter.xlsx", "quarter.zh.xlsx",
                                                   "quarter.json"}
    zh = (folder / "report.zh.html").read_text()
    assert '<html lang="zh-CN">' in zh and "<h1>能源绩效与核证节能量：2026年第4季度（testsite）</h1>" in zh
    assert "<th>对象</th><th>产量 t</th>" in zh and "<td>厂区</td>" in zh and "空压机降压运行" in zh
    assert {"on track": "达标", "off track": "未达标"}[report["pathway"]["status"]] in zh
    assert "<td>运行优化</td>" in zh and "<td>燃料替代</td>" in zh and "<th>是否已核证</th>" in zh
    assert 'id="chart-cusum"' in zh and 'id="chart-savings"' in zh
    sheets = ["能源绩效参数", "节能措施", "申报与核证", "基准记录", "数据来源"]
    assert load_workbook(folder / "quarter.zh.xlsx").sheetnames == sheets
    rendered = rendered_fonts(folder / "report.zh.html", tmp_path / "profile")
    assert any(r.text == "减排路径进展" for r in rendered) and missing_glyphs(rendered) == []
    # one language alone
    only = tmp_path / "only"
    result = CliRunner().invoke(main, ["quarter", "--config", str(path), "--quarter", "2026Q4", "--reports", str(only),
                                       "--lang", "zh"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (only / "quarter" / "2026Q4").iterdir()) == ["quarter.json", "quarter.zh.xlsx",
                                                                               "report.zh.html"]


def test_an_invalid_baseline_is_flagged_and_never_counted():
    """Energy that does not follow tonnage: the baseline fails its tests, the saving is shown as not
    verified with the reason, and no verified t CO2e comes of it."""
    from plantems.analytics.enpi_job import CALORIFIC
    from plantems.analytics.quarter import BoundaryDay, QuarterFactors, verify_measure
    from plantems.measures import Boundary, Measure

    measure = Measure(id="m", name="m", type="retrofit", boundary=Boundary(devices=("comp",)),
                      go_live=date(2026, 10, 1), ipmvp_option="B",
                      baseline={"start": date(2026, 8, 1), "end": date(2026, 9, 30)},
                      claimed={"kwh_per_year": 1000, "source": "test"})
    scatter = [500.0, 900.0, 400.0, 1000.0, 600.0, 300.0, 950.0, 450.0, 700.0, 350.0, 800.0, 550.0]
    base = [BoundaryDay(date(2026, 8, 1) + timedelta(days=k), scatter[k], 0.0, 100.0 + 10 * (k % 3))
            for k in range(12)]
    report = [BoundaryDay(date(2026, 10, 1) + timedelta(days=k), 500.0, 0.0, 110.0) for k in range(5)]
    result = verify_measure(measure, base, report, QuarterFactors(LOCATION, GAS_KG, CALORIFIC))
    (power,) = result.carriers
    assert power.baseline is not None and not power.baseline.validity.valid
    assert not power.verified and power.problem.startswith("baseline failed its validity tests: model F-test p")
    assert result.verified_t_co2e is None and result.to_json()["carriers"][0]["verified"] is False


def test_a_non_routine_adjustment_is_spread_over_its_month():
    """+3,100 kWh/month from Oct 5 (a new load the baseline does not know): 100 kWh on each October day."""
    from plantems.analytics.enpi_job import CALORIFIC
    from plantems.analytics.quarter import BoundaryDay, QuarterFactors, verify_measure
    from plantems.measures import Boundary, Measure

    measure = Measure(id="m", name="m", type="operational", boundary=Boundary(devices=("comp",)),
                      go_live=date(2026, 10, 1), ipmvp_option="B",
                      baseline={"start": date(2026, 8, 1), "end": date(2026, 9, 30)},
                      claimed={"kwh_per_year": 1000, "source": "test"},
                      non_routine_adjustments=[{"start": date(2026, 10, 5), "kwh_per_month": 3100,
                                                "note": "strapping machine"}])
    base = [BoundaryDay(d, comp_baseline_kwh(d) + noise(d), 0.0, tonnes(d)) for d in days() if d < GO_LIVE]
    october = [d for d in days() if d >= GO_LIVE][:10]
    report = [BoundaryDay(d, 0.9 * comp_baseline_kwh(d), 0.0, tonnes(d)) for d in october]
    result = verify_measure(measure, base, report, QuarterFactors(LOCATION, GAS_KG, CALORIFIC))
    (power,) = result.carriers
    assert power.verified
    # in force in October (from the 5th): the month's whole figure (plantems.measures), 100 kWh a day
    assert power.saving == pytest.approx(sum(0.1 * comp_baseline_kwh(d) for d in october) + 10 * 100.0, rel=1e-9)
    assert power.non_routine_by_month == {"2026-10": pytest.approx(1000.0)}
    assert power.to_json()["non_routine_notes"] == ["strapping machine"]
