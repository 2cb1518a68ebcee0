"""Group report files from a GroupRollup: report.html (self-contained, inline SVG charts), group.xlsx
and group.json (every number, with each site's row and provenance)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from openpyxl import Workbook

from plantems.analytics.group import GroupRollup
from plantems.analytics.report import _svg  # one way to inline a chart

__all__ = ["write_group_report"]

_SITE_COLUMNS = ("site", "scope1_kgco2e", "scope2_location_kgco2e", "scope2_market_kgco2e",
                 "scope2_market_hourly_kgco2e", "grid_import_kwh", "pv_self_kwh", "consumption_kwh",
                 "green_monthly_kwh", "certificates_kwh", "renewable_kwh", "production_t",
                 "intensity_location_t_per_t", "intensity_market_t_per_t", "location_factor", "residual_factor",
                 "tariff", "coverage_min", "reconciled", "config_sha256")


def _emissions_chart(rollup: GroupRollup) -> str:
    """Scope 1 and Scope 2 (location and market) per site, stacked: the bars' tops are the group."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    methods = ("location", "market")
    bottom = [0.0, 0.0]
    for site in rollup.sites:
        values = [site.scope12_location_t, site.scope12_market_t]
        axis.bar([f"Scope 1+2 {m}" for m in methods], values, bottom=bottom, label=site.site)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_ylabel("t CO2e")
    axis.set_title("Group Scope 1+2 by site")
    axis.legend(fontsize=8)
    return _svg(figure)


def _intensity_chart(rollup: GroupRollup) -> str:
    figure, axis = plt.subplots(figsize=(7, 3.2))
    labels: list[str] = []
    values: list[float] = []
    for site in rollup.sites:
        value = site.to_json()["intensity_market_t_per_t"]
        if value is not None:
            labels.append(f"{site.site} (market)")
            values.append(value)
    for label, value in (("group (location)", rollup.intensity("location")),
                         ("group (market)", rollup.intensity("market"))):
        if value is not None:
            labels.append(label)
            values.append(value)
    axis.bar(labels, values, color="#31a354")
    if rollup.target_t_per_t is not None:
        axis.axhline(rollup.target_t_per_t, color="#fdae6b", linestyle="--", label="pathway target")
        axis.legend(fontsize=8)
    axis.set_ylabel("t CO2e / t Al")
    axis.set_title("Scope 1+2 intensity against the group pathway")
    return _svg(figure)


def _share_chart(rollup: GroupRollup) -> str:
    figure, axis = plt.subplots(figsize=(7, 2.4))
    rows = [(s.site, s.renewable_kwh / s.consumption_kwh if s.consumption_kwh else 0.0) for s in rollup.sites]
    rows.append(("group", rollup.renewable_share))
    axis.barh([r[0] for r in rows], [r[1] * 100 for r in rows], color="#31a354")
    goal = rollup.renewable_share_target
    if goal.get("share") is not None:
        axis.axvline(goal["share"] * 100, color="#fdae6b", linestyle="--", label=f"{goal['year']} goal")
        axis.legend(fontsize=8)
    axis.set_xlim(0, 100)
    axis.set_xlabel("renewable % of consumption")
    return _svg(figure)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return html.escape("" if value is None else str(value))


def _warnings(rollup: GroupRollup) -> list[str]:
    out = []
    if rollup.missing_output:
        out.append("No output recorded for " + ", ".join(rollup.missing_output) + ": the group intensity is not "
                   "stated (the other sites' output alone would understate it).")
    for site in rollup.sites:
        if site.factors_provisional:
            out.append(f"{site.site}: provisional emission factor ({site.location_factor} / {site.residual_factor}); "
                       "the month will be restated.")
        if site.poor_coverage:
            out.append(f"{site.site}: poor data coverage: {', '.join(site.poor_coverage)}.")
        if site.reconciled is False:
            out.append(f"{site.site}: meters do not reconcile: {', '.join(site.differing_meters)}.")
    return out


def _html(rollup: GroupRollup, doc: dict[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _SITE_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(site[c])}</td>" for c in _SITE_COLUMNS) + "</tr>"
                   for site in doc["sites"])
    summary = [("Scope 1 (t CO2e)", doc["scope1_kgco2e"] / 1000),
               ("Scope 2 location (t CO2e)", doc["scope2_location_kgco2e"] / 1000),
               ("Scope 2 market (t CO2e)", doc["scope2_market_kgco2e"] / 1000),
               ("Consumption (MWh)", doc["consumption_kwh"] / 1000),
               ("Renewable share", doc["renewable_share"]), ("Certificate share", doc["certificate_share"]),
               ("Output (t)", doc["production_t"]),
               ("Intensity location (t/t)", doc["intensity"]["location_t_per_t"]),
               ("Intensity market (t/t)", doc["intensity"]["market_t_per_t"]),
               ("Pathway target (t/t)", doc["intensity"]["target_t_per_t"])]
    warnings = "".join(f"<p class=warn>{html.escape(w)}</p>" for w in _warnings(rollup))
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(rollup.name or rollup.group)} {rollup.month}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:2px 6px;font-size:12px}}
table{{border-collapse:collapse}} .warn{{color:#b2182b}}</style></head><body>
<h1>{html.escape(rollup.name or rollup.group)} {html.escape(rollup.name_zh)}: {rollup.month}</h1>
<p>Group {html.escape(rollup.group)}, {len(rollup.sites)} sites, as of {rollup.as_of}.</p>{warnings}
<table>{"".join(f"<tr><th>{k}</th><td>{_fmt(v)}</td></tr>" for k, v in summary)}</table>
{_emissions_chart(rollup)}{_intensity_chart(rollup)}{_share_chart(rollup)}
<h2>Sites</h2><div style="overflow-x:auto"><table><tr>{head}</tr>{body}</table></div>
<h2>Pathway</h2><pre>{html.escape(json.dumps(doc["intensity"]["pathway"], indent=2, ensure_ascii=False))}</pre>
</body></html>"""


def write_group_report(rollup: GroupRollup, folder: Path) -> list[Path]:
    """Write report.html, group.xlsx and group.json into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = rollup.to_json()
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Group"
    for key, value in doc.items():
        if not isinstance(value, dict | list):
            sheet.append([key, value])
    sheet.append(["intensity_location_t_per_t", doc["intensity"]["location_t_per_t"]])
    sheet.append(["intensity_market_t_per_t", doc["intensity"]["market_t_per_t"]])
    sheet.append(["target_t_per_t", doc["intensity"]["target_t_per_t"]])
    sites = workbook.create_sheet("Sites")
    sites.append(list(_SITE_COLUMNS))
    for site in doc["sites"]:
        sites.append([site[c] for c in _SITE_COLUMNS])
    provenance = workbook.create_sheet("Provenance")
    for site in doc["sites"]:
        provenance.append([site["site"], json.dumps(site, ensure_ascii=False)])
    xlsx_path = folder / "group.xlsx"
    workbook.save(xlsx_path)
    json_path = folder / "group.json"
    json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    html_path = folder / "report.html"
    html_path.write_text(_html(rollup, doc), encoding="utf-8")
    return [html_path, xlsx_path, json_path]
