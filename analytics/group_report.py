"""Group report files from a GroupRollup: report.html (English) and report.zh.html (zh-CN), self-contained with
inline SVG charts; group.xlsx and group.zh.xlsx, and group.json (every number, with each site's row and
provenance)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from openpyxl import Workbook

from plantems.analytics.group import GroupRollup
from plantems.analytics.plan_report import plan_section
from plantems.analytics.report import REPORT_HTML, _svg, _table, chart_fonts_ready, report_file  # one way to a chart
from plantems.analytics.report_sections import sections_html
from plantems.analytics.sections import ReportSections
from plantems.i18n import (
    ALL_LANGS,
    HTML_FONT_STACK,
    DisplayNames,
    Lang,
    Named,
    chart_rc,
    month_label,
    register,
    tr,
)

__all__ = ["write_group_report"]

_SITE_COLUMNS = ("site", "scope1_kgco2e", "scope2_location_kgco2e", "scope2_market_kgco2e",
                 "scope2_market_hourly_kgco2e", "grid_import_kwh", "pv_self_kwh", "consumption_kwh",
                 "green_monthly_kwh", "certificates_kwh", "renewable_kwh", "production_t",
                 "intensity_location_t_per_t", "intensity_market_t_per_t", "location_factor", "residual_factor",
                 "tariff", "coverage_min", "reconciled", "config_sha256")


_SITE_COLUMNS_ZH = {"site": "厂区", "scope1_kgco2e": "范围一 kg CO2e",
                    "scope2_location_kgco2e": "范围二 基于位置 kg CO2e",
                    "scope2_market_kgco2e": "范围二 基于市场 kg CO2e",
                    "scope2_market_hourly_kgco2e": "范围二 基于市场（按小时）kg CO2e",
                    "grid_import_kwh": "电网购入电量 kWh",
                    "pv_self_kwh": "光伏自用电量 kWh", "consumption_kwh": "用电量 kWh",
                    "green_monthly_kwh": "已匹配绿电/绿证电量 kWh", "certificates_kwh": "绿证电量 kWh",
                    "renewable_kwh": "可再生能源电量 kWh", "production_t": "产量 t",
                    "intensity_location_t_per_t": "排放强度 基于位置 t/t",
                    "intensity_market_t_per_t": "排放强度 基于市场 t/t", "location_factor": "基于位置的排放因子",
                    "residual_factor": "剩余组合排放因子", "tariff": "电价", "coverage_min": "最低数据完整率",
                    "reconciled": "对账一致", "config_sha256": "配置 sha256"}

register({
    "Scope 1+2 {method}": "范围一+范围二 {method}", "location": "基于位置", "market": "基于市场", "t CO2e": "t CO2e",
    "Group Scope 1+2 by site": "集团范围一+范围二排放（按厂区）", "{site} (market)": "{site}（基于市场）",
    "group (location)": "集团（基于位置）", "group (market)": "集团（基于市场）", "pathway target": "路径目标",
    "t CO2e / t Al": "t CO2e / t 铝",
    "Scope 1+2 intensity against the group pathway": "范围一+范围二排放强度与集团减排路径",
    "group": "集团", "{year} goal": "{year} 年目标", "renewable % of consumption": "可再生能源占用电量 %",
    "No output recorded for {sites}: the group intensity is not stated (the other sites' output alone would "
    "understate it).": "{sites} 无产量记录：不列示集团排放强度（仅用其他厂区的产量会低估排放强度）。",
    "{site}: provisional emission factor ({location} / {residual}); the month will be restated.":
        "{site}：暂用排放因子（{location} / {residual}），本月数据将重新核算。",
    "{site}: poor data coverage: {meters}.": "{site}：数据完整率不足：{meters}。",
    "{site}: meters do not reconcile: {meters}.": "{site}：表计对账不一致：{meters}。",
    "Scope 1 (t CO2e)": "范围一排放 (t CO2e)", "Scope 2 location (t CO2e)": "范围二排放，基于位置 (t CO2e)",
    "Scope 2 market (t CO2e)": "范围二排放，基于市场 (t CO2e)", "Consumption (MWh)": "用电量 (MWh)",
    "Renewable share": "可再生能源占比", "Certificate share": "绿证占比", "Output (t)": "产量 (t)",
    "Intensity location (t/t)": "单位产品碳排放强度，基于位置 (t/t)",
    "Intensity market (t/t)": "单位产品碳排放强度，基于市场 (t/t)", "Pathway target (t/t)": "减排路径目标 (t/t)",
    "Group {group}, {n} sites, as of {as_of}.": "集团 {group}，{n} 个厂区，截至 {as_of}。", "Sites": "厂区",
    "Pathway": "减排路径", "Group report": "集团月报", "Group": "集团", "Provenance": "数据来源",
})


def _emissions_chart(rollup: GroupRollup, name: DisplayNames) -> str:
    """Scope 1 and Scope 2 (location and market) per site, stacked: the bars' tops are the group."""
    lang = name.lang
    figure, axis = plt.subplots(figsize=(7, 3.2))
    methods = (tr(lang, "location"), tr(lang, "market"))
    bottom = [0.0, 0.0]
    for site in rollup.sites:
        values = [site.scope12_location_t, site.scope12_market_t]
        axis.bar([tr(lang, "Scope 1+2 {method}", method=m) for m in methods], values, bottom=bottom,
                 label=name(site.site))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_ylabel(tr(lang, "t CO2e"))
    axis.set_title(tr(lang, "Group Scope 1+2 by site"))
    axis.legend(fontsize=8)
    return str(_svg(figure))  # (mypy: the plantems.analytics path is untyped)


