"""The annual inventory: twelve monthly rollup.json documents (and the metal ledger) consolidated.

Expected figures are computed by hand from the synthetic monthly documents (month m of the year has
1,000 x m kWh of grid import, 500 x m kg of Scope 1, ...: sums over m = 1..12 are 78 x the unit), and,
end to end, from a back-filled month's own rollup.json and raw counters.
"""

import csv
import json
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from plantems.analytics.enpi import CoalCoefficients
from plantems.analytics.inventory import InventoryError, compute_inventory
from plantems.analytics.inventory_report import CSV_HEADER, write_inventory
from plantems.cli import main
from plantems.config import load_plant
from plantems.influx import V1Writer, init_databases
from plantems.inventory_base import BaseYear, load_inventory_base
from plantems.ledger import Instrument, LedgerEntry
from plantems.localservers import free_port
from plantems.metal import FootprintBasis, MetalPurchase, Product
from plantems.simulator.run import backfill
from tests.support import REPO, copy_reference_data, drop_simulated, rows, write_plant
from tests.test_simulator import BODY

YEAR = 2026
COEFF = CoalCoefficients("calorific", 0.1229, 1.2143, "GB/T 2589 test")


def _doc(site: str, m: int, *, green_kwh: float = 0.0, entries: tuple[str, ...] = ()) -> dict:
    """Month m of YEAR: grid 1000 m kWh, export 10 m, PV self-consumed 100 kWh, gas 10 m m3 (500 m kg CO2e),
    location 0.5 kg/kWh, market 0.6 kg/kWh on the import not matched by instruments."""
    grid = 1000.0 * m
    return {"site": site, "month": f"{YEAR}-{m:02d}", "as_of": f"{YEAR}-{m:02d}-28", "grid_import_kwh": grid,
            "grid_export_kwh": 10.0 * m, "pv_generation_kwh": 100.0 + 10 * m, "pv_self_kwh": 100.0,
            "consumption_kwh": grid - 10.0 * m + 100.0,
            "scope2_kgco2e": {"location": grid * 0.5, "market": (grid - green_kwh) * 0.6, "market_hourly": grid * 0.6},
            "scope1_kgco2e": {"furnace": 500.0 * m}, "green_kwh": {"monthly": green_kwh, "hourly": 0.0},
            "certificates_kwh": green_kwh, "reconciliation": {"reconciled": m != 5, "differing": []},
            "provenance": {"config_sha256": f"sha-{site}-{m}", "ledger_entries_used": list(entries),
                           "location_factor": {"id": "loc-23", "kg_per_unit": 0.5, "provisional": m < 3},
                           "residual_factor": {"id": "res-23", "kg_per_unit": 0.6, "provisional": False},
                           "scope1": {"factor": {"id": "gas-ipcc"}, "gas_m3": {"furnace": 10.0 * m},
                                      "coverage": {"furnace": 1.0}}}}


def _entry(entry_id: str, instrument: Instrument, mwh: float, site: str = "a") -> LedgerEntry:
    return LedgerEntry(entry_id=entry_id, site=site, instrument=instrument, mwh=mwh, serial_first="", serial_last="",
                       generation_start=date(2026, 1, 1), generation_end=date(2026, 1, 31), technology="wind",
                       location="Hunan", retired=date(2026, 2, 1), claim_month="2026-01", line=2)


def _metal(delivery_id: str, site: str, delivered: date, tonnes: float, footprint: float) -> MetalPurchase:
    return MetalPurchase(delivery_id=delivery_id, site=site, supplier="s", delivered=delivered, tonnes=tonnes,
                         product=Product.PRIMARY_INGOT, footprint_t_co2e_per_t=footprint, basis=FootprintBasis.PCF,
                         evidence="PCF-1", factor_year=2025, recycled_pre_pct=0.0, recycled_post_pct=0.0, note="",
                         line=2)


