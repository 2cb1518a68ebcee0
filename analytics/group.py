"""Group rollup: the sites' monthly rollups consolidated into the group's figures (pure).

Input is each site's ``rollup.json`` document (analytics/report.py writes it; it is the stable
contract between the site rollup and this one). Every group figure is a sum of site figures, each
site computed with its own tariff, factor regions and ledger rows; shares and intensities are
recomputed from the summed numerators and denominators, never averaged. An instrument (ledger
entry) counted by two sites refuses the month. Each site row keeps its provenance: config hash,
factors, coverage, reconciliation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from plantems.analytics.plan import PlanPage
from plantems.targets import Targets

__all__ = ["GroupError", "GroupRollup", "SiteFigures", "consolidate", "site_figures"]


class GroupError(ValueError):
    """Site rollups that cannot be consolidated (an instrument counted twice, a month mismatch)."""


@dataclass(frozen=True)
class SiteFigures:
    """One site's month as the group counts it, with the provenance an auditor traces it by."""

    site: str
    month: str
    as_of: str
    config_sha256: str
    scope1_kgco2e: float
    scope2_location_kgco2e: float
    scope2_market_kgco2e: float
    scope2_market_hourly_kgco2e: float
    grid_import_kwh: float
    grid_export_kwh: float
    pv_generation_kwh: float
    pv_self_kwh: float
    consumption_kwh: float
    green_monthly_kwh: float  # instruments matched to grid import, monthly (market-based)
    green_hourly_kwh: float
    certificates_kwh: float  # GECs held for the month, at most the site's consumption
    production_t: float | None  # output of the site's group output lines
    output_lines: tuple[str, ...]
    location_factor: str
    residual_factor: str
    factors_provisional: bool
    tariff: str
    ledger_entries: tuple[str, ...]  # used and held (certificate share): each counted by this site only
    coverage_min: float | None
    poor_coverage: tuple[str, ...]
    reconciled: bool | None  # None: the site rollup carried no reconciliation
    differing_meters: tuple[str, ...]

    @property
    def scope12_location_t(self) -> float:
        return (self.scope1_kgco2e + self.scope2_location_kgco2e) / 1000

    @property
    def scope12_market_t(self) -> float:
        return (self.scope1_kgco2e + self.scope2_market_kgco2e) / 1000

    @property
    def renewable_kwh(self) -> float:
        """Renewable electricity the site used: instruments matched monthly + its own PV consumed."""
        return self.green_monthly_kwh + self.pv_self_kwh

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update({"scope12_location_t": self.scope12_location_t, "scope12_market_t": self.scope12_market_t,
                    "renewable_kwh": self.renewable_kwh,
                    "intensity_location_t_per_t": _per_t(self.scope12_location_t, self.production_t),
                    "intensity_market_t_per_t": _per_t(self.scope12_market_t, self.production_t)})
        return out


@dataclass(frozen=True)
class GroupRollup:
    group: str
    name: str
    name_zh: str
    month: str
    as_of: date
    sites: tuple[SiteFigures, ...]
    target_t_per_t: float | None  # the group's pathway for the month's year
    pathway: Mapping[str, Any]
    renewable_share_target: Mapping[str, Any]
    plan: PlanPage | None = None  # every target, year to date, both parks consolidated (analytics/plan.py)

    def total(self, name: str) -> float:
        """Sum of a numeric SiteFigures field over the sites."""
        return sum(float(getattr(s, name)) for s in self.sites)

    @property
    def production_t(self) -> float | None:
        """Group output: the sites' output lines; None if no site recorded output (intensity unknown)."""
        recorded = [s.production_t for s in self.sites if s.production_t is not None]
        return sum(recorded) if recorded else None

    @property
    def missing_output(self) -> tuple[str, ...]:
        return tuple(s.site for s in self.sites if s.production_t is None)

    @property
    def renewable_share(self) -> float:
        consumption = self.total("consumption_kwh")
        return self.total("renewable_kwh") / consumption if consumption else 0.0

    @property
    def certificate_share(self) -> float:
        consumption = self.total("consumption_kwh")
        return self.total("certificates_kwh") / consumption if consumption else 0.0

    def intensity(self, method: str) -> float | None:
        """Scope 1+2 t per t of group output (``location`` or ``market``); None when a site's output is
        missing: its emissions over the others' output would understate the group."""
        if self.missing_output:
            return None
        return _per_t(self.total(f"scope12_{method}_t"), self.production_t)

    def to_json(self) -> dict[str, Any]:
        totals = {name: self.total(name) for name in _TOTALS}
        return {
            "group": self.group, "name": self.name, "name_zh": self.name_zh, "month": self.month,
            "as_of": self.as_of.isoformat(), **totals,
            "scope12_location_t": self.total("scope12_location_t"), "scope12_market_t": self.total("scope12_market_t"),
            "renewable_kwh": self.total("renewable_kwh"), "renewable_share": self.renewable_share,
            "certificate_share": self.certificate_share, "production_t": self.production_t,
            "sites_without_output": list(self.missing_output),
            "intensity": {"location_t_per_t": self.intensity("location"), "market_t_per_t": self.intensity("market"),
                          "target_t_per_t": self.target_t_per_t, "pathway": dict(self.pathway)},
            "renewable_share_target": dict(self.renewable_share_target),
            "ledger_entries": {s.site: list(s.ledger_entries) for s in self.sites},
            "sites": [s.to_json() for s in self.sites],
            **({"plan": self.plan.to_json()} if self.plan is not None else {}),
        }


