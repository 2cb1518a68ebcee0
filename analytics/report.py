"""Monthly report files from a Rollup: report.html (self-contained, inline SVG charts),
scope2.csv, scope2.xlsx and rollup.json (all numbers plus provenance)."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from openpyxl import Workbook

from plantems.analytics.opportunity_results import NO_DATA, MaxDemand, Opportunities, ReactiveMonth
from plantems.analytics.reconcile import first_page_lines, reconciliation_html
from plantems.analytics.rollup_results import Rollup
from plantems.schema import Method

__all__ = ["write_report"]

_TOU_COLOURS = {"sharp": "#b2182b", "peak": "#ef8a62", "flat": "#67a9cf", "valley": "#2166ac"}


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _stacked_daily(rollup: Rollup, by: str, title: str, colours: dict[str, str] | None = None) -> str:
    """Daily sub-metered MWh as bars stacked by ``by`` (tou or area)."""
    figure, axis = plt.subplots(figsize=(9, 3.2))
    daily = rollup.daily
    if not daily.empty:
        table = daily.pivot_table(index="date", columns=by, values="energy_kwh", aggfunc="sum").fillna(0) / 1000
        order = [c for c in (colours or {}) if c in table] or list(table.columns)
        bottom = None
        for column in order:
            axis.bar(table.index, table[column], bottom=bottom, label=column,
                     color=(colours or {}).get(column))
            bottom = table[column] if bottom is None else bottom + table[column]
        axis.legend(ncol=4, fontsize=8)
    axis.set_ylabel("MWh per day")
    axis.set_title(title)
    figure.autofmt_xdate()  # rotated dates: a month of labels does not overlap
    return _svg(figure)


def _daily_chart(rollup: Rollup) -> str:
    ordered = {tou: _TOU_COLOURS[tou] for tou in ("valley", "flat", "peak", "sharp")}
    return _stacked_daily(rollup, "tou", "Sub-metered energy by tariff period", ordered)


def _area_chart(rollup: Rollup) -> str:
    return _stacked_daily(rollup, "area", "Sub-metered energy by area")


def _emissions_chart(rollup: Rollup) -> str:
    s2 = rollup.scope2
    figure, axis = plt.subplots(figsize=(6, 3))
    labels = ["location", "market (monthly)", "market (hourly)"]
    values = [s2.location_kgco2e / 1000, s2.market_monthly.kgco2e / 1000, s2.market_hourly.kgco2e / 1000]
    axis.bar(labels, values, color=["#636363", "#31a354", "#a1d99b"])
    axis.set_ylabel("t CO2e")
    axis.set_title("Scope 2: location- vs market-based")
    return _svg(figure)


def _intensity_chart(rollup: Rollup) -> str:
    figure, axis = plt.subplots(figsize=(6, 3))
    labels, values, colours = [], [], []
    i = rollup.intensity
    for value, label, colour in ((i.location_t_per_t, "location", "#636363"), (i.market_t_per_t, "market", "#31a354"),
                                 (i.target_t_per_t, "pathway target", "#fdae6b")):
        if value is not None:
            labels.append(label)
            values.append(value)
            colours.append(colour)
    axis.bar(labels, values, color=colours)
    axis.set_ylabel("t CO2e / t Al")
    axis.set_title("Scope 1+2 intensity against the pathway")
    if not values:
        axis.text(0.5, 0.5, "no production recorded for the month", ha="center", transform=axis.transAxes)
    return _svg(figure)


def _share_chart(rollup: Rollup) -> str:
    figure, axis = plt.subplots(figsize=(6, 2.4))
    axis.barh(["renewable share"], [rollup.scope2.renewable_share * 100], color="#31a354")
    if rollup.renewable_share_target is not None:
        axis.axvline(rollup.renewable_share_target * 100, color="#fdae6b", linestyle="--", label="2030 goal")
        axis.legend(fontsize=8)
    axis.set_xlim(0, 100)
    axis.set_xlabel("% of consumption")
    return _svg(figure)


def _coverage_chart(rollup: Rollup) -> str:
    devices = rollup.devices
    figure, axis = plt.subplots(figsize=(9, 3))
    colours = ["#d73027" if c < 0.95 else "#1a9850" for c in devices["coverage"]]
    axis.bar(devices["device"], devices["coverage"] * 100, color=colours)
    axis.set_ylim(0, 105)
    axis.set_ylabel("% of intervals with data")
    axis.set_title("Data coverage per meter")
    axis.tick_params(axis="x", rotation=45)
    return _svg(figure)


def _savings_chart(found: Opportunities) -> str:
    """Load-shifting savings per device and the capacitor kvar each billing group needs."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    shifts = found.load_shift
    left.barh([s.device for s in shifts][::-1], [s.saving_cny for s in shifts][::-1], color="#ef8a62")
    left.set_xlabel("CNY this month")
    left.set_title("Saving if moved off sharp/peak")
    groups = [(r.group, r.month) for r in found.reactive if r.month is not None]
    names = [name for name, _ in groups]
    sizes = (("from the average", "#92c5de", [m.capacitor_kvar_average for _, m in groups]),
             ("95 % of intervals", "#2166ac", [m.capacitor_kvar_p95 for _, m in groups]),
             ("maximum", "#053061", [m.capacitor_kvar_max for _, m in groups]))
    for offset, (label, colour, kvar) in enumerate(sizes):
        right.bar([i + 0.27 * offset for i in range(len(names))], kvar, width=0.27, label=label, color=colour)
    right.set_xticks([i + 0.27 for i in range(len(names))], names)
    right.set_ylabel("kvar to reach the target PF")
    right.set_title("Capacitor bank sizing")
    right.legend(fontsize=7)
    return _svg(figure)


