"""Monthly report files from a Rollup: report.html (English) and report.zh.html (zh-CN), self-contained with
inline SVG charts; scope2.csv, scope2.xlsx (English) and scope2.zh.xlsx, and rollup.json (all numbers plus
provenance; ids, the machine-readable contract, in both languages)."""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib import font_manager
from openpyxl import Workbook

from plantems.analytics.opportunity_results import NO_DATA, MaxDemand, Opportunities, ReactiveMonth
from plantems.analytics.plan_report import plan_section
from plantems.analytics.reconcile import (
    ABSOLUTE_TOLERANCE_KWH,
    RELATIVE_TOLERANCE,
    Reconciliation,
    first_page_lines,
    reconciliation_html,
    reconciliation_table,
)
from plantems.analytics.report_sections import sections_html
from plantems.analytics.report_zh import ZH
from plantems.analytics.rollup_results import Rollup
from plantems.factors import FactorChoice
from plantems.i18n import (
    ALL_LANGS,
    CHART_FONTS,
    CJK_FONT_FILES,
    HTML_FONT_STACK,
    DisplayNames,
    Lang,
    Named,
    chart_rc,
    month_label,
    register,
    tr,
    tr_context,
)
from plantems.schema import Method

__all__ = ["REPORT_HTML", "report_file", "write_report"]

log = logging.getLogger(__name__)
register(ZH)
REPORT_HTML = {Lang.EN: "report.html", Lang.ZH: "report.zh.html"}  # report.html: the English file, as before


def report_file(name: str, lang: Lang) -> str:
    """A report file's name in ``lang``: English keeps the plain name, zh-CN adds .zh before the suffix."""
    stem, dot, suffix = name.rpartition(".")
    return name if lang is Lang.EN else f"{stem}.zh{dot}{suffix}"

_TOU_COLOURS = {"sharp": "#b2182b", "peak": "#ef8a62", "flat": "#67a9cf", "valley": "#2166ac"}


def chart_fonts_ready() -> bool:
    """True when matplotlib has a CJK font for the charts. A font installed after matplotlib built its font
    cache is unknown to it: such files are added here. False (logged as ERROR): Chinese charts would show boxes."""
    known = {font.name for font in font_manager.fontManager.ttflist}
    if not known.intersection(CHART_FONTS[:-1]):
        for path in font_manager.findSystemFonts():
            if any(marker in Path(path).name for marker in CJK_FONT_FILES):
                font_manager.fontManager.addfont(path)
        known = {font.name for font in font_manager.fontManager.ttflist}
    if known.intersection(CHART_FONTS[:-1]):
        return True
    log.error("report charts: no CJK font (%s) for the Chinese charts: install fonts-noto-cjk "
              "(deploy/setup-debian.sh does)", ", ".join(CHART_FONTS[:-1]))
    return False


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _stacked_daily(rollup: Rollup, by: str, title: str, lang: Lang, colours: dict[str, str] | None = None,
                   labels: Mapping[str, str] | None = None) -> str:
    """Daily sub-metered MWh as bars stacked by ``by`` (tou or area)."""
    figure, axis = plt.subplots(figsize=(9, 3.2))
    daily = rollup.daily
    if not daily.empty:
        table = daily.pivot_table(index="date", columns=by, values="energy_kwh", aggfunc="sum").fillna(0) / 1000
        order = [c for c in (colours or {}) if c in table] or list(table.columns)
        bottom = None
        for column in order:
            axis.bar(table.index, table[column], bottom=bottom, label=(labels or {}).get(column, column),
                     color=(colours or {}).get(column))
            bottom = table[column] if bottom is None else bottom + table[column]
        axis.legend(ncol=4, fontsize=8)
    axis.set_ylabel(tr(lang, "MWh per day"))
    axis.set_title(title)
    figure.autofmt_xdate()  # rotated dates: a month of labels does not overlap
    return _svg(figure)


def _tou_label(tou: str, lang: Lang) -> str:
    return {"sharp": tr(lang, "sharp"), "peak": tr(lang, "peak"), "flat": tr(lang, "flat"),
            "valley": tr(lang, "valley")}.get(tou, tou)