BASE = BaseYear.model_validate({
    "year": 2024, "source": "test plan",
    "boundaries": {"a": {"scope1_t_co2e": 30.0, "scope2_t_co2e": 40.0, "scope2_method": "location",
                         "scope3_t_co2e": 1000.0, "scope3_categories": "all"}},
    "recalculations": [
        {"date": "2026-03-01", "boundary": "a", "reason": "structural_change", "description": "line sold",
         "scope1_delta_t_co2e": -10.0, "approved_by": "committee"},
        {"date": "2025-06-01", "boundary": "a", "reason": "methodology", "description": "new grid factor",
         "scope2_delta_t_co2e": 8.0, "approved_by": "committee"},
        {"date": "2025-01-01", "boundary": "other", "reason": "error", "description": "not ours",
         "scope1_delta_t_co2e": 99.0, "approved_by": "x"}]})
LEDGER = (_entry("gec-1", Instrument.GEC, 3.0), _entry("trade-1", Instrument.GREEN_TRADE, 1.0),
          _entry("pv-1", Instrument.ONSITE_PV, 0.1), _entry("gec-1", Instrument.PPA, 50.0, site="b"))
METAL = (_metal("d1", "a", date(2026, 3, 5), 100.0, 4.0), _metal("d2", "a", date(2026, 12, 31), 50.0, 0.5),
         _metal("d3", "a", date(2025, 12, 31), 70.0, 15.9), _metal("d4", "b", date(2026, 3, 5), 80.0, 15.9))


def _inventory(docs: list[dict], **kw):
    args = {"boundary": "a", "name": "Alpha", "year": YEAR, "sites": ["a"], "as_of": date(2027, 1, 5), "docs": docs,
            "green_ledger": LEDGER, "metal": METAL, "coefficients": COEFF, "base": BASE} | kw
    return compute_inventory(**args)


def _year() -> list[dict]:
    # January used gec-1 (3 MWh) and trade-1 (1 MWh), 800 kWh matched (up to its import); pv-1 is on-site PV
    return [_doc("a", 1, green_kwh=800.0, entries=("gec-1", "trade-1", "pv-1"))] + [_doc("a", m) for m in range(2, 13)]


def test_year_totals_are_the_sums_of_the_months_by_hand():
    inv = _inventory(_year())
    assert inv.complete and inv.missing == ()
    assert inv.scope1_by_source_t == {"a/furnace": pytest.approx(500 * 78 / 1000)}
    assert inv.scope1_factors == ("gas-ipcc",)
    assert inv.scope2_location_t == pytest.approx(1000 * 78 * 0.5 / 1000)
    assert inv.scope2_market_t == pytest.approx((1000 * 78 - 800) * 0.6 / 1000)
    assert inv.instruments_used == {"gec": ("gec-1",), "green_trade": ("trade-1",)}
    # 800 kWh split 3:1 by the rows' MWh; on-site PV: 100 kWh self-consumed a month
    assert inv.renewable_mwh_by_type == {"gec": pytest.approx(0.6), "green_trade": pytest.approx(0.2),
                                         "onsite_pv": pytest.approx(1.2)}
    consumption_kwh = 1000 * 78 - 10 * 78 + 1200
    assert inv.energy["electricity_kwh"] == pytest.approx(consumption_kwh)
    assert inv.energy["electricity_tce"] == pytest.approx(consumption_kwh * 0.1229 / 1000)
    assert inv.energy["natural_gas_tce"] == pytest.approx(780 * 1.2143 / 1000)
    assert inv.energy["total_tce"] == pytest.approx((consumption_kwh * 0.1229 + 780 * 1.2143) / 1000)
    assert inv.scope3_cat1_t == pytest.approx(100 * 4.0 + 50 * 0.5)  # site a, deliveries in 2026 only
    assert inv.data_quality == {"not_reconciled": ["a 2026-05"], "reconciliation_not_run": [],
                                "provisional_factors": ["a 2026-01", "a 2026-02"], "poor_coverage": [],
                                "scope1_not_metered": []}
    doc = inv.to_json()
    assert doc["renewable_share"] == pytest.approx(2000 / consumption_kwh)
    assert [p["config_sha256"] for p in doc["provenance"]] == [f"sha-a-{m}" for m in range(1, 13)]
    assert json.loads(json.dumps(doc))["scope3_cat1"]["scope3_cat1_t_co2e"] == pytest.approx(425.0)