def _opportunities_html(rollup: Rollup) -> str:
    found = rollup.opportunities
    if found is None:
        return "<p>No opportunities computed (no shiftable device and no billing group configured).</p>"
    parts = [f"<p>Tariff {html.escape(found.tariff)}. Savings at this month's prices; the load-shifting "
             "saving assumes the same energy runs at the cheapest period the device's windows reach.</p>",
             f'<figure id="chart-opportunities">{_savings_chart(found)}</figure>',
             "<h3>Load shifting (shiftable devices)</h3>",
             _table([[s.device, s.peak_sharp_kwh, s.peak_sharp_cost_cny, s.move_to.value, ", ".join(s.windows_text),
                      s.saving_cny] for s in found.load_shift],
                    ["device", "sharp+peak kWh", "sharp+peak cost (CNY)", "move to", "allowed windows",
                     "saving (CNY)"])]
    parts.extend(_max_demand_html(item) for item in found.max_demand)
    if found.compressed_air:
        parts.append("<h3>Compressed air</h3>" + _table(
            [[a.device, ", ".join(a.compressors), a.compressor_kwh, a.air_m3 or "not metered", f"{a.air_coverage:.1%}",
              a.specific_power_kw_per_m3min or "n/a", a.mean_bar or "n/a",
              f"{a.pressure_reduction_bar:g} bar: {a.saving_kwh:,.0f} kWh, {a.saving_cny:,.0f} CNY"]
             for a in found.compressed_air],
            ["air meter", "compressors", "compressor kWh", "free air m3", "coverage", "kW per m3/min", "mean bar(g)",
             "saving if the header pressure were lower"]))
    parts.extend(_reactive_html(item.group, item.month) for item in found.reactive if item.month is not None)
    return "".join(parts)


def _max_demand_html(item: MaxDemand) -> str:
    p = item.peak
    if p is None:
        return f"<p>{html.escape(item.group)}: {html.escape(NO_DATA)}</p>"
    saving = (f"{p.saving_cny:,.0f} CNY" if p.saving_cny is not None
              else "not priced: the tariff has no demand charge yet")
    sliding = item.sliding_max_kw
    return (
        f"<h3>Maximum demand: {html.escape(item.group)}</h3><p>{p.max_kw:,.0f} kW on 15-minute intervals "
        f"starting {p.max_at_local} ({p.max_tou}), against a limit of {p.limit_kw:,.0f} kW"
        + (f"; the live sliding-window maximum was {sliding:,.0f} kW" if sliding else "")
        + f". Moving the shiftable loads' sharp/peak energy would have made it {p.max_kw_if_shifted:,.0f} "
        f"kW ({p.reduction_kw:,.0f} kW less): {saving}.</p>"
        + _table([[name, kw, "yes" if any(name == s[0] for s in p.shiftable_at_max) else ""]
                  for name, kw in p.contributors_kw], ["load in that interval", "kW", "shiftable"]))