def _daily_chart(rollup: Rollup, lang: Lang) -> str:
    ordered = {tou: _TOU_COLOURS[tou] for tou in ("valley", "flat", "peak", "sharp")}
    return _stacked_daily(rollup, "tou", tr(lang, "Sub-metered energy by tariff period"), lang, ordered,
                          {tou: _tou_label(tou, lang) for tou in ordered})


def _area_chart(rollup: Rollup, lang: Lang) -> str:
    return _stacked_daily(rollup, "area", tr(lang, "Sub-metered energy by area"), lang)


def _emissions_chart(rollup: Rollup, lang: Lang) -> str:
    s2 = rollup.scope2
    figure, axis = plt.subplots(figsize=(6, 3))
    labels = [tr(lang, "location"), tr(lang, "market (monthly)"), tr(lang, "market (hourly)")]
    values = [s2.location_kgco2e / 1000, s2.market_monthly.kgco2e / 1000, s2.market_hourly.kgco2e / 1000]
    axis.bar(labels, values, color=["#636363", "#31a354", "#a1d99b"])
    axis.set_ylabel(tr(lang, "t CO2e"))
    axis.set_title(tr(lang, "Scope 2: location- vs market-based"))
    return _svg(figure)


def _intensity_chart(rollup: Rollup, lang: Lang) -> str:
    figure, axis = plt.subplots(figsize=(6, 3))
    labels, values, colours = [], [], []
    i = rollup.intensity
    for value, label, colour in ((i.location_t_per_t, tr(lang, "location"), "#636363"),
                                 (i.market_t_per_t, tr(lang, "market"), "#31a354"),
                                 (i.target_t_per_t, tr(lang, "pathway target"), "#fdae6b")):
        if value is not None:
            labels.append(label)
            values.append(value)
            colours.append(colour)
    axis.bar(labels, values, color=colours)
    axis.set_ylabel(tr(lang, "t CO2e / t Al"))
    axis.set_title(tr(lang, "Scope 1+2 intensity against the pathway"))
    if not values:
        axis.text(0.5, 0.5, tr(lang, "no production recorded for the month"), ha="center", transform=axis.transAxes)
    return _svg(figure)


def _share_chart(rollup: Rollup, lang: Lang) -> str:
    figure, axis = plt.subplots(figsize=(6, 2.4))
    axis.barh([tr(lang, "renewable share")], [rollup.scope2.renewable_share * 100], color="#31a354")
    if rollup.renewable_share_target is not None:
        axis.axvline(rollup.renewable_share_target * 100, color="#fdae6b", linestyle="--",
                     label=tr(lang, "2030 goal"))
        axis.legend(fontsize=8)
    axis.set_xlim(0, 100)
    axis.set_xlabel(tr(lang, "% of consumption"))
    return _svg(figure)


def _coverage_chart(rollup: Rollup, name: DisplayNames) -> str:
    lang = name.lang
    devices = rollup.devices
    figure, axis = plt.subplots(figsize=(9, 3))
    colours = ["#d73027" if c < 0.95 else "#1a9850" for c in devices["coverage"]]
    axis.bar([name(d) for d in devices["device"]], devices["coverage"] * 100, color=colours)
    axis.set_ylim(0, 105)
    axis.set_ylabel(tr(lang, "% of intervals with data"))
    axis.set_title(tr(lang, "Data coverage per meter"))
    axis.tick_params(axis="x", rotation=45)
    return _svg(figure)


def _savings_chart(found: Opportunities, name: DisplayNames) -> str:
    """Load-shifting savings per device and the capacitor kvar each billing group needs."""
    lang = name.lang
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    shifts = found.load_shift
    left.barh([name(s.device) for s in shifts][::-1], [s.saving_cny for s in shifts][::-1], color="#ef8a62")
    left.set_xlabel(tr(lang, "CNY this month"))
    left.set_title(tr(lang, "Saving if moved off sharp/peak"))
    groups = [(r.group, r.month) for r in found.reactive if r.month is not None]
    names = [group for group, _ in groups]
    sizes = ((tr(lang, "from the average"), "#92c5de", [m.capacitor_kvar_average for _, m in groups]),
             (tr(lang, "95 % of intervals"), "#2166ac", [m.capacitor_kvar_p95 for _, m in groups]),
             (tr(lang, "maximum"), "#053061", [m.capacitor_kvar_max for _, m in groups]))
    for offset, (label, colour, kvar) in enumerate(sizes):
        right.bar([i + 0.27 * offset for i in range(len(names))], kvar, width=0.27, label=label, color=colour)
    right.set_xticks([i + 0.27 for i in range(len(names))], names)
    right.set_ylabel(tr(lang, "kvar to reach the target PF"))
    right.set_title(tr(lang, "Capacitor bank sizing"))
    right.legend(fontsize=7)
    return _svg(figure)


