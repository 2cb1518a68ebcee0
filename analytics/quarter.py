"""The quarterly report for the carbon committee (pure): EnPIs against baseline and target, each
measure's claimed against verified savings, pathway status and data completeness.

Modelling choices (README "Quarterly report"):
- every baseline is a daily OLS regression of the boundary's energy on the boundary's production
  tonnage and the predictors its version in force names (degree-days, product mix, shifts:
  ``BoundaryDay.conditions``; analytics/baseline.py), fitted over that version's period; days
  without energy data are left out, days without recorded output or a predictor's value too (a
  regression on a missing predictor would read it as zero), and counted;
- the boundary's tonnage: its lines' output (``boundary.lines``), else the lines whose areas hold its
  devices or areas, else the site's output;
- IPMVP option B reads the measure's own meters (``boundary.devices``); option C the load meters of
  its lines or areas;
- verified saving = baseline at the reporting day's conditions + static-factor adjustments -
  actual + non-routine adjustment (its monthly figure spread evenly over the month's days), from
  go-live to the quarter's end, summed per month and cumulatively; each static-factor change
  (kWh or m3 a day, or a percentage of the prediction, from its date) is logged with what it added;
  uncertainty: ASHRAE Guideline 14 FSU with the daily-model correction (analytics/savings.py) at
  68 % and 90 % confidence, a negative residual autocorrelation taken as 0;
- a baseline that fails its validity tests is flagged and its figure is shown as unverified, never
  counted in a verified total;
- a fuel switch counts the gas saved (Scope 1 removed) and the electricity added (Scope 2): the gas
  on its baseline; the electricity on its baseline too, or, when its own meter (option B) read under
  1 % of its new daily use over at least 10 baseline days (commissioning runs), as a metered new load
  (saving = that baseline mean - its use, no model uncertainty); its net t CO2e is what it changed;
- CNY: verified kWh at the boundary's reporting-period tariff mix (its cost at the tariff by
  time-of-use period over its kWh; the baseline period's mix if it used nothing), gas at the
  configured price; absent, never guessed, when a price is missing;
- EnPIs per site and line: the quarter's kWh/t, kgce/t and t CO2e/t (sums, then divided); the
  EnPI baseline is the same daily regression over the ``enpi_baseline`` period of measures.yaml
  (default: the year before the quarter), with its predictors and static-factor changes, giving
  the expected EnPI at the quarter's conditions, the improvement and a CUSUM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import accumulate
from typing import Any

from .baseline import BaselineModel
from .carrier import (
    OUTPUT,
    TONNAGE_ONLY,
    BaselineSpec,
    BoundaryDay,
    CarrierSavings,
    StaticChange,
    carrier_savings,
    days_in_month,
    usable_days,
)
from .enpi import CoalCoefficients
from .savings import fuel_switch_effect

__all__ = ["TONNAGE_ONLY", "BaselineSpec", "BoundaryDay", "CarrierSavings", "EnpiSummary", "MeasureResult",
           "QuarterFactors", "StaticChange", "baseline_spec", "enpi_summary", "quarter_bounds", "verify_measure"]


def quarter_bounds(quarter: str) -> tuple[date, date]:
    """First day and the day after the last of ``2026Q4``; ValueError names the rule."""
    year, sep, number = quarter.upper().partition("Q")
    if not (sep and year.isdigit() and len(year) == 4 and number in ("1", "2", "3", "4")):
        raise ValueError(f"quarter {quarter!r}: must be YYYYQn with n 1-4, e.g. 2026Q4")
    first = date(int(year), 3 * int(number) - 2, 1)
    after = date(int(year) + (number == "4"), 1 if number == "4" else 3 * int(number) + 1, 1)
    return first, after


@dataclass(frozen=True)
class QuarterFactors:
    location_kg_per_kwh: float
    gas_kg_per_m3: float
    coal: CoalCoefficients
    gas_cny_per_m3: float | None = None  # the gas price (measures.yaml ``prices``); None: gas not priced


@dataclass(frozen=True)
class MeasureResult:
    measure_id: str
    name: str
    name_zh: str
    type: str
    ipmvp_option: str
    go_live: date
    reporting: tuple[date, date]  # first and last day of the verified period (inclusive)
    carriers: tuple[CarrierSavings, ...]
    claimed: dict[str, float | None]  # for the reporting period, pro rata of the yearly claim
    claimed_source: str
    verified_t_co2e: float | None  # None unless every carrier is verified
    verified_t_co2e_uncertainty: float | None
    scope1_removed_t_co2e: float | None = None  # fuel switches
    scope2_added_t_co2e: float | None = None
    verified_cny: float | None = None  # None unless every carrier is verified and priced
    verified_cny_uncertainty: float | None = None  # 68 %
    days: int = 0  # reporting days verified (the claimed figures are pro rata of the yearly claim over them)

    def carrier(self, name: str) -> CarrierSavings | None:
        return next((c for c in self.carriers if c.carrier == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.measure_id, "name": self.name, "name_zh": self.name_zh, "type": self.type,
                "ipmvp_option": self.ipmvp_option, "go_live": self.go_live.isoformat(),
                "reporting": [d.isoformat() for d in self.reporting], "claimed": self.claimed,
                "claimed_source": self.claimed_source, "carriers": [c.to_json() for c in self.carriers],
                "verified_t_co2e": self.verified_t_co2e,
                "verified_t_co2e_uncertainty_68pct": self.verified_t_co2e_uncertainty,
                "scope1_removed_t_co2e": self.scope1_removed_t_co2e,
                "scope2_added_t_co2e": self.scope2_added_t_co2e,
                "verified_cny": self.verified_cny, "verified_cny_uncertainty_68pct": self.verified_cny_uncertainty,
                "claimed_cny": self.claimed.get("cny"), "days": self.days,
                # like with like: the verified figures over a year at the reporting period's rate (a claim is yearly)
                "verified_annualised": None if not self.days else {
                    "t_co2e": None if self.verified_t_co2e is None else self.verified_t_co2e * 365 / self.days,
                    "cny": None if self.verified_cny is None else self.verified_cny * 365 / self.days,
                    **{c.carrier: None if not c.verified or c.saving is None else c.saving * 365 / self.days
                       for c in self.carriers}}}


def _non_routine(measure: Any, days: Sequence[BoundaryDay], key: str) -> dict[date, tuple[float, str]]:
    """Each reporting day's share of the month's non-routine adjustment (kWh or m3) and its notes."""
    out = {}
    for d in days:
        kwh, m3, notes = measure.non_routine_in_month(d.day.year, d.day.month)
        amount = kwh if key == "kwh" else m3
        if amount:
            out[d.day] = (amount / days_in_month(d.day), "; ".join(notes))
    return out


def baseline_spec(version: Any, history: Sequence[Any] = ()) -> BaselineSpec:
    """The analytics' view of a plantems.measures.BaselineVersion (and every version, for the log)."""
    changes = tuple(StaticChange(c.date, c.description, c.kwh_per_day, c.gas_m3_per_day, c.percent)
                    for c in version.static_factors)
    log = tuple({"version": v.version, "start": v.start.isoformat(), "end": v.end.isoformat(),
                 "reason": v.reason or None, "predictors": [OUTPUT, *v.predictors],
                 "static_factors": [{"date": c.date.isoformat(), "description": c.description,
                                     "kwh_per_day": c.kwh_per_day, "gas_m3_per_day": c.gas_m3_per_day,
                                     "percent": c.percent} for c in v.static_factors],
                 "in_force": v is version} for v in history)
    return BaselineSpec(version.version, version.reason, tuple(version.predictors), changes, log)


