"""Ratio EnPIs by day and month: hand-computed kWh/t, kgce/t (GB/T 2589) and t CO2e/t."""

from __future__ import annotations

from datetime import date

import pytest

from plantems.analytics.enpi import CoalCoefficients, DayUse, compute_enpis, kgce_per_m3_from_lhv

CALORIFIC = CoalCoefficients(basis="calorific", electricity_kgce_per_kwh=0.1229, gas_kgce_per_m3=1.2143,
                             source="GB/T 2589-2008 Annex A via DB43/T 612-2015")
DAYS = [
    DayUse("cast-1", date(2027, 3, 1), electricity_kwh=10_000, gas_m3=100, output_t=50, scope1_t_co2e=0.2162,
           scope2_t_co2e=5.271),
    DayUse("cast-1", date(2027, 3, 2), electricity_kwh=20_000, gas_m3=0, output_t=150, scope1_t_co2e=0.0,
           scope2_t_co2e=10.542),
    DayUse("cast-1", date(2027, 4, 1), electricity_kwh=8_000, gas_m3=0, output_t=0, scope1_t_co2e=0.0,
           scope2_t_co2e=4.2168),
]


def test_a_month_divides_its_sums_never_averages_daily_ratios() -> None:
    march, april = compute_enpis(DAYS, period="month", coefficients=CALORIFIC)
    assert (march.entity, march.period, march.days) == ("cast-1", "2027-03", 2)
    assert march.kwh_per_t == pytest.approx(150.0)  # 30,000 / 200, not (200 + 133.3) / 2
    assert march.gas_m3_per_t == pytest.approx(0.5)
    assert march.kgce == pytest.approx(30_000 * 0.1229 + 100 * 1.2143)  # 3,808.43
    assert march.kgce_per_t == pytest.approx(3808.43 / 200)
    assert march.t_co2e_per_t == pytest.approx((0.2162 + 15.813) / 200)
    assert march.basis == "calorific"
    # April has energy but no output: no ratio rather than infinity, and its energy is still counted
    assert april.kwh_per_t is None and april.kgce_per_t is None and april.t_co2e_per_t is None
    assert april.electricity_kwh == 8_000


def test_days_keep_their_own_ratios() -> None:
    day1, day2, _ = compute_enpis(DAYS, period="day", coefficients=CALORIFIC)
    assert (day1.period, day1.kwh_per_t) == ("2027-03-01", pytest.approx(200.0))
    assert (day2.period, day2.kwh_per_t) == ("2027-03-02", pytest.approx(20_000 / 150))


def test_the_domain_check_215_gwh_is_about_26400_tce() -> None:
    (year,) = compute_enpis([DayUse("site", date(2027, 1, 1), electricity_kwh=215e6, gas_m3=0, output_t=1,
                                    scope1_t_co2e=0, scope2_t_co2e=0)], period="month", coefficients=CALORIFIC)
    assert year.kgce / 1000 == pytest.approx(26_400, rel=0.001)


def test_a_day_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="cast-1 2027-03-01: given twice"):
        compute_enpis([*DAYS, DAYS[0]], period="month", coefficients=CALORIFIC)


def test_negative_or_missing_values_are_refused() -> None:
    with pytest.raises(ValueError, match="roll-1 2027-03-01: output_t = -1: must be a finite value >= 0"):
        DayUse("roll-1", date(2027, 3, 1), electricity_kwh=1, gas_m3=0, output_t=-1, scope1_t_co2e=0,
               scope2_t_co2e=0)
    with pytest.raises(ValueError, match="gas_m3 = nan"):
        DayUse("roll-1", date(2027, 3, 1), electricity_kwh=1, gas_m3=float("nan"), output_t=1, scope1_t_co2e=0,
               scope2_t_co2e=0)


def test_gas_coefficient_from_the_suppliers_lhv() -> None:
    # 8,500 kcal/m3 x 4.1868 kJ/kcal = 35,587.8 kJ/m3 -> the Annex A gas-field value 1.2143 kgce/m3
    assert kgce_per_m3_from_lhv(35_587.8) == pytest.approx(1.2143, abs=1e-4)
    with pytest.raises(ValueError, match=r"LHV 35\.6 kJ/m3 is outside"):
        kgce_per_m3_from_lhv(35.6)  # given in MJ


def test_a_primary_basis_names_its_year() -> None:
    with pytest.raises(ValueError, match="needs the year"):
        CoalCoefficients(basis="primary", electricity_kgce_per_kwh=0.302, gas_kgce_per_m3=1.2143, source="NBS")
    with pytest.raises(ValueError, match="implausible"):
        CoalCoefficients(basis="calorific", electricity_kgce_per_kwh=122.9, gas_kgce_per_m3=1.2143, source="x")