def test_every_target_for_the_year_beside_the_actual():
    from plantems.targets import load_targets

    inv = _inventory(_year(), targets=load_targets(REPO / "config" / "targets.yaml"))
    consumption_kwh = 1000 * 78 - 10 * 78 + 1200
    t = inv.to_json()["targets"]
    assert set(t) == {"intensity", "raw_material", "recycled_share", "renewable_share", "certificate_share",
                      "metering_coverage"}
    assert t["raw_material"]["target"] == 5.4 and t["raw_material"]["actual"] == pytest.approx(425.0 / 150.0)
    assert inv.scope3 is not None and inv.scope3.pathway_t_co2e_per_t == 5.4
    assert t["renewable_share"]["target"] is None and t["renewable_share"]["final_target"] == 1.0
    assert t["renewable_share"]["actual"] == pytest.approx(2000 / consumption_kwh)
    assert t["certificate_share"]["actual"] == pytest.approx(800 / consumption_kwh)
    assert t["recycled_share"]["actual"] == 0.0 and t["recycled_share"]["final_target"] == 0.35
    assert t["intensity"]["target"] == 0.32 and t["intensity"]["actual"] is None
    # certificates held beyond a month's consumption do not raise the share above what was consumed
    capped = _inventory([_doc("a", 1) | {"certificates_kwh": 5000.0}], targets=load_targets(REPO / "config" /
                                                                                            "targets.yaml"))
    assert capped.targets["certificate_share"]["actual"] == pytest.approx(1.0)


def test_base_year_as_recalculated_with_its_log():
    base = _inventory(_year()).base
    assert base is not None
    assert base.original == {"scope1": 30.0, "scope2": 40.0, "scope3": 1000.0}
    assert base.recalculated == {"scope1": 20.0, "scope2": 48.0, "scope3": 1000.0}  # other boundary's not counted
    assert base.change["scope1"] == pytest.approx(39.0 / 20.0 - 1)
    assert base.change["scope2"] == pytest.approx(39.0 / 48.0 - 1)  # the base is location-based
    assert base.change["scope3"] is None and "category 1" in base.scope3_note  # not like for like
    assert [e["description"] for e in base.log] == ["new grid factor", "line sold"]  # oldest first
    other = _inventory(_year(), boundary="grp", sites=["a"])
    assert other.base is None and "no base-year figures for 'grp'" in str(other.to_json()["base_year"])


def test_a_missing_month_is_listed_never_zero():
    docs = [d for d in _year() if d["month"] != "2026-07"]
    inv = _inventory(docs)
    assert not inv.complete and inv.missing == (("a", "2026-07"),)
    assert inv.scope2_location_t == pytest.approx(1000 * (78 - 7) * 0.5 / 1000)
    assert inv.to_json()["completeness"] == {"months_expected": 12, "months_found": 11,
                                             "missing": [{"site": "a", "month": "2026-07"}]}
    # a partial year against a full base year would show a fall that did not happen
    assert inv.base is not None and inv.base.change == {"scope1": None, "scope2": None, "scope3": None}


def test_a_month_without_fuel_data_is_flagged_not_zero():
    april = _doc("a", 4) | {"scope1_kgco2e": {}, "poor_coverage": ["furnace (0.0%)"], "reconciliation": None}
    april["provenance"] = april["provenance"] | {"scope1": "not metered: no fuel meter delivered data this month"}
    inv = _inventory([april if d["month"] == "2026-04" else d for d in _year()])
    assert inv.scope1_t == pytest.approx(500 * (78 - 4) / 1000)
    assert inv.energy["natural_gas_m3"] == pytest.approx(10 * (78 - 4))
    quality = inv.to_json()["data_quality"]
    assert quality["scope1_not_metered"] == ["a 2026-04"] and quality["reconciliation_not_run"] == ["a 2026-04"]
    assert quality["poor_coverage"] == ["a 2026-04: furnace (0.0%)"]