def _tariff_mix_price(days: Sequence[BoundaryDay]) -> tuple[float | None, str]:
    """The boundary's average price per kWh over ``days``: its cost at the tariff (by time-of-use period)
    over its energy, so a saving is priced at the mix of hours the boundary actually used."""
    priced = [d for d in days if d.kwh > 0]
    if not priced or any(d.cost_cny is None for d in priced):
        return None, "no tariff-priced energy in the boundary's reporting days"
    kwh = sum(d.kwh for d in priced)
    return sum(d.cost_cny or 0.0 for d in priced) / kwh, (
        f"the boundary's reporting-period tariff mix: {sum(d.cost_cny or 0.0 for d in priced):.2f} CNY / "
        f"{kwh:.1f} kWh over {len(priced)} day(s)")


def verify_measure(measure: Any, baseline_days: Sequence[BoundaryDay], reporting_days: Sequence[BoundaryDay],
                   factors: QuarterFactors) -> MeasureResult:
    """A measure's verified savings over ``reporting_days`` (go-live to the quarter's end) against its
    baseline in force over ``baseline_days``; ``measure`` is a plantems.measures.Measure."""
    spec = baseline_spec(measure.in_force, measure.versions)
    fuel_switch = measure.type == "fuel_switch"
    kwh_price, kwh_basis = _tariff_mix_price(reporting_days)
    if kwh_price is None:  # the new load's own hours are unknown before it ran: the baseline's mix, said so
        kwh_price, kwh_basis = _tariff_mix_price(baseline_days)
        kwh_basis = kwh_basis.replace("reporting-period", "baseline-period")
    # option B: the boundary's own meters, so electricity that was zero in the baseline is the new load's
    new_load = fuel_switch and measure.ipmvp_option == "B"
    carriers = [replace(carrier_savings(measure.id, "electricity_kwh", baseline_days, reporting_days, "kwh",
                                 _non_routine(measure, reporting_days, "kwh"), spec, new_load=new_load),
                        price_cny_per_unit=kwh_price, price_basis=kwh_basis)]
    if fuel_switch or any(d.gas_m3 > 0 for d in baseline_days):
        carriers.append(replace(carrier_savings(measure.id, "gas_m3", baseline_days, reporting_days, "gas_m3",
                                         _non_routine(measure, reporting_days, "m3"), spec),
                                price_cny_per_unit=factors.gas_cny_per_m3,
                                price_basis="measures.yaml prices.gas_cny_per_m3" if factors.gas_cny_per_m3 is not None
                                else "gas not priced: set prices.gas_cny_per_m3 in measures.yaml"))
    kg = {"electricity_kwh": factors.location_kg_per_kwh, "gas_m3": factors.gas_kg_per_m3}
    verified = all(c.verified for c in carriers)
    t_co2e = sum((c.saving or 0.0) * kg[c.carrier] / 1000 for c in carriers) if verified else None
    # uncertainties of independent baselines add in quadrature
    spread = math.sqrt(sum(((c.uncertainty or 0.0) * kg[c.carrier] / 1000) ** 2 for c in carriers)) if verified \
        else None
    priced = verified and all(c.price_cny_per_unit is not None for c in carriers)
    cny = sum(c.saving_cny or 0.0 for c in carriers) if priced else None
    cny_spread = math.sqrt(sum(((c.uncertainty or 0.0) * (c.price_cny_per_unit or 0.0)) ** 2 for c in carriers)) \
        if priced else None
    scope1 = scope2 = None
    gas, power = (next((c for c in carriers if c.carrier == k), None) for k in ("gas_m3", "electricity_kwh"))
    if fuel_switch and verified and gas is not None and power is not None:
        effect = fuel_switch_effect(gas_saved_m3=gas.saving or 0.0, electricity_added_kwh=-(power.saving or 0.0),
                                    gas_kg_co2e_per_m3=factors.gas_kg_per_m3,
                                    grid_kg_co2e_per_kwh=factors.location_kg_per_kwh,
                                    gas_kgce_per_m3=factors.coal.gas_kgce_per_m3,
                                    electricity_kgce_per_kwh=factors.coal.electricity_kgce_per_kwh)
        scope1, scope2, t_co2e = effect.scope1_removed_t_co2e, effect.scope2_added_t_co2e, effect.net_t_co2e
    days = [d.day for d in reporting_days]
    span = (min(days), max(days)) if days else (measure.go_live, measure.go_live)
    share = len(days) / 365.0
    claimed = measure.claimed
    return MeasureResult(
        measure.id, measure.name, measure.name_zh, measure.type, measure.ipmvp_option, measure.go_live, span,
        tuple(carriers),
        {key: None if getattr(claimed, f"{key}_per_year") is None else getattr(claimed, f"{key}_per_year") * share
         for key in ("kwh", "gas_m3", "cny", "t_co2e")},
        claimed.source, t_co2e, spread, scope1, scope2, cny, cny_spread, len(days))