def _opportunities_html(rollup: Rollup, name: DisplayNames) -> str:
    lang = name.lang
    found = rollup.opportunities
    if found is None:
        return "<p>" + tr(lang, "No opportunities computed (no shiftable device and no billing group configured).") \
            + "</p>"
    parts = ["<p>" + tr(lang, "Tariff {tariff}. Savings at this month's prices; the load-shifting saving assumes the "
                              "same energy runs at the cheapest period the device's windows reach.",
                        tariff=html.escape(found.tariff)) + "</p>",
             f'<figure id="chart-opportunities">{_savings_chart(found, name)}</figure>',
             "<h3>" + tr(lang, "Load shifting (shiftable devices)") + "</h3>",
             _table([[name(s.device), s.peak_sharp_kwh, s.peak_sharp_cost_cny, _tou_label(s.move_to.value, lang),
                      ", ".join(s.windows_text), s.saving_cny] for s in found.load_shift],
                    [tr(lang, "device"), tr(lang, "sharp+peak kWh"), tr(lang, "sharp+peak cost (CNY)"),
                     tr(lang, "move to"), tr(lang, "allowed windows"), tr(lang, "saving (CNY)")])]
    parts.extend(_max_demand_html(item, name) for item in found.max_demand)
    if found.compressed_air:
        parts.append("<h3>" + tr(lang, "Compressed air") + "</h3>" + _table(
            [[name(a.device), ", ".join(name(c) for c in a.compressors), a.compressor_kwh,
              a.air_m3 or tr(lang, "not metered"), f"{a.air_coverage:.1%}",
              a.specific_power_kw_per_m3min or tr(lang, "n/a"), a.mean_bar or tr(lang, "n/a"),
              tr(lang, "{bar:g} bar: {kwh:,.0f} kWh, {cny:,.0f} CNY", bar=a.pressure_reduction_bar, kwh=a.saving_kwh,
                 cny=a.saving_cny)]
             for a in found.compressed_air],
            [tr(lang, "air meter"), tr(lang, "compressors"), tr(lang, "compressor kWh"), tr(lang, "free air m3"),
             tr(lang, "coverage"), tr(lang, "kW per m3/min"), tr(lang, "mean bar(g)"),
             tr(lang, "saving if the header pressure were lower")]))
    parts.extend(_reactive_html(item.group, item.month, name) for item in found.reactive if item.month is not None)
    return "".join(parts)


def _max_demand_html(item: MaxDemand, name: DisplayNames) -> str:
    lang = name.lang
    p = item.peak
    if p is None:
        return f"<p>{html.escape(item.group)}: {html.escape(tr(lang, NO_DATA))}</p>"
    saving = (tr(lang, "{cny:,.0f} CNY", cny=p.saving_cny) if p.saving_cny is not None
              else tr(lang, "not priced: the tariff has no demand charge yet"))
    sliding = item.sliding_max_kw
    return (
        "<h3>" + tr(lang, "Maximum demand: {group}", group=html.escape(item.group)) + "</h3><p>"
        + tr(lang, "{max_kw:,.0f} kW on 15-minute intervals starting {at} ({tou}), against a limit of "
                   "{limit_kw:,.0f} kW",
             max_kw=p.max_kw, at=p.max_at_local, tou=_tou_label(p.max_tou, lang), limit_kw=p.limit_kw)
        + (tr(lang, "; the live sliding-window maximum was {kw:,.0f} kW", kw=sliding) if sliding else "")
        + tr(lang, ". Moving the shiftable loads' sharp/peak energy would have made it {kw:,.0f} kW ({less:,.0f} kW "
                   "less): {saving}.", kw=p.max_kw_if_shifted, less=p.reduction_kw, saving=saving) + "</p>"
        + _table([[name(load), kw, tr(lang, "yes") if any(load == s[0] for s in p.shiftable_at_max) else ""]
                  for load, kw in p.contributors_kw],
                 [tr(lang, "load in that interval"), tr(lang, "kW"), tr(lang, "shiftable")]))


