"""The plan page of the monthly and group reports (HTML, zh-CN and English): every target of targets.yaml with
its base year and value, this year's target, the goal, the actual year to date, the status and the monthly
trend, and a chart of each target's actual against its target path. Renders an analytics/plan.py PlanPage."""

from __future__ import annotations

import html
import io
from typing import Final

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from plantems.analytics.plan import PROVENANCE, PlanPage, PlanRow, Status
from plantems.analytics.plan_job import NO_LEDGER, NO_OUTPUT, NO_ROLLUP
from plantems.i18n import Lang, month_label, register, tr, tr_context
from plantems.schema import PlanTarget

__all__ = ["PLAN_ZH", "plan_chart", "plan_section"]

# The targets' labels (English ids; the file's own name and source are in the provenance line)
LABELS: Final = {
    PlanTarget.INTENSITY: "ASI casting-rolling, Scope 1+2 intensity",
    PlanTarget.RAW_MATERIAL: "ASI raw material, Scope 3 category 1 intensity",
    PlanTarget.RECYCLED_SHARE: "Recycled aluminium share",
    PlanTarget.RENEWABLE_SHARE: "Renewable electricity share",
    PlanTarget.CERTIFICATE_SHARE: "Green-certificate share",
    PlanTarget.METERING_COVERAGE: "High-consumption equipment in the energy-management system",
}
UNITS: Final = {PlanTarget.INTENSITY: "t CO2e / t Al", PlanTarget.RAW_MATERIAL: "t CO2e / t Al purchased"}
_STATUS_COLOUR: Final = {Status.ON_TRACK: "#1a9850", Status.OFF_TRACK: "#d73027"}

PLAN_ZH: Final[dict[str, str]] = {
    LABELS[PlanTarget.INTENSITY]: "ASI 铸轧：范围一+二碳排放强度",
    LABELS[PlanTarget.RAW_MATERIAL]: "ASI 原材料：范围三类别1碳排放强度",
    LABELS[PlanTarget.RECYCLED_SHARE]: "再生铝占比",
    LABELS[PlanTarget.RENEWABLE_SHARE]: "可再生能源电力占比",
    LABELS[PlanTarget.CERTIFICATE_SHARE]: "绿证电力消费占比",
    LABELS[PlanTarget.METERING_COVERAGE]: "高耗能设备纳入能源管理系统比例",
    "t CO2e / t Al": "t CO2e / t 铝", "t CO2e / t Al purchased": "t CO2e / t 采购铝",
    NO_ROLLUP: "该月无月度汇总记录", NO_OUTPUT: "未记录产量：有排放无产量会高估强度",
    NO_LEDGER: "无外购金属台账（metal_purchases.csv）",
    **{text: zh for text, zh in zip(PROVENANCE.values(), (
        "月度汇总：范围一（燃料计量）+ 基于位置的范围二，t CO2e / 产出线产量 t（旁列基于市场）",
        "外购金属台账（metal_purchases.csv）：所购铝的 t CO2e / 所购铝 t，按交货日期",
        "外购金属台账：消费前 + 消费后再生含量 / 全部外购金属投入，按质量，未按收得率调整",
        "月度汇总：（按月匹配的绿电绿证 + 厂内光伏自用）/ 用电量",
        "月度汇总：当月持有的绿证（不超过用电量）/ 用电量",
        "各月末的计量器具台账（工厂配置）：已纳入 plantems 的 ≥100 kW 设备 / 全部 ≥100 kW 设备"), strict=True)},
    "Plan: every target against its actual": "规划目标：各项目标与实际完成情况",
    "Group plan: both parks consolidated": "集团规划目标：两园区合并",
    "Year to date through {month}. A ratio's year to date is the sum of the months' numerators over the sum of "
    "their denominators (never a mean of monthly ratios); the metering coverage is the latest month's. Status: "
    "on track when the year to date is at or below this year's target (intensities) or at or above it (shares); "
    "a goal stated only for its final year is judged against the straight line from its base-year value, and "
    "without one it has no interim target until the goal is met.":
        "截至{month}的年累计值。比率的年累计值为各月分子之和除以各月分母之和（不取月度比率的平均值），计量覆盖率取最近一月。"
        "判定：强度类年累计值不高于本年目标、占比类不低于本年目标即为符合进度。只给出末年目标的指标按基准年数值至目标的直线"
        "进度判定，未给出基准年数值的，在达到目标前无年度中间目标。",
    # short words, keyed "plan|word" (tr_context): other reports may translate the same word differently
    **{f"plan|{word}": zh for word, zh in {
        "target": "目标", "unit": "单位", "base year": "基准年", "base value": "基准值",
        "this year's target": "本年目标", "goal": "最终目标", "actual, year to date": "年累计实际值",
        "months": "月数", "status": "状态",
        "monthly trend": "月度趋势", "to be confirmed": "待确认", "plan": "规划值", "none": "无", "share": "占比",
        Status.ON_TRACK: "符合进度", Status.OFF_TRACK: "落后于进度", Status.NO_DATA: "无数据",
        Status.NO_INTERIM: "本年无中间目标"}.items()},
    "straight line {start}-{end}": "直线进度 {start}-{end}",
    "market-based: {value}": "基于市场：{value}",
    "Where each actual comes from, and the months without a figure": "各实际值的来源及缺数月份",
    "{label}: {provenance}. Target: {name} ({source}).": "{label}：{provenance}。目标：{name}（{source}）。",
    "No figure for {months}: {reason}.": "{months} 无数据：{reason}。",
    "actual, month": "当月实际", "actual, year to date (line)": "年累计实际（折线）",
    "this year's target (dashed)": "本年目标（虚线）", "{year} goal (dash-dot)": "{year}年目标（点划线）",
}
register(PLAN_ZH)


