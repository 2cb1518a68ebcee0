"""A measure's baseline on tonnage and cooling degree-days (statsmodels as the oracle), its static-factor
adjustments (hand arithmetic, logged), reporting conditions outside the baseline's range (flagged) and
days without a predictor value (left out, counted)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import statsmodels.api as sm

from plantems.analytics.enpi_job import CALORIFIC
from plantems.analytics.quarter import BoundaryDay, QuarterFactors, verify_measure
from plantems.measures import Measure

FACTORS = QuarterFactors(0.5271, 2.162, CALORIFIC)
BASE_FIRST, GO_LIVE = date(2026, 6, 1), date(2026, 7, 11)


def tonnes(k: int) -> float:
    return 100.0 + 7.0 * (k % 5) + 3.0 * (k % 3)


def cdd(k: int) -> float:
    return 1.0 + (k * 7 % 11) * 0.8  # 1.0 .. 9.0 K·d


def noise(k: int) -> float:
    return 15.0 * np.sin(1.7 * k)


def true_kwh(t: float, c: float) -> float:
    return 300.0 + 3.0 * t + 20.0 * c


def measure(static: list[dict[str, object]] | None = None) -> Measure:
    return Measure.model_validate({
        "id": "fan", "name": "fan VSD", "type": "retrofit", "boundary": {"devices": ["fan-1"]},
        "go_live": GO_LIVE, "ipmvp_option": "B", "claimed": {"kwh_per_year": 10000, "source": "test"},
        "baselines": [
            {"version": 1, "start": date(2026, 5, 1), "end": date(2026, 5, 31), "reason": "first, tonnage only"},
            {"version": 2, "start": BASE_FIRST, "end": GO_LIVE - timedelta(days=1), "predictors": ["cdd18"],
             "reason": "refitted on degree-days: the fan's load follows the weather", "static_factors": static or []}]})


def baseline_days() -> list[BoundaryDay]:
    return [BoundaryDay(BASE_FIRST + timedelta(days=k), true_kwh(tonnes(k), cdd(k)) + noise(k), 0.0, tonnes(k),
                        {"cdd18": cdd(k)}) for k in range(40)]


def reporting_days(cdd_of=cdd) -> list[BoundaryDay]:  # type: ignore[no-untyped-def]
    return [BoundaryDay(GO_LIVE + timedelta(days=k), 0.8 * true_kwh(tonnes(k + 3), cdd_of(k + 3)), 0.0, tonnes(k + 3),
                        {"cdd18": cdd_of(k + 3)}) for k in range(30)]


def oracle() -> np.ndarray:
    base = baseline_days()
    x = sm.add_constant(np.column_stack([[d.output_t for d in base], [d.conditions["cdd18"] for d in base]]))
    return np.asarray(sm.OLS(np.array([d.kwh for d in base]), x).fit().params)


def test_the_degree_day_predictor_is_fitted_and_used_as_statsmodels_does() -> None:
    b0, b_t, b_c = oracle()
    result = verify_measure(measure(), baseline_days(), reporting_days(), FACTORS)
    (power,) = result.carriers
    assert power.verified and power.baseline is not None
    assert power.baseline.predictors == ("output_t", "cdd18")
    assert [c.value for c in power.baseline.coefficients] == pytest.approx([b0, b_t, b_c], rel=1e-9)
    assert power.baseline.coefficient("cdd18").p_value < 0.1  # the weather does real work
    report = reporting_days()
    expected = sum(b0 + b_t * d.output_t + b_c * d.conditions["cdd18"] - d.kwh for d in report)  # type: ignore[operator]
    assert power.saving == pytest.approx(expected, rel=1e-9)
    data = power.to_json()
    assert data["baseline_version"] == 2 and data["baseline"]["predictors"] == ["output_t", "cdd18"]
    assert [v["version"] for v in data["baseline_versions"]] == [1, 2]
    assert [v["in_force"] for v in data["baseline_versions"]] == [False, True]
    assert data["baseline_versions"][0]["reason"] == "first, tonnage only"
    assert data["range_issues"] == []


def test_static_factor_changes_adjust_the_baseline_and_are_logged() -> None:
    """+50 kWh/day from Jul 21 (a duct joined), then +5 % of the prediction from Aug 1 (longer shifts)."""
    b0, b_t, b_c = oracle()
    changes = [{"date": date(2026, 7, 21), "description": "second duct joined", "kwh_per_day": 50},
               {"date": date(2026, 8, 1), "description": "longer shifts", "percent": 5}]
    plain = verify_measure(measure(), baseline_days(), reporting_days(), FACTORS).carriers[0]
    adjusted = verify_measure(measure(changes), baseline_days(), reporting_days(), FACTORS).carriers[0]
    report = reporting_days()
    predicted = {d.day: b0 + b_t * d.output_t + b_c * d.conditions["cdd18"] for d in report}  # type: ignore[operator]
    duct_days = [d.day for d in report if d.day >= date(2026, 7, 21)]  # Jul 21 .. Aug 9: 20 days
    shift_days = [d.day for d in report if d.day >= date(2026, 8, 1)]  # Aug 1 .. Aug 9: 9 days
    assert (len(duct_days), len(shift_days)) == (20, 9)
    shifts = sum(0.05 * predicted[day] for day in shift_days)
    assert adjusted.saving == pytest.approx((plain.saving or 0.0) + 20 * 50.0 + shifts, rel=1e-9)
    duct, shift = adjusted.adjustment_log
    assert duct["description"] == "second duct joined" and duct["baseline_version"] == 2
    assert duct["by_month"] == {"2026-07": pytest.approx(11 * 50.0), "2026-08": pytest.approx(9 * 50.0)}
    assert duct["total"] == pytest.approx(1000.0)
    assert shift["total"] == pytest.approx(shifts, rel=1e-9) and shift["percent"] == 5
    assert adjusted.non_routine_by_month == {}  # static-factor changes are logged apart from non-routine ones
    assert adjusted.to_json()["adjustment_log"][0]["total"] == pytest.approx(1000.0)


def test_reporting_weather_outside_the_baseline_range_is_flagged() -> None:
    result = verify_measure(measure(), baseline_days(), reporting_days(cdd_of=lambda k: 14.0), FACTORS)
    (power,) = result.carriers
    issues = power.to_json()["range_issues"]
    assert {i["predictor"] for i in issues} == {"cdd18"}
    assert any(i["rule"].startswith("outside the baseline range [1, 9]") for i in issues), issues
    assert all(i["reporting_mean"] == 14.0 for i in issues)


def test_days_without_a_predictor_value_are_left_out_and_counted() -> None:
    base = baseline_days()
    holes = [BoundaryDay(d.day, d.kwh, d.gas_m3, d.output_t, {} if i % 10 == 0 else d.conditions)
             for i, d in enumerate(base)]  # 4 days without weather
    result = verify_measure(measure(), holes, reporting_days(), FACTORS)
    (power,) = result.carriers
    assert power.baseline is not None and power.baseline.n == 36
    assert power.days_left_out == (4, 0)


def test_an_enpi_baseline_with_degree_days_and_a_static_change() -> None:
    """The site's EnPI: expected kWh/t at the quarter's tonnage and weather, plus 50 kWh/day from Jul 21."""
    from plantems.analytics.quarter import baseline_spec, enpi_summary
    from plantems.measures import EnpiBaseline

    b0, b_t, b_c = oracle()
    chosen = EnpiBaseline(version=3, start=BASE_FIRST, end=GO_LIVE - timedelta(days=1), predictors=("cdd18",),
                          reason="site EnB with weather",
                          static_factors=[{"date": date(2026, 7, 21), "description": "new line", "kwh_per_day": 50}])
    report = reporting_days()
    summary = enpi_summary("site", baseline_days(), report, factors=FACTORS, scope1_t=0.0, scope2_t=1.0,
                           target_t_co2e_per_t=None, spec=baseline_spec(chosen, (chosen,)))
    expected = sum(b0 + b_t * d.output_t + b_c * d.conditions["cdd18"] for d in report) + 20 * 50.0  # type: ignore[operator]
    actual = sum(d.kwh for d in report)
    output = sum(d.output_t or 0.0 for d in report)
    assert summary.expected_kwh_per_t == pytest.approx(expected / output, rel=1e-9)
    assert summary.improvement_kwh == pytest.approx(expected - actual, rel=1e-9)
    assert summary.cusum_kwh[-1][1] == pytest.approx(actual - expected, rel=1e-9)
    data = summary.to_json()
    assert data["baseline_version"] == 3 and data["baseline"]["predictors"] == ["output_t", "cdd18"]
    assert data["adjustment_log"][0]["total"] == pytest.approx(1000.0)


@pytest.mark.parametrize(("option", "baseline_days_with_data", "before_kwh", "metered"), [
    ("B", 40, 0.0, True), ("B", 40, 1.0, True), ("B", 40, 5.0, False), ("C", 40, 0.0, False), ("B", 0, 0.0, False)],
    ids=["own-meter-zero", "commissioning-runs", "already-running", "option-c", "no-baseline-data"])
def test_only_an_own_meter_that_read_next_to_nothing_makes_a_new_load(option: str, baseline_days_with_data: int,
                                                                      before_kwh: float, metered: bool) -> None:
    """A fuel switch's electric side is taken as metered (saving = its baseline mean - its use) only when
    its own meter (option B) read under 1 % of its new daily use (here 114.5 kWh) over the baseline days;
    a line's load (C), a load already running or a period without data is not new."""
    switch = Measure.model_validate({
        "id": "furnace", "name": "furnace", "type": "fuel_switch", "ipmvp_option": option, "go_live": GO_LIVE,
        "boundary": {"devices": ["cleaner"]} if option == "B" else {"lines": ["cast-1"]},
        "baseline": {"start": BASE_FIRST, "end": GO_LIVE - timedelta(days=1)},
        "claimed": {"gas_m3_per_year": 1000, "kwh_per_year": -500, "source": "test"}})
    base = [BoundaryDay(d.day, before_kwh, 500.0 + 2 * (d.output_t or 0.0) + noise(k), d.output_t)
            for k, d in enumerate(baseline_days()[:baseline_days_with_data])]
    report = [BoundaryDay(d.day, 100.0 + k, 0.0, d.output_t) for k, d in enumerate(reporting_days())]
    power = verify_measure(switch, base, report, FACTORS).carrier("electricity_kwh")
    assert power is not None
    if metered:
        assert power.verified and power.method == "metered"
        assert power.saving == pytest.approx(30 * before_kwh - sum(100.0 + k for k in range(30)))
    elif before_kwh:
        assert power.method == "regression"  # a running load has a baseline: modelled as any other
    else:
        assert not power.verified and power.saving is None
        assert power.problem == "no electricity_kwh measured in the baseline period"