def _reactive_html(group: str, m: ReactiveMonth) -> str:
    over = (f"Over-compensated: {m.kvarh_export:,.0f} kvarh exported, {m.leading_intervals} leading "
            f"intervals ({m.leading_intervals_at_light_load} at light load): switch capacitor steps off "
            "at light load." if m.over_compensated else "No over-compensation.")
    return (
        f"<h3>Reactive power: {html.escape(group)}</h3>"
        + _table([["monthly PF (kWh / sqrt(kWh² + (import + export kvarh)²))", f"{m.pf:.2f}"],
                  [f"bill adjustment on the {m.pf_standard:.2f} standard", f"{m.adjustment_pct:+.2f} % "
                   f"({m.adjustment_cny:+,.0f} CNY)"],
                  [f"capacitor bank for PF {m.pf_target:.2f}: 95 % of intervals / average / maximum",
                   f"{m.capacitor_kvar_p95:,.0f} / {m.capacitor_kvar_average:,.0f} / {m.capacitor_kvar_max:,.0f} kvar"],
                  ["losses and unmetered load (import - export + on-site generation - sub-meters; "
                   "upper bound)", f"{m.losses_kwh_upper_bound:,.0f} kWh"],
                  ["line-loss reduction at the target PF", f"{m.line_loss_saving_kwh:,.0f} kWh "
                   f"({m.line_loss_saving_cny:,.0f} CNY)"],
                  ["saving from compensation (adjustment avoided + losses)", f"{m.saving_cny:,.0f} CNY"]],
                 ["", "value"])
        + f"<p>{html.escape(over)}</p>"
        + _table([[d.device, d.pf, d.kvarh] for d in m.devices_by_pf[:8]], ["device (lowest PF first)", "PF", "kvarh"]))


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.4g}"
    return str(value)


def _completeness(rollup: Rollup, figure: str) -> str:
    """How complete a headline figure's data is: measured vs interpolated energy, rejected samples."""
    found = rollup.provenance.completeness.get(figure)
    if not found:
        return ""
    if "energy_kwh" not in found:  # gas meters: coverage only
        low = found.get("coverage_min")
        return "no meter" if low is None else f"coverage >= {low:.1%}"
    total = found["energy_kwh"]
    measured = found["energy_measured_kwh"] / total if total else 1.0
    parts = [f"{measured:.2%} measured", f"{found['energy_interpolated_kwh']:,.0f} kWh interpolated",
             f"{found['samples_rejected']} samples rejected"]
    if found["replacements"]:
        parts.append(f"{found['replacements']} meter replacements")
    if found["missing_meters"]:
        parts.append("no data: " + ", ".join(found["missing_meters"]))
    return "; ".join(parts)


def _pathway(rollup: Rollup) -> str:
    pathway = rollup.provenance.pathway
    return f" ({pathway.name}; source: {pathway.source})"