def _w(lang: Lang, word: str) -> str:
    return tr_context(lang, "plan", word)


def _fmt(row: PlanRow, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if row.target not in UNITS else f"{value:,.3f}"


def _basis(row: PlanRow, lang: Lang) -> str:
    if row.target_basis in ("plan", "none"):
        return _w(lang, row.target_basis)
    years = [part.split(" ")[0] for part in row.target_basis.split("from ")[1].split(" to ")]
    return tr(lang, "straight line {start}-{end}", start=years[0], end=years[1])


def _cells(row: PlanRow, lang: Lang) -> list[str]:
    label = tr(lang, LABELS[row.target]) + (f" ({_w(lang, 'to be confirmed')})" if row.to_be_confirmed else "")
    actual = _fmt(row, row.actual_ytd)
    if row.target is PlanTarget.INTENSITY and row.actual_ytd_market is not None:
        actual += "; " + tr(lang, "market-based: {value}", value=_fmt(row, row.actual_ytd_market))
    target = _fmt(row, row.target_value) + (f" ({_basis(row, lang)})" if row.target_value is not None else "")
    trend = ", ".join(f"{month[5:]}: {_fmt(row, value)}" for month, value, _ in row.trend())
    unit = tr(lang, UNITS[row.target]) if row.target in UNITS else _w(lang, "share")
    return [label, unit, str(row.base_year), _fmt(row, row.base_value), target,
            f"{_fmt(row, row.goal_value)} ({row.goal_year})", actual, str(len(row.months)), _w(lang, row.status),
            trend or "—"]


def plan_chart(page: PlanPage, lang: Lang) -> str:
    """Each target's monthly actual and year to date against this year's target and its base value (SVG)."""
    rows = page.rows
    columns = 3
    lines = max((len(rows) + columns - 1) // columns, 1)
    figure, axes = plt.subplots(lines, columns, figsize=(11, 3.0 * lines), squeeze=False)
    scale = {True: 1.0, False: 100.0}
    for axis, row in zip(axes.flat, rows, strict=False):
        k = scale[row.target in UNITS]
        trend = row.trend()
        x = [int(month[5:]) for month, _, _ in trend]
        axis.plot(x, [None if v is None else v * k for _, v, _ in trend], "o", color="#636363",
                  label=tr(lang, "actual, month"))
        axis.plot(x, [None if y is None else y * k for _, _, y in trend], "-", color="#2166ac",
                  label=tr(lang, "actual, year to date (line)"))
        if row.target_value is not None:
            axis.axhline(row.target_value * k, color="#fdae6b", linestyle="--",
                         label=tr(lang, "this year's target (dashed)"))
        else:  # a goal for its final year only: the goal itself is the line to reach
            axis.axhline(row.goal_value * k, color="#31a354", linestyle="-.",
                         label=tr(lang, "{year} goal (dash-dot)", year=row.goal_year))
        if row.target not in UNITS:
            axis.set_ylim(0, 105)
        if row.base_value is not None:
            axis.axhline(row.base_value * k, color="#bdbdbd", linestyle=":", label=_w(lang, "base year"))
        axis.set_xlim(0.5, 12.5)
        axis.set_xticks(range(1, 13))
        axis.set_title(tr(lang, LABELS[row.target]), fontsize=9, color=_STATUS_COLOUR.get(row.status, "black"))
        axis.set_ylabel(tr(lang, UNITS[row.target]) if row.target in UNITS else "%", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(rows):]:
        axis.set_visible(False)
    for axis in list(axes.flat)[:len(rows)]:
        axis.legend(fontsize=6)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def plan_section(page: PlanPage | None, lang: Lang, *, heading: str = "Plan: every target against its actual"
                 ) -> str:
    """The report's plan section ("" when the rollup carried no page). Call inside the report's chart rc."""
    if page is None:
        return ""
    header = ["target", "unit", "base year", "base value", "this year's target", "goal", "actual, year to date",
              "months", "status", "monthly trend"]
    head = "".join(f"<th>{html.escape(_w(lang, h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(row, lang)) + "</tr>"
                   for row in page.rows)
    notes = []
    for row in page.rows:
        notes.append(tr(lang, "{label}: {provenance}. Target: {name} ({source}).", label=tr(lang, LABELS[row.target]),
                        provenance=tr(lang, row.provenance), name=row.name, source=row.source))
        reasons: dict[str, list[str]] = {}
        for month, reason in row.missing:
            reasons.setdefault(reason, []).append(month_label(month, lang))
        notes += [tr(lang, "No figure for {months}: {reason}.", months=", ".join(months), reason=tr(lang, reason))
                  for reason, months in reasons.items()]
    rule = tr(lang, "Year to date through {month}. A ratio's year to date is the sum of the months' numerators over "
                    "the sum of their denominators (never a mean of monthly ratios); the metering coverage is the "
                    "latest month's. Status: on track when the year to date is at or below this year's target "
                    "(intensities) or at or above it (shares); a goal stated only for its final year is judged against "
                    "the straight line from its base-year value, and without one it has no interim target until the "
                    "goal is met.", month=month_label(page.month, lang))
    return (f'<h2 id="plan">{html.escape(tr(lang, heading))}</h2><p>{html.escape(rule)}</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f'<figure id="chart-plan">{plan_chart(page, lang)}</figure>'
            f"<h3>{html.escape(tr(lang, 'Where each actual comes from, and the months without a figure'))}</h3>"
            + "".join(f"<p>{html.escape(n)}</p>" for n in notes))
