"""The annual greenhouse-gas inventory of a site or the group (pure): ``plantems inventory --year Y``.

Input is the twelve monthly ``rollup.json`` documents of each site (the contract of analytics/rollup_results.py)
and the purchased-metal ledger; every annual figure is the sum of the monthly figures, never recomputed
from raw data. A month without its rollup is listed as missing (the inventory is then incomplete and says
so), never counted as zero.

- Scope 1 by source: each fuel meter's kg CO2e (site/meter), with its factor.
- Scope 2, location- and market-based (monthly matching), with the instruments used: the month's matched
  MWh split over the ledger rows it used by their MWh, by instrument type.
- Scope 3 category 1 from the metal ledger (analytics/metal.py), by delivery date in the year.
- Energy in tonnes of standard coal equivalent (GB/T 2589, analytics/enpi.py coefficients, 当量值):
  electricity consumed (grid import - export + on-site PV self-consumed) and natural gas.
- Renewable MWh by instrument type: bought instruments matched to grid import + on-site PV self-consumed.
- The base year (config/inventory_base.yaml) as first reported and as recalculated, with the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from plantems.analytics.enpi import CoalCoefficients
from plantems.analytics.metal import MetalSummary, summarise_metal
from plantems.inventory_base import BaseYear
from plantems.ledger import Instrument, LedgerEntry
from plantems.metal import MetalPurchase
from plantems.targets import Targets

__all__ = ["ONSITE_PV", "BaseComparison", "Inventory", "InventoryError", "MonthFigures", "compute_inventory",
           "month_figures", "months_of"]

ONSITE_PV = Instrument.ONSITE_PV.value  # renewable by instrument type: the metered self-consumption


class InventoryError(ValueError):
    """Monthly documents that cannot make an inventory (wrong site or year, a month twice, an untraceable claim)."""


def months_of(year: int) -> tuple[str, ...]:
    return tuple(f"{year:04d}-{m:02d}" for m in range(1, 13))


@dataclass(frozen=True)
class MonthFigures:
    """One site's month as the inventory counts it, with its provenance."""

    site: str
    month: str
    as_of: str
    config_sha256: str
    scope1_kgco2e: Mapping[str, float]  # per fuel meter
    scope1_factor: str | None  # the fuel factor id; None: no fuel meter delivered data
    gas_m3: float
    scope2_location_kgco2e: float
    scope2_market_kgco2e: float
    grid_import_kwh: float
    grid_export_kwh: float
    pv_self_kwh: float
    consumption_kwh: float
    green_monthly_kwh: float
    certificates_kwh: float
    entries_used: tuple[str, ...]
    location_factor: str
    location_kg_per_kwh: float
    residual_factor: str
    residual_kg_per_kwh: float
    factors_provisional: bool
    reconciled: bool | None  # None: the rollup carried no reconciliation
    poor_coverage: tuple[str, ...] = ()  # meters under 95 % coverage in the month

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["scope1_kgco2e"] = dict(self.scope1_kgco2e)
        out["entries_used"] = list(self.entries_used)
        out["poor_coverage"] = list(self.poor_coverage)
        return out


def month_figures(doc: Mapping[str, Any]) -> MonthFigures:
    """A month's figures from its rollup.json."""
    provenance = doc["provenance"]
    scope1 = provenance.get("scope1")
    fuel = scope1 if isinstance(scope1, Mapping) else None  # else the "not metered" sentence
    reconciliation = doc.get("reconciliation")
    location, residual = provenance["location_factor"], provenance["residual_factor"]
    return MonthFigures(
        site=doc["site"], month=doc["month"], as_of=doc["as_of"], config_sha256=provenance["config_sha256"],
        scope1_kgco2e={k: float(v) for k, v in doc["scope1_kgco2e"].items()},
        scope1_factor=fuel["factor"]["id"] if fuel else None,
        gas_m3=float(sum(fuel["gas_m3"].values())) if fuel else 0.0,
        scope2_location_kgco2e=float(doc["scope2_kgco2e"]["location"]),
        scope2_market_kgco2e=float(doc["scope2_kgco2e"]["market"]),
        grid_import_kwh=float(doc["grid_import_kwh"]), grid_export_kwh=float(doc["grid_export_kwh"]),
        pv_self_kwh=float(doc["pv_self_kwh"]), consumption_kwh=float(doc["consumption_kwh"]),
        green_monthly_kwh=float(doc["green_kwh"]["monthly"]), certificates_kwh=float(doc["certificates_kwh"]),
        entries_used=tuple(provenance["ledger_entries_used"]), location_factor=location["id"],
        location_kg_per_kwh=float(location["kg_per_unit"]), residual_factor=residual["id"],
        residual_kg_per_kwh=float(residual["kg_per_unit"]),
        factors_provisional=bool(location["provisional"] or residual["provisional"]),
        reconciled=None if reconciliation is None else bool(reconciliation["reconciled"]),
        poor_coverage=tuple(doc.get("poor_coverage", ())))