def _summary_rows(rollup: Rollup) -> list[list[Any]]:
    s2 = rollup.scope2
    balance = s2.balance
    fuel = rollup.provenance.scope1
    scope1_factor = (f"{fuel.factor.factor.id} ({fuel.factor.factor.kg_per_unit} kg/{fuel.factor.factor.unit}, "
                     f"{fuel.factor.factor.status})" if fuel is not None else "not metered")
    lines = ", ".join(rollup.intensity.output_lines) or "none configured"

    def per_t(value: float | None) -> Any:
        return value if value is not None else "no output recorded"

    rows: list[list[Any]] = [
        ["Grid import (kWh)", balance.grid_import_kwh, _completeness(rollup, "grid_import_kwh")],
        ["Grid export (kWh)", balance.grid_export_kwh, _completeness(rollup, "grid_export_kwh")],
        ["On-site PV generation (kWh)", balance.generation_kwh, _completeness(rollup, "pv_generation_kwh")],
        ["On-site PV consumed (kWh)", s2.pv_self_kwh, _completeness(rollup, "pv_self_kwh")],
        ["Consumption = import - export + generation (kWh)", s2.consumption_kwh,
         _completeness(rollup, "consumption_kwh")],
        ["Sub-metered loads (kWh)", balance.sub_metered_kwh, _completeness(rollup, "sub_metered_kwh")],
        ["Unmetered remainder: losses and unmetered loads (kWh)", balance.unmetered_kwh,
         _completeness(rollup, "unmetered_kwh")],
        ["Scope 2 location-based (t CO2e)", s2.location_kgco2e / 1000, _completeness(rollup, "scope2_location")],
        ["Scope 2 market-based, monthly matching (t CO2e)", s2.market_monthly.kgco2e / 1000,
         _completeness(rollup, "scope2_market")],
        ["Scope 2 market-based, hourly matching, 2025 draft (t CO2e)", s2.market_hourly.kgco2e / 1000,
         _completeness(rollup, "scope2_market")],
        ["Green instruments matched, monthly / hourly (kWh)",
         f"{s2.market_monthly.instruments_kwh:,.0f} / {s2.market_hourly.instruments_kwh:,.0f}", ""],
        ["Scope 1, natural gas (t CO2e)", sum(rollup.scope1_kgco2e.values()) / 1000 if rollup.scope1_kgco2e
         else "not metered", _completeness(rollup, "scope1")],
        ["Renewable share (GHG Protocol: instruments matched + PV consumed)", f"{s2.renewable_share:.1%}",
         _completeness(rollup, "renewable_share")],
        ["Green share by certificates (GECs held, on-site PV's included)",
         f"{s2.certificate_share:.1%} ({s2.certificates_kwh:,.0f} kWh)", ""],
        [f"Site output, lines {lines} (t)", rollup.production_t if rollup.production_t is not None
         else "no output recorded", ""],
        ["Scope 1+2 intensity, location / market (t CO2e per t)",
         f"{_fmt(per_t(rollup.intensity.location_t_per_t))} / {_fmt(per_t(rollup.intensity.market_t_per_t))}",
         _completeness(rollup, "intensity")],
        ["Pathway target (t CO2e per t)", _fmt(rollup.intensity.target_t_per_t or "none for this year")
         + _pathway(rollup), ""],
        ["Location factor", s2.location_factor.label, ""], ["Residual factor", s2.residual_factor.label, ""],
        ["Scope 1 factor", scope1_factor, ""],
    ]
    return rows


def _html(rollup: Rollup) -> str:
    warnings = []
    if rollup.poor_coverage:
        warnings.append("Poor data coverage this month: " + ", ".join(rollup.poor_coverage)
                        + ". Totals use counter deltas and stay exact, but interval detail is interpolated.")
    for choice in (rollup.provenance.location_factor, rollup.provenance.residual_factor):
        factor = choice.factor
        if choice.provisional:
            warnings.append(f"Provisional: {factor.id} ({factor.year}) stands in for {rollup.month[:4]}, "
                            "whose factor is not yet published; the month will be restated.")
        if factor.status == "uncertain":
            warnings.append(f"Factor {factor.id} is marked uncertain; confirm it before signing.")
    restates = rollup.provenance.restates
    if restates:
        changes = ", ".join(f"{c['was']} -> {c['now']}" for c in restates["factors"].values())
        warnings.append(f"Restated: this report replaces the one of {restates['as_of']} ({changes}); previous "
                        f"totals are kept in the provenance.")
    if rollup.scope2.balance.unmetered_kwh < 0:
        warnings.append(f"The sub-meters record {-rollup.scope2.balance.unmetered_kwh:,.0f} kWh more than the site "
                        "consumed (import - export + generation): check the meters and their feeds.")
    if rollup.provenance.tariff.status != "confirmed":
        warnings.append(f"Tariff {rollup.provenance.tariff.id} is to be confirmed: costs are indicative.")
    warnings = [*first_page_lines(rollup.reconciliation), *warnings]  # a meter that does not add up comes first
    warning_html = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in warnings)
    devices = rollup.devices
    device_rows = [[r.device, r.area, r.kind, r.energy_kwh, r.kwh_peak + r.kwh_sharp, r.cost_cny,
                    r.cost_peak_cny + r.cost_sharp_cny, f"{r.coverage:.1%}"] for r in devices.itertuples()]
    allocation = [[name, line.kwh, line.kg[Method.LOCATION] / 1000, line.kg[Method.MARKET] / 1000]
                  for name, line in rollup.scope2.allocation.items()]
    provenance = rollup.provenance.to_json()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>plantems {rollup.site} {rollup.month}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
