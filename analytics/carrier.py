"""One carrier's verified saving of a boundary (pure): the baseline fitted on its predictors, the
static-factor adjustments (logged), the savings and their uncertainty, or the metered new load of a
fuel switch. The modelling choices are analytics/quarter.py's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from plantems.schema import Field

from .baseline import BaselineModel, fit_baseline
from .savings import (
    ReportingPeriod,
    SavingsPeriod,
    SavingsResult,
    fsu_factor_daily,
    savings_uncertainty,
    verified_savings,
)

__all__ = ["CONFIDENCE", "CONFIDENCE_WIDE", "OUTPUT", "TONNAGE_ONLY", "BaselineSpec", "BoundaryDay",
           "CarrierSavings", "StaticChange", "carrier_savings", "days_in_month", "month_label", "usable_days"]

OUTPUT = Field.OUTPUT_T.value  # the baseline's production predictor
CONFIDENCE = 0.68  # G14's acceptance test (uncertainty < 50 % of the saving) is stated at 68 %
CONFIDENCE_WIDE = 0.90
_NEW_LOAD_SHARE = 0.01  # a fuel switch's new load: baseline daily use at most this share of the new daily use


@dataclass(frozen=True)
class BoundaryDay:
    """One local day of a boundary: electricity of its meters, gas of its fuel meters, its tonnage, the
    day's other predictor values (a series without a value that day is absent) and the cost of its
    electricity at the tariff in force (by time-of-use period)."""

    day: date
    kwh: float
    gas_m3: float
    output_t: float | None  # None: no output recorded
    conditions: Mapping[str, float] = field(default_factory=dict)
    cost_cny: float | None = None  # None: no tariff priced the day


@dataclass(frozen=True)
class StaticChange:
    """A static-factor change of the baseline in force (plantems.measures.StaticFactorChange, as analytics
    reads it): from ``start`` on, ``per_day`` (kWh or m3 by carrier) or ``percent`` of the prediction."""

    start: date
    description: str
    kwh_per_day: float | None = None
    gas_m3_per_day: float | None = None
    percent: float | None = None


@dataclass(frozen=True)
class BaselineSpec:
    """Which baseline to fit: its version, period, reason, predictors besides tonnage, static changes."""

    version: int = 1
    reason: str = ""
    predictors: tuple[str, ...] = ()
    static_changes: tuple[StaticChange, ...] = ()
    history: tuple[dict[str, Any], ...] = ()  # every version of the register, oldest first (the log)


TONNAGE_ONLY = BaselineSpec()  # the default: tonnage is the one predictor, no static-factor change


@dataclass(frozen=True)
class CarrierSavings:
    """One carrier's verified saving of a measure (kWh or m3), or why there is none."""

    carrier: str  # "electricity_kwh" or "gas_m3"
    baseline: BaselineModel | None
    savings: SavingsResult | None
    by_month: dict[str, float] = field(default_factory=dict)
    problem: str = ""  # why no verified figure (no data, too few days, an invalid baseline)
    uncertainty_90: float | None = None  # the cumulative saving's uncertainty at 90 % confidence
    non_routine_by_month: dict[str, float] = field(default_factory=dict)  # added to the baseline
    non_routine_notes: tuple[str, ...] = ()
    spec: BaselineSpec = field(default_factory=BaselineSpec)
    adjustment_log: tuple[dict[str, Any], ...] = ()  # each static-factor change: what it added, by month
    days_left_out: tuple[int, int] = (0, 0)  # baseline and reporting days without tonnage or a predictor
    method: str = "regression"  # or "metered": a new load with no baseline use (a fuel switch's electric side)
    price_cny_per_unit: float | None = None  # per kWh: the boundary's reporting-period tariff mix
    price_basis: str = ""

    @property
    def saving_cny(self) -> float | None:
        saving = self.saving
        return None if saving is None or self.price_cny_per_unit is None else saving * self.price_cny_per_unit

    @property
    def verified(self) -> bool:
        return self.savings is not None and self.savings.baseline_valid and not self.problem

    @property
    def saving(self) -> float | None:
        return self.savings.total_saving if self.savings is not None else None

    @property
    def uncertainty(self) -> float | None:
        return self.savings.total_uncertainty if self.savings is not None else None

    def to_json(self) -> dict[str, Any]:
        model = self.baseline
        return {"carrier": self.carrier, "verified": self.verified, "problem": self.problem or None,
                "saving": self.saving, "uncertainty_68pct": self.uncertainty,
                "uncertainty_90pct": self.uncertainty_90, "non_routine_by_month": self.non_routine_by_month,
                "non_routine_notes": list(self.non_routine_notes), "by_month": self.by_month,
                "method": self.method, "saving_cny": self.saving_cny, "price_cny_per_unit": self.price_cny_per_unit,
                "price_basis": self.price_basis or None, "adjustment_log": list(self.adjustment_log),
                "days_left_out": {"baseline": self.days_left_out[0], "reporting": self.days_left_out[1]},
                "baseline_version": self.spec.version, "baseline_reason": self.spec.reason or None,
                "baseline_versions": list(self.spec.history),
                "baseline": None if model is None else {
                    "period": list(model.period), "n_days": model.n, "predictors": list(model.predictors),
                    "ranges": {r.name: {"min": r.min, "max": r.max, "mean": r.mean} for r in model.ranges},
                    "coefficients": {
                        c.name: {"value": c.value, "p_value": c.p_value} for c in model.coefficients},
                    "r2": model.r2, "cv_rmse": model.cv_rmse, "nmbe": model.nmbe, "valid": model.validity.valid,
                    "failures": list(model.validity.failures), "notes": list(model.validity.notes)},
                "range_issues": [] if self.savings is None else [
                    {"predictor": r.predictor, "reporting_mean": r.reporting_mean, "rule": r.rule}
                    for r in self.savings.range_issues]}