def _reactive_html(group: str, m: ReactiveMonth, name: DisplayNames) -> str:
    lang = name.lang
    over = (tr(lang, "Over-compensated: {kvarh:,.0f} kvarh exported, {leading} leading intervals ({light} at light "
                     "load): switch capacitor steps off at light load.", kvarh=m.kvarh_export,
               leading=m.leading_intervals, light=m.leading_intervals_at_light_load)
            if m.over_compensated else tr(lang, "No over-compensation."))
    return (
        "<h3>" + tr(lang, "Reactive power: {group}", group=html.escape(group)) + "</h3>"
        + _table([[tr(lang, "monthly PF (kWh / sqrt(kWh² + (import + export kvarh)²))"), f"{m.pf:.2f}"],
                  [tr(lang, "bill adjustment on the {standard:.2f} standard", standard=m.pf_standard),
                   tr(lang, "{pct:+.2f} % ({cny:+,.0f} CNY)", pct=m.adjustment_pct, cny=m.adjustment_cny)],
                  [tr(lang, "capacitor bank for PF {target:.2f}: 95 % of intervals / average / maximum",
                      target=m.pf_target),
                   f"{m.capacitor_kvar_p95:,.0f} / {m.capacitor_kvar_average:,.0f} / {m.capacitor_kvar_max:,.0f} kvar"],
                  [tr(lang, "losses and unmetered load (import - export + on-site generation - sub-meters; "
                            "upper bound)"), f"{m.losses_kwh_upper_bound:,.0f} kWh"],
                  [tr(lang, "line-loss reduction at the target PF"),
                   tr(lang, "{kwh:,.0f} kWh ({cny:,.0f} CNY)", kwh=m.line_loss_saving_kwh, cny=m.line_loss_saving_cny)],
                  [tr(lang, "saving from compensation (adjustment avoided + losses)"),
                   tr(lang, "{cny:,.0f} CNY", cny=m.saving_cny)]],
                 ["", tr(lang, "value")])
        + f"<p>{html.escape(over)}</p>"
        + _table([[name(d.device), d.pf, d.kvarh] for d in m.devices_by_pf[:8]],
                 [tr(lang, "device (lowest PF first)"), tr(lang, "PF"), tr(lang, "kvarh")]))


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.4g}"
    return str(value)


def _completeness(rollup: Rollup, figure: str, lang: Lang) -> str:
    """How complete a headline figure's data is: measured vs interpolated energy, rejected samples."""
    found = rollup.provenance.completeness.get(figure)
    if not found:
        return ""
    if "energy_kwh" not in found:  # gas meters: coverage only
        low = found.get("coverage_min")
        return tr(lang, "no meter") if low is None else tr(lang, "coverage >= {low:.1%}", low=low)
    total = found["energy_kwh"]
    measured = found["energy_measured_kwh"] / total if total else 1.0
    parts = [tr(lang, "{share:.2%} measured", share=measured),
             tr(lang, "{kwh:,.0f} kWh interpolated", kwh=found["energy_interpolated_kwh"]),
             tr(lang, "{n} samples rejected", n=found["samples_rejected"])]
    if found["replacements"]:
        parts.append(tr(lang, "{n} meter replacements", n=found["replacements"]))
    if found["missing_meters"]:
        parts.append(tr(lang, "no data: {meters}", meters=", ".join(found["missing_meters"])))
    return ("; " if lang is Lang.EN else "，").join(parts)


def _pathway(rollup: Rollup, lang: Lang) -> str:
    pathway = rollup.provenance.pathway
    return tr(lang, " ({name}; source: {source})", name=pathway.name, source=pathway.source)


def _factor_label(choice: FactorChoice, lang: Lang) -> str:
    if lang is Lang.EN:
        return choice.label
    factor = choice.factor
    note = tr(lang, "; provisional: a later year has no factor yet") if choice.provisional else ""
    return tr(lang, "{id} ({kg} kg/{unit}, {status})", id=factor.id, kg=factor.kg_per_unit, unit=factor.unit,
              status=tr(lang, factor.status) + note)