.warn{{background:#fee;border-left:4px solid #d73027;padding:6px}}figure{{margin:1em 0}}</style></head><body>
<h1>Energy and Scope 2 report: {html.escape(rollup.site)}, {rollup.month}</h1>
<p>Computed {rollup.as_of.isoformat()} by plantems; configuration sha256 {rollup.provenance.config_sha256[:12]}.</p>
{warning_html}
<h2>Summary</h2>{_table(_summary_rows(rollup), ["", "value", "completeness of its data"])}
<h2>Charts</h2>
<figure id="chart-daily">{_daily_chart(rollup)}</figure>
<figure id="chart-areas">{_area_chart(rollup)}</figure>
<figure id="chart-emissions">{_emissions_chart(rollup)}</figure>
<figure id="chart-intensity">{_intensity_chart(rollup)}</figure>
<figure id="chart-share">{_share_chart(rollup)}</figure>
<figure id="chart-coverage">{_coverage_chart(rollup)}</figure>
<h2>Meters</h2>{_table(device_rows, ["device", "area", "kind", "kWh", "of which peak+sharp", "cost (CNY)",
                                     "peak+sharp cost", "coverage"])}
<h2>Process lines (Scope 1+2 of the meters in their areas)</h2>
<p>Each line's intensity uses its own output. The site's intensity uses the output of
{html.escape(", ".join(rollup.intensity.output_lines) or "no line (none configured)")} only
(<code>site.output_lines</code>): metal that passes several lines is counted once.</p>
{_table([[name, line.production_t or "none", (line.scope1_kgco2e + line.scope2_location_kgco2e) / 1000,
          (line.scope1_kgco2e + line.scope2_market_kgco2e) / 1000,
          line.intensity_location_t_per_t or "n/a", line.intensity_market_t_per_t or "n/a"]
         for name, line in rollup.lines.items()],
        ["line", "output t", "location t CO2e", "market t CO2e", "location t/t", "market t/t"])}
<h2>Opportunities: load shifting, maximum demand, reactive power</h2>
{_opportunities_html(rollup)}
<h2>Allocation of site emissions (by sub-metered energy)</h2>
{_table(allocation, ["meter", "kWh", "location t CO2e", "market t CO2e"])}
<h2>Green-power ledger</h2>
<p>Used: {html.escape(", ".join(rollup.scope2.entries_used) or "none")}.</p>
{_table([[e.entry_id, e.line, e.reason] for e in rollup.provenance.ledger_entries_excluded],
        ["excluded row", "line", "why"])}
{reconciliation_html(rollup.reconciliation)}
<h2>Provenance</h2><pre>{html.escape(json.dumps(provenance, indent=2, ensure_ascii=False))}</pre>
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


def write_report(rollup: Rollup, folder: Path) -> list[Path]:
    """Write the four report files into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    header = ["scope", "name", "method", "kwh", "kgco2e", "factor_id"]
    csv_path = folder / "scope2.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(_lines(rollup))
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Scope 2"
    sheet.append(header)
    for row in _lines(rollup):
        sheet.append(row)
    meters = workbook.create_sheet("Meters")
    meters.append(list(rollup.devices.columns))
    for row in rollup.devices.itertuples(index=False):
        meters.append(list(row))
    provenance = workbook.create_sheet("Provenance")
    for key, value in rollup.provenance.to_json().items():
        provenance.append([key, json.dumps(value, ensure_ascii=False)])
    xlsx_path = folder / "scope2.xlsx"
    workbook.save(xlsx_path)
    json_path = folder / "rollup.json"
    json_path.write_text(json.dumps(rollup.to_json(), indent=2, ensure_ascii=False, default=str))
    html_path = folder / "report.html"
    html_path.write_text(_html(rollup), encoding="utf-8")
    return [html_path, csv_path, xlsx_path, json_path]
