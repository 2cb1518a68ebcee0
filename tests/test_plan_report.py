"""The plan section of the monthly and group reports, in zh-CN and English: every target's row, translated, with
its chart; the group report's page consolidates both parks."""

from __future__ import annotations

import dataclasses
import logging
import re
import warnings
from datetime import date

from plantems.analytics.plan import MonthFigure, TargetActuals, compute_plan
from plantems.analytics.plan_job import NO_OUTPUT, NO_ROLLUP
from plantems.analytics.report import write_report
from plantems.i18n import translations
from plantems.schema import PlanScope, PlanTarget
from plantems.targets import load_targets
from tests.browser import missing_glyphs, rendered_fonts
from tests.support import REPO
from tests.test_report_zh import _flagged_month, _message_ids, _names, _plant

TARGETS = load_targets(REPO / "config" / "targets.yaml")


def _page(month: str = "2026-11"):
    actuals = {
        PlanTarget.INTENSITY: TargetActuals((MonthFigure("2026-10", 350.0, 1000.0, 300.0),
                                             MonthFigure("2026-11", 20.0, 100.0, 10.0)),
                                            (("2026-09", NO_ROLLUP), ("2026-08", NO_OUTPUT))),
        PlanTarget.RAW_MATERIAL: TargetActuals((MonthFigure("2026-10", 2200.0, 500.0),)),
        PlanTarget.RECYCLED_SHARE: TargetActuals((MonthFigure("2026-10", 150.0, 500.0),)),
        PlanTarget.RENEWABLE_SHARE: TargetActuals((MonthFigure("2026-11", 100.0, 1000.0),)),
        PlanTarget.METERING_COVERAGE: TargetActuals((MonthFigure("2026-11", 9.0, 11.0),)),
    }
    return compute_plan(TARGETS, actuals, entity="testsite", scope=PlanScope.SITE, month=month)


def test_every_message_of_the_plan_section_has_a_chinese_translation():
    import plantems.analytics.plan_report as module

    ids = _message_ids(REPO / "analytics" / "plan_report.py")
    assert len(ids) > 8
    zh = translations()
    assert sorted(ids - set(zh)) == []
    dynamic = [*module.LABELS.values(), *module.PLAN_ZH]
    assert [m for m in dynamic if m not in zh] == []
    assert [m for m in ids if set(re.findall(r"{[^}]*}", zh[m])) != set(re.findall(r"{[^}]*}", m))] == []


def test_the_monthly_report_has_the_plan_page_in_both_languages(tmp_path, caplog):
    plant = _plant(tmp_path)
    rollup = dataclasses.replace(_flagged_month(plant), plan=_page())
    with caplog.at_level(logging.ERROR, logger="plantems.i18n"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(rollup, tmp_path / "out", names=_names(plant))
    assert [r.getMessage() for r in caplog.records] == []  # every message translated
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []  # no box in the chart
    en = (tmp_path / "out" / "report.html").read_text()
    zh = (tmp_path / "out" / "report.zh.html").read_text()
    section = en[en.index('<h2 id="plan">'):]
    # intensity: 370 / 1,100 = 0.336 year to date against 2026's 0.32 (base 2024: 0.33), off track
    assert ("<tr><td>ASI casting-rolling, Scope 1+2 intensity</td><td>t CO2e / t Al</td><td>2024</td><td>0.330</td>"
            "<td>0.320 (plan)</td><td>0.300 (2030)</td><td>0.336; market-based: 0.282</td><td>2</td>"
            "<td>off track</td><td>10: 0.350, 11: 0.200</td></tr>") in section
    assert "<td>ASI raw material, Scope 3 category 1 intensity</td><td>t CO2e / t Al purchased</td><td>2024</td>" \
           "<td>5.900</td><td>5.400 (plan)</td><td>4.500 (2030)</td><td>4.400</td><td>1</td><td>on track</td>" \
        in section
    assert "<td>Recycled aluminium share</td><td>share</td><td>2024</td><td>—</td><td>—</td><td>35.0% (2030)</td>" \
           "<td>30.0%</td><td>1</td><td>no interim target</td>" in section
    assert "<td>Green-certificate share (to be confirmed)</td>" in section and "<td>no data</td>" in section
    assert "<td>81.8%</td><td>1</td><td>no interim target</td>" in section  # metering 9 / 11
    assert "No figure for 2026-09: no monthly rollup recorded for this month." in section
    assert '<figure id="chart-plan"><svg' in section
    plan_zh = zh[zh.index('<h2 id="plan">'):]
    assert "<h2 id=\"plan\">规划目标：各项目标与实际完成情况</h2>" in plan_zh
    for label in ("ASI 铸轧：范围一+二碳排放强度", "ASI 原材料：范围三类别1碳排放强度", "再生铝占比",
                  "可再生能源电力占比", "绿证电力消费占比 (待确认)", "高耗能设备纳入能源管理系统比例"):
        assert f"<td>{label}" in plan_zh, label
    assert "<td>落后于进度</td>" in plan_zh and "<td>符合进度</td>" in plan_zh
    assert "2026年9月 无数据：该月无月度汇总记录。" in plan_zh
    assert missing_glyphs(rendered_fonts(tmp_path / "out" / "report.zh.html", tmp_path / "profile")) == []


def test_the_group_report_has_the_groups_plan_page(tmp_path, caplog):
    from plantems.analytics.group import consolidate
    from plantems.analytics.group_report import write_group_report
    from tests.test_group import _doc, _targets

    a = _doc("a", grid=1000.0, pv_self=0.0, green=500.0, certificates=2000.0, by_line={"roll": 8.0},
             entries=(), output_lines=("roll",))
    rollup = consolidate(docs=[a], output_lines={}, group="g", name="G", name_zh="测试集团", month="2026-10",
                         as_of=date(2026, 11, 2), targets=_targets())
    page = dataclasses.replace(_page(), entity="g", scope=PlanScope.GROUP)
    with caplog.at_level(logging.ERROR, logger="plantems.i18n"):
        write_group_report(dataclasses.replace(rollup, plan=page), tmp_path / "g")
    assert [r.getMessage() for r in caplog.records] == []
    assert '<h2 id="plan">Group plan: both parks consolidated</h2>' in (tmp_path / "g" / "report.html").read_text()
    assert '<h2 id="plan">集团规划目标：两园区合并</h2>' in (tmp_path / "g" / "report.zh.html").read_text()
    import json

    doc = json.loads((tmp_path / "g" / "group.json").read_text())
    assert doc["plan"]["scope"] == "group" and doc["plan"]["targets"][0]["actual_ytd"] == 370 / 1100
