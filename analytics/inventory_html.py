"""The annual inventory as an HTML report, in English (report.html) and zh-CN (report.zh.html), beside
inventory.json/csv/xlsx: the totals by scope, charts of Scope 1 by source, Scope 2 by both methods and
this year against the 2024 base year (Scope 3 category 1 included), the recalculation log, completeness,
data quality and the monthly provenance. Texts go through ``tr`` (plantems/i18n.py); ZH_INVENTORY below."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from plantems.analytics.inventory import Inventory
from plantems.analytics.report import REPORT_HTML, _table, chart_fonts_ready
from plantems.analytics.report import _svg as chart_svg
from plantems.i18n import ALL_LANGS, HTML_FONT_STACK, DisplayNames, Lang, Named, chart_rc, register, tr

__all__ = ["ZH_INVENTORY", "write_inventory_html"]

_SCOPES = ("scope1", "scope2", "scope3")


def _svg(figure: Any) -> str:
    return str(chart_svg(figure))  # the monthly report's one way to a chart (str: that path is untyped for mypy)


def _scope(scope: str, lang: Lang) -> str:
    return {"scope1": tr(lang, "Scope 1"), "scope2": tr(lang, "Scope 2"),
            "scope3": tr(lang, "Scope 3 category 1")}[scope]


def _source(source: str, name: DisplayNames) -> str:
    """A Scope 1 source "site/meter" with display names."""
    site, _, meter = source.partition("/")
    return f"{name(site)}/{name(meter)}" if meter else name(site)


def _scope1_chart(inv: Inventory, name: DisplayNames) -> str:
    lang = name.lang
    figure, axis = plt.subplots(figsize=(7, 2.8))
    sources = list(inv.scope1_by_source_t.items())
    axis.barh([_source(s, name) for s, _ in sources][::-1], [t for _, t in sources][::-1], color="#b2182b")
    axis.set_xlabel(tr(lang, "t CO2e"))
    axis.set_title(tr(lang, "Scope 1 by source"))
    if not sources:
        axis.text(0.5, 0.5, tr(lang, "no fuel metered"), ha="center", transform=axis.transAxes)
    return _svg(figure)


def _scope2_chart(inv: Inventory, lang: Lang) -> str:
    figure, axis = plt.subplots(figsize=(6, 2.8))
    axis.bar([tr(lang, "location"), tr(lang, "market")], [inv.scope2_location_t, inv.scope2_market_t],
             color=["#636363", "#31a354"])
    axis.set_ylabel(tr(lang, "t CO2e"))
    axis.set_title(tr(lang, "Scope 2: location- vs market-based"))
    return _svg(figure)


def _base_chart(inv: Inventory, lang: Lang) -> str:
    """Each scope: the base year as recalculated against this year (a scope without a figure is left out)."""
    figure, axis = plt.subplots(figsize=(8, 3))
    base = inv.base
    if base is None:
        axis.text(0.5, 0.5, tr(lang, "no base year"), ha="center", transform=axis.transAxes)
        return _svg(figure)
    labels = [_scope(s, lang) for s in _SCOPES]
    positions = range(len(labels))
    axis.bar([p - 0.2 for p in positions], [base.recalculated[s] or 0.0 for s in _SCOPES], 0.4, color="#bbbbbb",
             label=tr(lang, "base year {year} (recalculated)", year=base.base_year))
    axis.bar([p + 0.2 for p in positions], [base.current[s] or 0.0 for s in _SCOPES], 0.4, color="#2166ac",
             label=tr(lang, "{year}", year=inv.year))
    axis.set_xticks(list(positions), labels)
    axis.set_ylabel(tr(lang, "t CO2e"))
    axis.set_title(tr(lang, "Against the base year"))
    axis.legend(fontsize=8)
    return _svg(figure)


def _summary(inv: Inventory, lang: Lang) -> list[list[Any]]:
    s3 = inv.scope3
    rows: list[list[Any]] = [
        [tr(lang, "Scope 1 (t CO2e)"), inv.scope1_t],
        [tr(lang, "Scope 2 location-based (t CO2e)"), inv.scope2_location_t],
        [tr(lang, "Scope 2 market-based (t CO2e)"), inv.scope2_market_t],
        [tr(lang, "Scope 3 category 1, purchased metal (t CO2e)"),
         s3.scope3_cat1_t_co2e if s3 is not None else tr(lang, "not reported: no metal ledger")]]
    if s3 is not None:
        rows += [[tr(lang, "Raw-material intensity, t CO2e per t of aluminium purchased (pathway {target})",
                     target="-" if s3.pathway_t_co2e_per_t is None else f"{s3.pathway_t_co2e_per_t:g}"),
                  s3.intensity_t_co2e_per_t if s3.intensity_t_co2e_per_t is not None else tr(lang, "n/a")],
                 [tr(lang, "Recycled share of metal input (goal 35 %)"),
                  tr(lang, "n/a") if s3.recycled_share is None else f"{s3.recycled_share:.1%}"],
                 [tr(lang, "Share of category 1 on default averages (lower quality)"),
                  tr(lang, "n/a") if s3.default_average_share is None else f"{s3.default_average_share:.1%}"]]
    rows += [[tr(lang, "Energy, tonnes of standard coal equivalent (GB/T 2589, {basis})",
                 basis=tr(lang, inv.coefficients.basis)), inv.energy["total_tce"]],
             [tr(lang, "Electricity consumed (kWh)"), inv.energy["electricity_kwh"]],
             [tr(lang, "Natural gas (m3)"), inv.energy["natural_gas_m3"]],
             [tr(lang, "Renewable electricity (MWh)"), inv.renewable_mwh]]
    return rows


def _base_rows(inv: Inventory, lang: Lang) -> list[list[Any]]:
    base = inv.base
    if base is None:
        return []
    return [[_scope(s, lang), base.original[s] if base.original[s] is not None else tr(lang, "n/a"),
             base.recalculated[s] if base.recalculated[s] is not None else tr(lang, "n/a"),
             base.current[s] if base.current[s] is not None else tr(lang, "n/a"),
             tr(lang, "n/a") if base.change[s] is None else f"{base.change[s]:+.1%}"] for s in _SCOPES]


def _html(inv: Inventory, name: DisplayNames) -> str:
    lang = name.lang

    def t(message: str, **values: object) -> str:
        return tr(lang, message, **values)

    flags = [t("Incomplete: {n} month(s) without a rollup: {months}.", n=len(inv.missing),
               months=", ".join(f"{name(s)} {m}" for s, m in inv.missing))] if inv.missing else []
    quality = [[t(kind), item] for kind, items in inv.data_quality.items() for item in items]
    base = inv.base
    log = [[str(e["date"]), name(str(e["boundary"])), t(str(e["reason"])), str(e["description"]),
            e.get("scope1_delta_t_co2e"), e.get("scope2_delta_t_co2e"), e.get("scope3_delta_t_co2e"),
            str(e.get("approved_by", ""))] for e in (base.log if base is not None else ())]
    renewable = [[t(kind), mwh, ", ".join(inv.instruments_used.get(kind, ()))]
                 for kind, mwh in inv.renewable_mwh_by_type.items()]
    months = [[name(m.site), m.month, m.as_of, m.config_sha256[:12], m.location_factor, m.residual_factor,
               t("yes") if m.factors_provisional else "", t("n/a") if m.reconciled is None else
               t("yes") if m.reconciled else t("NO")] for m in inv.months]
    font = HTML_FONT_STACK if lang is Lang.ZH else "sans-serif"
    title = t("Greenhouse-gas inventory {year}: {name}", year=inv.year, name=html.escape(name(inv.boundary)))
    base_note = (t("Base year {year} ({source}; Scope 2 {method}-based). {note}", year=base.base_year,
                   source=html.escape(base.source), method=t(base.scope2_method), note=html.escape(base.scope3_note))
                 if base is not None else html.escape(inv.base_missing_reason or ""))
    return f"""<!doctype html><html lang="{"zh-CN" if lang is Lang.ZH else "en"}"><head><meta charset="utf-8">