def month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def days_in_month(day: date) -> int:
    return ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - day.replace(day=1)).days


def usable_days(days: Sequence[BoundaryDay], predictors: Sequence[str]) -> list[BoundaryDay]:
    """Days a regression can read: tonnage recorded and every other predictor known (never read as 0)."""
    return [d for d in days if d.output_t is not None and all(p in d.conditions for p in predictors)]


def _conditions(days: Sequence[BoundaryDay], predictors: Sequence[str]) -> dict[str, list[float]]:
    return {OUTPUT: [float(d.output_t or 0.0) for d in days], **{p: [d.conditions[p] for d in days]
                                                                 for p in predictors}}


def _static_adjustments(spec: BaselineSpec, carrier: str, days: Sequence[BoundaryDay], predicted: Sequence[float]
                        ) -> tuple[list[float], tuple[dict[str, Any], ...]]:
    """Each day's static-factor adjustment of the baseline (signed, as it changes it) and the log: per
    change, what it added by month and in all (ISO 50006: every adjustment documented)."""
    per_day = [0.0] * len(days)
    log: list[dict[str, Any]] = []
    for change in spec.static_changes:
        fixed = change.kwh_per_day if carrier == "electricity_kwh" else change.gas_m3_per_day
        by_month: dict[str, float] = {}
        for index, (day, base) in enumerate(zip(days, predicted, strict=True)):
            if day.day < change.start:
                continue
            amount = base * change.percent / 100 if change.percent is not None else (fixed or 0.0)
            per_day[index] += amount
            by_month[month_label(day.day)] = by_month.get(month_label(day.day), 0.0) + amount
        log.append({"date": change.start.isoformat(), "description": change.description,
                    "kwh_per_day": change.kwh_per_day, "gas_m3_per_day": change.gas_m3_per_day,
                    "percent": change.percent, "baseline_version": spec.version, "by_month": by_month,
                    "total": sum(by_month.values())})
    return per_day, tuple(log)


def _is_new_load(baseline_days: Sequence[BoundaryDay], reporting_days: Sequence[BoundaryDay], value: str) -> bool:
    """Its own meter read (next to) nothing over at least 10 baseline days with data and the load runs
    now: commissioning runs or a meter's creep under 1 % of the new daily use do not make a baseline."""
    if len(baseline_days) < 10 or not reporting_days:
        return False
    before = sum(float(getattr(d, value)) for d in baseline_days) / len(baseline_days)
    after = sum(float(getattr(d, value)) for d in reporting_days) / len(reporting_days)
    return after > 0 and before <= _NEW_LOAD_SHARE * after