def _summary_rows(rollup: Rollup, name: DisplayNames) -> list[list[Any]]:
    lang = name.lang
    s2 = rollup.scope2
    balance = s2.balance
    fuel = rollup.provenance.scope1
    scope1_factor = (tr(lang, "{id} ({kg} kg/{unit}, {status})", id=fuel.factor.factor.id,
                        kg=fuel.factor.factor.kg_per_unit, unit=fuel.factor.factor.unit,
                        status=tr(lang, fuel.factor.factor.status)) if fuel is not None
                     else tr(lang, "not metered"))
    lines = ", ".join(name(line) for line in rollup.intensity.output_lines) or tr(lang, "none configured")

    def per_t(value: float | None) -> Any:
        return value if value is not None else tr(lang, "no output recorded")

    def done(figure: str) -> str:
        return _completeness(rollup, figure, lang)

    rows: list[list[Any]] = [
        [tr(lang, "Grid import (kWh)"), balance.grid_import_kwh, done("grid_import_kwh")],
        [tr(lang, "Grid export (kWh)"), balance.grid_export_kwh, done("grid_export_kwh")],
        [tr(lang, "On-site PV generation (kWh)"), balance.generation_kwh, done("pv_generation_kwh")],
        [tr(lang, "On-site PV consumed (kWh)"), s2.pv_self_kwh, done("pv_self_kwh")],
        [tr(lang, "Consumption = import - export + generation (kWh)"), s2.consumption_kwh, done("consumption_kwh")],
        [tr(lang, "Sub-metered loads (kWh)"), balance.sub_metered_kwh, done("sub_metered_kwh")],
        [tr(lang, "Unmetered remainder: losses and unmetered loads (kWh)"), balance.unmetered_kwh,
         done("unmetered_kwh")],
        [tr(lang, "Scope 2 location-based (t CO2e)"), s2.location_kgco2e / 1000, done("scope2_location")],
        [tr(lang, "Scope 2 market-based, monthly matching (t CO2e)"), s2.market_monthly.kgco2e / 1000,
         done("scope2_market")],
        [tr(lang, "Scope 2 market-based, hourly matching, 2025 draft (t CO2e)"), s2.market_hourly.kgco2e / 1000,
         done("scope2_market")],
        [tr(lang, "Green instruments matched, monthly / hourly (kWh)"),
         f"{s2.market_monthly.instruments_kwh:,.0f} / {s2.market_hourly.instruments_kwh:,.0f}", ""],
        [tr(lang, "Scope 1, natural gas (t CO2e)"), sum(rollup.scope1_kgco2e.values()) / 1000
         if rollup.scope1_kgco2e else tr(lang, "not metered"), done("scope1")],
        [tr(lang, "Renewable share (GHG Protocol: instruments matched + PV consumed)"), f"{s2.renewable_share:.1%}",
         done("renewable_share")],
        [tr(lang, "Green share by certificates (GECs held, on-site PV's included)"),
         f"{s2.certificate_share:.1%} ({s2.certificates_kwh:,.0f} kWh)", ""],
        [tr(lang, "Site output, lines {lines} (t)", lines=lines), rollup.production_t
         if rollup.production_t is not None else tr(lang, "no output recorded"), ""],
        [tr(lang, "Scope 1+2 intensity, location / market (t CO2e per t)"),
         f"{_fmt(per_t(rollup.intensity.location_t_per_t))} / {_fmt(per_t(rollup.intensity.market_t_per_t))}",
         done("intensity")],
        [tr(lang, "Pathway target (t CO2e per t)"), _fmt(rollup.intensity.target_t_per_t
                                                          or tr(lang, "none for this year")) + _pathway(rollup, lang),
         ""],
        [tr(lang, "Location factor"), _factor_label(s2.location_factor, lang), ""],
        [tr(lang, "Residual factor"), _factor_label(s2.residual_factor, lang), ""],
        [tr(lang, "Scope 1 factor"), scope1_factor, ""],
    ]
    return rows