<title>{title}</title><style>body{{font-family:{font};max-width:1000px;margin:2em auto}}
table{{border-collapse:collapse;margin:1em 0}} td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} .warn{{background:#fee;border-left:4px solid #d73027;padding:6px}}
</style></head><body>
<h1>{title}</h1>
<p>{t("Sites {sites}; computed {as_of} by plantems from {n} monthly rollups.",
      sites=html.escape(", ".join(name(s) for s in inv.sites)), as_of=inv.as_of.isoformat(), n=len(inv.months))}</p>
{"".join(f'<p class="warn">{html.escape(f)}</p>' for f in flags)}
<h2>{t("Totals")}</h2>{_table(_summary(inv, lang), ["", t("value")])}
<h2>{t("Scope 1 by source")}</h2><p>{t("Factors: {factors}.", factors=html.escape(", ".join(inv.scope1_factors)
                                                                         or t("no fuel metered")))}</p>
{_table([[_source(s, name), v] for s, v in inv.scope1_by_source_t.items()], [t("source"), t("t CO2e")])}
<figure id="chart-scope1">{_scope1_chart(inv, name)}</figure>
<h2>{t("Scope 2, location- and market-based")}</h2>
<figure id="chart-scope2">{_scope2_chart(inv, lang)}</figure>
{_table(renewable, [t("instrument type"), t("renewable MWh"), t("ledger entries")])}
<h2>{t("Against the base year")}</h2><p>{base_note}</p>
{_table(_base_rows(inv, lang), ["", t("as first reported"), t("recalculated"), t("this year"), t("change")])}
<figure id="chart-base">{_base_chart(inv, lang)}</figure>
<h2>{t("Recalculation log")}</h2>
{_table(log, [t("date"), t("boundary"), t("reason"), t("description"), t("Scope 1 change"), t("Scope 2 change"),
              t("Scope 3 change"), t("approved by")]) if log else "<p>" + t("No recalculation.") + "</p>"}
<h2>{t("Completeness and data quality")}</h2>
<p>{t("{found} of {expected} site-months found.", found=len(inv.months), expected=12 * len(inv.sites))}</p>
{_table(quality, [t("check"), t("site and month")]) if quality else ""}
<h2>{t("Provenance")}</h2>
<p>{html.escape(t("Standard coal: {electricity} kgce/kWh, {gas} kgce/m3 ({source}).",
                  electricity=inv.coefficients.electricity_kgce_per_kwh, gas=inv.coefficients.gas_kgce_per_m3,
                  source=inv.coefficients.source))}</p>
{_table(months, [t("site"), t("month"), t("as of"), t("config sha256"), t("Location factor"), t("Residual factor"),
                 t("provisional"), t("reconciliation")])}
</body></html>"""


def write_inventory_html(inv: Inventory, out_dir: Path, *, langs: tuple[Lang, ...] = ALL_LANGS,
                         names: Mapping[str, Named] | None = None) -> list[Path]:
    """report.html (English) and report.zh.html (zh-CN) for each of ``langs`` in ``out_dir``; ``names``: the
    sites (and the group) by id, for their Chinese names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if Lang.ZH in langs:
        chart_fonts_ready()
    paths = []
    for lang in langs:
        path = out_dir / REPORT_HTML[lang]
        with plt.rc_context(chart_rc()):
            path.write_text(_html(inv, DisplayNames(names or {}, lang)), encoding="utf-8")
        paths.append(path)
    return paths


ZH_INVENTORY = {
    "Scope 1": "范围一", "Scope 2": "范围二", "Scope 3 category 1": "范围三类别 1",
    "no fuel metered": "无燃料计量", "Scope 1 by source": "范围一排放（按排放源）", "no base year": "无基准年",
    "base year {year} (recalculated)": "基准年 {year}（重算后）", "{year}": "{year} 年",
    "Against the base year": "与基准年对比", "Scope 1 (t CO2e)": "范围一排放 (t CO2e)",
    "Scope 2 location-based (t CO2e)": "范围二排放，基于位置 (t CO2e)",
    "Scope 2 market-based (t CO2e)": "范围二排放，基于市场 (t CO2e)",
    "Scope 3 category 1, purchased metal (t CO2e)": "范围三类别 1，外购金属 (t CO2e)",
    "not reported: no metal ledger": "未报告：无外购金属台账",
    "Raw-material intensity, t CO2e per t of aluminium purchased (pathway {target})":
        "原材料碳排放强度，每吨外购铝 t CO2e（路径目标 {target}）",
    "Recycled share of metal input (goal 35 %)": "再生铝占金属投入比例（目标 35 %）",
    "Share of category 1 on default averages (lower quality)": "类别 1 中采用默认平均值的比例（数据质量较低）",
    "Energy, tonnes of standard coal equivalent (GB/T 2589, {basis})": "综合能耗，吨标准煤（GB/T 2589，{basis}）",
    "calorific": "当量值", "primary": "等价值",
    "Electricity consumed (kWh)": "用电量 (kWh)", "Natural gas (m3)": "天然气 (m³)",
    "Renewable electricity (MWh)": "可再生能源电力 (MWh)",
    "Incomplete: {n} month(s) without a rollup: {months}.": "不完整：{n} 个月无月度汇总：{months}。",
    "not_reconciled": "对账不一致", "reconciliation_not_run": "未对账", "provisional_factors": "暂用排放因子",
    "poor_coverage": "数据完整率不足", "scope1_not_metered": "范围一未计量",
    "gec": "绿证", "green_trade": "绿电交易", "ppa": "购电协议（PPA）", "onsite_pv": "厂内光伏",
    "structural_change": "结构变化", "methodology": "方法学变更", "error": "重大错误",
    "NO": "否", "Greenhouse-gas inventory {year}: {name}": "{year} 年温室气体排放清单：{name}",
    "Base year {year} ({source}; Scope 2 {method}-based). {note}": "基准年 {year}（{source}，范围二{method}）。{note}",
    "Sites {sites}; computed {as_of} by plantems from {n} monthly rollups.":
        "厂区：{sites}，plantems 于 {as_of} 根据 {n} 份月度汇总计算。",
    "Totals": "合计", "Factors: {factors}.": "排放因子：{factors}。", "source": "排放源",
    "Scope 2, location- and market-based": "范围二排放：基于位置与基于市场", "instrument type": "凭证类型",
    "renewable MWh": "可再生电力 MWh", "ledger entries": "台账条目", "as first reported": "原始报告值",
    "recalculated": "重算后", "this year": "本年", "change": "变化", "Recalculation log": "基准年重算记录",
    "date": "日期", "boundary": "边界", "reason": "原因", "description": "说明", "Scope 1 change": "范围一变化",
    "Scope 2 change": "范围二变化", "Scope 3 change": "范围三变化", "approved by": "批准人",
    "No recalculation.": "无重算。", "Completeness and data quality": "完整性与数据质量",
    "{found} of {expected} site-months found.": "应有 {expected} 个厂区月，已有 {found} 个。",
    "check": "检查项", "site and month": "厂区与月份",
    "Standard coal: {electricity} kgce/kWh, {gas} kgce/m3 ({source}).":
        "折标准煤系数：{electricity} kgce/kWh，{gas} kgce/m³（{source}）。",
    "month": "月份", "as of": "计算日期", "config sha256": "配置 sha256", "provisional": "暂用",
    "reconciliation": "对账",
}
register(ZH_INVENTORY)