def _metered(label: str, baseline_days: Sequence[BoundaryDay], reporting_days: Sequence[BoundaryDay], value: str,
             spec: BaselineSpec) -> CarrierSavings:
    """A fuel switch's new load: its saving is the baseline days' (negligible) mean use minus what it
    used, as metered; a meter reading has no model uncertainty."""
    before = sum(float(getattr(d, value)) for d in baseline_days) / len(baseline_days)
    periods: list[SavingsPeriod] = []
    total = cumulative_baseline = 0.0
    for d in reporting_days:
        actual = float(getattr(d, value))
        total += before - actual
        cumulative_baseline += before
        periods.append(SavingsPeriod(label=d.day.isoformat(), adjusted_baseline=before, actual=actual,
                                     non_routine=0.0, saving=before - actual, cumulative_saving=total,
                                     cumulative_baseline=cumulative_baseline, cumulative_uncertainty=0.0,
                                     fractional_uncertainty=0.0 if total else None))
    result = SavingsResult(baseline=f"none: a new load (metered; {before:g} a day before go-live)",
                           baseline_valid=True, baseline_failures=(),
                           confidence=CONFIDENCE, periods=tuple(periods), range_issues=())
    by_month: dict[str, float] = {}
    for period in periods:
        by_month[period.label[:7]] = by_month.get(period.label[:7], 0.0) + period.saving
    problem = "" if periods else "no reporting day with energy data"
    return CarrierSavings(label, None, result, by_month, problem, 0.0, spec=spec, method="metered")


def carrier_savings(name: str, label: str, baseline_days: Sequence[BoundaryDay], reporting_days: Sequence[BoundaryDay],
             value: str, non_routine: Mapping[date, tuple[float, str]], spec: BaselineSpec = TONNAGE_ONLY,
             *, new_load: bool = False) -> CarrierSavings:
    base = usable_days(baseline_days, spec.predictors)
    report = usable_days(reporting_days, spec.predictors)
    left_out = (len(baseline_days) - len(base), len(reporting_days) - len(report))
    if new_load and _is_new_load(baseline_days, reporting_days, value):
        return _metered(label, baseline_days, reporting_days, value, spec)
    if not any(getattr(d, value) > 0 for d in base):
        return CarrierSavings(label, None, None, problem=f"no {label} measured in the baseline period", spec=spec,
                              days_left_out=left_out)
    if len(base) < 10 or not report:
        return CarrierSavings(label, None, None, problem=f"{len(base)} baseline and {len(report)} reporting day(s) "
                                                         "with energy, output and every predictor: need at least 10 "
                                                         "and 1", spec=spec, days_left_out=left_out)
    try:
        model = fit_baseline(name=f"{name} {label} v{spec.version}", energy=[getattr(d, value) for d in base],
                             predictors=_conditions(base, spec.predictors), production=OUTPUT,
                             period=(base[0].day.isoformat(), base[-1].day.isoformat()))
    except ValueError as exc:
        return CarrierSavings(label, None, None, problem=f"no baseline model: {exc}", spec=spec,
                              days_left_out=left_out)
    conditions = _conditions(report, spec.predictors)
    static, adjustment_log = _static_adjustments(spec, label, report, model.predict(conditions).tolist())
    periods = [ReportingPeriod(d.day.isoformat(), getattr(d, value), {k: v[i] for k, v in conditions.items()},
                               non_routine.get(d.day, (0.0, ""))[0] + static[i], non_routine.get(d.day, (0.0, ""))[1])
               for i, d in enumerate(report)]
    months = len({month_label(d.day) for d in report})
    # a negative lag-1 autocorrelation would narrow the band below the independent-residual case: taken as 0
    used = replace(model, residual_autocorr=max(model.residual_autocorr, 0.0))
    result = verified_savings(used, periods, confidence=CONFIDENCE, factor=fsu_factor_daily(months),
                              accept_invalid=True)
    last = result.periods[-1]
    wide = savings_uncertainty(cv_rmse=used.cv_rmse, n=used.n, p=used.p, m=len(periods), rho=used.residual_autocorr,
                               adjusted_baseline=last.cumulative_baseline, confidence=CONFIDENCE_WIDE,
                               factor=fsu_factor_daily(months))
    by_month: dict[str, float] = {}
    for period in result.periods:
        key = period.label[:7]
        by_month[key] = by_month.get(key, 0.0) + period.saving
    problem = "" if model.validity.valid else "baseline failed its validity tests: " + "; ".join(
        model.validity.failures)
    added: dict[str, float] = {}
    for d in report:
        if d.day in non_routine:
            added[month_label(d.day)] = added.get(month_label(d.day), 0.0) + non_routine[d.day][0]
    notes = tuple(sorted({note for _, note in non_routine.values() if note}))
    return CarrierSavings(label, model, result, by_month, problem, wide, added, notes, spec, adjustment_log, left_out)
