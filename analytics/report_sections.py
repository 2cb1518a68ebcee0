"""The monthly report's plan sections in HTML (both languages): EnPIs, metering coverage and the purchased-metal
ledger, from rollup.json's ``sections`` (analytics/sections.py). Each is one function returning its <h2> and
body; report.py inserts them with one call (``sections_html``)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from plantems.analytics.metal import INTENSITY_BASIS, RECYCLED_BASIS, RECYCLED_SHARE_GOAL, MetalSummary
from plantems.analytics.metering import MeteringReport, SubmeteredShare
from plantems.analytics.sections import SITE_ENTITY, EnpiFigures, ReportSections
from plantems.i18n import DisplayNames, Lang, register, tr

__all__ = ["ZH_SECTIONS", "sections_html"]

Svg = Callable[[Any], str]  # report.py's one way from a matplotlib figure to inline SVG
Table = Callable[[list[list[Any]], list[str]], str]


def _pct(value: float | None, lang: Lang) -> str:
    return tr(lang, "n/a") if value is None else f"{value:.1%}"


def _num(value: float | None, lang: Lang, digits: int = 4) -> str:
    if value is None:
        return tr(lang, "no output recorded")
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.{digits}g}"


def _entity(entity: str, name: DisplayNames) -> str:
    return tr(name.lang, "site") if entity == SITE_ENTITY else name(entity)


def _enpi_rows(rows: Sequence[EnpiFigures], name: DisplayNames) -> list[list[Any]]:
    lang = name.lang
    return [[_entity(e.entity, name), f"{e.output_t:,.1f}", _num(e.kwh_per_t, lang), _num(e.kgce_per_t, lang),
             _num(e.t_co2e_per_t, lang),
             tr(lang, "{days:g} of {total} days ({share:.0%})", days=e.production_days, total=e.calendar_days,
                share=e.production_completeness)] for e in rows]


def _enpi_chart(s: ReportSections, name: DisplayNames, svg: Svg) -> str:
    lang = name.lang
    figure, axis = plt.subplots(figsize=(7, 3))
    labels = [_entity(e.entity, name) for e in s.enpi_month]
    positions = range(len(labels))
    axis.bar([p - 0.2 for p in positions], [e.kwh_per_t or 0.0 for e in s.enpi_month], 0.4, color="#2166ac",
             label=tr(lang, "this month"))
    axis.bar([p + 0.2 for p in positions], [e.kwh_per_t or 0.0 for e in s.enpi_ytd], 0.4, color="#92c5de",
             label=tr(lang, "year to date"))
    axis.set_xticks(list(positions), labels)
    axis.set_ylabel(tr(lang, "kWh/t"))
    axis.set_title(tr(lang, "Electricity per tonne"))
    axis.legend(fontsize=8)
    return svg(figure)


def _basis(basis: str, lang: Lang) -> str:
    """"calorific: GB/T 2589 ..." with the basis word translated (当量值, 等价值)."""
    word, colon, source = basis.partition(": ")
    return f"{tr(lang, word)}{colon}{source}" if colon else basis


def enpi_html(s: ReportSections, name: DisplayNames, svg: Svg, table: Table, entity_header: str = "line") -> str:
    lang = name.lang
    header = [tr(lang, "site") if entity_header == "site" else tr(lang, "line"), tr(lang, "output t"),
              tr(lang, "kWh/t"), tr(lang, "kgce/t"), tr(lang, "t CO2e/t"),
              tr(lang, "production completeness (days with output)")]
    low = [e for e in (*s.enpi_month, *s.enpi_ytd) if e.production_completeness < 1]
    flag = ('<p class="warn">' + html.escape(tr(lang, "Output is missing for some days ({entities}): the ratios "
                                                      "look better than they are.",
                                                entities=", ".join(sorted({_entity(e.entity, name) for e in low}))))
            + "</p>") if low else ""
    if not s.enpi_month:
        return ('<h2 id="enpi">' + tr(lang, "Energy performance indicators (EnPIs)") + "</h2><p>"
                + tr(lang, "No EnPI points for the month (no energy or production data).") + "</p>")
    return ('<h2 id="enpi">' + tr(lang, "Energy performance indicators (EnPIs)") + "</h2><p>"
            + html.escape(tr(lang, "Ratios of sums: the year to date divides the summed energy by the summed output. "
                                   "kgce on the standard-coal basis {basis}; t CO2e is Scope 1 + location-based "
                                   "Scope 2.", basis=_basis(s.enpi_basis, lang))) + "</p>" + flag
            + "<h3>" + tr(lang, "This month") + "</h3>" + table(_enpi_rows(s.enpi_month, name), header)
            + "<h3>" + tr(lang, "Year to date") + "</h3>" + table(_enpi_rows(s.enpi_ytd, name), header)
            + f'<figure id="chart-enpi">{_enpi_chart(s, name, svg)}</figure>')


def _level(level: str, lang: Lang) -> str:
    return {"site_boundary": tr(lang, "site boundary"), "sub_unit": tr(lang, "sub-unit"),
            "major_equipment": tr(lang, "major equipment")}.get(level, level)


def _metering_chart(m: MeteringReport, lang: Lang, svg: Svg) -> str:
    figure, axis = plt.subplots(figsize=(6, 2.8))
    labels = [_level(c.level.value, lang) for c in m.levels]
    rates = [(c.rate or 0.0) * 100 for c in m.levels]
    colours = ["#1a9850" if c.meets else "#d73027" for c in m.levels]
    axis.bar(labels, rates, color=colours)
    axis.scatter(labels, [c.required_rate * 100 for c in m.levels], marker="_", s=900, color="black",
                 label=tr(lang, "required rate"), zorder=3)
    axis.set_ylim(0, 125)  # room above 100 % for the legend
    axis.set_ylabel(tr(lang, "% of objects metered"))
    axis.set_title(tr(lang, "Metering coverage by level (GB 17167)"))
    axis.legend(fontsize=8, loc="upper right")
    return svg(figure)


def metering_html(m: MeteringReport, sub: SubmeteredShare, name: DisplayNames, svg: Svg, table: Table) -> str:
    lang = name.lang
    levels = [[_level(c.level.value, lang), c.required, c.installed, c.manual, _pct(c.rate, lang),
               f"{c.required_rate:.0%}", tr(lang, "n/a") if c.meets is None else tr(lang, "yes") if c.meets
               else tr(lang, "NO"), ", ".join(c.missing) or tr(lang, "none")] for c in m.levels]
    p = m.progress
    needed = p.machines_per_year_needed
    rows = [[tr(lang, "share of consumption sub-metered"), _pct(sub.share, lang),
             tr(lang, "{sub:,.0f} of {site:,.0f} kWh", sub=sub.submetered_kwh, site=sub.site_kwh)
             + ("; " + tr(lang, "no data: {meters}", meters=", ".join(name(d) for d in sub.missing_kwh))
                if sub.missing_kwh else "")],
            [tr(lang, "automatic-collection rate"), _pct(m.auto_collection_rate, lang),
             tr(lang, "{n} of {total} required meters collected by plantems", n=m.auto_collected,
                total=m.required_total)],
            [tr(lang, "meters in calibration"), _pct(m.in_calibration_share, lang),
             tr(lang, "{n} overdue, {missing} without a due date", n=len(m.overdue), missing=len(m.no_due_date))],
            [tr(lang, "high-consumption machines (>= 100 kW) in the system"), _pct(p.share, lang),
             tr(lang, "{done} of {total}; {left} to connect by {year} ({per_year} a year)", done=p.in_system,
                total=p.total, left=len(p.remaining), year=p.target_year,
                per_year="-" if needed is None else f"{needed:.1f}")]]
    overdue = [[name(c.device), c.due.isoformat(), c.days_overdue] for c in m.overdue]
    flags = [tr(lang, "Calibration overdue: {meters}.", meters=", ".join(name(c.device) for c in m.overdue))
             ] if m.overdue else []
    flags += [tr(lang, "Coverage below the required rate at level {level}: {rate}, required {required:.0%}.",
                 level=_level(c.level.value, lang), rate=_pct(c.rate, lang), required=c.required_rate)
              for c in m.levels if c.meets is False]
    return ('<h2 id="metering">' + tr(lang, "Metering coverage (GB 17167)") + "</h2>"
            + "".join(f'<p class="warn">{html.escape(f)}</p>' for f in flags)
            + "<p>" + tr(lang, "Register at {day}: an object needs a meter at the site boundary always, as a sub-unit "
                               "from 10 kW, as major equipment from 100 kW (rated).", day=m.on_date.isoformat())
            + "</p>"
            + table(levels, [tr(lang, "level"), tr(lang, "objects needing a meter"), tr(lang, "metered"),
                             tr(lang, "of which read by hand"), tr(lang, "coverage rate"), tr(lang, "required rate"),
                             tr(lang, "meets"), tr(lang, "not metered")])
            + table(rows, ["", tr(lang, "value"), tr(lang, "basis")])
            + (table(overdue, [tr(lang, "meter"), tr(lang, "calibration due"), tr(lang, "days overdue")])
               if overdue else "")
            + f'<figure id="chart-metering">{_metering_chart(m, lang, svg)}</figure>')


def _metal_chart(month: MetalSummary, ytd: MetalSummary, lang: Lang, svg: Svg) -> str:
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    labels = [tr(lang, "this month"), tr(lang, "year to date")]
    left.bar(labels, [month.intensity_t_co2e_per_t or 0.0, ytd.intensity_t_co2e_per_t or 0.0], color="#2166ac")
    if ytd.pathway_t_co2e_per_t is not None:
        left.axhline(ytd.pathway_t_co2e_per_t, color="#fdae6b", linestyle="--", label=tr(lang, "pathway target"))
        left.legend(fontsize=8)
    left.set_ylabel(tr(lang, "t CO2e / t Al"))
    left.set_title(tr(lang, "Raw-material intensity"))
    right.bar(labels, [(month.recycled_share or 0.0) * 100, (ytd.recycled_share or 0.0) * 100], color="#31a354")
    right.axhline(RECYCLED_SHARE_GOAL * 100, color="#fdae6b", linestyle="--", label=tr(lang, "2030 goal"))
    right.set_ylim(0, 100)
    right.set_ylabel(tr(lang, "% of metal input"))
    right.set_title(tr(lang, "Recycled share"))
    right.legend(fontsize=8)
    return svg(figure)


def _metal_rows(s: MetalSummary, lang: Lang) -> list[Any]:
    return [s.deliveries, f"{s.metal_input_t:,.1f}", f"{s.aluminium_input_t:,.1f}", f"{s.scope3_cat1_t_co2e:,.1f}",
            _num(s.intensity_t_co2e_per_t, lang) if s.aluminium_input_t else tr(lang, "n/a"),
            _num(s.pathway_t_co2e_per_t, lang) if s.pathway_t_co2e_per_t is not None else tr(lang, "n/a"),
            _pct(s.recycled_share, lang), f"{_pct(s.recycled_pre_share, lang)} / {_pct(s.recycled_post_share, lang)}",
            _pct(s.default_average_share, lang) + (" " + tr(lang, "(lower quality)") if s.lower_quality else "")]


def metal_html(month: MetalSummary | None, ytd: MetalSummary | None, ledger: str | None, lang: Lang, svg: Svg,
               table: Table) -> str:
    head = '<h2 id="metal">' + tr(lang, "Purchased metal: Scope 3 category 1 and recycled share") + "</h2>"
    if month is None or ytd is None:
        return head + "<p>" + tr(lang, "No metal ledger (metal_purchases.csv): Scope 3 category 1 is not reported.") \
            + "</p>"
    flags = [tr(lang, "Lower quality: {share} of the year's category 1 emissions rest on default averages, not on "
                      "supplier-specific footprints.", share=_pct(ytd.default_average_share, lang))
             ] if ytd.default_average_t_co2e > 0 else []
    if ytd.stale_factor_deliveries:
        flags.append(tr(lang, "Footprints older than 5 years at delivery: {ids}.",
                        ids=", ".join(ytd.stale_factor_deliveries)))
    suppliers = [[r.rank, r.supplier, f"{r.tonnes:,.1f}", f"{r.t_co2e:,.1f}", f"{r.t_co2e_per_t:,.3g}",
                  ", ".join(tr(lang, b) for b in r.bases), tr(lang, "lower quality") if r.lower_quality else ""]
                 for r in ytd.suppliers]
    return (head + "".join(f'<p class="warn">{html.escape(f)}</p>' for f in flags)
            + "<p>" + html.escape(tr(lang, "Intensity denominator (ASI): {basis}. Recycled share: {recycled}, against "
                                           "the 2030 goal of {goal:.0%}. Ledger: {ledger}.",
                                     basis=tr(lang, INTENSITY_BASIS), recycled=tr(lang, RECYCLED_BASIS),
                                     goal=RECYCLED_SHARE_GOAL, ledger=ledger or "")) + "</p>"
            + table([[tr(lang, "this month"), *_metal_rows(month, lang)], [tr(lang, "year to date"),
                                                                             *_metal_rows(ytd, lang)]],
                    ["", tr(lang, "deliveries"), tr(lang, "metal input t"), tr(lang, "aluminium input t"),
                     tr(lang, "Scope 3 cat. 1 t CO2e"), tr(lang, "intensity t CO2e/t Al"),
                     tr(lang, "pathway t CO2e/t Al"), tr(lang, "recycled share"), tr(lang, "pre / post-consumer"),
                     tr(lang, "on default averages")])
            + "<h3>" + tr(lang, "Suppliers, year to date, ranked by footprint (lowest first)") + "</h3>"
            + table(suppliers, [tr(lang, "rank"), tr(lang, "supplier"), tr(lang, "t"), tr(lang, "t CO2e"),
                                tr(lang, "t CO2e/t"), tr(lang, "footprint basis"), tr(lang, "quality")])
            + f'<figure id="chart-metal">{_metal_chart(month, ytd, lang, svg)}</figure>')


def sections_html(sections: ReportSections | None, name: DisplayNames, svg: Svg, table: Table,
                  entity_header: str = "line") -> str:
    """The three plan sections, or nothing for a rollup computed without them. ``entity_header``: "site" in
    the group report (its EnPI rows are the sites and the group)."""
    if sections is None:
        return ""
    return (enpi_html(sections, name, svg, table, entity_header)
            + metering_html(sections.metering, sections.submetered, name, svg, table)
            + metal_html(sections.metal_month, sections.metal_ytd, sections.metal_ledger, name.lang, svg, table))


ZH_SECTIONS = {
    "this month": "本月", "year to date": "本年累计", "This month": "本月", "Year to date": "本年累计",
    "kWh/t": "kWh/t", "kgce/t": "kgce/t", "t CO2e/t": "t CO2e/t", "calorific": "当量值", "primary": "等价值",
    "Electricity per tonne": "单位产品电耗",
    "production completeness (days with output)": "产量数据完整率（有产量记录的天数）",
    "{days:g} of {total} days ({share:.0%})": "{total} 天中 {days:g} 天（{share:.0%}）",
    "Output is missing for some days ({entities}): the ratios look better than they are.":
        "部分天数缺少产量记录（{entities}）：单耗指标偏于乐观。",
    "Energy performance indicators (EnPIs)": "能源绩效参数（EnPI）",
    "No EnPI points for the month (no energy or production data).": "本月无能源绩效参数（无能耗或产量数据）。",
    "Ratios of sums: the year to date divides the summed energy by the summed output. kgce on the standard-coal basis "
    "{basis}; t CO2e is Scope 1 + location-based Scope 2.":
        "比值按合计计算：本年累计以累计能耗除以累计产量。kgce 按标准煤折算口径 {basis}，"
        "t CO2e 为范围一 + 基于位置的范围二。",
    "site boundary": "进出用能单位", "sub-unit": "主要次级用能单位", "major equipment": "主要用能设备",
    "required rate": "要求配备率", "% of objects metered": "已配备计量的对象 %",
    "Metering coverage by level (GB 17167)": "各级计量器具配备率（GB 17167）",
    "NO": "否", "share of consumption sub-metered": "分项计量电量占比",
    "{sub:,.0f} of {site:,.0f} kWh": "{site:,.0f} kWh 中 {sub:,.0f} kWh",
    "automatic-collection rate": "关键能源数据自动采集率",
    "{n} of {total} required meters collected by plantems": "应配备的 {total} 块表计中 {n} 块由 plantems 自动采集",
    "meters in calibration": "在检定有效期内的表计",
    "{n} overdue, {missing} without a due date": "{n} 块超期，{missing} 块无检定到期日",
    "high-consumption machines (>= 100 kW) in the system": "接入能源管理系统的重点用能设备（>= 100 kW）",
    "{done} of {total}; {left} to connect by {year} ({per_year} a year)":
        "{total} 台中 {done} 台，{year} 年前还需接入 {left} 台（每年 {per_year} 台）",
    "Calibration overdue: {meters}.": "检定超期：{meters}。",
    "Coverage below the required rate at level {level}: {rate}, required {required:.0%}.":
        "{level}配备率低于要求：{rate}，要求 {required:.0%}。",
    "Metering coverage (GB 17167)": "能源计量器具配备（GB 17167）",
    "Register at {day}: an object needs a meter at the site boundary always, as a sub-unit from 10 kW, as major "
    "equipment from 100 kW (rated).":
        "截至 {day} 的计量器具台账：进出用能单位一律配备，次级用能单位自 10 kW 起，主要用能设备自 100 kW（额定）起。",
    "level": "计量级别", "objects needing a meter": "应配备对象数", "metered": "已配备",
    "of which read by hand": "其中人工抄表", "coverage rate": "配备率", "meets": "达标", "basis": "依据",
    "calibration due": "检定到期日", "days overdue": "超期天数",
    "% of metal input": "占金属投入 %", "Raw-material intensity": "原材料碳排放强度", "Recycled share": "再生铝占比",
    "(lower quality)": "（数据质量较低）", "lower quality": "数据质量较低",
    "Purchased metal: Scope 3 category 1 and recycled share": "外购金属：范围三类别 1 排放与再生铝占比",
    "No metal ledger (metal_purchases.csv): Scope 3 category 1 is not reported.":
        "无外购金属台账（metal_purchases.csv）：不报告范围三类别 1。",
    "Lower quality: {share} of the year's category 1 emissions rest on default averages, not on supplier-specific "
    "footprints.": "数据质量较低：本年类别 1 排放中有 {share} 采用默认平均值，而非供应商产品碳足迹。",
    "Footprints older than 5 years at delivery: {ids}.": "交货时碳足迹已超过 5 年：{ids}。",
    "Intensity denominator (ASI): {basis}. Recycled share: {recycled}, against the 2030 goal of {goal:.0%}. "
    "Ledger: {ledger}.": "强度分母（ASI）：{basis}。再生铝占比：{recycled}，2030 年目标 {goal:.0%}。台账：{ledger}。",
    INTENSITY_BASIS: "外购铝（投入）每吨的 t CO2e，按质量加权，不含合金元素及厂内返回料（ASI 采购路径，范围三类别 1）",
    RECYCLED_BASIS: "消费前 + 消费后再生含量（按质量）/ 全部外购金属投入，不含厂内返回料，未按成材率调整（ISO 14021）",
    "deliveries": "交货批次", "metal input t": "金属投入 t", "aluminium input t": "铝投入 t",
    "Scope 3 cat. 1 t CO2e": "范围三类别 1 t CO2e", "intensity t CO2e/t Al": "强度 t CO2e/t 铝",
    "pathway t CO2e/t Al": "路径目标 t CO2e/t 铝", "recycled share": "再生铝占比",
    "pre / post-consumer": "消费前 / 消费后", "on default averages": "采用默认平均值",
    "Suppliers, year to date, ranked by footprint (lowest first)": "供应商（本年累计），按碳足迹由低到高排序",
    "rank": "排名", "supplier": "供应商", "t": "t", "footprint basis": "碳足迹依据", "quality": "数据质量",
    "pcf": "产品碳足迹（ISO 14067）", "epd": "环境产品声明（EPD）", "asi_certificate": "ASI 证书",
    "default_average": "默认平均值",
}
register(ZH_SECTIONS)