def test_group_of_two_sites_and_documents_refused():
    both = _year() + [_doc("b", m) for m in range(1, 12)]
    inv = _inventory(both, sites=["a", "b"], boundary="grp")
    assert inv.missing == (("b", "2026-12"),)
    assert inv.scope1_by_source_t == {"a/furnace": pytest.approx(39.0), "b/furnace": pytest.approx(500 * 66 / 1000)}
    assert inv.scope3_cat1_t == pytest.approx(425.0 + 80 * 15.9)
    with pytest.raises(InventoryError, match="site a 2026-03: given twice"):
        _inventory([*_year(), _doc("a", 3)])
    with pytest.raises(InventoryError, match="site b 2026-01: not a site of a"):
        _inventory([*_year(), _doc("b", 1)])
    other_year = _doc("a", 1) | {"month": "2025-01"}
    with pytest.raises(InventoryError, match="site a 2025-01: not a month of 2026"):
        _inventory([*_year()[1:], other_year])
    with pytest.raises(InventoryError, match=r"site a 2026-02: matched 500 kWh .* cannot be traced"):
        _inventory([_doc("a", 2, green_kwh=500.0, entries=("nowhere",))])


def test_files_read_back(tmp_path):
    inv = _inventory([d for d in _year() if d["month"] != "2026-07"])
    paths = write_inventory(inv, tmp_path / "inventory-2026")
    assert [p.name for p in paths] == ["inventory.json", "inventory.csv", "inventory.xlsx"]
    assert json.loads(paths[0].read_text())["scope1_t_co2e"] == pytest.approx(500 * 71 / 1000)
    with paths[1].open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert tuple(table[0]) == CSV_HEADER and table[0][0] == "Section 部分"
    by_item = {(r[0], r[1]): r for r in table[1:]}
    cat1 = next(r for r in table if r[0] == "ISO 14064-1 category 1")
    assert float(cat1[2]) == pytest.approx(35.5)
    assert float(by_item[("Renewable 可再生电力", "gec")][2]) == pytest.approx(0.6)
    assert [by_item[("Energy 能源", k)][3] for k in ("electricity_kwh", "natural_gas_m3", "total_tce")] == [
        "kWh", "m3", "tce"]
    assert ("Missing month 缺失月份", "a") in by_item and by_item[("Missing month 缺失月份", "a")][4] == "2026-07"
    wb = load_workbook(paths[2])
    assert wb.sheetnames == ["ISO 14064-1", "CDP C6.1 Scope 1", "CDP C6.3 Scope 2", "Scope 1 by source", "Energy tce",
                             "Renewable", "Base year", "Targets", "Completeness", "Provenance"]
    iso = [row for row in wb["ISO 14064-1"].iter_rows(values_only=True)]
    assert iso[0][0] == "Category 类别" and [r[0] for r in iso[1:]] == ["1", "2", "2", "3", "4", "5", "6"]
    assert iso[1][2] == pytest.approx(35.5) and iso[5][2] == pytest.approx(425.0) and iso[4][2] is None
    scope2 = list(wb["CDP C6.3 Scope 2"].iter_rows(values_only=True))
    assert scope2[1][:3] == (2026, pytest.approx(1000 * 71 * 0.5 / 1000), pytest.approx((71000 - 800) * 0.6 / 1000))
    assert "gec: gec-1" in scope2[1][3] and "1 month(s) missing" in scope2[1][4]
    provenance = list(wb["Provenance"].iter_rows(values_only=True))
    assert len(provenance) == 12 and provenance[1][:4] == ("a", "2026-01", "2026-01-28", "sha-a-1")
    assert provenance[5][7] is False  # May did not reconcile
    assert provenance[1][9:11] == (0.5, 0.6)
    base = list(wb["Base year"].iter_rows(values_only=True))
    assert base[1][:2] == ("scope1", 20.0) and any("line sold" in str(r[3]) for r in base)


