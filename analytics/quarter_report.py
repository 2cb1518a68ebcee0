"""Quarterly report files: report.html / report.zh.html (self-contained, inline SVG charts), quarter.xlsx /
quarter.zh.xlsx and quarter.json (every number with its provenance; ids, in both languages). Every text goes
through ``tr`` (plantems/i18n.py); the Chinese catalogue is ZH_QUARTER below."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from openpyxl import Workbook

from plantems.analytics.report import REPORT_HTML, chart_fonts_ready, report_file
from plantems.analytics.report import _svg as chart_svg
from plantems.i18n import (
    ALL_LANGS,
    HTML_FONT_STACK,
    DisplayNames,
    Lang,
    Named,
    chart_rc,
    register,
    tr,
    tr_context,
)

if TYPE_CHECKING:
    from plantems.analytics.quarter_job import QuarterReport

__all__ = ["ZH_QUARTER", "write_quarter_report"]


def _svg(figure: Any) -> str:
    return str(chart_svg(figure))  # the monthly report's one way to a chart (str: that path is untyped for mypy)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return html.escape(str(value))


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _entity(entity: str, name: DisplayNames) -> str:
    return tr(name.lang, "site") if entity == "site" else name(entity)


def _measure_name(measure: Any, lang: Lang) -> str:
    return str(measure.name_zh or measure.name or measure.measure_id) if lang is Lang.ZH else str(measure.measure_id)


# analytics/quarter.py's reasons for a carrier left unverified, in Chinese (details stay as computed)
_PROBLEMS_ZH = (
    (re.compile(r"no (?P<carrier>\S+) measured in the baseline period"), "基准期未计量 {carrier}"),
    (re.compile(r"(?P<base>\d+) baseline and (?P<report>\d+) reporting day\(s\) with energy and output: need at "
                r"least 10 and 1"), "有能耗和产量的基准期 {base} 天、报告期 {report} 天：至少需要 10 天和 1 天"),
    (re.compile(r"no baseline model: (?P<detail>.*)"), "无基准模型：{detail}"),
)


def _problem(problem: str, lang: Lang) -> str:
    if lang is Lang.EN:
        return problem
    for pattern, text in _PROBLEMS_ZH:
        found = pattern.fullmatch(problem)
        if found:
            return text.format(**found.groupdict())
    return problem  # a new reason: shown as computed


def _savings_chart(report: QuarterReport, lang: Lang) -> str:
    """Claimed against verified kWh per measure, the verified bar with its 90 % uncertainty."""
    figure, axis = plt.subplots(figsize=(7, 3))
    names, claimed, verified, spread = [], [], [], []
    for measure in report.measures:
        power = measure.carrier("electricity_kwh")
        names.append(_measure_name(measure, lang))
        claimed.append((measure.claimed.get("kwh") or 0.0) / 1000)
        verified.append((power.saving or 0.0) / 1000 if power and power.verified else 0.0)
        spread.append((power.uncertainty_90 or 0.0) / 1000 if power and power.verified else 0.0)
    positions = range(len(names))
    axis.bar([p - 0.2 for p in positions], claimed, 0.4, label=tr(lang, "claimed (pro rata)"), color="#bbbbbb")
    axis.bar([p + 0.2 for p in positions], verified, 0.4, yerr=spread, capsize=4, label=tr(lang, "verified ± 90 %"),
             color="#2166ac")
    axis.set_xticks(list(positions), names, fontsize=8)
    axis.set_ylabel("MWh")
    axis.set_title(tr(lang, "Electricity savings: claimed against verified"))
    axis.legend(fontsize=8)
    return _svg(figure)


def _cusum_chart(report: QuarterReport, name: DisplayNames) -> str:
    lang = name.lang
    figure, axis = plt.subplots(figsize=(7, 3))
    for enpi in report.enpis:
        if enpi.cusum_kwh:
            axis.plot(range(len(enpi.cusum_kwh)), [v / 1000 for _, v in enpi.cusum_kwh],
                      label=_entity(enpi.entity, name))
    axis.set_xlabel(tr(lang, "day of the quarter"))
    axis.set_ylabel(tr(lang, "CUSUM, MWh (falling = saving)"))
    if axis.get_legend_handles_labels()[0]:  # no entity with a valid baseline: no line to label
        axis.legend(fontsize=8)
    return _svg(figure)


def _enpi_rows(report: QuarterReport, name: DisplayNames) -> list[list[Any]]:
    lang = name.lang
    return [[_entity(e.entity, name), e.output_t, e.kwh_per_t, e.expected_kwh_per_t, e.normalised_kwh_per_t,
             e.kgce_per_t, e.t_co2e_per_t, e.target_t_co2e_per_t, e.improvement_kwh,
             tr(lang, "valid") if e.baseline and e.baseline.validity.valid else (_problem(e.problem, lang)
                                                                                  or tr(lang, "none")),
             f"{e.production_days}/{e.days}"] for e in report.enpis]


_ENPI_HEADER = ["entity", "output t", "kWh/t", "baseline kWh/t", "normalised kWh/t", "kgce/t", "t CO2e/t",
                "target t CO2e/t", "improvement kWh", "baseline", "days with output"]


def _measure_rows(report: QuarterReport, lang: Lang) -> list[list[Any]]:
    rows = []
    for m in report.measures:
        for c in m.carriers:
            key = "kwh" if c.carrier == "electricity_kwh" else "gas_m3"
            model = c.baseline
            rows.append([m.measure_id, _measure_name(m, Lang.ZH) if lang is Lang.ZH else m.name_zh or m.name,
                         tr(lang, m.type), m.ipmvp_option, tr(lang, c.carrier), m.claimed.get(key),
                         c.saving, c.uncertainty, c.uncertainty_90, sum(c.non_routine_by_month.values()) or None,
                         "; ".join(c.non_routine_notes) or None,
                         tr(lang, "yes") if c.verified else tr(lang, "NO: {problem}",
                                                               problem=_problem(c.problem, lang)),
                         model.r2 if model else None, model.cv_rmse if model else None,
                         m.claimed.get("t_co2e"), m.verified_t_co2e, m.verified_t_co2e_uncertainty])
    return rows


_MEASURE_HEADER = ["measure", "name", "type", "IPMVP", "carrier", "claimed", "verified", "± (68 %)", "± (90 %)",
                   "non-routine adj.", "its notes", "verified?", "baseline R²", "CV(RMSE)", "claimed t CO2e",
                   "verified t CO2e", "± t CO2e"]


def _summary_rows(report: QuarterReport) -> list[list[Any]]:
    """Per measure: claimed (pro rata over the verified days) against verified, and annualised (like with like)."""
    rows = []
    for m in report.measures:
        yearly = m.to_json()["verified_annualised"] or {}
        rows.append([m.measure_id, m.type, m.days, m.claimed.get("t_co2e"), m.verified_t_co2e,
                     m.verified_t_co2e_uncertainty, yearly.get("t_co2e"), m.scope1_removed_t_co2e,
                     m.scope2_added_t_co2e, m.claimed.get("cny"), m.verified_cny, m.verified_cny_uncertainty,
                     yearly.get("cny")])
    return rows


_SUMMARY_HEADER = ["measure", "type", "days", "claimed t CO2e (pro rata)", "verified t CO2e", "± t CO2e (68 %)",
                   "verified t CO2e/yr (annualised)", "Scope 1 removed t", "Scope 2 added t", "claimed CNY (pro rata)",
                   "verified CNY", "± CNY (68 %)", "verified CNY/yr (annualised)"]


def _adjustment_rows(report: QuarterReport) -> list[list[Any]]:
    """Every baseline version (with its reason) and every static-factor adjustment with what it added."""
    rows: list[list[Any]] = []
    for m in report.measures:
        carrier = m.carriers[0]
        for version in carrier.spec.history:
            rows.append([m.measure_id, f"v{version['version']}" + (" (in force)" if version["in_force"] else ""),
                         f"{version['start']} .. {version['end']}", ", ".join(version["predictors"]),
                         version["reason"], None, None, None])
        for c in m.carriers:
            for entry in c.adjustment_log:
                amount = (f"{entry['percent']:g} % of the baseline" if entry["percent"] is not None else
                          f"{entry['kwh_per_day'] or 0:g} kWh/d, {entry['gas_m3_per_day'] or 0:g} m3/d")
                rows.append([m.measure_id, f"v{entry['baseline_version']}", f"from {entry['date']}", None,
                             entry["description"], c.carrier, amount, entry["total"]])
    for e in report.enpis:
        for entry in e.adjustment_log:
            rows.append([f"EnPI {e.entity}", f"v{entry['baseline_version']}", f"from {entry['date']}", None,
                         entry["description"], "electricity_kwh", entry["percent"] or entry["kwh_per_day"],
                         entry["total"]])
    return rows


_ADJUSTMENT_HEADER = ["measure", "baseline version", "period / from", "predictors", "reason / static-factor change",
                      "carrier", "adjustment", "added to the baseline"]


def _header(columns: list[str], lang: Lang) -> list[str]:
    """Table columns in ``lang`` (catalogue keys "quarter|column": a column may differ from a word elsewhere)."""
    return [tr_context(lang, "quarter", column) for column in columns]


def _quarter_label(quarter: str, lang: Lang) -> str:
    """'2026Q4' as 2026年第4季度 or 2026Q4."""
    return f"{quarter[:4]}年第{quarter[-1]}季度" if lang is Lang.ZH else quarter


def _html(report: QuarterReport, name: DisplayNames) -> str:
    lang = name.lang

    def t(message: str, **values: object) -> str:
        return tr(lang, message, **values)

    pathway = report.pathway
    warnings = [t("{measure} {carrier}: not verified: {problem}", measure=_measure_name(m, lang),
                  carrier=t(c.carrier), problem=_problem(c.problem, lang))
                for m in report.measures for c in m.carriers if c.problem]
    warn = "".join(f"<p class=warn>{html.escape(w)}</p>" for w in warnings)
    completeness = report.completeness
    site = html.escape(name(report.site))
    quarter = _quarter_label(report.quarter, lang)
    font = HTML_FONT_STACK if lang is Lang.ZH else "sans-serif"
    return f"""<!doctype html><html lang="{"zh-CN" if lang is Lang.ZH else "en"}"><head><meta charset="utf-8">
