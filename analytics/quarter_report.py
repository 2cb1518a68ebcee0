"""Quarterly report files: report.html (self-contained, inline SVG charts), quarter.xlsx and
quarter.json (every number with its provenance)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from openpyxl import Workbook

from plantems.analytics.report import _svg as chart_svg

if TYPE_CHECKING:
    from plantems.analytics.quarter_job import QuarterReport

__all__ = ["write_quarter_report"]


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


def _savings_chart(report: QuarterReport) -> str:
    """Claimed against verified kWh per measure, the verified bar with its 90 % uncertainty."""
    figure, axis = plt.subplots(figsize=(7, 3))
    names, claimed, verified, spread = [], [], [], []
    for measure in report.measures:
        power = measure.carrier("electricity_kwh")
        names.append(measure.measure_id)
        claimed.append((measure.claimed.get("kwh") or 0.0) / 1000)
        verified.append((power.saving or 0.0) / 1000 if power and power.verified else 0.0)
        spread.append((power.uncertainty_90 or 0.0) / 1000 if power and power.verified else 0.0)
    positions = range(len(names))
    axis.bar([p - 0.2 for p in positions], claimed, 0.4, label="claimed (pro rata)", color="#bbbbbb")
    axis.bar([p + 0.2 for p in positions], verified, 0.4, yerr=spread, capsize=4, label="verified ± 90 %",
             color="#2166ac")
    axis.set_xticks(list(positions), names, fontsize=8)
    axis.set_ylabel("MWh")
    axis.legend(fontsize=8)
    return _svg(figure)


def _cusum_chart(report: QuarterReport) -> str:
    figure, axis = plt.subplots(figsize=(7, 3))
    for enpi in report.enpis:
        if enpi.cusum_kwh:
            axis.plot(range(len(enpi.cusum_kwh)), [v / 1000 for _, v in enpi.cusum_kwh], label=enpi.entity)
    axis.set_xlabel("day of the quarter")
    axis.set_ylabel("CUSUM, MWh (falling = saving)")
    if axis.get_legend_handles_labels()[0]:  # no entity with a valid baseline: no line to label
        axis.legend(fontsize=8)
    return _svg(figure)


def _enpi_rows(report: QuarterReport) -> list[list[Any]]:
    return [[e.entity, e.output_t, e.kwh_per_t, e.expected_kwh_per_t, e.normalised_kwh_per_t, e.kgce_per_t,
             e.t_co2e_per_t, e.target_t_co2e_per_t, e.improvement_kwh,
             "valid" if e.baseline and e.baseline.validity.valid else (e.problem or "none"),
             f"{e.production_days}/{e.days}"] for e in report.enpis]


_ENPI_HEADER = ["entity", "output t", "kWh/t", "baseline kWh/t", "normalised kWh/t", "kgce/t", "t CO2e/t",
                "target t CO2e/t", "improvement kWh", "baseline", "days with output"]


def _measure_rows(report: QuarterReport) -> list[list[Any]]:
    rows = []
    for m in report.measures:
        for c in m.carriers:
            key = "kwh" if c.carrier == "electricity_kwh" else "gas_m3"
            model = c.baseline
            rows.append([m.measure_id, m.name_zh or m.name, m.type, m.ipmvp_option, c.carrier, m.claimed.get(key),
                         c.saving, c.uncertainty, c.uncertainty_90, sum(c.non_routine_by_month.values()) or None,
                         "; ".join(c.non_routine_notes) or None, "yes" if c.verified else f"NO: {c.problem}",
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


def _html(report: QuarterReport) -> str:
    pathway = report.pathway
    warnings = [f"{m.measure_id} {c.carrier}: not verified: {c.problem}" for m in report.measures
                for c in m.carriers if c.problem]
    warn = "".join(f"<p class=warn>{html.escape(w)}</p>" for w in warnings)
    completeness = report.completeness
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Quarterly energy performance
{html.escape(report.quarter)} {html.escape(report.site)}</title><style>
body{{font-family:sans-serif;max-width:1100px;margin:auto}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} .warn{{color:#b2182b;font-weight:bold}}
</style></head><body>
<h1>Energy performance and verified savings, {html.escape(report.quarter)} ({html.escape(report.site)})</h1>
<p>Data {report.first} .. {report.last}. Savings uncertainty: ASHRAE Guideline 14 FSU at 68 % and 90 % confidence.</p>
{warn}
<h2>Pathway status</h2>
<p>Scope 1+2 intensity {_fmt(pathway['actual_t_co2e_per_t'])} t CO2e/t against the pathway's
{_fmt(pathway['target_t_co2e_per_t'])}: <b>{html.escape(pathway['status'])}</b>. Verified measures:
{_fmt(pathway['verified_t_co2e'])} t CO2e (claimed pro rata {_fmt(pathway['claimed_t_co2e'])}).</p>
<h2>EnPIs against baseline and target</h2>
{_table(_enpi_rows(report), _ENPI_HEADER)}
{_cusum_chart(report)}
<h2>Measures: claimed against verified</h2>
{_table(_measure_rows(report), _MEASURE_HEADER)}
{_savings_chart(report)}
<h3>Claimed against verified t CO2e and CNY (a fuel switch: Scope 1 removed - Scope 2 added)</h3>
<p>Claims are yearly, shown pro rata over the verified days; the verified figures are also annualised at the
reporting period's rate. Verified CNY: verified kWh at the boundary's reporting-period tariff mix (provenance).</p>
{_table(_summary_rows(report), _SUMMARY_HEADER)}
<h3>Baseline versions and static-factor adjustments</h3>
{_table(_adjustment_rows(report), _ADJUSTMENT_HEADER)}
<h2>Data completeness</h2>
<p>{completeness['days_with_energy']} of {completeness['days_expected']} days with energy data;
{completeness['days_with_site_output']} with the site's output recorded.</p>
<h2>Provenance</h2><pre>{html.escape(json.dumps(report.provenance, indent=1, ensure_ascii=False))}</pre>
</body></html>"""


def _xlsx(report: QuarterReport, path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "EnPIs"
    sheet.append(_ENPI_HEADER)
    for row in _enpi_rows(report):
        sheet.append(row)
    measures = book.create_sheet("Measures")
    measures.append(_MEASURE_HEADER)
    for row in _measure_rows(report):
        measures.append(row)
    for title, header, rows in (("Claimed vs verified", _SUMMARY_HEADER, _summary_rows(report)),
                                ("Baseline log", _ADJUSTMENT_HEADER, _adjustment_rows(report))):
        sheet = book.create_sheet(title)
        sheet.append(header)
        for row in rows:
            sheet.append(row)
    info = book.create_sheet("Provenance")
    for key, value in report.provenance.items():
        info.append([key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value])
    book.save(path)


def write_quarter_report(report: QuarterReport, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.html", folder / "quarter.xlsx", folder / "quarter.json"]
    paths[0].write_text(_html(report), encoding="utf-8")
    _xlsx(report, paths[1])
    paths[2].write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return paths