def _first_page(rollup: Rollup, name: DisplayNames) -> list[str]:
    """The flags on the first page: reconciliation differences first, then coverage, factors, tariff."""
    lang = name.lang
    warnings = []
    if rollup.poor_coverage:
        warnings.append(tr(lang, "Poor data coverage this month: {meters}. Totals use counter deltas and stay exact, "
                                 "but interval detail is interpolated.",
                           meters=", ".join(_named_coverage(entry, name) for entry in rollup.poor_coverage)))
    for choice in (rollup.provenance.location_factor, rollup.provenance.residual_factor):
        factor = choice.factor
        if choice.provisional:
            warnings.append(tr(lang, "Provisional: {id} ({year}) stands in for {month_year}, whose factor is not yet "
                                     "published; the month will be restated.",
                               id=factor.id, year=factor.year, month_year=rollup.month[:4]))
        if factor.status == "uncertain":
            warnings.append(tr(lang, "Factor {id} is marked uncertain; confirm it before signing.", id=factor.id))
    restates = rollup.provenance.restates
    if restates:
        changes = ", ".join(f"{c['was']} -> {c['now']}" for c in restates["factors"].values())
        warnings.append(tr(lang, "Restated: this report replaces the one of {as_of} ({changes}); previous totals are "
                                 "kept in the provenance.", as_of=restates["as_of"], changes=changes))
    if rollup.scope2.balance.unmetered_kwh < 0:
        warnings.append(tr(lang, "The sub-meters record {kwh:,.0f} kWh more than the site consumed (import - export + "
                                 "generation): check the meters and their feeds.",
                           kwh=-rollup.scope2.balance.unmetered_kwh))
    if rollup.provenance.tariff.status != "confirmed":
        warnings.append(tr(lang, "Tariff {id} is to be confirmed: costs are indicative.",
                           id=rollup.provenance.tariff.id))
    return [*_reconciliation_flags(rollup.reconciliation, name), *warnings]  # a meter that does not add up first


# analytics/scope2.py's reasons for a green-power ledger row not counted this month, in Chinese
_EXCLUSIONS_ZH = (
    (re.compile(r"claimed for (?P<month>\S+), not this month"), "申报月份为 {month}，不计入本月"),
    (re.compile(r"on-site PV: its energy is measured by the PV meter \(renewable share\); its (?P<mwh>\S+) "
                r"non-tradable GECs count in the certificate share only, never against grid import"),
     "厂内光伏：其电量由光伏电表计量（计入可再生能源占比），其 {mwh} MWh 不可交易绿证只计入绿证占比，"
     "不抵扣电网购入电量"),
    (re.compile(r"on-site PV without issued GECs: .*"),
     "厂内光伏，绿证尚未核发：其电量由光伏电表计量（计入可再生能源占比），绿证核发并登记前不计入绿证占比"),
)


def _exclusion(reason: str, lang: Lang) -> str:
    if lang is Lang.EN:
        return reason
    for pattern, text in _EXCLUSIONS_ZH:
        found = pattern.fullmatch(reason)
        if found:
            return text.format(**found.groupdict())
    return tr(lang, reason)  # a new reason: logged as untranslated


def _named_coverage(entry: str, name: DisplayNames) -> str:
    """'mill (93.0%)' (Rollup.poor_coverage) with the device's display name."""
    device, _, coverage = entry.partition(" (")
    return f"{name(device)} ({coverage}" if coverage else name(device)


def _reconciliation_flags(result: Reconciliation | None, name: DisplayNames) -> list[str]:
    if name.lang is Lang.EN or result is None:
        return list(first_page_lines(result))
    return [tr(name.lang, "Reconciliation: meter {device}'s 15-minute energy sums to {intervals:,.3f} kWh but its "
                          "counter recorded {counter:,.3f} kWh (difference {difference:+,.3f} kWh); the month's "
                          "figures for it are not signable until it is recomputed.",
               device=name(m.device), intervals=m.intervals_kwh, counter=m.counter_kwh, difference=m.difference_kwh)
            for m in result.differing]


def _reconciliation_section(result: Reconciliation | None, name: DisplayNames) -> str:
    lang = name.lang
    if lang is Lang.EN or result is None:
        return str(reconciliation_html(result))
    rows = [[name(row[0]), *row[1:4], tr(lang, row[4])] for row in reconciliation_table(result)]
    verdict = (tr(lang, "every meter reconciles") if result.ok else
               tr(lang, "{n} meter(s) differ: {meters}", n=len(result.differing),
                  meters=", ".join(name(m.device) for m in result.differing)))
    header = [tr(lang, h) for h in ("meter", "counter kWh", "intervals kWh", "difference kWh", "status")]
    return ('<h2 id="reconciliation">' + tr(lang, "Reconciliation: 15-minute sums vs counter differences") + "</h2>"
            "<p>" + html.escape(verdict) + tr(lang, " (tolerance {relative:g} relative + {absolute:g} kWh).",
                                              relative=RELATIVE_TOLERANCE, absolute=ABSOLUTE_TOLERANCE_KWH)
            + "</p>" + _table(rows, header))