def _intensity_chart(rollup: GroupRollup, name: DisplayNames) -> str:
    lang = name.lang
    figure, axis = plt.subplots(figsize=(7, 3.2))
    labels: list[str] = []
    values: list[float] = []
    for site in rollup.sites:
        value = site.to_json()["intensity_market_t_per_t"]
        if value is not None:
            labels.append(tr(lang, "{site} (market)", site=name(site.site)))
            values.append(value)
    for label, value in ((tr(lang, "group (location)"), rollup.intensity("location")),
                         (tr(lang, "group (market)"), rollup.intensity("market"))):
        if value is not None:
            labels.append(label)
            values.append(value)
    axis.bar(labels, values, color="#31a354")
    if rollup.target_t_per_t is not None:
        axis.axhline(rollup.target_t_per_t, color="#fdae6b", linestyle="--", label=tr(lang, "pathway target"))
        axis.legend(fontsize=8)
    axis.set_ylabel(tr(lang, "t CO2e / t Al"))
    axis.set_title(tr(lang, "Scope 1+2 intensity against the group pathway"))
    return str(_svg(figure))  # (mypy: the plantems.analytics path is untyped)


def _share_chart(rollup: GroupRollup, name: DisplayNames) -> str:
    lang = name.lang
    figure, axis = plt.subplots(figsize=(7, 2.4))
    rows = [(name(s.site), s.renewable_kwh / s.consumption_kwh if s.consumption_kwh else 0.0) for s in rollup.sites]
    rows.append((tr(lang, "group"), rollup.renewable_share))
    axis.barh([r[0] for r in rows], [r[1] * 100 for r in rows], color="#31a354")
    goal = rollup.renewable_share_target
    if goal.get("share") is not None:
        axis.axvline(goal["share"] * 100, color="#fdae6b", linestyle="--", label=tr(lang, "{year} goal",
                                                                                     year=goal["year"]))
        axis.legend(fontsize=8)
    axis.set_xlim(0, 100)
    axis.set_xlabel(tr(lang, "renewable % of consumption"))
    return str(_svg(figure))  # (mypy: the plantems.analytics path is untyped)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return html.escape("" if value is None else str(value))


def _warnings(rollup: GroupRollup, name: DisplayNames) -> list[str]:
    lang = name.lang
    out = []
    if rollup.missing_output:
        out.append(tr(lang, "No output recorded for {sites}: the group intensity is not stated (the other sites' "
                            "output alone would understate it).",
                      sites=", ".join(name(s) for s in rollup.missing_output)))
    for site in rollup.sites:
        if site.factors_provisional:
            out.append(tr(lang, "{site}: provisional emission factor ({location} / {residual}); the month will be "
                                "restated.", site=name(site.site), location=site.location_factor,
                          residual=site.residual_factor))
        if site.poor_coverage:
            out.append(tr(lang, "{site}: poor data coverage: {meters}.", site=name(site.site),
                          meters=", ".join(site.poor_coverage)))
        if site.reconciled is False:
            out.append(tr(lang, "{site}: meters do not reconcile: {meters}.", site=name(site.site),
                          meters=", ".join(site.differing_meters)))
    return out


def _column(column: str, lang: Lang) -> str:
    return _SITE_COLUMNS_ZH[column] if lang is Lang.ZH else column


