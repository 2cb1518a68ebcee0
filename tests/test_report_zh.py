"""The reports in zh-CN beside English (issue 14, item 5): every message translated, the first-page flags,
names and terms in Chinese, charts drawn with a CJK font, and the Chinese report rendered in headless
Chromium with no missing glyph (tests/browser.py: the browser's own font choice per element, checked
against the fonts' character tables)."""

from __future__ import annotations

import ast
import dataclasses
import logging
import re
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantems.analytics.reconcile import MeterReconciliation, Reconciliation
from plantems.analytics.report import write_report
from plantems.analytics.rollup import Rollup
from plantems.cli import main
from plantems.config import DeviceKind, PlantConfig, load_plant
from plantems.i18n import ALL_LANGS, Lang, month_label, name_of, parse_langs, tr, translations
from tests import typed_fixture as fx
from tests.browser import missing_glyphs, rendered_fonts
from tests.support import REPO, write_plant
from tests.test_results_golden import month

REPORT_MODULES = [REPO / "analytics" / "report.py", REPO / "analytics" / "group_report.py",
                  REPO / "analytics" / "report_sections.py", REPO / "analytics" / "quarter_report.py",
                  REPO / "analytics" / "inventory_html.py"]


def _message_ids(path: Path) -> set[str]:
    """Literal messages of tr(lang, "..."), tr_context(lang, "context", "...") and the report's t("...")."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("tr", "t", "tr_context"):
            args = {"tr": node.args[1:], "t": node.args, "tr_context": node.args[1:]}[node.func.id]
            if all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args[:2]) and args:
                found.add("|".join(a.value for a in args[:2]) if node.func.id == "tr_context" else args[0].value)
    return found


def test_every_message_of_the_reports_has_a_chinese_translation():
    # importing a report module registers its messages
    import plantems.analytics.group_report
    import plantems.analytics.inventory_html
    import plantems.analytics.quarter_report  # noqa: F401

    ids = set().union(*(_message_ids(p) for p in REPORT_MODULES))
    assert len(ids) > 150  # the scan found the reports' messages
    assert sorted(ids - set(translations())) == []
    assert {str(kind) for kind in DeviceKind} <= set(translations())  # the meters table's kinds
    zh = translations()
    assert "ledger file|line" in ids  # a message with a context was found
    assert [m for m in ids if set(re.findall(r"{[^}]*}", zh[m])) != set(re.findall(r"{[^}]*}", m))] == []


def test_the_standard_terms():
    zh = translations()
    assert [tr(Lang.ZH, t) for t in ("sharp", "peak", "flat", "valley")] == ["尖峰", "高峰", "平段", "低谷"]
    assert [zh["location"], zh["market"], zh["PF"], zh["completeness of its data"]] == \
        ["基于位置", "基于市场", "功率因数", "数据完整率"]
    assert zh["Scope 2 location-based (t CO2e)"].startswith("范围二排放")
    assert zh["Scope 1, natural gas (t CO2e)"].startswith("范围一排放")
    assert zh["Renewable share (GHG Protocol: instruments matched + PV consumed)"].startswith("可再生能源占比")
    assert "单位产品碳排放强度" in zh["Scope 1+2 intensity, location / market (t CO2e per t)"]
    assert "绿证" in zh["Green share by certificates (GECs held, on-site PV's included)"]
    assert zh["Reconciliation: 15-minute sums vs counter differences"].startswith("对账")


def test_languages_names_and_labels(tmp_path):
    assert parse_langs(()) == ALL_LANGS == (Lang.ZH, Lang.EN)
    assert parse_langs(("en",)) == (Lang.EN,) and parse_langs(["en", "zh"]) == (Lang.ZH, Lang.EN)
    assert month_label("2026-03", Lang.ZH) == "2026年3月" and month_label("2026-03", Lang.EN) == "2026-03"
    plant = _plant(tmp_path)
    mill = next(d for d in plant.devices if d.id == "mill")
    caster = next(d for d in plant.devices if d.id == "caster")
    assert [name_of(mill, Lang.ZH), name_of(mill, Lang.EN), name_of(caster, Lang.ZH)] == ["冷轧机一号", "mill",
                                                                                           "caster"]
    assert tr(Lang.EN, "{cny:,.0f} CNY", cny=1234.5) == "1,234 CNY" and tr(Lang.ZH, "{cny:,.0f} CNY", cny=1234.5) \
        == "1,234 元"


def test_lang_option_refuses_other_languages(tmp_path):
    result = CliRunner().invoke(main, ["rollup", "--config", str(tmp_path / "x.yaml"), "--month", "2026-10",
                                       "--lang", "fr"])
    assert result.exit_code == 2 and "'fr' is not one of 'zh', 'en'" in result.output, result.output


def _plant(tmp: Path) -> PlantConfig:
    """The golden month's plant with Chinese names for the mill and the rolling line (the caster has none)."""
    body = fx.BODY.replace("{id: mill,", "{id: mill, name_zh: 冷轧机一号,").replace(
        "{id: roll-1, name: Cold rolling,", "{id: roll-1, name: Cold rolling, name_zh: 冷轧线,")
    path = write_plant(tmp, influx_url="http://127.0.0.1:1", db="x", body=body, init=False)
    path.write_text(path.read_text().replace("timezone: Asia/Shanghai}",
                                             "timezone: Asia/Shanghai, output_lines: [roll-1]}"))
    return load_plant(path)


