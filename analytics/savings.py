"""Energy performance against a baseline, verified savings and their uncertainty (pure).

- Performance (ISO 50006): per period the baseline's expected energy at actual conditions, the
  improvement (expected - actual, positive = better) and the CUSUM of (actual - expected): a falling
  CUSUM means savings (shared/domain.md 9.5). The normalised EnPI restates each period at the
  baseline's mean conditions: (actual - expected + expected at reference) / reference tonnes.
- Verified savings (IPMVP): adjusted baseline - reporting-period actual + non-routine adjustments,
  per month and cumulative. A non-routine adjustment is signed as it changes the baseline: +x when
  a static factor added load the baseline does not know of.
- Uncertainty: ASHRAE Guideline 14 fractional savings uncertainty,
  FSU = t * 1.26 * CV(RMSE) * sqrt((n / n') * (1 + 2 / n') / m) / F, n' = n (1 - rho) / (1 + rho),
  F = savings / adjusted baseline; so the absolute uncertainty is FSU * savings (defined when F = 0).
- A fuel switch counts Scope 1 removed and Scope 2 added: its net t CO2e is what it really changed.

Every function refuses a baseline that failed its validity tests unless ``accept_invalid`` is given,
and then the result says so (``baseline_valid``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
from scipy import stats

# relative: mypy --strict checks analytics/ as its own package (plantems.analytics is a package-dir mapping)
from .baseline import BaselineModel, RangeIssue, check_reporting_range

__all__ = [
    "FSU_FACTOR_MONTHLY",
    "FuelSwitchEffect",
    "PerformancePoint",
    "ReportingPeriod",
    "SavingsPeriod",
    "SavingsResult",
    "fsu_factor_daily",
    "fuel_switch_effect",
    "savings_uncertainty",
    "track_performance",
    "verified_savings",
]

# G14's empirical correction for monthly models (OpenEEmeter swaps in a polynomial for daily data)
FSU_FACTOR_MONTHLY = 1.26


def fsu_factor_daily(reporting_months: float) -> float:
    """The correction in place of 1.26 for daily models, by reporting months M (OpenEEmeter's polynomial)."""
    return -0.00024 * reporting_months ** 2 + 0.03535 * reporting_months + 1.00286


@dataclass(frozen=True)
class PerformancePoint:
    label: str
    actual: float
    expected: float  # baseline at actual conditions
    improvement: float  # expected - actual (energy-performance improvement; positive = saved)
    cusum: float  # running sum of actual - expected (falling = savings)
    enpi_normalised: float | None  # per tonne at the baseline's mean conditions; None without production


@dataclass(frozen=True)
class ReportingPeriod:
    """One reporting period (month): measured energy, its conditions, non-routine adjustments."""

    label: str
    actual: float
    conditions: Mapping[str, float]  # one value per baseline predictor
    non_routine: float = 0.0  # signed, as it changes the baseline (see module docstring)
    non_routine_note: str = ""


@dataclass(frozen=True)
class SavingsPeriod:
    label: str
    adjusted_baseline: float  # baseline model at this period's conditions
    actual: float
    non_routine: float
    saving: float  # adjusted_baseline - actual + non_routine
    cumulative_saving: float
    cumulative_baseline: float  # adjusted baseline incl. non-routine, summed
    cumulative_uncertainty: float  # absolute, at the confidence level (same unit as energy)
    fractional_uncertainty: float | None  # cumulative_uncertainty / cumulative_saving; None when no saving


@dataclass(frozen=True)
class SavingsResult:
    baseline: str
    baseline_valid: bool
    baseline_failures: tuple[str, ...]
    confidence: float
    periods: tuple[SavingsPeriod, ...]
    range_issues: tuple[RangeIssue, ...]  # reporting conditions outside the baseline's (the model extrapolates)

    @property
    def total_saving(self) -> float:
        return self.periods[-1].cumulative_saving if self.periods else 0.0

    @property
    def total_uncertainty(self) -> float:
        return self.periods[-1].cumulative_uncertainty if self.periods else 0.0

    @property
    def acceptable(self) -> bool:
        """G14's acceptance: uncertainty below 50 % of the reported savings (at 68 % confidence)."""
        fsu = self.periods[-1].fractional_uncertainty if self.periods else None
        return fsu is not None and self.total_saving > 0 and fsu < 0.5


def _usable(model: BaselineModel, accept_invalid: bool) -> None:
    if not accept_invalid:
        model.require_valid()


def track_performance(model: BaselineModel, *, labels: Sequence[str], actual: Sequence[float],
                      conditions: Mapping[str, Sequence[float]],
                      accept_invalid: bool = False) -> tuple[PerformancePoint, ...]:
    """Expected energy, improvement, CUSUM and normalised EnPI for each reporting period."""
    _usable(model, accept_invalid)
    if not len(labels) == len(actual):
        raise ValueError(f"{len(labels)} labels for {len(actual)} actual values")
    expected = model.predict(conditions)
    if expected.size != len(actual):
        raise ValueError(f"{expected.size} periods of conditions for {len(actual)} actual values")
    reference = {r.name: r.mean for r in model.ranges}
    expected_ref = float(model.predict({k: [v] for k, v in reference.items()})[0])
    output_ref = reference[model.production] if model.production else None
    deviations = [a - e for a, e in zip(actual, expected.tolist(), strict=True)]
    return tuple(
        PerformancePoint(label=label, actual=float(a), expected=float(e), improvement=float(e - a), cusum=cusum,
                         enpi_normalised=(a - e + expected_ref) / output_ref if output_ref else None)
        for label, a, e, cusum in zip(labels, actual, expected.tolist(), accumulate(deviations), strict=True))


def savings_uncertainty(*, cv_rmse: float, n: int, p: int, m: int, rho: float, adjusted_baseline: float,
                        confidence: float, factor: float = FSU_FACTOR_MONTHLY) -> float:
    """Absolute uncertainty of savings over ``m`` reporting points (G14): t·factor·CV·sqrt((n/n')(1+2/n')/m)·E_b.

    ``adjusted_baseline`` is the summed adjusted baseline energy E_b of the m points, so FSU = this / savings.
    """
    if m < 1:
        raise ValueError(f"m = {m} reporting points: need at least 1")
    if not -1 < rho < 1:
        raise ValueError(f"residual autocorrelation rho = {rho} must lie in (-1, 1)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence = {confidence} must lie in (0, 1), e.g. 0.68 or 0.90")
    n_eff = n * (1 - rho) / (1 + rho)
    t = float(stats.t.ppf(0.5 + confidence / 2, n - p))
    return t * factor * cv_rmse * math.sqrt((n / n_eff) * (1 + 2 / n_eff) / m) * adjusted_baseline


def verified_savings(model: BaselineModel, periods: Sequence[ReportingPeriod], *, confidence: float = 0.68,
                     factor: float = FSU_FACTOR_MONTHLY, accept_invalid: bool = False) -> SavingsResult:
    """Savings per period and cumulative, with the cumulative uncertainty after each period."""
    _usable(model, accept_invalid)
    conditions = {name: [period.conditions[name] for period in periods] for name in model.predictors
                  if all(name in period.conditions for period in periods)}
    missing = sorted(set(model.predictors) - set(conditions))
    if missing:
        raise ValueError(f"baseline {model.name!r}: a reporting period has no value for predictors {missing}")
    adjusted = model.predict(conditions) if periods else np.zeros(0)
    result: list[SavingsPeriod] = []
    total_saving = total_baseline = 0.0
    for index, (period, base) in enumerate(zip(periods, adjusted.tolist(), strict=True)):
        saving = base - period.actual + period.non_routine
        total_saving += saving
        total_baseline += base + period.non_routine
        uncertainty = savings_uncertainty(cv_rmse=model.cv_rmse, n=model.n, p=model.p, m=index + 1,
                                          rho=model.residual_autocorr, adjusted_baseline=total_baseline,
                                          confidence=confidence, factor=factor)
        result.append(SavingsPeriod(
            label=period.label, adjusted_baseline=float(base), actual=period.actual, non_routine=period.non_routine,
            saving=float(saving), cumulative_saving=total_saving, cumulative_baseline=total_baseline,
            cumulative_uncertainty=uncertainty,
            fractional_uncertainty=abs(uncertainty / total_saving) if total_saving else None))
    return SavingsResult(baseline=model.name, baseline_valid=model.validity.valid,
                         baseline_failures=model.validity.failures, confidence=confidence, periods=tuple(result),
                         range_issues=check_reporting_range(model, conditions) if periods else ())


@dataclass(frozen=True)
class FuelSwitchEffect:
    """A fuel switch inside one boundary: fuel removed (Scope 1) and electricity added (Scope 2)."""

    gas_saved_m3: float
    electricity_added_kwh: float
    scope1_removed_t_co2e: float
    scope2_added_t_co2e: float
    net_t_co2e: float  # removed - added: what the switch really changed (positive = less CO2e)
    gas_kgce: float
    electricity_kgce: float
    net_kgce: float


def fuel_switch_effect(*, gas_saved_m3: float, electricity_added_kwh: float, gas_kg_co2e_per_m3: float,
                       grid_kg_co2e_per_kwh: float, gas_kgce_per_m3: float,
                       electricity_kgce_per_kwh: float) -> FuelSwitchEffect:
    """Net effect of replacing gas by electricity: the gas side's verified saving, the electric side's
    measured added use (its own meter; it had no baseline consumption), each at its factor."""
    removed_t = gas_saved_m3 * gas_kg_co2e_per_m3 / 1000
    added_t = electricity_added_kwh * grid_kg_co2e_per_kwh / 1000
    gas_kgce = gas_saved_m3 * gas_kgce_per_m3
    electricity_kgce = electricity_added_kwh * electricity_kgce_per_kwh
    return FuelSwitchEffect(
        gas_saved_m3=gas_saved_m3, electricity_added_kwh=electricity_added_kwh, scope1_removed_t_co2e=removed_t,
        scope2_added_t_co2e=added_t, net_t_co2e=removed_t - added_t, gas_kgce=gas_kgce,
        electricity_kgce=electricity_kgce, net_kgce=gas_kgce - electricity_kgce)
