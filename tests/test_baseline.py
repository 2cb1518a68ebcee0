"""Energy baselines: a hand-computed regression, statsmodels as an independent oracle, validity flags, range checks."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import statsmodels.api as sm

from plantems.analytics.baseline import (
    BaselineModel,
    InvalidBaseline,
    check_reporting_range,
    fit_baseline,
    fit_candidates,
)

# Hand case: x = 1..5, y = 2,4,5,4,5. x̄ = 3, ȳ = 4, Sxx = 10, Sxy = 6 -> b1 = 0.6, b0 = 2.2.
# Fitted 2.8 3.4 4.0 4.6 5.2, residuals -0.8 0.6 1.0 -0.6 -0.2: SSE = 2.4, SST = 6, dof = 3.
HAND_X = [1.0, 2.0, 3.0, 4.0, 5.0]
HAND_Y = [2.0, 4.0, 5.0, 4.0, 5.0]


def test_hand_computed_regression() -> None:
    model = fit_baseline(name="hand", energy=HAND_Y, predictors={"output_t": HAND_X}, production="output_t")
    assert model.coefficient("intercept").value == pytest.approx(2.2)
    assert model.coefficient("output_t").value == pytest.approx(0.6)
    assert (model.n, model.p, model.dof) == (5, 2, 3)
    assert model.r2 == pytest.approx(0.6)  # 1 - 2.4 / 6
    assert model.adj_r2 == pytest.approx(1 - 0.4 * 4 / 3)
    assert model.rmse == pytest.approx(math.sqrt(0.8))  # sqrt(SSE / (n - p))
    assert model.cv_rmse == pytest.approx(math.sqrt(0.8) / 4)  # 0.2236: above G14's 20 %
    assert model.nmbe == pytest.approx(0.0, abs=1e-12)  # OLS with an intercept: residuals sum to zero
    slope = model.coefficient("output_t")
    assert slope.std_error == pytest.approx(math.sqrt(0.8 / 10))  # sigma² / Sxx
    assert slope.t_stat == pytest.approx(0.6 / math.sqrt(0.08))
    # one predictor: F = t² and the F-test's p is the slope's two-sided p
    assert model.f_stat == pytest.approx(slope.t_stat ** 2)
    assert model.f_p_value == pytest.approx(slope.p_value)
    # lag-1 autocorrelation: (-0.48 + 0.6 - 0.6 + 0.12) / 2.4
    assert model.residual_autocorr == pytest.approx(-0.15)
    assert model.predict({"output_t": [6.0, 0.0]}).tolist() == pytest.approx([5.8, 2.2])


def test_hand_case_fails_its_validity_tests_and_says_why() -> None:
    model = fit_baseline(name="hand", energy=HAND_Y, predictors={"output_t": HAND_X}, production="output_t")
    assert not model.validity.valid
    failures = " | ".join(model.validity.failures)
    assert "model F-test p = 0.124" in failures  # t = 2.121 on 3 dof
    assert "no predictor has p < 0.1" in failures
    assert "CV(RMSE) = 0.2236 > 0.2" in failures
    assert "R²" not in failures  # 0.6 passes
    assert any("adjusted R² = 0.4667" in note for note in model.validity.notes)
    with pytest.raises(InvalidBaseline, match="baseline 'hand' failed its validity tests: model F-test"):
        model.require_valid()


def _plant_months(seed: int, n: int = 36) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    output_t = rng.uniform(2500, 4200, n)
    hdd = rng.uniform(0, 450, n)
    shifts = rng.integers(40, 62, n).astype(float)
    energy = 180_000 + 310 * output_t + 95 * hdd + 1500 * shifts + rng.normal(0, 8_000, n)
    return energy, {"output_t": output_t, "hdd": hdd, "shifts": shifts}


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_statistics_agree_with_statsmodels(seed: int) -> None:
    energy, predictors = _plant_months(seed)
    model = fit_baseline(name="roll-1", energy=energy, predictors=predictors, production="output_t")
    oracle = sm.OLS(energy, sm.add_constant(np.column_stack(list(predictors.values())))).fit()
    assert [c.value for c in model.coefficients] == pytest.approx(list(oracle.params), rel=1e-9)
    assert [c.std_error for c in model.coefficients] == pytest.approx(list(oracle.bse), rel=1e-9)
    assert [c.t_stat for c in model.coefficients] == pytest.approx(list(oracle.tvalues), rel=1e-9)
    assert [c.p_value for c in model.coefficients] == pytest.approx(list(oracle.pvalues), rel=1e-6, abs=1e-300)
    assert model.r2 == pytest.approx(oracle.rsquared, rel=1e-12)
    assert model.adj_r2 == pytest.approx(oracle.rsquared_adj, rel=1e-12)
    assert model.f_stat == pytest.approx(oracle.fvalue, rel=1e-9)
    assert model.f_p_value == pytest.approx(oracle.f_pvalue, rel=1e-6, abs=1e-300)
    assert model.dof == oracle.df_resid
    mean = energy.mean()
    assert model.cv_rmse == pytest.approx(math.sqrt(oracle.mse_resid) / mean, rel=1e-9)
    assert model.nmbe == pytest.approx(oracle.resid.sum() / (oracle.df_resid * mean), abs=1e-12)
    assert model.validity.valid, model.validity.failures


def test_an_irrelevant_predictor_is_flagged_not_used_silently() -> None:
    energy, predictors = _plant_months(3)
    noise = np.random.default_rng(1).normal(0, 1, energy.size)
    model = fit_baseline(name="roll-1", energy=energy, predictors={**predictors, "noise": noise},
                         production="output_t")
    oracle = sm.OLS(energy, sm.add_constant(np.column_stack([*predictors.values(), noise]))).fit()
    assert oracle.pvalues[-1] > 0.2  # the oracle agrees the variable is irrelevant
    assert not model.validity.valid
    assert any(f.startswith("predictor 'noise' p = ") for f in model.validity.failures)


def test_no_production_variable_and_negative_coefficients_are_notes() -> None:
    rng = np.random.default_rng(5)
    temp_c = rng.uniform(0, 35, 24)
    energy = 90_000 - 800 * temp_c + rng.normal(0, 2000, 24)
    model = fit_baseline(name="heating", energy=energy, predictors={"temp_c": temp_c})
    assert model.validity.valid
    assert any(n.startswith("negative temp_c") for n in model.validity.notes)
    assert any("no production variable" in n for n in model.validity.notes)


@pytest.mark.parametrize(("energy", "predictors", "production", "message"), [
    ([1.0, 2.0], {"output_t": [1.0, 2.0]}, None, r"2 baseline points for 2 coefficients"),
    ([1.0, 2.0, float("nan"), 4.0], {"output_t": [1.0, 2.0, 3.0, 4.0]}, None, "energy has a missing"),
    ([1.0, 2.0, 3.0, 4.0], {"output_t": [1.0, 2.0, None, 4.0]}, None, "predictor 'output_t' has a missing"),
    ([1.0, 2.0, 3.0, 4.0], {"output_t": [1.0, 2.0, 3.0]}, None, "predictor 'output_t' has 3 values; energy has 4"),
    ([1.0, 2.0, 3.0, 4.0, 5.0], {"output_t": [1.0, 2.0, 3.0, 4.0, 6.0], "shifts": [3.0] * 5}, None,
     r"rank 2 < 3 \(constant predictors \['shifts'\]\)"),
    ([1.0, 2.0, 3.0, 4.0, 5.0], {"a": [1.0, 2.0, 3.0, 4.0, 6.0], "b": [2.0, 4.0, 6.0, 8.0, 12.0]}, None,
     r"rank 2 < 3 \(collinear predictors\)"),
    ([1.0, 2.0, 3.0, 4.0], {"hdd": [1.0, 2.0, 3.0, 5.0]}, "output_t", "production predictor 'output_t' is not"),
    ([0.0, 0.0, 0.0, 0.0], {"output_t": [1.0, 2.0, 3.0, 5.0]}, None, "need a positive mean"),
], ids=["too-few", "nan-energy", "none-predictor", "length", "constant", "collinear", "production", "zero-mean"])
def test_unusable_input_is_refused_with_the_rule(energy: list[float], predictors: dict[str, list[float]],
                                                 production: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_baseline(name="x", energy=energy, predictors=predictors, production=production)  # type: ignore[arg-type]


def test_reporting_predictors_outside_the_baseline_range_are_reported() -> None:
    # 19 months at 0 and one at 100: mean 5, std sqrt((19 * 25 + 95²) / 19) = sqrt(500), so 3 sigma = [-62.1, 72.1]
    hdd = [0.0] * 19 + [100.0]
    energy = [1000.0 + 2 * h + (7.0 if i % 2 else -7.0) for i, h in enumerate(hdd)]
    model = fit_baseline(name="hvac", energy=energy, predictors={"hdd": hdd})
    (known,) = model.ranges
    assert (known.min, known.max, known.mean) == (0.0, 100.0, 5.0)
    assert known.std == pytest.approx(math.sqrt(500))
    assert check_reporting_range(model, {"hdd": [60.0, 70.0]}) == ()
    (issue,) = check_reporting_range(model, {"hdd": [75.0, 85.0]})  # mean 80: inside [0, 100], beyond 3 sigma
    assert (issue.predictor, issue.reporting_mean) == ("hdd", 80.0)
    assert "mean ± 3sigma" in issue.rule
    issues = check_reporting_range(model, {"hdd": [120.0]})
    assert [i.rule.split(" [")[0] for i in issues] == ["outside the baseline range",
                                                       "outside the baseline mean ± 3sigma"]
    with pytest.raises(ValueError, match="no reporting series for predictor 'hdd'"):
        check_reporting_range(model, {"output_t": [1.0]})


def test_to_json_carries_everything_a_reviewer_needs() -> None:
    energy, predictors = _plant_months(11)
    model = fit_baseline(name="roll-1", energy=energy, predictors=predictors, production="output_t",
                         period=("2025-01", "2027-12"))
    data = json.loads(model.to_json())
    assert [c["name"] for c in data["coefficients"]] == ["intercept", "output_t", "hdd", "shifts"]
    assert data["coefficients"][1]["value"] == model.coefficient("output_t").value
    assert data["validity"] == {"valid": True, "failures": [], "notes": []}
    assert data["criteria"]["cv_rmse_max"] == 0.2
    assert data["period"] == ["2025-01", "2027-12"]
    assert {r["name"] for r in data["ranges"]} == {"output_t", "hdd", "shifts"}
    with pytest.raises(AttributeError):
        model.r2 = 1.0  # type: ignore[misc]
    assert BaselineModel.from_json(model.to_json()) == model


def test_non_finite_statistics_are_written_as_null() -> None:
    # a perfect fit can make t or F infinite (zero residuals): JSON has no Infinity, so null, read back as NaN
    model = fit_baseline(name="exact", energy=[102.0, 104.0, 106.0, 109.0], predictors={"x": [1.0, 2.0, 3.0, 4.0]})
    broken = replace(model, f_stat=math.inf, f_p_value=math.nan)
    data = json.loads(broken.to_json())
    assert data["f_stat"] is None and data["f_p_value"] is None
    restored = BaselineModel.from_json(broken.to_json())
    assert math.isnan(restored.f_stat) and restored.r2 == model.r2


def test_candidate_search_keeps_production_and_ranks_valid_models_first() -> None:
    energy, predictors = _plant_months(3)
    noise = np.random.default_rng(1).normal(0, 1, energy.size)  # oracle p = 0.79 with the true predictors
    candidates = fit_candidates(name="roll-1", energy=energy, predictors={**predictors, "noise": noise},
                                production="output_t")
    assert len(candidates) == 1 + 3 + 3 + 1  # output_t with 0, 1, 2 or 3 of the 3 others
    assert all(c.predictors[0] == "output_t" for c in candidates)
    best = candidates[0]
    assert set(best.predictors) == {"output_t", "hdd", "shifts"} and best.validity.valid
    valid = [c.validity.valid for c in candidates]
    assert valid == sorted(valid, reverse=True)  # valid ones first
    assert not any(c.validity.valid and "noise" in c.predictors for c in candidates)