def _flagged_month(plant: PlantConfig) -> Rollup:
    """The golden month (provisional factors, restated, tariff to be confirmed) plus a meter under 95 %
    coverage and one that does not reconcile: every first-page flag."""
    rollup = month(plant)
    devices = rollup.devices.copy()
    devices.loc[devices["device"] == "mill", "coverage"] = 0.93
    differs = MeterReconciliation("mill", counter_kwh=1000.0, intervals_kwh=1010.0, has_counter=True)
    return dataclasses.replace(rollup, devices=devices, reconciliation=Reconciliation("testsite", fx.MONTH, (differs,)))


def _names(plant: PlantConfig) -> dict:
    return {**{d.id: d for d in plant.devices}, **{line.id: line for line in plant.production_lines}}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("zh")
    plant = _plant(tmp)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(_flagged_month(plant), tmp / "out", names=_names(plant))
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []  # no box in any chart
    return tmp / "out"


def test_chinese_report_flags_names_and_columns(reports):
    zh = (reports / "report.zh.html").read_text()
    assert '<html lang="zh-CN">' in zh and '"Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC"' in zh
    assert "<h1>能源与范围二排放月报：testsite，2026年11月</h1>" in zh
    flags = re.findall(r'<p class="warn">(.*?)</p>', zh)
    assert flags == [
        "对账差异：表计 冷轧机一号 的 15 分钟电量之和为 1,010.000 kWh，而电能表读数差为 1,000.000 kWh"
        "（差值 +10.000 kWh），重新计算前该表本月数据不可签署。",
        "本月数据完整率不足：冷轧机一号 (93.0%)。总量按电能表读数差计算，仍然准确，但分时段明细为插值。",
        "暂用因子：2026 年的排放因子尚未发布，暂以 mee-central-2023（2023 年）代替，本月数据将重新核算。",
        "暂用因子：2026 年的排放因子尚未发布，暂以 mee-residual-2023（2023 年）代替，本月数据将重新核算。",
        "重新核算：本报告取代 2026-12-01 的报告（a -&gt; b），原数据保留在数据来源中。",
        "电价 hunan-industrial-2026-draft 待确认：电费仅供参考。"]
    assert ("<th>设备</th><th>区域</th><th>类型</th><th>电量 kWh</th><th>其中尖峰+高峰</th><th>电费 (元)</th>"
            "<th>尖峰+高峰电费</th><th>数据完整率</th>") in zh
    assert "<tr><td>冷轧机一号</td><td>roll</td><td>冷轧机</td>" in zh  # name_zh; its kind in Chinese
    assert "<tr><td>caster</td><td>cast</td><td>铸轧机</td>" in zh  # no name_zh: the id
    assert "<tr><td>冷轧线</td>" in zh and "厂区产量，生产线 冷轧线 (t)" in zh
    assert "<td>冷轧机一号</td><td>111,000.0</td><td>123,136.0</td><td>低谷</td>" in zh  # move to the valley period
    assert '<h2 id="reconciliation">对账：15 分钟电量之和与电能表读数差</h2><p>1 块表计存在差异：冷轧机一号' in zh
    assert "mee-central-2023 (0.5271 kg/kWh, verified" not in zh and "mee-central-2023（0.5271 kg/kWh，已核实" in zh
    assert "<td>pv-nov</td><td>1003</td><td>厂内光伏：其电量由光伏电表计量（计入可再生能源占比），其 80 MWh" in zh
    assert "<td>gec-dec</td><td>2003</td><td>申报月份为 2026-12，不计入本月</td>" in zh
    # no English sentence left, but in the provenance (ids) and the pathway's name and source (targets.yaml)
    body = re.sub(r"<pre>.*?</pre>|<svg.*?</svg>|<style>.*?</style>|（ASI 1.5 C pathway.*?）", "", zh, flags=re.S)
    english = re.findall(r"\b(?:the|of|and|is|to|for)\b", body)
    assert english == [], english


def test_english_report_stays_as_before(reports):
    en = (reports / "report.html").read_text()
    assert '<html lang="en">' in en and "Provisional: mee-central-2023 (2023) stands in for 2026" in en
    assert "<tr><td>mill</td><td>roll</td><td>cold_mill</td>" in en and "冷轧" not in en
    assert "Reconciliation: meter mill&#x27;s 15-minute energy sums to 1,010.000 kWh" in en