def _style(lang: Lang) -> str:
    font = HTML_FONT_STACK if lang is Lang.ZH else "sans-serif"
    return (f"<style>body{{font-family:{font};max-width:1000px;margin:2em auto}}"
            "table{border-collapse:collapse;margin:1em 0}\n"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child"
            "{text-align:left}\n.warn{background:#fee;border-left:4px solid #d73027;padding:6px}figure{margin:1em 0}"
            "</style>")


def _html(rollup: Rollup, name: DisplayNames) -> str:
    lang = name.lang

    def t(message: str, **values: object) -> str:
        return tr(lang, message, **values)

    warning_html = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in _first_page(rollup, name))
    devices = rollup.devices
    device_rows = [[name(r.device), r.area, t(r.kind), r.energy_kwh, r.kwh_peak + r.kwh_sharp, r.cost_cny,
                    r.cost_peak_cny + r.cost_sharp_cny, f"{r.coverage:.1%}"] for r in devices.itertuples()]
    allocation = [[name(meter), line.kwh, line.kg[Method.LOCATION] / 1000, line.kg[Method.MARKET] / 1000]
                  for meter, line in rollup.scope2.allocation.items()]
    provenance = rollup.provenance.to_json()
    output_lines = ", ".join(name(line) for line in rollup.intensity.output_lines)
    lines_note = t("Each line's intensity uses its own output. The site's intensity uses the output of\n{lines} only\n"
                   "(<code>site.output_lines</code>): metal that passes several lines is counted once.",
                   lines=html.escape(output_lines or t("no line (none configured)")))
    return f"""<!DOCTYPE html>
<html lang="{"zh-CN" if lang is Lang.ZH else "en"}"><head><meta charset="utf-8"><title>plantems {rollup.site} \
{month_label(rollup.month, lang)}</title>
{_style(lang)}</head><body>
<h1>{t("Energy and Scope 2 report: {site}, {month}", site=html.escape(rollup.site),
       month=month_label(rollup.month, lang))}</h1>
<p>{t("Computed {as_of} by plantems; configuration sha256 {sha}.", as_of=rollup.as_of.isoformat(),
      sha=rollup.provenance.config_sha256[:12])}</p>
{warning_html}
<h2>{t("Summary")}</h2>{_table(_summary_rows(rollup, name), ["", t("value"), t("completeness of its data")])}
<h2>{t("Charts")}</h2>
<figure id="chart-daily">{_daily_chart(rollup, lang)}</figure>
<figure id="chart-areas">{_area_chart(rollup, lang)}</figure>
<figure id="chart-emissions">{_emissions_chart(rollup, lang)}</figure>
<figure id="chart-intensity">{_intensity_chart(rollup, lang)}</figure>
<figure id="chart-share">{_share_chart(rollup, lang)}</figure>
<figure id="chart-coverage">{_coverage_chart(rollup, name)}</figure>
{plan_section(rollup.plan, lang)}
<h2>{t("Meters")}</h2>{_table(device_rows, [t("device"), t("area"), t("kind"), t("kWh"), t("of which peak+sharp"),
                                          t("cost (CNY)"), t("peak+sharp cost"), t("coverage")])}
<h2>{t("Process lines (Scope 1+2 of the meters in their areas)")}</h2>
<p>{lines_note}</p>
{_table([[name(line_id), line.production_t or t("none"), (line.scope1_kgco2e + line.scope2_location_kgco2e) / 1000,
          (line.scope1_kgco2e + line.scope2_market_kgco2e) / 1000,
          line.intensity_location_t_per_t or t("n/a"), line.intensity_market_t_per_t or t("n/a")]
         for line_id, line in rollup.lines.items()],
        [t("line"), t("output t"), t("location t CO2e"), t("market t CO2e"), t("location t/t"), t("market t/t")])}
{sections_html(rollup.sections, name, _svg, _table)}
<h2>{t("Opportunities: load shifting, maximum demand, reactive power")}</h2>
{_opportunities_html(rollup, name)}
<h2>{t("Allocation of site emissions (by sub-metered energy)")}</h2>
{_table(allocation, [t("meter"), t("kWh"), t("location t CO2e"), t("market t CO2e")])}
<h2>{t("Green-power ledger")}</h2>
<p>{t("Used: {entries}.", entries=html.escape(", ".join(rollup.scope2.entries_used) or t("none")))}</p>
{_table([[e.entry_id, e.line, _exclusion(e.reason, lang)] for e in rollup.provenance.ledger_entries_excluded],
        [t("excluded row"), tr_context(lang, "ledger file", "line"), t("why")])}
{_reconciliation_section(rollup.reconciliation, name)}
<h2>{t("Provenance")}</h2><pre>{html.escape(json.dumps(provenance, indent=2, ensure_ascii=False))}</pre>
</body></html>"""