@dataclass(frozen=True)
class EnpiSummary:
    """An entity's quarter: actual ratios, the baseline's expected kWh/t, improvement and CUSUM."""

    entity: str  # a line id or "site"
    kwh: float
    gas_m3: float
    output_t: float
    kwh_per_t: float | None
    kgce_per_t: float | None
    t_co2e_per_t: float | None
    target_t_co2e_per_t: float | None  # the pathway's (site only)
    baseline: BaselineModel | None
    expected_kwh_per_t: float | None  # the baseline at the quarter's tonnage
    improvement_kwh: float | None  # expected - actual over the quarter
    normalised_kwh_per_t: float | None  # at the baseline's mean daily tonnage
    cusum_kwh: tuple[tuple[str, float], ...]
    days: int
    production_days: int
    problem: str = ""
    spec: BaselineSpec = TONNAGE_ONLY
    range_issues: list[dict[str, Any]] = field(default_factory=list)  # reporting predictors outside the baseline's
    adjustment_log: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        model = self.baseline
        return {"entity": self.entity, "electricity_kwh": self.kwh, "gas_m3": self.gas_m3, "output_t": self.output_t,
                "kwh_per_t": self.kwh_per_t, "kgce_per_t": self.kgce_per_t, "t_co2e_per_t": self.t_co2e_per_t,
                "target_t_co2e_per_t": self.target_t_co2e_per_t, "expected_kwh_per_t": self.expected_kwh_per_t,
                "improvement_kwh": self.improvement_kwh, "normalised_kwh_per_t": self.normalised_kwh_per_t,
                "cusum_kwh": [list(p) for p in self.cusum_kwh], "days": self.days,
                "production_days": self.production_days, "problem": self.problem or None,
                "range_issues": self.range_issues, "adjustment_log": list(self.adjustment_log),
                "baseline_version": self.spec.version, "baseline_reason": self.spec.reason or None,
                "baseline_versions": list(self.spec.history),
                "baseline": None if model is None else {
                    "period": list(model.period), "n_days": model.n, "r2": model.r2, "cv_rmse": model.cv_rmse,
                    "predictors": list(model.predictors),
                    "valid": model.validity.valid, "failures": list(model.validity.failures),
                    "intercept_kwh_per_day": model.coefficients[0].value}}


