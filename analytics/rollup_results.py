"""The monthly rollup's results: frozen, each with ``to_json()`` (its part of rollup.json); the Rollup
also gives its `scope2` points (``to_points()``). rollup.json is one document from ``Rollup.to_json()``:
its keys and values are a contract (the report, site consolidation and the restatement read it back)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import pandas as pd

from plantems.analytics.opportunity_results import Opportunities
from plantems.analytics.plan import PlanPage
from plantems.analytics.reconcile import Reconciliation
from plantems.analytics.scope2 import SOLAR_PROFILE, ExcludedEntry, Scope2Result
from plantems.analytics.sections import ReportSections
from plantems.factors import FactorChoice
from plantems.lineproto import Point
from plantems.schema import SITE_AREA, Field, Method, Tag
from plantems.targets import IntensityPathway
from plantems.tariffs import Tariff

__all__ = ["POOR_COVERAGE", "Intensity", "ProcessLine", "Provenance", "Rollup", "Scope1Provenance"]

POOR_COVERAGE = 0.95  # below this a meter's month is flagged on the report's first page
NOT_METERED = "not metered: no fuel meter delivered data this month"


def _factor_json(choice: FactorChoice) -> dict[str, Any]:
    return {**choice.factor.model_dump(mode="json"), "provisional": choice.provisional}


def _tariff_json(tariff: Tariff) -> dict[str, Any]:
    return {"id": tariff.id, "status": tariff.status, "valid_from": tariff.valid_from.isoformat(),
            "currency": tariff.currency,
            "prices_per_kwh": {p.value: price for p, price in tariff.prices_per_kwh.items()},
            "demand_charge_per_kw_month": tariff.demand_charge_per_kw_month}


@dataclass(frozen=True, kw_only=True)
class Intensity:
    """Scope 1+2 per tonne of the site's output (its output lines), against the pathway's value."""

    location_t_per_t: float | None  # None: no output recorded
    market_t_per_t: float | None
    target_t_per_t: float | None  # None: the pathway has no value for the year
    output_lines: tuple[str, ...]

    def of(self, method: Method) -> float | None:
        """Per method of the `scope2` points (hourly matching has no intensity of its own)."""
        return {Method.LOCATION: self.location_t_per_t, Method.MARKET: self.market_t_per_t}.get(method)

    def to_json(self) -> dict[str, Any]:
        return {"location_t_per_t": self.location_t_per_t, "market_t_per_t": self.market_t_per_t,
                "target_t_per_t": self.target_t_per_t, "output_lines": list(self.output_lines)}


@dataclass(frozen=True, kw_only=True)
class ProcessLine:
    """A rollup line: one process step's Scope 1+2 (the meters of its areas) and its intensity."""

    name: str
    areas: tuple[str, ...]
    production_t: float | None
    scope1_kgco2e: float
    scope2_location_kgco2e: float
    scope2_market_kgco2e: float

    @property
    def intensity_location_t_per_t(self) -> float | None:
        t = self.production_t
        return (self.scope1_kgco2e + self.scope2_location_kgco2e) / 1000 / t if t else None

    @property
    def intensity_market_t_per_t(self) -> float | None:
        t = self.production_t
        return (self.scope1_kgco2e + self.scope2_market_kgco2e) / 1000 / t if t else None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "areas": list(self.areas), "production_t": self.production_t,
                "scope1_kgco2e": self.scope1_kgco2e, "scope2_location_kgco2e": self.scope2_location_kgco2e,
                "scope2_market_kgco2e": self.scope2_market_kgco2e,
                "intensity_location_t_per_t": self.intensity_location_t_per_t,
                "intensity_market_t_per_t": self.intensity_market_t_per_t}


@dataclass(frozen=True, kw_only=True)
class Scope1Provenance:
    """The natural-gas factor and what the fuel meters delivered."""

    factor: FactorChoice
    gas_m3: Mapping[str, float]  # per fuel meter
    coverage: Mapping[str, float]  # per fuel meter, 0-1

    def to_json(self) -> dict[str, Any]:
        return {"factor": self.factor.factor.model_dump(mode="json"), "provisional": self.factor.provisional,
                "gas_m3": dict(self.gas_m3), "coverage": dict(self.coverage)}


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """What an auditor needs to trace the month's figures to their inputs."""

    config_sha256: str
    tariff: Tariff  # the version of the month's first day
    tariff_versions: tuple[Tariff, ...]  # every version that priced a day of the month
    location_factor: FactorChoice
    residual_factor: FactorChoice
    ledger_entries_used: tuple[str, ...]
    ledger_entries_excluded: tuple[ExcludedEntry, ...]
    certificates_beyond_import_kwh: float  # bought certificates for the month beyond its grid import
    pathway: IntensityPathway
    output_lines: tuple[str, ...]
    production_t_by_line: Mapping[str, float]
    coverage_per_meter: Mapping[str, float]
    expected_intervals: int
    completeness: Mapping[str, Mapping[str, Any]]  # per headline figure (analytics.rollup.completeness)
    scope1: Scope1Provenance | None  # None: no fuel meter delivered data
    as_of: date
    restates: Mapping[str, Any] | None = None  # what a restatement replaces: previous factors, totals, run date
    hourly_matching_profile: str = SOLAR_PROFILE

    def to_json(self) -> dict[str, Any]:
        t = self.tariff
        p = self.pathway
        out: dict[str, Any] = {
            "config_sha256": self.config_sha256,
            "tariff": {"id": t.id, "status": t.status, "valid_from": t.valid_from.isoformat(), "source": t.source,
                       "versions": [_tariff_json(v) for v in self.tariff_versions]},
            "location_factor": _factor_json(self.location_factor),
            "residual_factor": _factor_json(self.residual_factor),
            "ledger_entries_used": list(self.ledger_entries_used),
            "ledger_entries_excluded": [e.to_json() for e in self.ledger_entries_excluded],
            "certificates_beyond_import_kwh": self.certificates_beyond_import_kwh,
            "hourly_matching_profile": self.hourly_matching_profile,
            "pathway": {"name": p.name, "source": p.source, "unit": p.unit, "base_year": p.base_year},
            "site_output": {"output_lines": list(self.output_lines),
                            "production_t_by_line": dict(sorted(self.production_t_by_line.items()))},
            "coverage_per_meter": dict(self.coverage_per_meter),
            "expected_intervals": self.expected_intervals,
            "completeness": {k: dict(v) for k, v in self.completeness.items()},
            "scope1": self.scope1.to_json() if self.scope1 is not None else NOT_METERED,
            "as_of": self.as_of.isoformat(),
        }
        if self.restates is not None:
            out["restates"] = self.restates
        return out