def test_both_files_per_language_and_one_language_alone(reports, tmp_path):
    assert {p.name for p in reports.iterdir()} == {"report.html", "report.zh.html", "scope2.csv", "scope2.xlsx",
                                                   "scope2.zh.xlsx", "rollup.json"}
    from openpyxl import load_workbook

    book = load_workbook(reports / "scope2.zh.xlsx")
    assert book.sheetnames == ["范围二", "计量表计", "数据来源"]
    assert [c.value for c in book["范围二"][1]] == ["范围", "名称", "方法", "电量 kWh", "排放 kg CO2e", "排放因子"]
    english = load_workbook(reports / "scope2.xlsx")
    assert [row[4].value for row in english["Scope 2"].iter_rows(min_row=2)] == \
        [row[4].value for row in book["范围二"].iter_rows(min_row=2)]  # the same numbers in both
    plant = _plant(tmp_path)
    paths = write_report(month(plant), tmp_path / "en", langs=(Lang.EN,), names=_names(plant))
    assert sorted(p.name for p in paths) == ["report.html", "rollup.json", "scope2.csv", "scope2.xlsx"]


def test_charts_are_paths_drawn_with_a_cjk_font(reports):
    zh = (reports / "report.zh.html").read_text()
    charts = re.findall(r'<figure id="(chart-[a-z]+)">(.*?)</figure>', zh, flags=re.S)
    assert len(charts) == 7
    for chart, svg in charts:  # text as glyph outlines: the viewer needs no Chinese font for the charts
        assert "<svg" in svg and "<path" in svg and "<text" not in svg, chart


def test_no_translation_is_missing_when_rendering(tmp_path, caplog):
    plant = _plant(tmp_path)
    with caplog.at_level(logging.ERROR):
        write_report(_flagged_month(plant), tmp_path / "out", langs=(Lang.ZH,), names=_names(plant))
    assert [r.getMessage() for r in caplog.records] == []


def test_chinese_report_renders_in_headless_chromium_with_no_missing_glyph(reports, tmp_path):
    rendered = rendered_fonts(reports / "report.zh.html", tmp_path / "profile")
    texts = [r.text for r in rendered]
    assert any("暂用因子" in t for t in texts) and any(t == "汇总" for t in texts)  # the page's text was read
    heading = next(r for r in rendered if r.tag == "H1")
    assert list(heading.fonts) == ["Noto Sans CJK SC"]  # the font stack resolves to the CJK font installed here
    assert missing_glyphs(rendered) == []
    # the check can fail: Tangut has no font here, and Chromium draws it as boxes of the first font
    control = tmp_path / "control.html"
    control.write_text((reports / "report.zh.html").read_text().replace("<h2>汇总</h2>", "<h2>汇总 𗀀</h2>"))
    assert [c for c, _ in missing_glyphs(rendered_fonts(control, tmp_path / "profile2"))] == ["𗀀"]


def test_chinese_group_report(tmp_path, caplog):
    from datetime import date
    from types import SimpleNamespace

    from plantems.analytics.group import consolidate
    from plantems.analytics.group_report import write_group_report
    from tests.test_group import _doc, _targets

    a = _doc("a", grid=1000.0, pv_self=0.0, green=500.0, certificates=2000.0, by_line={"roll": 8.0},
             entries=(), output_lines=("roll",))
    b = _doc("b", grid=1.0, pv_self=0.0, green=0.0, certificates=0.0, by_line={}, entries=(), output_lines=("roll",))
    rollup = consolidate(docs=[a, b], output_lines={}, group="g", name="G", name_zh="测试集团", month="2026-10",
                         as_of=date(2026, 11, 2), targets=_targets())
    sites = {"a": SimpleNamespace(id="a", name="Alpha", name_zh="甲厂"),
             "b": SimpleNamespace(id="b", name="", name_zh="")}
    with caplog.at_level(logging.ERROR), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = write_group_report(rollup, tmp_path / "g", names=sites)
    assert [r.getMessage() for r in caplog.records] == []  # every message translated
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []
    assert sorted(p.name for p in paths) == ["group.json", "group.xlsx", "group.zh.xlsx", "report.html",
                                             "report.zh.html"]
    zh = (tmp_path / "g" / "report.zh.html").read_text()
    assert "<h1>测试集团：2026年10月</h1>" in zh and "<th>范围一排放 (t CO2e)</th>" in zh
    assert "<p class=warn>b 无产量记录：不列示集团排放强度（仅用其他厂区的产量会低估排放强度）。</p>" in zh
    assert "<tr><td>甲厂</td>" in zh and "<th>厂区</th><th>范围一 kg CO2e</th>" in zh
    en = (tmp_path / "g" / "report.html").read_text()
    assert "<h1>G 测试集团: 2026-10</h1>" in en and "No output recorded for b" in en and "<tr><td>a</td>" in en
    assert missing_glyphs(rendered_fonts(tmp_path / "g" / "report.zh.html", tmp_path / "profile")) == []


def test_the_set_up_and_the_image_install_the_cjk_font():
    import subprocess

    setup = (REPO / "deploy" / "setup-debian.sh").read_text()
    assert 'fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)' in setup
    assert "apt-get install -y --no-install-recommends fonts-noto-cjk" in (REPO / "deploy" / "Dockerfile").read_text()
    # and it is installed here: the font the HTML stack resolves to and the charts use
    assert "Noto Sans CJK SC" in subprocess.run(["fc-list"], capture_output=True, text=True, check=True).stdout