def test_chinese_csv_and_workbook_beside_the_english(tmp_path):
    """inventory.zh.csv and inventory.zh.xlsx: the same rows under Chinese headers and sheet names; the English
    files keep their names and bilingual headers."""
    inv = _inventory(_year())
    paths = write_inventory(inv, tmp_path, zh=True)
    assert [p.name for p in paths] == ["inventory.json", "inventory.csv", "inventory.xlsx", "inventory.zh.csv",
                                       "inventory.zh.xlsx"]
    with (tmp_path / "inventory.zh.csv").open(encoding="utf-8-sig", newline="") as handle:
        zh = list(csv.reader(handle))
    with (tmp_path / "inventory.csv").open(encoding="utf-8-sig", newline="") as handle:
        en = list(csv.reader(handle))
    assert zh[0] == ["部分", "项目", "数值", "单位", "说明"] and tuple(en[0]) == CSV_HEADER and zh[1:] == en[1:]
    wb = load_workbook(tmp_path / "inventory.zh.xlsx")
    assert wb.sheetnames == ["ISO 14064-1 类别", "CDP C6.1 范围一", "CDP C6.3 范围二", "范围一按排放源",
                             "能耗 吨标准煤", "可再生电力", "基准年", "目标", "完整性", "数据来源"]
    assert next(wb["ISO 14064-1 类别"].iter_rows(values_only=True)) == ("类别", "描述", "排放量 (t CO2e)", "单位",
                                                                      "说明")
    assert next(wb["目标"].iter_rows(values_only=True))[3] == "2026 年度目标"
    # and the rows are the English workbook's
    english = load_workbook(tmp_path / "inventory.xlsx")
    assert list(wb["范围一按排放源"].iter_rows(values_only=True))[1:] == list(
        english["Scope 1 by source"].iter_rows(values_only=True))[1:]


def test_html_report_in_both_languages(tmp_path, caplog):
    """report.html and report.zh.html (issue 14 item 5): the totals, the charts, the base year as recalculated
    and its log; every message translated and, in headless Chromium, no missing glyph."""
    import logging
    import warnings
    from types import SimpleNamespace

    from plantems.analytics.inventory_html import write_inventory_html
    from tests.browser import missing_glyphs, rendered_fonts

    inv = _inventory([d for d in _year() if d["month"] != "2026-07"])
    names = {"a": SimpleNamespace(id="a", name="Alpha", name_zh="甲厂")}
    with caplog.at_level(logging.ERROR), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = write_inventory_html(inv, tmp_path, names=names)
    assert [r.getMessage() for r in caplog.records] == []  # every message has its translation
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []  # no box in a chart
    assert [p.name for p in paths] == ["report.zh.html", "report.html"]
    en, zh = (tmp_path / "report.html").read_text(), (tmp_path / "report.zh.html").read_text()
    # Scope 1: 500 kg x (1 + ... + 12 - 7) = 35.5 t; Scope 3 cat. 1: d1 100 t x 4.0 + d2 50 t x 0.5 = 425 t;
    # base year Scope 1 30 - 10 (line sold, 2026-03-01) = 20 t; no change stated: July is missing
    for text in ("<h1>Greenhouse-gas inventory 2026: a</h1>", "<td>Scope 1 (t CO2e)</td><td>35.5</td>",
                 "<td>Scope 3 category 1, purchased metal (t CO2e)</td><td>425.0</td>",
                 "<td>Scope 1</td><td>30</td><td>20</td><td>35.5</td><td>n/a</td>", "line sold",
                 "Incomplete: 1 month(s) without a rollup: a 2026-07.", 'id="chart-scope1"', 'id="chart-scope2"',
                 'id="chart-base"'):
        assert text in en, text
    for text in ('<html lang="zh-CN">', "<h1>2026 年温室气体排放清单：甲厂</h1>",
                 "<td>范围一排放 (t CO2e)</td><td>35.5</td>", "<td>范围三类别 1，外购金属 (t CO2e)</td><td>425.0</td>",
                 "<td>结构变化</td>", "不完整：1 个月无月度汇总：甲厂 2026-07。", "<td>绿证</td>"):
        assert text in zh, text
    rendered = rendered_fonts(tmp_path / "report.zh.html", tmp_path / "profile")
    assert any(r.text == "基准年重算记录" for r in rendered) and missing_glyphs(rendered) == []


