"""Energy baselines (EnB) as ordinary least-squares regressions, with their validity tests (pure).

energy = b0 + sum(b_i * x_i) over a baseline period (monthly or daily points), x_i the relevant
variables: production tonnage at least, outdoor temperature or degree-days, product mix or shifts
where a series is configured. Statistics (shared/domain.md 9.2, 9.3):

- t-statistics and two-sided p-values of each coefficient, the model F-test, R², adjusted R²;
- ASHRAE Guideline 14 with its degrees of freedom (n - p, p = coefficients including the intercept):
  CV(RMSE) = sqrt(SSE / (n - p)) / mean(y), NMBE = sum(y - ŷ) / ((n - p) * mean(y)) (measured - predicted,
  as G14 writes it; OLS with an intercept makes it ~0, so a large NMBE means a broken model);
- DOE VERIFI / SEP rules: model p ≤ 0.1, every predictor p ≤ 0.2, one predictor p < 0.1, R² ≥ 0.5;
  notes only: adjusted R² < 0.5, a negative coefficient, no production variable;
- reporting predictors within the baseline's range: each reporting mean inside [min, max] and
  inside mean ± 3sigma (sigma with n - 1), SEP's data check.

A model that fails is flagged (``validity.valid`` False, with every reason) and refuses to predict
savings unless the caller accepts it explicitly (``require_valid``): never used silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

__all__ = [
    "BaselineModel",
    "Coefficient",
    "InvalidBaseline",
    "PredictorRange",
    "RangeIssue",
    "Validity",
    "ValidityCriteria",
    "check_reporting_range",
    "fit_baseline",
    "fit_candidates",
]

INTERCEPT = "intercept"
Vector = NDArray[np.float64]


class InvalidBaseline(ValueError):
    """A baseline model that failed its validity tests was about to be used."""


@dataclass(frozen=True)
class ValidityCriteria:
    """Thresholds of the validity tests (defaults: DOE VERIFI / SEP and ASHRAE Guideline 14, energy)."""

    model_p_max: float = 0.1  # F-test
    predictor_p_max: float = 0.2  # every predictor
    best_predictor_p_max: float = 0.1  # at least one predictor
    r2_min: float = 0.5
    adj_r2_note_below: float = 0.5
    cv_rmse_max: float = 0.20  # G14 whole-facility regression, energy (0.25 is quoted for daily models)
    nmbe_abs_max: float = 0.05
    range_sigmas: float = 3.0


DEFAULT_CRITERIA = ValidityCriteria()


@dataclass(frozen=True)
class Coefficient:
    name: str
    value: float
    std_error: float
    t_stat: float
    p_value: float


@dataclass(frozen=True)
class PredictorRange:
    """A predictor over the baseline period: what reporting conditions are compared with."""

    name: str
    min: float
    max: float
    mean: float
    std: float  # with n - 1


@dataclass(frozen=True)
class Validity:
    valid: bool
    failures: tuple[str, ...]  # each a rule that the model broke, with the value
    notes: tuple[str, ...]  # worth a reader's attention, not disqualifying


@dataclass(frozen=True)
class RangeIssue:
    """A reporting-period predictor outside the baseline's range (the model extrapolates)."""

    predictor: str
    reporting_mean: float
    rule: str