def _html(rollup: GroupRollup, doc: dict[str, Any], name: DisplayNames, sections: ReportSections | None = None
          ) -> str:
    lang = name.lang
    head = "".join(f"<th>{html.escape(_column(c, lang))}</th>" for c in _SITE_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(name(site[c]) if c == 'site' else site[c])}</td>"
                                    for c in _SITE_COLUMNS) + "</tr>" for site in doc["sites"])
    summary = [(tr(lang, "Scope 1 (t CO2e)"), doc["scope1_kgco2e"] / 1000),
               (tr(lang, "Scope 2 location (t CO2e)"), doc["scope2_location_kgco2e"] / 1000),
               (tr(lang, "Scope 2 market (t CO2e)"), doc["scope2_market_kgco2e"] / 1000),
               (tr(lang, "Consumption (MWh)"), doc["consumption_kwh"] / 1000),
               (tr(lang, "Renewable share"), doc["renewable_share"]),
               (tr(lang, "Certificate share"), doc["certificate_share"]),
               (tr(lang, "Output (t)"), doc["production_t"]),
               (tr(lang, "Intensity location (t/t)"), doc["intensity"]["location_t_per_t"]),
               (tr(lang, "Intensity market (t/t)"), doc["intensity"]["market_t_per_t"]),
               (tr(lang, "Pathway target (t/t)"), doc["intensity"]["target_t_per_t"])]
    warnings = "".join(f"<p class=warn>{html.escape(w)}</p>" for w in _warnings(rollup, name))
    title = rollup.name_zh or rollup.name or rollup.group if lang is Lang.ZH else rollup.name or rollup.group
    heading = (f"{html.escape(title)}：{month_label(rollup.month, lang)}" if lang is Lang.ZH else
               f"{html.escape(rollup.name or rollup.group)} {html.escape(rollup.name_zh)}: {rollup.month}")
    font = HTML_FONT_STACK if lang is Lang.ZH else "sans-serif"
    pathway = html.escape(json.dumps(doc["intensity"]["pathway"], indent=2, ensure_ascii=False))
    return f"""<!doctype html><html lang="{"zh-CN" if lang is Lang.ZH else "en"}"><head><meta charset="utf-8">
<title>{html.escape(title)} {month_label(rollup.month, lang)}</title>
<style>body{{font-family:{font};margin:2em}} td,th{{border:1px solid #ccc;padding:2px 6px;font-size:12px}}
table{{border-collapse:collapse}} .warn{{color:#b2182b}}</style></head><body>
<h1>{heading}</h1>
<p>{tr(lang, "Group {group}, {n} sites, as of {as_of}.", group=html.escape(rollup.group), n=len(rollup.sites),
       as_of=rollup.as_of)}</p>{warnings}
<table>{"".join(f"<tr><th>{k}</th><td>{_fmt(v)}</td></tr>" for k, v in summary)}</table>
{_emissions_chart(rollup, name)}{_intensity_chart(rollup, name)}{_share_chart(rollup, name)}
{plan_section(rollup.plan, lang, heading="Group plan: both parks consolidated")}
<h2>{tr(lang, "Sites")}</h2><div style="overflow-x:auto"><table><tr>{head}</tr>{body}</table></div>
{sections_html(sections, name, _svg, _table, entity_header="site")}
<h2>{tr(lang, "Pathway")}</h2><pre>{pathway}</pre>
</body></html>"""


def _workbook(doc: dict[str, Any], lang: Lang) -> Workbook:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = tr(lang, "Group")
    for key, value in doc.items():
        if not isinstance(value, dict | list):
            sheet.append([key, value])
    sheet.append(["intensity_location_t_per_t", doc["intensity"]["location_t_per_t"]])
    sheet.append(["intensity_market_t_per_t", doc["intensity"]["market_t_per_t"]])
    sheet.append(["target_t_per_t", doc["intensity"]["target_t_per_t"]])
    sites = workbook.create_sheet(tr(lang, "Sites"))
    sites.append([_column(c, lang) for c in _SITE_COLUMNS])
    for site in doc["sites"]:
        sites.append([site[c] for c in _SITE_COLUMNS])
    provenance = workbook.create_sheet(tr(lang, "Provenance"))
    for site in doc["sites"]:
        provenance.append([site["site"], json.dumps(site, ensure_ascii=False)])
    return workbook


def write_group_report(rollup: GroupRollup, folder: Path, *, langs: tuple[Lang, ...] = ALL_LANGS,
                       names: Mapping[str, Named] | None = None,
                       sections: ReportSections | None = None) -> list[Path]:
    """Write the report and workbook once per language (report.html and group.xlsx in English,
    report.zh.html and group.zh.xlsx in Chinese) and group.json into ``folder``; return their paths.
    ``names``: the sites by id, for their Chinese names (name_zh); ``sections``: the group's EnPIs, metering
    and purchased metal (analytics/group_sections.py), in group.json too."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = rollup.to_json()
    if sections is not None:
        doc["sections"] = sections.to_json()
    json_path = folder / "group.json"
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    paths = []
    if Lang.ZH in langs:
        chart_fonts_ready()
    for lang in langs:
        html_path = folder / REPORT_HTML[lang]
        with plt.rc_context(chart_rc()):
            html_path.write_text(_html(rollup, doc, DisplayNames(names or {}, lang), sections), encoding="utf-8")
        xlsx_path = folder / report_file("group.xlsx", lang)
        _workbook(doc, lang).save(xlsx_path)
        paths += [html_path, xlsx_path]
    return [*paths, json_path]