@dataclass(frozen=True, kw_only=True)
class Rollup:
    month: str
    site: str
    as_of: date
    devices: pd.DataFrame  # device, area, kind, energy_kwh, energy_exp_kwh, cost_cny, coverage, kWh and cost per tou
    daily: pd.DataFrame  # date, area, tou, energy_kwh (sub-meters)
    scope2: Scope2Result
    scope1_kgco2e: Mapping[str, float]  # per fuel meter; empty when none is configured
    production_t: float | None
    intensity: Intensity
    renewable_share_target: float | None
    provenance: Provenance
    lines: Mapping[str, ProcessLine] = field(default_factory=dict)  # per production line (process step)
    opportunities: Opportunities | None = None  # load shifting, maximum demand, reactive power, compressed air
    reconciliation: Reconciliation | None = None  # interval sums vs counter differences
    sections: ReportSections | None = None  # EnPIs, metering coverage, purchased metal (analytics/sections.py)
    plan: PlanPage | None = None  # every target of targets.yaml, year to date (analytics/plan.py)

    @property
    def poor_coverage(self) -> list[str]:
        """Electricity and gas meters under 95 % coverage (flagged on the report's first page)."""
        scope1 = self.provenance.scope1
        fuel = scope1.coverage if scope1 is not None else {}
        table = self.devices
        meters = zip(table["device"].astype(str), table["coverage"].astype(float), strict=True) if len(table) else ()
        return [f"{device} ({c:.1%})" for device, c in (*meters, *fuel.items()) if c < POOR_COVERAGE]

    def to_json(self) -> dict[str, Any]:
        """rollup.json: every figure of the month, its opportunities, provenance and reconciliation."""
        s2 = self.scope2.to_json()
        return {
            "site": self.site, "month": self.month, "as_of": self.as_of.isoformat(),
            **{k: s2[k] for k in ("grid_import_kwh", "grid_export_kwh", "pv_generation_kwh", "pv_self_kwh",
                                  "consumption_kwh", "unmetered_kwh", "balance", "scope2_kgco2e")},
            "scope1_kgco2e": dict(self.scope1_kgco2e),
            **{k: s2[k] for k in ("green_kwh", "renewable_share", "certificate_share", "certificates_kwh")},
            "production_t": self.production_t, "intensity": self.intensity.to_json(),
            "lines": {name: line.to_json() for name, line in self.lines.items()},
            "meters": self.devices.to_dict(orient="records"), "allocation": s2["allocation"],
            "poor_coverage": self.poor_coverage,
            "opportunities": self.opportunities.to_json() if self.opportunities is not None else {},
            "provenance": self.provenance.to_json(),
            "reconciliation": self.reconciliation.to_json() if self.reconciliation is not None else None,
            **({"sections": self.sections.to_json()} if self.sections is not None else {}),
            # the plan page (every target, year to date) when the rollup computed one
            **({"plan": self.plan.to_json()} if self.plan is not None else {}),
        }

    def to_points(self, *, area_of: Mapping[str, str], time_ns: int) -> list[Point]:
        """The month's `scope2` points (site and per area, each method) at ``time_ns`` (the month's start)."""
        intensity = {m: self.intensity.of(m) for m in Method}
        points: list[Point] = self.scope2.to_points(site=self.site, area_of=area_of, time_ns=time_ns,
                                                    intensity_t_per_t=intensity,
                                                    target_t_per_t=self.intensity.target_t_per_t)
        # the site rows also carry Scope 1, so a dashboard can show Scope 1+2 from one point
        scope1 = {Field.SCOPE1_KGCO2E.value: float(sum(self.scope1_kgco2e.values()))}
        return [replace(p, fields={**p.fields, **scope1}) if p.tags.get(Tag.AREA.value) == SITE_AREA else p
                for p in points]