def test_shipped_base_year_and_targets():
    from plantems.targets import load_targets

    base = load_inventory_base(REPO / "config" / "inventory_base.yaml")
    group = base.figures("hunan-al")
    assert base.year == 2024 and group is not None
    assert (group.scope1_t_co2e, group.scope2_t_co2e, group.scope3_t_co2e) == (23583.69, 114239.98, 625666.59)
    # the plan's total (shared/domain.md section 0)
    assert group.scope1_t_co2e + group.scope2_t_co2e + (group.scope3_t_co2e or 0) == pytest.approx(763490.26)
    targets = load_targets(REPO / "config" / "targets.yaml")
    every = targets.every()
    assert set(every) == {"intensity", "raw_material", "recycled_share", "renewable_share", "certificate_share",
                          "metering_coverage"}
    assert all(t.source and t.base_year == 2024 and t.by_year for t in every.values())
    assert targets.recycled_share is not None and targets.recycled_share.for_year(2031) == 0.35
    assert targets.intensity.for_year(2026) == 0.32 and targets.renewable_share.for_year(2029) is None


def test_base_year_file_errors_name_file_line_and_rule(tmp_path):
    from plantems.yamlconf import ConfigError

    path = tmp_path / "base.yaml"
    path.write_text("year: 2024\nsource: s\nboundaries:\n  a: {scope1_t_co2e: -1, scope2_t_co2e: 1, "
                    "scope2_method: location}\nrecalculations:\n  - {date: 2025-01-01, boundary: a, reason: whim, "
                    "description: d, approved_by: x}\n")
    with pytest.raises(ConfigError) as info:
        load_inventory_base(path)
    text = "\n".join(info.value.problems)
    assert f"{path}:4" in text and "scope1_t_co2e" in text
    assert f"{path}:6" in text and "whim" in text


# End to end: a small plant back-filled for October; the other months' rollup.json already written
# (synthetic, figures by hand); --run-missing rolls October up from InfluxDB first.
METAL_CSV = """delivery_id,site,supplier,delivered,tonnes,product,footprint_t_co2e_per_t,basis,evidence,factor_year,\
recycled_pre_pct,recycled_post_pct
d1,testsite,Hydro,2026-10-08,1100,primary_ingot,4.0,pcf,PCF-1 verified,2025,,
d2,testsite,Scrap co,2026-02-02,200,post_consumer_scrap,0.5,default_average,Peng 2022,2022,,
d3,testsite,Hydro,2025-12-30,900,primary_ingot,4.0,pcf,PCF-1 verified,2025,,
"""
BASE_YAML = """year: 2024
source: test plan
boundaries:
  testsite: {scope1_t_co2e: 100.0, scope2_t_co2e: 1000.0, scope2_method: market}
recalculations:
  - {date: 2026-01-10, boundary: testsite, reason: methodology, description: residual mix adopted,
     scope2_delta_t_co2e: 500.0, approved_by: carbon team}
"""


@pytest.fixture(scope="module")
def october_plant(tmp_path_factory, influx_url):
    tmp = tmp_path_factory.mktemp("inventory")
    body = BODY.format(gw=free_port(), inc=free_port(), pv=free_port()) + (
        "  - {id: furnace-1, area: util, kind: furnace, meter: generic_gas_flow, gateway: gw, unit_id: 9}\n")
    body = "production_lines:\n  - {id: roll-1, name: Cold rolling, areas: [roll]}\n" + body
    path = write_plant(tmp, influx_url=influx_url, db="inventorydb", body=body, init=False)
    plant = load_plant(path)
    init_databases(plant.influxdb)
    copy_reference_data(tmp)
    (tmp / "green_power.csv").write_text(
        (REPO / "config" / "green_power.csv").read_text().replace(",changsha,", ",testsite,"))
    (tmp / "metal_purchases.csv").write_text(METAL_CSV)
    (tmp / "inventory_base.yaml").write_text(BASE_YAML)
    end = datetime(2026, 11, 1, 1, 0, tzinfo=plant.site.tz).timestamp()
    backfill(plant, V1Writer(plant.influxdb), days=32, end_s=end, progress=False)
    t0 = int(datetime(2026, 9, 30, 22, tzinfo=plant.site.tz).timestamp())
    fuel = [f"fuel,area=util,device=furnace-1,kind=furnace,site=testsite gas_m3={1000 + 100 * k / 6!r} "
            f"{(t0 + 600 * k) * 10**9}" for k in range(6 * 24 * 33)]
    drop_simulated(plant.influxdb.url, "inventorydb", "fuel", "furnace-1")
    V1Writer(plant.influxdb).write("inventorydb", fuel)
    reports = tmp / "reports"
    for m in (*range(1, 10), 11, 12):
        doc = _doc("testsite", m)
        (reports / doc["month"]).mkdir(parents=True)
        (reports / doc["month"] / "rollup.json").write_text(json.dumps(doc))
    return plant, path, reports