@dataclass(frozen=True)
class BaseComparison:
    """This year against the base year, as first reported and as recalculated (t CO2e)."""

    base_year: int
    source: str
    boundary: str
    scope2_method: str
    original: Mapping[str, float | None]  # scope1, scope2, scope3
    recalculated: Mapping[str, float | None]
    current: Mapping[str, float | None]  # scope2 in the base figure's method; scope3: category 1 only
    change: Mapping[str, float | None]  # current / recalculated - 1
    scope3_note: str
    log: tuple[Mapping[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {"base_year": self.base_year, "source": self.source, "boundary": self.boundary,
                "scope2_method": self.scope2_method, "original_t_co2e": dict(self.original),
                "recalculated_t_co2e": dict(self.recalculated), "current_t_co2e": dict(self.current),
                "change": dict(self.change), "scope3_note": self.scope3_note,
                "recalculation_log": [dict(e) for e in self.log]}


@dataclass(frozen=True)
class Inventory:
    boundary: str  # the site id or the group id
    name: str
    year: int
    sites: tuple[str, ...]
    as_of: date
    months: tuple[MonthFigures, ...]  # the months found, by site then month
    missing: tuple[tuple[str, str], ...]  # (site, month) without a rollup
    scope1_by_source_t: Mapping[str, float]  # "site/meter"
    scope1_factors: tuple[str, ...]
    scope2_location_t: float
    scope2_market_t: float
    instruments_used: Mapping[str, tuple[str, ...]]  # instrument type -> ledger entry ids
    renewable_mwh_by_type: Mapping[str, float]  # bought instruments matched + onsite_pv self-consumed
    scope3: MetalSummary | None  # None: no metal ledger given
    energy: Mapping[str, float]
    coefficients: CoalCoefficients
    base: BaseComparison | None
    base_missing_reason: str | None
    targets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # each target's value for the year

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def scope1_t(self) -> float:
        return sum(self.scope1_by_source_t.values())

    @property
    def data_quality(self) -> dict[str, list[str]]:
        """Months an auditor looks at first: each as "site YYYY-MM" (with the meters where it applies)."""
        fuel_sites = {m.site for m in self.months if m.scope1_factor is not None}
        return {
            "not_reconciled": [f"{m.site} {m.month}" for m in self.months if m.reconciled is False],
            "reconciliation_not_run": [f"{m.site} {m.month}" for m in self.months if m.reconciled is None],
            "provisional_factors": [f"{m.site} {m.month}" for m in self.months if m.factors_provisional],
            "poor_coverage": [f"{m.site} {m.month}: {', '.join(m.poor_coverage)}" for m in self.months
                              if m.poor_coverage],
            # a site whose fuel meters delivered data in other months: its Scope 1 is missing here, not zero
            "scope1_not_metered": [f"{m.site} {m.month}" for m in self.months
                                   if m.site in fuel_sites and m.scope1_factor is None],
        }

    def total(self, name: str) -> float:
        """Sum of a numeric MonthFigures field over every month found."""
        return sum(float(getattr(m, name)) for m in self.months)

    @property
    def renewable_mwh(self) -> float:
        return sum(self.renewable_mwh_by_type.values())

    @property
    def scope3_cat1_t(self) -> float | None:
        return self.scope3.scope3_cat1_t_co2e if self.scope3 is not None else None

    def to_json(self) -> dict[str, Any]:
        consumption = self.total("consumption_kwh")
        return {
            "boundary": self.boundary, "name": self.name, "year": self.year, "sites": list(self.sites),
            "as_of": self.as_of.isoformat(), "complete": self.complete,
            "completeness": {"months_expected": 12 * len(self.sites), "months_found": len(self.months),
                             "missing": [{"site": s, "month": m} for s, m in self.missing]},
            "data_quality": self.data_quality,
            "scope1_t_co2e": self.scope1_t, "scope1_by_source_t_co2e": dict(self.scope1_by_source_t),
            "scope1_factors": list(self.scope1_factors),
            "scope2_location_t_co2e": self.scope2_location_t, "scope2_market_t_co2e": self.scope2_market_t,
            "scope2_instruments_used": {k: list(v) for k, v in self.instruments_used.items()},
            "scope3_cat1_t_co2e": self.scope3_cat1_t,
            "scope3_cat1": self.scope3.to_json() if self.scope3 is not None else "not reported: no metal ledger",
            "energy": dict(self.energy),
            "coal_coefficients": asdict(self.coefficients),
            "renewable_mwh": self.renewable_mwh, "renewable_mwh_by_type": dict(self.renewable_mwh_by_type),
            "renewable_share": self.renewable_mwh * 1000 / consumption if consumption > 0 else None,
            "base_year": self.base.to_json() if self.base is not None else self.base_missing_reason,
            "targets": {k: dict(v) for k, v in self.targets.items()},
            "provenance": [m.to_json() for m in self.months],
        }


def _renewable(months: Sequence[MonthFigures], ledger: Mapping[tuple[str, str], LedgerEntry]
               ) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
    """Each month's matched MWh split over the bought rows it used, by their MWh; plus on-site PV consumed.
    ``ledger``: by (site, entry id), as each site's rollup matched its own rows."""
    mwh: dict[str, float] = {}
    used: dict[str, list[str]] = {}
    for m in months:
        found = {e: ledger[(m.site, e)] for e in m.entries_used if (m.site, e) in ledger}
        rows = [row for row in found.values() if row.instrument.has_certificates]
        unknown = [e for e in m.entries_used if e not in found]
        if unknown or (m.green_monthly_kwh > 0 and not rows):
            raise InventoryError(f"site {m.site} {m.month}: matched {m.green_monthly_kwh:g} kWh of instruments "
                                 f"but ledger entries {unknown or list(m.entries_used)} are not bought instruments "
                                 "in the green-power ledger given: the claim cannot be traced")
        held = sum(r.mwh for r in rows)
        for row in rows:
            kind = row.instrument.value
            mwh[kind] = mwh.get(kind, 0.0) + m.green_monthly_kwh / 1000 * row.mwh / held
            used.setdefault(kind, []).append(row.entry_id)
        mwh[ONSITE_PV] = mwh.get(ONSITE_PV, 0.0) + m.pv_self_kwh / 1000
    return mwh, {k: tuple(dict.fromkeys(v)) for k, v in sorted(used.items())}


def _change(now: float | None, base: float | None) -> float | None:
    return now / base - 1 if now is not None and base else None


def _base(base: BaseYear, boundary: str, current: Mapping[str, float | None], *, complete: bool
          ) -> BaseComparison | None:
    figures = base.figures(boundary)
    if figures is None:
        return None
    log = base.log(boundary)
    original = {"scope1": figures.scope1_t_co2e, "scope2": figures.scope2_t_co2e, "scope3": figures.scope3_t_co2e}
    deltas = {"scope1": sum(r.scope1_delta_t_co2e for r in log), "scope2": sum(r.scope2_delta_t_co2e for r in log),
              "scope3": sum(r.scope3_delta_t_co2e for r in log)}
    recalculated = {k: None if v is None else v + deltas[k] for k, v in original.items()}
    # Scope 3: the base covers every category, the inventory category 1 only; a year with missing months
    # would show a fall that did not happen: no change ratio for either
    change = {k: _change(current.get(k), b) if k != "scope3" and complete else None for k, b in recalculated.items()}
    return BaseComparison(
        base_year=base.year, source=base.source, boundary=boundary, scope2_method=figures.scope2_method,
        original=original, recalculated=recalculated, current=dict(current), change=change,
        scope3_note=(f"base year: {figures.scope3_categories or 'categories not stated'}; this inventory: category 1 "
                     "(purchased metal) only: not comparable"),
        log=tuple(r.model_dump(mode="json") for r in log))


def _targets(targets: Targets | None, year: int, actual: Mapping[str, float | None]) -> dict[str, dict[str, Any]]:
    """Every target's value for ``year`` beside this year's figure where the inventory has it."""
    if targets is None:
        return {}
    return {key: {"name": t.name, "unit": t.unit, "base_year": t.base_year, "target": t.for_year(year),
                  "final_year": t.final_year, "final_target": t.by_year[t.final_year], "source": t.source,
                  "actual": actual.get(key)} for key, t in targets.every().items()}


def _checked(docs: Sequence[Mapping[str, Any]], boundary: str, year: int, sites: Sequence[str]
             ) -> tuple[MonthFigures, ...]:
    """The documents' months ordered by site then month; InventoryError for a stranger or a month twice."""
    months = [month_figures(d) for d in docs]
    problems = [f"site {m.site} {m.month}: not a site of {boundary}" for m in months if m.site not in sites]
    problems += [f"site {m.site} {m.month}: not a month of {year}" for m in months if m.month not in months_of(year)]
    seen = [(m.site, m.month) for m in months]
    problems += [f"site {s} {mo}: given twice" for s, mo in sorted(set(seen)) if seen.count((s, mo)) > 1]
    if problems:
        raise InventoryError("; ".join(problems))
    return tuple(sorted(months, key=lambda m: (sites.index(m.site), m.month)))


def _scope1_by_source(months: Sequence[MonthFigures]) -> dict[str, float]:
    by_source: dict[str, float] = {}
    for m in months:
        for meter, kg in m.scope1_kgco2e.items():
            key = f"{m.site}/{meter}"
            by_source[key] = by_source.get(key, 0.0) + kg / 1000
    return dict(sorted(by_source.items()))


def _energy(months: Sequence[MonthFigures], coefficients: CoalCoefficients) -> dict[str, float]:
    electricity_kwh = sum(m.consumption_kwh for m in months)
    gas_m3 = sum(m.gas_m3 for m in months)
    energy = {"electricity_kwh": electricity_kwh, "grid_import_kwh": sum(m.grid_import_kwh for m in months),
              "grid_export_kwh": sum(m.grid_export_kwh for m in months),
              "pv_self_kwh": sum(m.pv_self_kwh for m in months), "natural_gas_m3": gas_m3,
              "electricity_tce": electricity_kwh * coefficients.electricity_kgce_per_kwh / 1000,
              "natural_gas_tce": gas_m3 * coefficients.gas_kgce_per_m3 / 1000}
    energy["total_tce"] = energy["electricity_tce"] + energy["natural_gas_tce"]
    return energy


def _actual_shares(months: Sequence[MonthFigures], renewable_mwh: float, scope3: MetalSummary | None
                   ) -> dict[str, float | None]:
    """This year's figures for the targets that the inventory can state."""
    consumption = sum(m.consumption_kwh for m in months)
    # certificates count at most up to each month's consumption, as the group's certificate share does
    certificates = sum(min(m.certificates_kwh, max(m.consumption_kwh, 0.0)) for m in months)
    return {"renewable_share": _share(renewable_mwh * 1000, consumption),
            "certificate_share": _share(certificates, consumption),
            "recycled_share": scope3.recycled_share if scope3 is not None else None,
            "raw_material": scope3.intensity_t_co2e_per_t if scope3 is not None else None}


def compute_inventory(*, boundary: str, name: str, year: int, sites: Sequence[str], as_of: date,
                      docs: Sequence[Mapping[str, Any]], green_ledger: Sequence[LedgerEntry],
                      metal: Sequence[MetalPurchase] | None, coefficients: CoalCoefficients,
                      base: BaseYear, targets: Targets | None = None) -> Inventory:
    """The year's inventory of ``sites`` from their monthly rollup.json documents (pure).

    Raises InventoryError for a document of another site or year, a month given twice, or a matched
    instrument the green-power ledger does not hold.
    """
    months = _checked(docs, boundary, year, sites)
    found = {(m.site, m.month) for m in months}
    missing = tuple((s, mo) for s in sites for mo in months_of(year) if (s, mo) not in found)
    by_source = _scope1_by_source(months)
    renewable, used = _renewable(months, {(e.site, e.entry_id): e for e in green_ledger})
    scope3 = None
    if metal is not None:
        pathway = targets.raw_material.for_year(year) if targets is not None and targets.raw_material else None
        scope3 = summarise_metal([p for p in metal if p.site in sites], period=f"{year:04d}",
                                 pathway_t_co2e_per_t=pathway)
    location_t = sum(m.scope2_location_kgco2e for m in months) / 1000
    market_t = sum(m.scope2_market_kgco2e for m in months) / 1000
    figures = base.figures(boundary)
    scope2_current = market_t if figures is not None and figures.scope2_method == "market" else location_t
    comparison = _base(base, boundary, {"scope1": sum(by_source.values()), "scope2": scope2_current,
                                        "scope3": scope3.scope3_cat1_t_co2e if scope3 is not None else None},
                       complete=not missing)
    return Inventory(
        boundary=boundary, name=name, year=year, sites=tuple(sites), as_of=as_of, months=months,
        missing=missing, scope1_by_source_t=by_source,
        scope1_factors=tuple(sorted({m.scope1_factor for m in months if m.scope1_factor})),
        scope2_location_t=location_t, scope2_market_t=market_t, instruments_used=used,
        renewable_mwh_by_type=dict(sorted(renewable.items())), scope3=scope3, energy=_energy(months, coefficients),
        coefficients=coefficients, base=comparison,
        base_missing_reason=None if comparison is not None else
        f"no base-year figures for {boundary!r} in the base-year file (boundaries: {sorted(base.boundaries)})",
        targets=_targets(targets, year, _actual_shares(months, sum(renewable.values()), scope3)))


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None