_TOTALS = ("scope1_kgco2e", "scope2_location_kgco2e", "scope2_market_kgco2e", "scope2_market_hourly_kgco2e",
           "grid_import_kwh", "grid_export_kwh", "pv_generation_kwh", "pv_self_kwh", "consumption_kwh",
           "green_monthly_kwh", "green_hourly_kwh", "certificates_kwh")


def _per_t(tonnes: float, output_t: float | None) -> float | None:
    return tonnes / output_t if output_t else None


def site_figures(doc: Mapping[str, Any], output_lines: Sequence[str] | None = None) -> SiteFigures:
    """A site's figures from its rollup.json; ``output_lines`` (the group's choice) default to the site's."""
    provenance = doc["provenance"]
    site_output = provenance["site_output"]
    lines = tuple(output_lines if output_lines is not None else site_output["output_lines"])
    by_line = site_output["production_t_by_line"]
    recorded = [float(by_line[line]) for line in lines if line in by_line]
    coverage = provenance["coverage_per_meter"]
    reconciliation = doc.get("reconciliation")
    consumption = float(doc["consumption_kwh"])
    return SiteFigures(
        site=doc["site"], month=doc["month"], as_of=doc["as_of"], config_sha256=provenance["config_sha256"],
        scope1_kgco2e=float(sum(doc["scope1_kgco2e"].values())),
        scope2_location_kgco2e=float(doc["scope2_kgco2e"]["location"]),
        scope2_market_kgco2e=float(doc["scope2_kgco2e"]["market"]),
        scope2_market_hourly_kgco2e=float(doc["scope2_kgco2e"]["market_hourly"]),
        grid_import_kwh=float(doc["grid_import_kwh"]), grid_export_kwh=float(doc["grid_export_kwh"]),
        pv_generation_kwh=float(doc["pv_generation_kwh"]), pv_self_kwh=float(doc["pv_self_kwh"]),
        consumption_kwh=consumption, green_monthly_kwh=float(doc["green_kwh"]["monthly"]),
        green_hourly_kwh=float(doc["green_kwh"]["hourly"]),
        certificates_kwh=min(float(doc["certificates_kwh"]), max(consumption, 0.0)),  # as the site's share caps it
        production_t=sum(recorded) if recorded else None, output_lines=lines,
        location_factor=provenance["location_factor"]["id"], residual_factor=provenance["residual_factor"]["id"],
        factors_provisional=bool(provenance["location_factor"]["provisional"]
                                 or provenance["residual_factor"]["provisional"]),
        tariff=provenance["tariff"]["id"],
        ledger_entries=tuple(provenance["ledger_entries_used"])
        + tuple(e["entry_id"] for e in provenance["ledger_entries_excluded"]),
        coverage_min=min(coverage.values()) if coverage else None, poor_coverage=tuple(doc["poor_coverage"]),
        reconciled=None if reconciliation is None else bool(reconciliation["reconciled"]),
        differing_meters=tuple(reconciliation["differing"]) if reconciliation else ())


def consolidate(*, group: str, name: str, name_zh: str, month: str, as_of: date,
                docs: Sequence[Mapping[str, Any]], output_lines: Mapping[str, Sequence[str]],
                targets: Targets) -> GroupRollup:
    """The group's month from its sites' rollup.json documents (pure).

    Raises GroupError when a document is for another month, a site appears twice, or one ledger
    entry is counted by two sites (its certificates would count twice in the group).
    """
    sites = tuple(site_figures(doc, output_lines.get(doc["site"])) for doc in docs)
    problems = [f"site {s.site}: rollup is for {s.month}, not {month}" for s in sites if s.month != month]
    seen: dict[str, str] = {}
    names: set[str] = set()
    for s in sites:
        if s.site in names:
            problems.append(f"site {s.site}: given twice")
        names.add(s.site)
        for entry in s.ledger_entries:
            if entry in seen and seen[entry] != s.site:
                problems.append(f"ledger entry {entry!r} is counted by site {seen[entry]} and site {s.site}: "
                                "an instrument counts for one site only")
            seen.setdefault(entry, s.site)
    if problems:
        raise GroupError("; ".join(problems))
    year = int(month[:4])
    share = targets.renewable_share
    goal_year = max(share.by_year) if share.by_year else None
    return GroupRollup(
        group=group, name=name, name_zh=name_zh, month=month, as_of=as_of, sites=sites,
        target_t_per_t=targets.intensity.for_year(year),
        pathway={"name": targets.intensity.name, "source": targets.intensity.source, "unit": targets.intensity.unit,
                 "base_year": targets.intensity.base_year, "by_year": dict(targets.intensity.by_year)},
        renewable_share_target={"name": share.name, "year": goal_year,
                                "share": share.by_year[goal_year] if goal_year is not None else None})
