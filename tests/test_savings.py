"""Verified savings, their G14 uncertainty, CUSUM and a fuel switch's net effect, against hand and oracle values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from plantems.analytics.baseline import InvalidBaseline, fit_baseline
from plantems.analytics.savings import (
    ReportingPeriod,
    fsu_factor_daily,
    fuel_switch_effect,
    savings_uncertainty,
    track_performance,
    verified_savings,
)

# The hand-computed baseline of tests/test_baseline.py: E = 2.2 + 0.6 x, CV(RMSE) = sqrt(0.8) / 4, rho = -0.15.
# It fails its validity tests (F-test p = 0.124), so every use below must accept that explicitly.
HAND = fit_baseline(name="hand", energy=[2.0, 4.0, 5.0, 4.0, 5.0], predictors={"x": [1.0, 2.0, 3.0, 4.0, 5.0]},
                    production="x")


@pytest.mark.parametrize(("confidence", "fsu"), [(0.68, 0.206), (0.90, 0.356)], ids=["68%", "90%"])
def test_fractional_savings_uncertainty_matches_the_worked_check(confidence: float, fsu: float) -> None:
    # shared/domain.md 9.3: n = m = 12, rho = 0, CV = 5 %, F = 10 % -> FSU 20.6 % (68 %), 35.6 % (90 %)
    adjusted_baseline = 1_000_000.0
    savings = 0.10 * adjusted_baseline
    absolute = savings_uncertainty(cv_rmse=0.05, n=12, p=2, m=12, rho=0.0, adjusted_baseline=adjusted_baseline,
                                   confidence=confidence)
    assert absolute / savings == pytest.approx(fsu, abs=0.001)


def test_daily_models_use_the_polynomial_factor() -> None:
    assert fsu_factor_daily(12) == pytest.approx(1.3925, abs=1e-4)  # -0.03456 + 0.4242 + 1.00286 by hand
    assert fsu_factor_daily(0) == pytest.approx(1.00286)


def test_savings_uncertainty_refuses_impossible_inputs() -> None:
    with pytest.raises(ValueError, match=r"rho = 1\.0 must lie in"):
        savings_uncertainty(cv_rmse=0.05, n=12, p=2, m=1, rho=1.0, adjusted_baseline=1.0, confidence=0.68)
    with pytest.raises(ValueError, match="m = 0 reporting points"):
        savings_uncertainty(cv_rmse=0.05, n=12, p=2, m=0, rho=0.0, adjusted_baseline=1.0, confidence=0.68)


def test_verified_savings_by_hand() -> None:
    periods = [
        # a press added in month 1 that the baseline does not know of: +0.5 to the baseline (non-routine)
        ReportingPeriod("2027-01", actual=5.0, conditions={"x": 6.0}, non_routine=0.5, non_routine_note="new press"),
        ReportingPeriod("2027-02", actual=3.0, conditions={"x": 2.0}),
    ]
    with pytest.raises(InvalidBaseline, match="baseline 'hand' failed"):
        verified_savings(HAND, periods)
    result = verified_savings(HAND, periods, accept_invalid=True)
    assert not result.baseline_valid and result.baseline_failures
    first, second = result.periods
    assert first.adjusted_baseline == pytest.approx(5.8)  # 2.2 + 0.6 * 6
    assert first.saving == pytest.approx(5.8 - 5.0 + 0.5)
    assert second.adjusted_baseline == pytest.approx(3.4)
    assert second.saving == pytest.approx(0.4)
    assert second.cumulative_saving == pytest.approx(1.7)
    assert second.cumulative_baseline == pytest.approx(5.8 + 0.5 + 3.4)
    # G14 after m = 2: n' = 5 * 1.15 / 0.85; t at 68 % on 3 dof
    n_eff = 5 * 1.15 / 0.85
    t = stats.t.ppf(0.84, 3)
    expected = t * 1.26 * (math.sqrt(0.8) / 4) * math.sqrt((5 / n_eff) * (1 + 2 / n_eff) / 2) * 9.7
    assert second.cumulative_uncertainty == pytest.approx(expected)
    assert second.fractional_uncertainty == pytest.approx(expected / 1.7)
    assert result.total_saving == pytest.approx(1.7)
    assert not result.acceptable  # uncertainty above 50 % of the saving
    # reporting x mean 4 lies inside the baseline's [1, 5] and 3 sigma: no extrapolation
    assert result.range_issues == ()
    beyond = verified_savings(HAND, [ReportingPeriod("2027-03", actual=6.0, conditions={"x": 9.0})],
                              accept_invalid=True)
    # x = 9: beyond [1, 5] and beyond mean 3 ± 3 x sqrt(2.5)
    assert [i.rule.split(" [")[0] for i in beyond.range_issues] == ["outside the baseline range",
                                                                    "outside the baseline mean ± 3sigma"]


def test_performance_cusum_and_normalised_enpi_by_hand() -> None:
    with pytest.raises(InvalidBaseline):
        track_performance(HAND, labels=["a"], actual=[4.0], conditions={"x": [3.0]})
    points = track_performance(HAND, labels=["m1", "m2", "m3"], actual=[4.0, 3.5, 3.0],
                               conditions={"x": [3.0, 3.0, 3.0]}, accept_invalid=True)
    assert [p.expected for p in points] == pytest.approx([4.0, 4.0, 4.0])
    assert [p.improvement for p in points] == pytest.approx([0.0, 0.5, 1.0])
    assert [p.cusum for p in points] == pytest.approx([0.0, -0.5, -1.5])  # falling: savings
    # reference conditions = baseline mean x = 3, expected there 4.0: (actual - expected + 4) / 3
    assert [p.enpi_normalised for p in points] == pytest.approx([4 / 3, 3.5 / 3, 1.0])


def _furnace_baseline() -> tuple[np.ndarray, np.ndarray]:
    """Two years of monthly gas use of the twin-chamber furnace: tick-over plus a share per tonne cast."""
    rng = np.random.default_rng(2024)
    output_t = rng.uniform(1800, 2600, 24)
    gas_m3 = 9000 + 9.5 * output_t + rng.normal(0, 600, 24)
    return output_t, gas_m3


def test_fuel_switch_counts_scope1_removed_and_scope2_added() -> None:
    output_t, gas_m3 = _furnace_baseline()
    model = fit_baseline(name="furnace-gas", energy=gas_m3, predictors={"output_t": output_t}, production="output_t")
    assert model.validity.valid, model.validity.failures
    # reporting year: the furnace is off (its meter reads 0); the electric mould cleaners' own meter reads 26 kWh/t
    reporting_t = np.random.default_rng(2027).uniform(1900, 2500, 12)
    cleaner_kwh = 26.0 * reporting_t
    periods = [ReportingPeriod(f"2027-{i + 1:02d}", actual=0.0, conditions={"output_t": float(t)})
               for i, t in enumerate(reporting_t)]
    gas = verified_savings(model, periods)
    oracle = sm.OLS(gas_m3, sm.add_constant(output_t)).fit()
    gas_saved_m3 = float(oracle.predict(sm.add_constant(reporting_t)).sum())  # adjusted baseline - 0
    assert gas.total_saving == pytest.approx(gas_saved_m3, rel=1e-9)

    effect = fuel_switch_effect(gas_saved_m3=gas.total_saving, electricity_added_kwh=float(cleaner_kwh.sum()),
                                gas_kg_co2e_per_m3=2.162, grid_kg_co2e_per_kwh=0.5271, gas_kgce_per_m3=1.2143,
                                electricity_kgce_per_kwh=0.1229)
    removed_t = gas_saved_m3 * 2.162 / 1000
    added_t = float(cleaner_kwh.sum()) * 0.5271 / 1000
    assert effect.scope1_removed_t_co2e == pytest.approx(removed_t)
    assert effect.scope2_added_t_co2e == pytest.approx(added_t)
    assert effect.net_t_co2e == pytest.approx(removed_t - added_t)
    assert 0 < effect.net_t_co2e < effect.scope1_removed_t_co2e  # a Scope-1-only claim would overstate it
    assert effect.net_kgce == pytest.approx(gas_saved_m3 * 1.2143 - float(cleaner_kwh.sum()) * 0.1229)