def _counter(url: str, device: str, t: datetime, field: str, measurement: str = "electrical") -> float:
    (row,) = rows(url, "inventorydb", f"SELECT {field} FROM {measurement} WHERE device = '{device}' AND time = "
                  f"{int(t.timestamp()) * 10**9}")
    return float(row[field])


def _cli(path: Path, reports: Path, *extra: str):
    return CliRunner().invoke(main, ["inventory", "--year", "2026", "--config", str(path), "--reports", str(reports),
                                     *extra])


def test_cli_lists_the_missing_month_then_runs_it(october_plant, influx_url):
    plant, path, reports = october_plant
    result = _cli(path, reports)
    assert result.exit_code == 3, result.output
    assert "INCOMPLETE: 1 month(s) without a rollup: testsite 2026-10" in result.output
    partial = json.loads((reports / "inventory-2026" / "inventory.json").read_text())
    assert partial["completeness"]["missing"] == [{"site": "testsite", "month": "2026-10"}]
    assert partial["scope2_location_t_co2e"] == pytest.approx(1000 * 68 * 0.5 / 1000)

    result = _cli(path, reports, "--run-missing", "--gas-lhv", "35000")
    assert result.exit_code == 0, result.output
    october = json.loads((reports / "2026-10" / "rollup.json").read_text())
    tz = plant.site.tz
    start, end = datetime(2026, 10, 1, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz)
    grid_kwh = _counter(influx_url, "inc", end, "e_imp_kwh") - _counter(influx_url, "inc", start, "e_imp_kwh")
    assert october["grid_import_kwh"] == pytest.approx(grid_kwh, rel=1e-9)  # the month from its raw counters
    inv = json.loads((reports / "inventory-2026" / "inventory.json").read_text())
    assert inv["complete"] is True
    # the year = the eleven synthetic months by hand + October's own rollup
    assert inv["scope2_location_t_co2e"] == pytest.approx((1000 * 68 * 0.5 + october["scope2_kgco2e"]["location"])
                                                          / 1000)
    assert inv["scope2_market_t_co2e"] == pytest.approx((1000 * 68 * 0.6 + october["scope2_kgco2e"]["market"]) / 1000)
    october_gas_m3 = 744 * 100.0  # 100 m3 an hour for October's 744 hours
    assert inv["scope1_by_source_t_co2e"] == {"testsite/furnace": pytest.approx(500 * 68 / 1000),  # synthetic
                                              "testsite/furnace-1": pytest.approx(
                                                  october["scope1_kgco2e"]["furnace-1"] / 1000)}
    assert inv["energy"]["natural_gas_m3"] == pytest.approx(10 * 68 + october_gas_m3, rel=1e-6)
    assert inv["energy"]["natural_gas_tce"] == pytest.approx((680 + october_gas_m3) * 35000 / 29307.6 / 1000, rel=1e-6)
    # October matched the 300 MWh wind trade against its import (green_trade), capped by the import
    assert october["provenance"]["ledger_entries_used"] == ["demo-2026-10-wind"]
    assert inv["renewable_mwh_by_type"]["green_trade"] == pytest.approx(min(300.0, grid_kwh / 1000))
    assert inv["scope2_instruments_used"] == {"green_trade": ["demo-2026-10-wind"]}
    assert inv["scope3_cat1_t_co2e"] == pytest.approx(1100 * 4.0 + 200 * 0.5)  # 2026 deliveries only
    base = inv["base_year"]
    assert base["recalculated_t_co2e"]["scope2"] == 1500.0
    assert base["current_t_co2e"]["scope2"] == pytest.approx(inv["scope2_market_t_co2e"])  # the base is market
    assert base["recalculation_log"][0]["description"] == "residual mix adopted"
    assert [p["month"] for p in inv["provenance"]] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert inv["provenance"][9]["config_sha256"] == october["provenance"]["config_sha256"]
    assert inv["provenance"][9]["location_kg_per_kwh"] == october["provenance"]["location_factor"]["kg_per_unit"]
    wb = load_workbook(reports / "inventory-2026" / "inventory.xlsx")
    (_, row) = wb["CDP C6.1 Scope 1"].iter_rows(values_only=True)
    assert row[0] == 2026 and row[1] == pytest.approx(sum(inv["scope1_by_source_t_co2e"].values()))


