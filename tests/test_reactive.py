"""The 1983 power-factor table (shared/domain.md section 5) and the reactive-power formulas."""

import pytest

from plantems.analytics.reactive import (
    capacitor_kvar,
    line_loss_reduction,
    monthly_pf,
    pf_adjustment_percent,
    size_capacitor_bank,
)

TABLE = [  # (PF, change % on the 0.90, 0.85 and 0.80 standards): rows and spot checks of the table
    (1.00, -0.75, -1.1, -1.3), (0.95, -0.75, -1.1, -1.3), (0.94, -0.60, -1.1, -1.3), (0.93, -0.45, -0.95, -1.3),
    (0.92, -0.30, -0.80, -1.3), (0.91, -0.15, -0.65, -1.15), (0.90, 0.0, -0.5, -1.0), (0.88, 1.0, -0.3, -0.8),
    (0.86, 2.0, -0.1, -0.6), (0.81, 4.5, 2.0, -0.1), (0.70, 10.0, 7.5, 5.0), (0.66, 14.0, 9.5, 7.0),
    (0.65, 15.0, 10.0, 7.5), (0.64, 17.0, 11.0, 8.0), (0.60, 25.0, 15.0, 10.0), (0.59, 27.0, 17.0, 11.0),
    (0.55, 35.0, 25.0, 15.0), (0.54, 37.0, 27.0, 17.0), (0.30, 85.0, 75.0, 65.0),
]


@pytest.mark.parametrize(("pf", "s90", "s85", "s80"), TABLE, ids=[f"pf{row[0]:.2f}" for row in TABLE])
def test_pf_table(pf, s90, s85, s80):
    assert pf_adjustment_percent(pf, 0.90) == pytest.approx(s90)
    assert pf_adjustment_percent(pf, 0.85) == pytest.approx(s85)
    assert pf_adjustment_percent(pf, 0.80) == pytest.approx(s80)


def test_unknown_standard_is_refused():
    with pytest.raises(ValueError, match=r"standard 0\.95 is not one of 0\.90, 0\.85, 0\.80"):
        pf_adjustment_percent(0.9, 0.95)


def test_monthly_pf_counts_exported_kvarh_against_it():
    assert monthly_pf(1000.0, 484.3, 0.0) == 0.9
    assert monthly_pf(1000.0, 300.0, 184.3) == 0.9  # over-compensation is penalised too
    assert monthly_pf(1000.0, 0.0, 0.0) == 1.0


def test_capacitor_and_line_loss_formulas():
    assert capacitor_kvar(1000.0, 0.80, 0.95) == pytest.approx(421.3, abs=0.1)  # domain.md: about 421 kvar
    assert capacitor_kvar(1000.0, 0.97, 0.95) == 0.0
    assert line_loss_reduction(0.78, 0.98) == pytest.approx(0.3665, abs=1e-4)  # domain.md: 36.65 %


def test_bank_sized_from_the_distribution_not_the_mean():
    # 90 light intervals need nothing; 10 heavy ones at 1 MW, PF 0.80 need 421 kvar each
    p = [100.0] * 90 + [1000.0] * 10
    q = [20.0] * 90 + [750.0] * 10
    sizing = size_capacitor_bank(p, q, pf_target=0.95)
    assert sizing.max_kvar == pytest.approx(421.3, abs=0.1)
    assert sizing.p95_kvar == pytest.approx(421.3, abs=0.1)
    assert sizing.average_kvar < 100  # the mean would buy a bank a quarter of the size
    assert size_capacitor_bank([100.0, 50.0], [-10.0, 5.0]).over_compensated_intervals == 1
