"""The monthly report's plan sections (issues 13 and 14): EnPIs for the month and the year to date, metering
coverage and the purchased-metal ledger, in rollup.json and in both languages. Every expected value is worked
out by hand in the comments from the inputs written here."""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from pathlib import Path

import pytest

from plantems.analytics.report import write_report
from plantems.analytics.rollup import Rollup
from plantems.analytics.sections import EnpiMonth, compute_sections, enpi_figures, metered_kwh
from plantems.config import PlantConfig, load_plant
from plantems.metal import load_metal_ledger
from plantems.targets import load_targets
from tests import typed_fixture as fx
from tests.browser import missing_glyphs, rendered_fonts
from tests.support import REPO, write_plant
from tests.test_results_golden import month


def test_enpis_of_the_month_and_the_year_to_date_are_ratios_of_sums():
    def row(entity: str, when: str, kwh: float, kgce: float, t: float, out: float, days: float) -> EnpiMonth:
        return EnpiMonth(entity, when, kwh, 0.0, kgce, t, out, days)

    months = [row("roll-1", "2026-10", 100_000, 12_290, 50, 400, 31), row("roll-1", "2026-11", 90_000, 11_061, 45, 300,
                                                                          28),
              row("", "2026-11", 200_000, 24_580, 120, 300, 30), row("roll-1", "2025-11", 1e9, 1e9, 1e9, 1, 30),
              row("roll-1", "2026-12", 1e9, 1e9, 1e9, 1, 31)]  # another year and a later month: not counted
    this, ytd = enpi_figures(months, "2026-11")
    assert [e.entity for e in this] == ["roll-1", ""]  # lines first, the site last
    roll, site = this
    assert roll.kwh_per_t == pytest.approx(90_000 / 300) == pytest.approx(300.0)
    assert roll.kgce_per_t == pytest.approx(36.87) and roll.t_co2e_per_t == pytest.approx(0.15)
    assert roll.production_completeness == pytest.approx(28 / 30)
    assert site.kwh_per_t == pytest.approx(666.6667, rel=1e-6) and site.production_completeness == 1.0
    roll_ytd, site_ytd = ytd
    # (100,000 + 90,000) / (400 + 300) = 271.43 kWh/t, not the mean of 250 and 300
    assert roll_ytd.kwh_per_t == pytest.approx(190_000 / 700) and roll_ytd.kwh_per_t == pytest.approx(271.4286,
                                                                                                       rel=1e-6)
    assert roll_ytd.t_co2e_per_t == pytest.approx(95 / 700)
    # January to November 2026: 334 days, 59 with output
    assert roll_ytd.calendar_days == 334 and roll_ytd.production_completeness == pytest.approx(59 / 334)
    assert site_ytd.production_completeness == pytest.approx(30 / 334)  # the site's October has no point
    empty = enpi_figures([row("x", "2026-11", 10.0, 1.0, 1.0, 0.0, 0)], "2026-11")[0][0]
    assert empty.kwh_per_t is None and empty.t_co2e_per_t is None  # no output: no ratio


REGISTER = {
    "rated_kw: 10000}": "rated_kw: 10000, metering_level: site_boundary, accuracy_class: 0.5S,\n"
                        "     calibration_due: 2027-06-30}",
    "port: 504, rated_kw: 3000,": "port: 504, rated_kw: 3000, metering_level: major_equipment, "
                                  "calibration_due: 2026-10-31,",
    "port: 505, rated_kw: 3000}": "port: 505, rated_kw: 3000, metering_level: major_equipment,\n"
                                  "     calibration_due: 2027-01-31}",
    "port: 507, rated_kw: 200,": "port: 507, rated_kw: 200, metering_level: major_equipment, "
                                 "calibration_due: 2027-01-31,",
    "port: 506, rated_kw: 800}": "port: 506, rated_kw: 800, metering_level: site_boundary,\n"
                                 "     calibration_due: 2027-01-31}",
}
UNMETERED = """
unmetered_equipment:
  - {id: mill-2, name_zh: 二号冷轧机, area: roll, rated_kw: 2500}
  - {id: fan-1, area: cast, rated_kw: 132, manual_meter: true}
"""
LEDGER = """# test deliveries
delivery_id,site,supplier,delivered,tonnes,product,footprint_t_co2e_per_t,basis,evidence,factor_year,\
recycled_pre_pct,recycled_post_pct
d-oct,testsite,Smelter A,2026-10-20,200,primary_ingot,16.0,default_average,IAI 2023 China average,2023,,
d-nov-1,testsite,Smelter A,2026-11-03,100,primary_ingot,4.0,pcf,PCF-1 verified,2025,,
d-nov-2,testsite,Remelter B,2026-11-10,50,recycled_ingot,0.5,default_average,default 2024,2024,20,60
d-nov-3,testsite,Alloys C,2026-11-12,5,alloying_element,10.0,default_average,placeholder,2024,,
d-dec,testsite,Smelter A,2026-12-01,999,primary_ingot,16.0,pcf,PCF-2,2025,,
d-other,othersite,Smelter A,2026-11-05,999,primary_ingot,16.0,pcf,PCF-3,2025,,
"""