def _lines(rollup: Rollup) -> list[list[Any]]:
    s2 = rollup.scope2
    rows = [["site", rollup.site, "location", s2.grid_import_kwh, s2.location_kgco2e, s2.location_factor.factor.id],
            ["site", rollup.site, "market", s2.grid_import_kwh, s2.market_monthly.kgco2e,
             s2.residual_factor.factor.id],
            ["site", rollup.site, "market_hourly", s2.grid_import_kwh, s2.market_hourly.kgco2e,
             s2.residual_factor.factor.id]]
    factor_ids = {Method.LOCATION: s2.location_factor.factor.id, Method.MARKET: s2.residual_factor.factor.id,
                  Method.MARKET_HOURLY: s2.residual_factor.factor.id}
    for name, line in s2.allocation.items():
        for method, factor_id in factor_ids.items():
            rows.append(["meter", name, method.value, line.kwh, line.kg[method], factor_id])
    fuel = rollup.provenance.scope1
    for device, kg in rollup.scope1_kgco2e.items():
        rows.append(["scope1", device, "natural_gas", "", kg, fuel.factor.factor.id if fuel is not None else ""])
    return rows


def _workbook(rollup: Rollup, name: DisplayNames) -> Workbook:
    """scope2.xlsx: the CSV's rows, the meters and the provenance; in Chinese with translated sheet names and
    header rows and the devices' Chinese names (the ids stay in the CSV and the JSON)."""
    lang = name.lang
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = tr(lang, "Scope 2")
    sheet.append([tr(lang, h) for h in _CSV_HEADER])
    for row in _lines(rollup):
        sheet.append(row if lang is Lang.EN else [tr(lang, row[0]), name(row[1]), tr(lang, row[2]), *row[3:]])
    meters = workbook.create_sheet(tr(lang, "Meters"))
    meters.append([tr(lang, c) for c in rollup.devices.columns])
    for row in rollup.devices.itertuples(index=False):
        meters.append([name(row[0]), *row[1:]] if lang is Lang.ZH and rollup.devices.columns[0] == "device"
                      else list(row))
    provenance = workbook.create_sheet(tr(lang, "Provenance"))
    for key, value in rollup.provenance.to_json().items():
        provenance.append([key, json.dumps(value, ensure_ascii=False)])
    return workbook


_CSV_HEADER = ["scope", "name", "method", "kwh", "kgco2e", "factor_id"]


def write_report(rollup: Rollup, folder: Path, *, langs: tuple[Lang, ...] = ALL_LANGS,
                 names: Mapping[str, Named] | None = None) -> list[Path]:
    """Write the report files into ``folder``, the HTML and XLSX once per language in ``langs``
    (report.html and scope2.xlsx in English, report.zh.html and scope2.zh.xlsx in Chinese); return their paths.
    ``names``: devices and lines by id, for their Chinese names (name_zh)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "scope2.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_CSV_HEADER)
        writer.writerows(_lines(rollup))
    json_path = folder / "rollup.json"
    json_path.write_text(json.dumps(rollup.to_json(), indent=2, ensure_ascii=False, default=str))
    paths = []
    if Lang.ZH in langs:
        chart_fonts_ready()
    for lang in langs:
        name = DisplayNames(names or {}, lang)
        html_path = folder / REPORT_HTML[lang]
        with plt.rc_context(chart_rc()):
            html_path.write_text(_html(rollup, name), encoding="utf-8")
        xlsx_path = folder / report_file("scope2.xlsx", lang)
        _workbook(rollup, name).save(xlsx_path)
        paths += [html_path, xlsx_path]
    return [*paths, csv_path, json_path]