<title>{t("Quarterly energy performance")} {quarter} {site}</title><style>
body{{font-family:{font};max-width:1100px;margin:auto}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} .warn{{color:#b2182b;font-weight:bold}}
</style></head><body>
<h1>{t("Energy performance and verified savings, {quarter} ({site})", quarter=quarter, site=site)}</h1>
<p>{t("Data {first} .. {last}. Savings uncertainty: ASHRAE Guideline 14 FSU at 68 % and 90 % confidence.",
      first=report.first, last=report.last)}</p>
{warn}
<h2>{t("Pathway status")}</h2>
<p>{t("Scope 1+2 intensity {actual} t CO2e/t against the pathway's {target}: <b>{status}</b>. Verified measures: "
      "{verified} t CO2e (claimed pro rata {claimed}).", actual=_fmt(pathway['actual_t_co2e_per_t']),
      target=_fmt(pathway['target_t_co2e_per_t']), status=html.escape(t(pathway['status'])),
      verified=_fmt(pathway['verified_t_co2e']), claimed=_fmt(pathway['claimed_t_co2e']))}</p>
<h2>{t("EnPIs against baseline and target")}</h2>
{_table(_enpi_rows(report, name), _header(_ENPI_HEADER, lang))}
<figure id="chart-cusum">{_cusum_chart(report, name)}</figure>
<h2>{t("Measures: claimed against verified")}</h2>
{_table(_measure_rows(report, lang), _header(_MEASURE_HEADER, lang))}
<figure id="chart-savings">{_savings_chart(report, lang)}</figure>
<h3>{t("Claimed against verified t CO2e and CNY (a fuel switch: Scope 1 removed - Scope 2 added)")}</h3>
<p>{t("Claims are yearly, shown pro rata over the verified days; the verified figures are also annualised at the "
      "reporting period's rate. Verified CNY: verified kWh at the boundary's reporting-period tariff mix "
      "(provenance).")}</p>
{_table(_summary_rows(report), _header(_SUMMARY_HEADER, lang))}
<h3>{t("Baseline versions and static-factor adjustments")}</h3>
{_table(_adjustment_rows(report), _header(_ADJUSTMENT_HEADER, lang))}
<h2>{t("Data completeness")}</h2>
<p>{t("{days} of {expected} days with energy data; {output} with the site's output recorded.",
      days=completeness['days_with_energy'], expected=completeness['days_expected'],
      output=completeness['days_with_site_output'])}</p>
<h2>{t("Provenance")}</h2><pre>{html.escape(json.dumps(report.provenance, indent=1, ensure_ascii=False))}</pre>
</body></html>"""


def _xlsx(report: QuarterReport, path: Path, name: DisplayNames) -> None:
    lang = name.lang
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = tr(lang, "EnPIs")
    sheet.append(_header(_ENPI_HEADER, lang))
    for row in _enpi_rows(report, name):
        sheet.append(row)
    measures = book.create_sheet(tr(lang, "Measures"))
    measures.append(_header(_MEASURE_HEADER, lang))
    for row in _measure_rows(report, lang):
        measures.append(row)
    for title, header, rows in (("Claimed vs verified", _SUMMARY_HEADER, _summary_rows(report)),
                                ("Baseline log", _ADJUSTMENT_HEADER, _adjustment_rows(report))):
        extra = book.create_sheet(tr(lang, title))
        extra.append(_header(header, lang))
        for row in rows:
            extra.append(row)
    info = book.create_sheet(tr(lang, "Provenance"))
    for key, value in report.provenance.items():
        info.append([key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value])
    book.save(path)


def write_quarter_report(report: QuarterReport, folder: Path, *, langs: tuple[Lang, ...] = ALL_LANGS,
                         names: Mapping[str, Named] | None = None) -> list[Path]:
    """report.html and quarter.xlsx (English), report.zh.html and quarter.zh.xlsx (zh-CN) for each of ``langs``,
    and quarter.json; ``names``: the site, lines and devices by id, for their Chinese names (name_zh)."""
    folder.mkdir(parents=True, exist_ok=True)
    if Lang.ZH in langs:
        chart_fonts_ready()
    paths = []
    for lang in langs:
        name = DisplayNames(names or {}, lang)
        html_path, xlsx_path = folder / REPORT_HTML[lang], folder / report_file("quarter.xlsx", lang)
        with plt.rc_context(chart_rc()):
            html_path.write_text(_html(report, name), encoding="utf-8")
        _xlsx(report, xlsx_path, name)
        paths += [html_path, xlsx_path]
    json_path = folder / "quarter.json"
    json_path.write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return [*paths, json_path]


_COLUMNS_ZH = {  # the tables' columns (_header)
    "entity": "对象", "output t": "产量 t", "kWh/t": "kWh/t", "baseline kWh/t": "基准 kWh/t",
    "normalised kWh/t": "归一化 kWh/t", "kgce/t": "kgce/t", "t CO2e/t": "t CO2e/t",
    "target t CO2e/t": "目标 t CO2e/t", "improvement kWh": "能效改进 kWh", "baseline": "基准模型",
    "days with output": "有产量天数",
    "measure": "措施", "name": "名称", "type": "类型", "IPMVP": "IPMVP 选项", "carrier": "能源品种",
    "claimed": "申报值", "verified": "核证值", "± (68 %)": "± (68 %)", "± (90 %)": "± (90 %)",
    "non-routine adj.": "非常规调整", "its notes": "调整说明", "verified?": "是否已核证", "baseline R²": "基准 R²",
    "CV(RMSE)": "CV(RMSE)", "claimed t CO2e": "申报 t CO2e", "verified t CO2e": "核证 t CO2e",
    "± t CO2e": "± t CO2e",
    "days": "天数", "claimed t CO2e (pro rata)": "申报 t CO2e（按比例）", "± t CO2e (68 %)": "± t CO2e (68 %)",
    "verified t CO2e/yr (annualised)": "核证 t CO2e/年（年化）", "Scope 1 removed t": "范围一减少 t",
    "Scope 2 added t": "范围二增加 t", "claimed CNY (pro rata)": "申报 元（按比例）", "verified CNY": "核证 元",
    "± CNY (68 %)": "± 元 (68 %)", "verified CNY/yr (annualised)": "核证 元/年（年化）",
    "baseline version": "基准版本", "period / from": "期间 / 起始", "predictors": "相关变量",
    "reason / static-factor change": "原因 / 静态因素变化", "adjustment": "调整量",
    "added to the baseline": "计入基准的调整",
}
ZH_QUARTER = {
    "site": "厂区", "claimed (pro rata)": "申报值（按比例）", "verified ± 90 %": "核证值 ± 90 %",
    "Electricity savings: claimed against verified": "节电量：申报值与核证值",
    "day of the quarter": "季度内天数", "CUSUM, MWh (falling = saving)": "累积和 CUSUM，MWh（下降 = 节约）",
    "valid": "有效", "none": "无", "yes": "是", "NO: {problem}": "否：{problem}",
    "retrofit": "改造", "fuel_switch": "燃料替代", "operational": "运行优化", "pv": "光伏", "storage": "储能",
    "electricity_kwh": "电 kWh", "gas_m3": "天然气 m³",
    **{f"quarter|{column}": text for column, text in _COLUMNS_ZH.items()},
    "{measure} {carrier}: not verified: {problem}": "{measure} {carrier}：未核证：{problem}",
    "Quarterly energy performance": "季度能源绩效",
    "Energy performance and verified savings, {quarter} ({site})": "能源绩效与核证节能量：{quarter}（{site}）",
    "Data {first} .. {last}. Savings uncertainty: ASHRAE Guideline 14 FSU at 68 % and 90 % confidence.":
        "数据期间 {first} .. {last}。节能量不确定度：ASHRAE Guideline 14 节能量分数不确定度（FSU），"
        "置信度 68 % 和 90 %。",
    "Pathway status": "减排路径进展",
    "Scope 1+2 intensity {actual} t CO2e/t against the pathway's {target}: <b>{status}</b>. Verified measures: "
    "{verified} t CO2e (claimed pro rata {claimed}).":
        "范围一+范围二排放强度 {actual} t CO2e/t，路径目标 {target}：<b>{status}</b>。已核证措施减排 "
        "{verified} t CO2e（按比例申报 {claimed}）。",
    "on track": "达标", "off track": "未达标", "no data": "无数据",
    "EnPIs against baseline and target": "能源绩效参数与基准、目标对比",
    "Measures: claimed against verified": "节能措施：申报值与核证值",
    "Data completeness": "数据完整性",
    "{days} of {expected} days with energy data; {output} with the site's output recorded.":
        "{expected} 天中 {days} 天有能耗数据，{output} 天有厂区产量记录。",
    "Provenance": "数据来源", "EnPIs": "能源绩效参数", "Measures": "节能措施",
    "Claimed against verified t CO2e and CNY (a fuel switch: Scope 1 removed - Scope 2 added)":
        "申报与核证的 t CO2e 和金额（燃料替代：范围一减少 - 范围二增加）",
    "Claims are yearly, shown pro rata over the verified days; the verified figures are also annualised at the "
    "reporting period's rate. Verified CNY: verified kWh at the boundary's reporting-period tariff mix "
    "(provenance).":
        "申报值为年度值，按核证天数折算。核证值另按报告期的速率年化。核证金额：核证电量按测量边界在报告期的"
        "分时电价结构计价（见数据来源）。",
    "Baseline versions and static-factor adjustments": "基准版本与静态因素调整",
    "Claimed vs verified": "申报与核证", "Baseline log": "基准记录",
}
register(ZH_QUARTER)