def _plant(tmp: Path) -> PlantConfig:
    body = fx.BODY.replace("{id: roll-1, name: Cold rolling,", "{id: roll-1, name: Cold rolling, name_zh: 冷轧线,"
                           ).replace("{id: mill,", "{id: mill, name_zh: 冷轧机一号,")
    for old, new in REGISTER.items():
        assert old in body, old
        body = body.replace(old, new)
    path = write_plant(tmp, influx_url="http://127.0.0.1:1", db="x", body=body + UNMETERED, init=False)
    path.write_text(path.read_text().replace("timezone: Asia/Shanghai}",
                                             "timezone: Asia/Shanghai, output_lines: [roll-1]}"))
    return load_plant(path)


def _with_sections(plant: PlantConfig, tmp: Path) -> Rollup:
    rollup = month(plant)
    ledger = tmp / "metal_purchases.csv"
    ledger.write_text(LEDGER)
    enpis = [EnpiMonth("roll-1", "2026-11", 90_000, 0.0, 11_061, 45, 300, 28), EnpiMonth("", "2026-11", 200_000,
                                                                                          0.0, 24_580, 120, 300, 30)]
    sections = compute_sections(plant, fx.MONTH, kwh_by_device=metered_kwh(plant, rollup.devices), enpi_months=enpis,
                                enpi_basis="calorific: GB/T 2589", metal=load_metal_ledger(ledger),
                                metal_ledger=str(ledger), targets=load_targets(REPO / "config" / "targets.yaml"))
    return dataclasses.replace(rollup, sections=sections)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> tuple[Rollup, Path]:
    tmp = tmp_path_factory.mktemp("sections")
    plant = _plant(tmp)
    rollup = _with_sections(plant, tmp)
    names = {**{d.id: d for d in plant.devices}, **{line.id: line for line in plant.production_lines}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(rollup, tmp / "out", names=names)
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []  # no box in any chart
    return rollup, tmp / "out"


def test_metering_coverage_against_the_required_rates(reports):
    s = reports[0].sections
    assert s is not None
    m = s.metering
    levels = {c.level.value: c for c in m.levels}
    # site boundary: inc-1, inc-2, pv all metered: 3/3
    assert (levels["site_boundary"].installed, levels["site_boundary"].required) == (3, 3)
    # major equipment: mill, caster, comp metered + fan-1 read by hand, of 5 (mill-2 unmetered): 80 % < 95 %
    major = levels["major_equipment"]
    assert (major.installed, major.manual, major.required, major.missing) == (4, 1, 5, ("mill-2",))
    assert major.rate == pytest.approx(0.8) and major.meets is False
    assert levels["sub_unit"].rate is None  # nothing registered at that level
    # collected by plantems: 3 + 3 of the 8 objects that need a meter
    assert m.auto_collection_rate == pytest.approx(6 / 8)
    # the mill's calibration was due 2026-10-31: 30 days overdue at 2026-11-30
    assert [(c.device, c.days_overdue) for c in m.overdue] == [("mill", 30)]
    # machines >= 100 kW: mill, caster, comp in the system; mill-2 and fan-1 not: 3 of 5, 2 left over 2026-2030
    p = m.progress
    assert (p.in_system, p.total, p.years_left) == (3, 5, 5) and p.machines_per_year_needed == pytest.approx(0.4)
    # consumption at the boundary: inc-1 400,000 + inc-2 (300,000 - 20,000 exported) + PV 120,000 = 800,000 kWh;
    # below it: roll (mill 370,000 + comp 10,000) + cast (caster 330,000) = 710,000 kWh
    assert s.submetered.site_kwh == pytest.approx(800_000) and s.submetered.share == pytest.approx(0.8875)


def test_a_meter_without_data_is_named_not_counted_as_zero(reports, tmp_path):
    from plantems.analytics.metering import submetered_share

    plant = _plant(tmp_path)
    devices = reports[0].devices.copy()
    devices.loc[devices["device"] == "caster", "coverage"] = 0.0
    share = submetered_share(plant.devices, metered_kwh(plant, devices))
    assert share.missing_kwh == ("caster",) and share.submetered_kwh == pytest.approx(380_000)


def test_purchased_metal_of_the_month_and_the_year_to_date(reports):
    s = reports[0].sections
    assert s is not None and s.metal_month is not None and s.metal_ytd is not None
    nov, ytd = s.metal_month, s.metal_ytd
    # November: A 100 t x 4.0 = 400, B 50 t x 0.5 = 25, alloying C 5 t x 10 = 50 -> 475 t CO2e
    assert nov.scope3_cat1_t_co2e == pytest.approx(475.0) and nov.deliveries == 3
    # ASI intensity: aluminium only, (400 + 25) / (100 + 50) t
    assert nov.intensity_t_co2e_per_t == pytest.approx(425 / 150)
    assert nov.pathway_t_co2e_per_t == 5.4 and nov.meets_pathway is True  # targets.yaml raw_material 2026
    # recycled: B's 20 % pre + 60 % post of 50 t = 40 t of all 155 t of metal input
    assert nov.recycled_share == pytest.approx(40 / 155)
    assert nov.default_average_t_co2e == pytest.approx(75.0) and nov.lower_quality
    # to the end of November (December and the other site left out): + October's 200 t x 16 = 3,200
    assert ytd.scope3_cat1_t_co2e == pytest.approx(3675.0)
    assert ytd.intensity_t_co2e_per_t == pytest.approx(3625 / 350) and ytd.meets_pathway is False
    # suppliers by footprint: B 0.5, C 10.0, A (400 + 3,200) / 300 = 12.0
    assert [(r.rank, r.supplier, round(r.t_co2e_per_t, 6)) for r in ytd.suppliers] == [
        (1, "Remelter B", 0.5), (2, "Alloys C", 10.0), (3, "Smelter A", 12.0)]


def test_rollup_json_carries_the_sections(reports):
    doc = json.loads((reports[1] / "rollup.json").read_text())
    sections = doc["sections"]
    assert sections["enpi"]["month"][0]["kwh_per_t"] == pytest.approx(300.0)
    assert sections["enpi"]["month"][0]["production_completeness"] == pytest.approx(28 / 30)
    assert sections["metering"]["auto_collection_rate"] == pytest.approx(0.75)
    assert sections["metering"]["submetered"]["share"] == pytest.approx(0.8875)
    assert sections["metal"]["month"]["scope3_cat1_t_co2e"] == pytest.approx(475.0)
    assert "t CO2e per t of aluminium purchased (input)" in sections["metal"]["month"]["intensity_basis"]


def test_both_languages_show_the_sections(reports):
    en = (reports[1] / "report.html").read_text()
    for text in ('<h2 id="enpi">Energy performance indicators (EnPIs)</h2>', '<h2 id="metering">',
                 '<h2 id="metal">', "<td>roll-1</td><td>300.0</td><td>300</td><td>36.87</td><td>0.15</td>",
                 "28 of 30 days (93%)", "<td>major equipment</td><td>5</td><td>4</td><td>1</td><td>80.0%</td>",
                 "Calibration overdue: mill.", "88.8%", "Intensity denominator (ASI): t CO2e per t of aluminium",
                 "<td>1</td><td>Remelter B</td>", "lower quality", 'id="chart-enpi"', 'id="chart-metering"',
                 'id="chart-metal"'):
        assert text in en, text
    zh = (reports[1] / "report.zh.html").read_text()
    for text in ("能源绩效参数（EnPI）", "<td>冷轧线</td><td>300.0</td>", "30 天中 28 天（93%）",
                 "<td>主要用能设备</td>", "检定超期：冷轧机一号。", "外购金属：范围三类别 1 排放与再生铝占比",
                 "强度分母（ASI）：外购铝（投入）每吨的 t CO2e", "数据质量较低"):
        assert text in zh, text


def test_no_untranslated_message_and_no_missing_glyph(reports, tmp_path, caplog):
    rollup, _ = reports
    plant = _plant(tmp_path)
    names = {**{d.id: d for d in plant.devices}, **{line.id: line for line in plant.production_lines}}
    from plantems.i18n import Lang

    with caplog.at_level(logging.ERROR):
        write_report(rollup, tmp_path / "zh", langs=(Lang.ZH,), names=names)
    assert [r.getMessage() for r in caplog.records] == []
    rendered = rendered_fonts(tmp_path / "zh" / "report.zh.html", tmp_path / "profile")
    assert any(r.text == "能源绩效参数（EnPI）" for r in rendered)
    assert missing_glyphs(rendered) == []


def test_group_sections_sum_the_sites_then_divide(reports, tmp_path, caplog):
    import copy
    from datetime import date
    from types import SimpleNamespace

    from plantems.analytics.group import consolidate
    from plantems.analytics.group_report import write_group_report
    from plantems.analytics.group_sections import SiteName, group_sections
    from tests.test_group import _doc, _targets

    folder = reports[1]
    a = json.loads((folder / "rollup.json").read_text())
    b = copy.deepcopy(a)
    b["site"] = "othersite"
    site_b = b["sections"]["enpi"]["month"][-1]
    site_b.update(electricity_kwh=100_000.0, output_t=100.0, production_days=15.0)
    major_b = next(c for c in b["sections"]["metering"]["levels"] if c["level"] == "major_equipment")
    major_b.update(installed=10, manual=0, required=10, missing=[])
    b["sections"]["metering"]["overdue"] = []
    b["sections"]["metering"]["submetered"].update(site_kwh=200_000.0, submetered_kwh=190_000.0)
    ledger = tmp_path / "metal.csv"
    ledger.write_text(LEDGER)
    s = group_sections([a, b], group="g", month=fx.MONTH, metal=load_metal_ledger(ledger), metal_ledger=str(ledger),
                       targets=load_targets(REPO / "config" / "targets.yaml"))
    assert s is not None
    group = s.enpi_month[-1]
    assert [e.entity for e in s.enpi_month] == ["testsite", "othersite", "g"]
    # (200,000 + 100,000) kWh / (300 + 100) t; 30 + 15 of 2 x 30 days with output
    assert group.kwh_per_t == pytest.approx(750.0) and group.production_completeness == pytest.approx(0.75)
    major = next(c for c in s.metering.levels if c.level.value == "major_equipment")
    # (4 + 10) / (5 + 10), not the mean of 80 % and 100 %
    assert major.rate == pytest.approx(14 / 15) and major.missing == ("testsite: mill-2",)
    assert [c.device for c in s.metering.overdue] == ["testsite: mill"]
    assert s.submetered.share == pytest.approx((710_000 + 190_000) / (800_000 + 200_000))
    # both sites' November deliveries: 475 + 999 t x 16 = 16,459 t CO2e; aluminium (425 + 15,984) / (150 + 999) t
    assert s.metal_month is not None and s.metal_month.scope3_cat1_t_co2e == pytest.approx(16_459.0)
    assert s.metal_month.intensity_t_co2e_per_t == pytest.approx(16_409 / 1149)

    docs = [_doc(site, grid=1000.0, pv_self=0.0, green=0.0, certificates=0.0, by_line={"roll": 8.0}, entries=(),
                 output_lines=("roll",)) for site in ("testsite", "othersite")]
    consolidated = consolidate(docs=docs, output_lines={}, group="g", name="G", name_zh="测试集团", month="2026-10",
                               as_of=date(2026, 12, 2), targets=_targets())
    names = {"testsite": SimpleNamespace(id="testsite", name="", name_zh="甲厂"), "g": SiteName("g", "G", "测试集团")}
    with caplog.at_level(logging.ERROR):
        write_group_report(consolidated, tmp_path / "g", names=names, sections=s)
    assert [r.getMessage() for r in caplog.records] == []
    assert json.loads((tmp_path / "g" / "group.json").read_text())["sections"]["enpi"]["month"][-1]["entity"] == "g"
    zh = (tmp_path / "g" / "report.zh.html").read_text()
    assert "<th>厂区</th><th>产量 t</th>" in zh and "<td>测试集团</td><td>400.0</td><td>750</td>" in zh
    assert "能源计量器具配备" in zh and "外购金属" in zh
    en = (tmp_path / "g" / "report.html").read_text()
    assert "<td>g</td><td>400.0</td><td>750</td>" in en and "93.3%" in en


def test_a_bad_metal_ledger_beside_the_plant_file_is_refused_by_check_config(tmp_path):
    """The rollup would refuse the month: check-config (and analyze, at start) refuse it first, with file:line."""
    from click.testing import CliRunner

    from plantems.cli import main

    _plant(tmp_path)
    ledger = tmp_path / "metal_purchases.csv"
    ledger.write_text(LEDGER)
    good = CliRunner().invoke(main, ["check-config", str(tmp_path / "plant.yaml")])
    assert good.exit_code == 0 and f"metal ledger {ledger}: 6 deliveries" in good.output, good.output
    ledger.write_text(LEDGER.replace("d-nov-1,testsite,Smelter A,2026-11-03,100,", "d-nov-1,testsite,Smelter A,"
                                     "2026-11-03,-100,"))
    bad = CliRunner().invoke(main, ["check-config", str(tmp_path / "plant.yaml")])
    assert bad.exit_code == 2, bad.output
    # line 4: the comment, the header, d-oct, then d-nov-1
    assert f"{ledger}:4 delivery 'd-nov-1': tonnes = -100: must be positive" in bad.output and "OK" not in bad.output