@dataclass(frozen=True)
class BaselineModel:
    """A fitted baseline: coefficients, statistics and validity flags. Frozen: revise by fitting anew."""

    name: str
    production: str | None  # the tonnage predictor (normalised EnPI per tonne)
    coefficients: tuple[Coefficient, ...]  # intercept first, then the predictors in order
    ranges: tuple[PredictorRange, ...]
    n: int  # baseline points
    p: int  # coefficients, intercept included
    r2: float
    adj_r2: float
    f_stat: float
    f_p_value: float
    rmse: float  # sqrt(SSE / (n - p))
    cv_rmse: float
    nmbe: float
    mean_energy: float
    residual_autocorr: float  # lag-1 autocorrelation rho of the residuals (savings uncertainty)
    validity: Validity
    period: tuple[str, str] = ("", "")  # baseline start and end, as the caller labels them
    criteria: ValidityCriteria = DEFAULT_CRITERIA

    @property
    def predictors(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.coefficients[1:])

    @property
    def dof(self) -> int:
        return self.n - self.p

    def coefficient(self, name: str) -> Coefficient:
        for coef in self.coefficients:
            if coef.name == name:
                return coef
        raise KeyError(f"baseline {self.name!r} has no coefficient {name!r}; it has {list(self.predictors)}")

    def predict(self, conditions: Mapping[str, Sequence[float]]) -> Vector:
        """Energy the baseline expects under ``conditions`` (one series per predictor, same length)."""
        missing = sorted(set(self.predictors) - set(conditions))
        if missing:
            raise ValueError(f"baseline {self.name!r}: no series for predictors {missing}")
        lengths = {len(conditions[name]) for name in self.predictors}
        if len(lengths) > 1:
            raise ValueError(f"baseline {self.name!r}: predictor series differ in length {sorted(lengths)}")
        columns = [np.asarray(conditions[name], dtype=np.float64) for name in self.predictors]
        size = lengths.pop() if lengths else 0
        result = np.full(size, self.coefficients[0].value)
        for coef, column in zip(self.coefficients[1:], columns, strict=True):
            result = result + coef.value * column
        return result

    def require_valid(self) -> None:
        """Raise InvalidBaseline naming every failed test (callers that may not use a failed model)."""
        if not self.validity.valid:
            raise InvalidBaseline(f"baseline {self.name!r} failed its validity tests: "
                                  + "; ".join(self.validity.failures))

    def to_json(self) -> str:
        """Everything a reviewer needs to reproduce the model: coefficients, statistics, tests, criteria.
        Strict JSON: a non-finite statistic (a perfect fit's t) is written as null."""
        return json.dumps(_finite(asdict(self)), sort_keys=True, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> BaselineModel:
        """The model as ``to_json`` wrote it (a baseline is fitted once, then stored and reused)."""
        data = json.loads(text)
        floats = {name: _float(data[name]) for name in _FLOAT_FIELDS}
        return cls(
            **floats, name=data["name"], production=data["production"], n=data["n"], p=data["p"],
            coefficients=tuple(Coefficient(name=c["name"], **{k: _float(c[k]) for k in _COEF_FLOATS})
                               for c in data["coefficients"]),
            ranges=tuple(PredictorRange(**r) for r in data["ranges"]),
            validity=Validity(valid=data["validity"]["valid"], failures=tuple(data["validity"]["failures"]),
                              notes=tuple(data["validity"]["notes"])),
            period=(data["period"][0], data["period"][1]), criteria=ValidityCriteria(**data["criteria"]))


_FLOAT_FIELDS = ("r2", "adj_r2", "f_stat", "f_p_value", "rmse", "cv_rmse", "nmbe", "mean_energy",
                 "residual_autocorr")
_COEF_FLOATS = ("value", "std_error", "t_stat", "p_value")


def _finite(node: Any) -> Any:
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, dict):
        return {key: _finite(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_finite(value) for value in node]
    return node


def _float(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _design(predictors: Mapping[str, Sequence[float]], n: int) -> Vector:
    columns = [np.ones(n)]
    for name, series in predictors.items():
        column = np.asarray(series, dtype=np.float64)
        if column.shape != (n,):
            raise ValueError(f"predictor {name!r} has {column.size} values; energy has {n}")
        if not np.all(np.isfinite(column)):
            raise ValueError(f"predictor {name!r} has a missing or non-finite value: fill or drop the period")
        columns.append(column)
    return np.column_stack(columns)


def _check_inputs(y: Vector, x: Vector, names: Sequence[str]) -> None:
    n, p = x.shape
    if not np.all(np.isfinite(y)):
        raise ValueError("energy has a missing or non-finite value: fill or drop the period")
    if n <= p:
        raise ValueError(f"{n} baseline points for {p} coefficients: need at least {p + 1} (n - p ≥ 1)")
    if float(np.mean(y)) <= 0:
        raise ValueError(f"mean baseline energy is {float(np.mean(y))}: CV(RMSE) and NMBE need a positive mean")
    rank = int(np.linalg.matrix_rank(x))
    if rank < p:
        constant = [name for name, col in zip(names, x.T[1:], strict=True) if np.ptp(col) == 0]
        why = f"constant predictors {constant}" if constant else "collinear predictors"
        raise ValueError(f"the design matrix has rank {rank} < {p} ({why}): drop one of {list(names)}")


def _lag1_autocorr(residuals: Vector) -> float:
    centred = residuals - residuals.mean()
    denominator = float(centred @ centred)
    return float(centred[1:] @ centred[:-1]) / denominator if denominator > 0 else 0.0


def fit_baseline(*, name: str, energy: Sequence[float], predictors: Mapping[str, Sequence[float]],
                 production: str | None = None, period: tuple[str, str] = ("", ""),
                 criteria: ValidityCriteria = DEFAULT_CRITERIA) -> BaselineModel:
    """Fit energy = b0 + sum(b_i * x_i) by least squares and test it.

    ``predictors`` maps each relevant variable to its series (same length as ``energy``); ``production``
    names the tonnage predictor. Raises ValueError on input no regression can use (too few points,
    non-finite values, collinear or constant predictors); a poor fit is returned flagged, not raised.
    """
    if production is not None and production not in predictors:
        raise ValueError(f"production predictor {production!r} is not among {list(predictors)}")
    y = np.asarray(energy, dtype=np.float64)
    x = _design(predictors, y.size)
    names = list(predictors)
    _check_inputs(y, x, names)
    n, p = x.shape
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residuals = y - x @ beta
    sse = float(residuals @ residuals)
    sst = float(((y - y.mean()) ** 2).sum())
    dof = n - p
    sigma2 = sse / dof
    std_errors = np.sqrt(np.diag(sigma2 * np.linalg.inv(x.T @ x)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stats = beta / std_errors
    p_values = 2.0 * stats.t.sf(np.abs(t_stats), dof)
    r2 = 1.0 - sse / sst if sst > 0 else 0.0
    k = p - 1
    f_stat = ((sst - sse) / k) / sigma2 if k and sigma2 > 0 else (float("inf") if k else 0.0)
    f_p = float(stats.f.sf(f_stat, k, dof)) if k else 1.0
    mean_y = float(y.mean())
    rmse = float(np.sqrt(sigma2))
    coefficients = tuple(Coefficient(name=label, value=float(b), std_error=float(se), t_stat=float(t),
                                     p_value=float(pv))
                         for label, b, se, t, pv in zip([INTERCEPT, *names], beta, std_errors, t_stats, p_values,
                                                        strict=True))
    ranges = tuple(PredictorRange(name=label, min=float(col.min()), max=float(col.max()), mean=float(col.mean()),
                                  std=float(col.std(ddof=1)))
                   for label, col in zip(names, x.T[1:], strict=True))
    stats_ = _Stats(r2=r2, adj_r2=1.0 - (1.0 - r2) * (n - 1) / dof, f_p=f_p, cv_rmse=rmse / mean_y,
                    nmbe=float(residuals.sum()) / (dof * mean_y))
    return BaselineModel(
        name=name, production=production, coefficients=coefficients, ranges=ranges, n=n, p=p, r2=r2,
        adj_r2=stats_.adj_r2, f_stat=float(f_stat), f_p_value=f_p, rmse=rmse, cv_rmse=stats_.cv_rmse,
        nmbe=stats_.nmbe, mean_energy=mean_y, residual_autocorr=_lag1_autocorr(residuals),
        validity=judge(coefficients, stats_, production=production, criteria=criteria),
        period=period, criteria=criteria)


@dataclass(frozen=True)
class _Stats:
    r2: float
    adj_r2: float
    f_p: float
    cv_rmse: float
    nmbe: float


def judge(coefficients: Sequence[Coefficient], fit: _Stats, *, production: str | None,
          criteria: ValidityCriteria) -> Validity:
    """The validity tests of shared/domain.md 9.2 and 9.3 on a fitted model."""
    failures: list[str] = []
    notes: list[str] = []
    slopes = coefficients[1:]
    if fit.f_p > criteria.model_p_max:
        failures.append(f"model F-test p = {fit.f_p:.4g} > {criteria.model_p_max}")
    failures += [f"predictor {c.name!r} p = {c.p_value:.4g} > {criteria.predictor_p_max}"
                 for c in slopes if not c.p_value <= criteria.predictor_p_max]
    if slopes and not any(c.p_value < criteria.best_predictor_p_max for c in slopes):
        failures.append(f"no predictor has p < {criteria.best_predictor_p_max}")
    if not slopes:
        failures.append("no predictor: a constant is not a baseline model")
    if fit.r2 < criteria.r2_min:
        failures.append(f"R² = {fit.r2:.4g} < {criteria.r2_min}")
    if fit.cv_rmse > criteria.cv_rmse_max:
        failures.append(f"CV(RMSE) = {fit.cv_rmse:.4g} > {criteria.cv_rmse_max} (ASHRAE Guideline 14)")
    if abs(fit.nmbe) > criteria.nmbe_abs_max:
        failures.append(f"|NMBE| = {abs(fit.nmbe):.4g} > {criteria.nmbe_abs_max} (ASHRAE Guideline 14)")
    if fit.adj_r2 < criteria.adj_r2_note_below:
        notes.append(f"adjusted R² = {fit.adj_r2:.4g} < {criteria.adj_r2_note_below}")
    notes += [f"negative {c.name} {c.value:.6g}" for c in coefficients if c.value < 0]
    if production is None:
        notes.append("no production variable: a ratio EnPI per tonne cannot be normalised")
    return Validity(valid=not failures, failures=tuple(failures), notes=tuple(notes))


def check_reporting_range(model: BaselineModel, conditions: Mapping[str, Sequence[float]]) -> tuple[RangeIssue, ...]:
    """SEP's data check: each reporting-period predictor mean within the baseline's [min, max] and mean ± ksigma."""
    issues: list[RangeIssue] = []
    for known in model.ranges:
        if known.name not in conditions:
            raise ValueError(f"baseline {model.name!r}: no reporting series for predictor {known.name!r}")
        mean = float(np.mean(np.asarray(conditions[known.name], dtype=np.float64)))
        if not known.min <= mean <= known.max:
            issues.append(RangeIssue(known.name, mean, f"outside the baseline range [{known.min:.6g}, "
                                                       f"{known.max:.6g}]"))
        sigmas = model.criteria.range_sigmas
        low, high = known.mean - sigmas * known.std, known.mean + sigmas * known.std
        if not low <= mean <= high:
            issues.append(RangeIssue(known.name, mean, f"outside the baseline mean ± {sigmas:g}sigma "
                                                       f"[{low:.6g}, {high:.6g}]"))
    return tuple(issues)


def fit_candidates(*, name: str, energy: Sequence[float], predictors: Mapping[str, Sequence[float]],
                   production: str, max_variables: int = 4, period: tuple[str, str] = ("", ""),
                   criteria: ValidityCriteria = DEFAULT_CRITERIA) -> tuple[BaselineModel, ...]:
    """Every model on the production variable plus up to ``max_variables - 1`` of the others (as DOE VERIFI
    searches), valid ones first, then by adjusted R². The caller shows the list; the first valid one is the
    candidate baseline. Combinations no regression can use (collinear, too few points) are left out."""
    others = [key for key in predictors if key != production]
    models: list[BaselineModel] = []
    for size in range(max_variables):
        for chosen in combinations(others, size):
            subset = {key: predictors[key] for key in (production, *chosen)}
            try:
                models.append(fit_baseline(name=name, energy=energy, predictors=subset, production=production,
                                           period=period, criteria=criteria))
            except ValueError:
                if not chosen:
                    raise  # the production-only model must fit: its input is unusable
    return tuple(sorted(models, key=lambda m: (not m.validity.valid, -m.adj_r2)))