def _ratio(value: float, output_t: float) -> float | None:
    return value / output_t if output_t > 0 else None


def enpi_summary(entity: str, baseline_days: Sequence[BoundaryDay], quarter_days: Sequence[BoundaryDay], *,
                 factors: QuarterFactors, scope1_t: float, scope2_t: float,
                 target_t_co2e_per_t: float | None, spec: BaselineSpec = TONNAGE_ONLY) -> EnpiSummary:
    """The entity's quarter against its baseline (``scope1_t``, ``scope2_t``: its quarter's emissions);
    the expected energy includes the baseline's static-factor adjustments."""
    kwh = sum(d.kwh for d in quarter_days)
    gas = sum(d.gas_m3 for d in quarter_days)
    produced = [d for d in quarter_days if d.output_t is not None]
    output = sum(d.output_t or 0.0 for d in produced)
    kgce = kwh * factors.coal.electricity_kgce_per_kwh + gas * factors.coal.gas_kgce_per_m3
    common: dict[str, Any] = {
        "entity": entity, "kwh": kwh, "gas_m3": gas, "output_t": output, "kwh_per_t": _ratio(kwh, output),
        "kgce_per_t": _ratio(kgce, output), "t_co2e_per_t": _ratio(scope1_t + scope2_t, output),
        "target_t_co2e_per_t": target_t_co2e_per_t, "days": len(quarter_days), "production_days": len(produced),
        "spec": spec}
    carrier = carrier_savings(entity, "electricity_kwh", baseline_days, produced, "kwh", {}, spec)
    model = carrier.baseline
    if model is None or carrier.problem or carrier.savings is None:
        return EnpiSummary(**common, baseline=model, expected_kwh_per_t=None, improvement_kwh=None,
                           normalised_kwh_per_t=None, cusum_kwh=(), problem=carrier.problem)
    usable = usable_days(produced, spec.predictors)
    adjusted = [p.adjusted_baseline + p.non_routine for p in carrier.savings.periods]
    deviations = accumulate(d.kwh - e for d, e in zip(usable, adjusted, strict=True))
    expected = sum(adjusted)
    usable_kwh = sum(d.kwh for d in usable)
    reference = {r.name: [r.mean] for r in model.ranges}
    expected_ref = float(model.predict(reference)[0])
    mean_output = reference[OUTPUT][0]
    normalised = ((usable_kwh - expected) / len(usable) + expected_ref) / mean_output if usable else None
    usable_output = sum(d.output_t or 0.0 for d in usable)
    return EnpiSummary(**common, baseline=model, expected_kwh_per_t=_ratio(expected, usable_output),
                       improvement_kwh=expected - usable_kwh, normalised_kwh_per_t=normalised,
                       cusum_kwh=tuple((d.day.isoformat(), c) for d, c in zip(usable, deviations, strict=True)),
                       problem="", range_issues=carrier.to_json()["range_issues"],
                       adjustment_log=carrier.adjustment_log)
