"""The group report's plan sections: the sites' EnPIs and metering coverage summed from their rollup.json
``sections``, and the purchased metal of the group's sites from the ledger (pure).

- EnPIs: one row per site (its site entity) and the group's: the sites' energy, kgce, emissions, output and
  days with output summed, then divided (a ratio of sums, so a site weighs by its output);
- metering: objects needing a meter, metered, read by hand and collected summed per level (the rate is
  the sums' ratio, not an average of the sites' rates); overdue calibrations and missing meters named by site;
  the sub-metered share is summed kWh below the boundary / summed kWh at it;
- metal: ``summarise_metal`` over the group's sites' deliveries (site None): category 1 and the ASI
  intensity as mass-weighted sums, suppliers ranked over both parks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from plantems.analytics.metal import summarise_metal
from plantems.analytics.metering import Calibration, LevelCoverage, MachineProgress, MeteringReport, SubmeteredShare
from plantems.analytics.sections import SITE_ENTITY, EnpiFigures, ReportSections
from plantems.metal import MetalPurchase
from plantems.meterregister import MeteringLevel
from plantems.targets import Targets

__all__ = ["SiteName", "group_sections"]

_FIGURES = ("calendar_days", "electricity_kwh", "gas_m3", "kgce", "t_co2e", "output_t", "production_days")


@dataclass(frozen=True)
class SiteName:
    """A display name for the group row (i18n.Named)."""

    id: str
    name: str
    name_zh: str


def _enpi(docs: Sequence[Mapping[str, Any]], key: str, group: str) -> tuple[EnpiFigures, ...]:
    rows = []
    for doc in docs:
        site = next((e for e in doc["sections"]["enpi"][key] if e["entity"] == SITE_ENTITY), None)
        if site is not None:
            rows.append(EnpiFigures(entity=doc["site"], period=site["period"],
                                    **{k: site[k] for k in _FIGURES}))
    if not rows:
        return ()
    total = EnpiFigures(entity=group, period=rows[0].period, calendar_days=rows[0].calendar_days * len(rows),
                        **{k: sum(getattr(r, k) for r in rows) for k in _FIGURES if k != "calendar_days"})
    return (*rows, total)


def _metering(docs: Sequence[Mapping[str, Any]], on_date: date) -> tuple[MeteringReport, SubmeteredShare]:
    levels = []
    for level in MeteringLevel:
        mine = [(doc["site"], c) for doc in docs for c in doc["sections"]["metering"]["levels"]
                if c["level"] == level.value]
        levels.append(LevelCoverage(level=level, installed=sum(c["installed"] for _, c in mine),
                                    manual=sum(c["manual"] for _, c in mine),
                                    required=sum(c["required"] for _, c in mine),
                                    required_rate=mine[0][1]["required_rate"] if mine else 1.0,
                                    missing=tuple(f"{site}: {m}" for site, c in mine for m in c["missing"])))
    reports = [(doc["site"], doc["sections"]["metering"]) for doc in docs]
    progress = [m["progress"] for _, m in reports]
    target_year = progress[0]["target_year"] if progress else 2030
    report = MeteringReport(
        on_date=on_date, levels=tuple(levels), auto_collected=sum(m["auto_collected"] for _, m in reports),
        required_total=sum(m["required_total"] for _, m in reports),
        overdue=tuple(Calibration(device=f"{site}: {c['device']}", due=date.fromisoformat(c["due"]),
                                  days_overdue=c["days_overdue"]) for site, m in reports for c in m["overdue"]),
        no_due_date=tuple(f"{site}: {d}" for site, m in reports for d in m["no_due_date"]),
        registered=sum(m["registered"] for _, m in reports),
        accuracy_issues=tuple((f"{site}: {d}", c) for site, m in reports for d, c in m["accuracy_issues"]),
        unregistered=tuple(f"{site}: {d}" for site, m in reports for d in m["unregistered"]),
        below_threshold=tuple(f"{site}: {d}" for site, m in reports for d in m["below_threshold"]),
        progress=MachineProgress(in_system=sum(p["in_system"] for p in progress),
                                 total=sum(p["total"] for p in progress),
                                 remaining=tuple(f"{site}: {r}" for site, m in reports
                                                 for r in m["progress"]["remaining"]),
                                 target_year=target_year, years_left=max(target_year - on_date.year + 1, 0)))
    sub = [m["submetered"] for _, m in reports]
    share = SubmeteredShare(site_kwh=sum(s["site_kwh"] for s in sub), submetered_kwh=sum(s["submetered_kwh"]
                                                                                         for s in sub),
                            missing_kwh=tuple(f"{site}: {d}" for site, m in reports
                                              for d in m["submetered"]["missing_kwh"]))
    return report, share


def group_sections(docs: Sequence[Mapping[str, Any]], *, group: str, month: str, metal: Sequence[MetalPurchase] | None,
                   metal_ledger: str | None, targets: Targets) -> ReportSections | None:
    """The group's plan sections from its sites' rollup.json documents; None when no site has sections."""
    docs = [doc for doc in docs if doc.get("sections")]
    if not docs:
        return None
    on_date = date.fromisoformat(docs[0]["sections"]["metering"]["on_date"])
    metering, submetered = _metering(docs, on_date)
    metal_month = metal_ytd = None
    if metal is not None:
        sites = {doc["site"] for doc in docs}
        mine = [p for p in metal if p.site in sites]
        pathway = targets.raw_material.for_year(on_date.year) if targets.raw_material is not None else None
        metal_month = summarise_metal(mine, period=month, pathway_t_co2e_per_t=pathway)
        metal_ytd = summarise_metal([p for p in mine if p.delivered <= on_date], period=month[:4],
                                    pathway_t_co2e_per_t=pathway)
    return ReportSections(enpi_month=_enpi(docs, "month", group), enpi_ytd=_enpi(docs, "year_to_date", group),
                          enpi_basis=docs[0]["sections"]["enpi"]["basis"], metering=metering, submetered=submetered,
                          metal_month=metal_month, metal_ytd=metal_ytd, metal_ledger=metal_ledger)