def test_cli_refuses_a_wrong_call(october_plant, tmp_path):
    _, path, _ = october_plant
    result = CliRunner().invoke(main, ["inventory", "--year", "2026"])
    assert result.exit_code == 2 and "give --config PLANT or --group GROUP" in result.output
    result = _cli(path, tmp_path, "--gas-lhv", "8.5")
    assert result.exit_code == 2 and "outside 20,000-45,000 kJ/m3" in result.output


def test_cli_group_inventory_from_written_rollups(tmp_path, influx_url):
    """Two sites' rollups (synthetic, by hand) in REPORTS/SITE/MONTH: the group's inventory, base year, no ledger."""
    paths = {}
    for site in ("testsite", "second"):
        folder = tmp_path / site
        folder.mkdir()
        path = write_plant(folder, influx_url=influx_url, db="inventorygrp", body=BODY.format(
            gw=free_port(), inc=free_port(), pv=free_port()), init=False)
        path.write_text(path.read_text().replace("id: testsite", f"id: {site}"))
        copy_reference_data(folder)
        ledger = (REPO / "config" / "green_power.csv").read_text().replace(",changsha,", ",testsite,")
        (folder / "green_power.csv").write_text(ledger if site == "testsite" else ledger.split("\n")[0] + "\n")
        paths[site] = path
    group = tmp_path / "group.yaml"
    group.write_text("group: {id: grp, name: Test group, name_zh: 测试集团}\nsites:\n"
                     f"  - plant: {paths['testsite']}\n  - plant: {paths['second']}\n")
    (tmp_path / "inventory_base.yaml").write_text(
        "year: 2024\nsource: plan\nboundaries:\n"
        "  grp: {scope1_t_co2e: 50, scope2_t_co2e: 100, scope2_method: location}\n")
    reports = tmp_path / "reports"
    docs = [_doc("testsite", 1, green_kwh=1000.0, entries=("demo-2026-10-wind",))]
    docs += [_doc("testsite", m) for m in range(2, 13)] + [_doc("second", m) for m in range(1, 12)]
    for doc in docs:
        folder = reports / doc["site"] / doc["month"]
        folder.mkdir(parents=True)
        (folder / "rollup.json").write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["inventory", "--year", "2026", "--group", str(group), "--reports", str(reports)])
    assert result.exit_code == 3, result.output
    assert "INCOMPLETE: 1 month(s) without a rollup: second 2026-12" in result.output
    inv = json.loads((reports / "grp" / "inventory-2026" / "inventory.json").read_text())
    assert inv["sites"] == ["testsite", "second"] and inv["boundary"] == "grp"
    assert inv["scope2_location_t_co2e"] == pytest.approx(1000 * (78 + 66) * 0.5 / 1000)
    assert inv["renewable_mwh_by_type"] == {"green_trade": pytest.approx(1.0), "onsite_pv": pytest.approx(2.3)}
    assert inv["scope3_cat1_t_co2e"] is None and inv["scope3_cat1"] == "not reported: no metal ledger"
    assert inv["base_year"]["current_t_co2e"]["scope1"] == pytest.approx(500 * 144 / 1000)
    assert inv["base_year"]["change"]["scope1"] is None  # December of site second is missing
    iso = list(load_workbook(reports / "grp" / "inventory-2026" / "inventory.xlsx")["ISO 14064-1"].iter_rows(
        values_only=True))
    assert iso[5][2] is None and "no metal ledger" in iso[5][4]
    # the HTML report beside, in both languages, the group by its Chinese name
    zh = (reports / "grp" / "inventory-2026" / "report.zh.html").read_text()
    assert "<h1>2026 年温室气体排放清单：测试集团</h1>" in zh and "未报告：无外购金属台账" in zh
    assert str(reports / "grp" / "inventory-2026" / "report.html") in result.output
