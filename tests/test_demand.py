"""Demand windows against hand-computed cases; sliding is never below fixed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantems.analytics.demand import fixed_demand_kw, projected_demand_kw, sliding_demand_kw
from plantems.analytics.energy import energy_from_counter

MW_MIN = 1000.0 / 60  # kWh per minute at 1 MW


def test_constant_load():
    energy = np.full(30, MW_MIN)
    assert np.nanmax(sliding_demand_kw(energy)) == pytest.approx(1000.0)
    assert np.isnan(sliding_demand_kw(energy)[:14]).all()
    assert fixed_demand_kw(energy).tolist() == pytest.approx([1000.0, 1000.0])


def test_a_spike_across_a_block_boundary_is_seen_whole_by_the_sliding_meter():
    energy = np.full(30, MW_MIN)
    energy[12:17] = 3 * MW_MIN  # 5 minutes at 3 MW, straddling the boundary at minute 15
    # sliding: a window holds the whole spike: (5 x 50 + 10 x 16.67) kWh / 0.25 h
    assert np.nanmax(sliding_demand_kw(energy)) == pytest.approx((5 * 50 + 10 * MW_MIN) * 4)
    # fixed: 3 spike minutes in the first block, 2 in the second
    assert fixed_demand_kw(energy).tolist() == pytest.approx([(3 * 50 + 12 * MW_MIN) * 4, (2 * 50 + 13 * MW_MIN) * 4])


def test_a_window_spanning_a_data_gap_keeps_its_energy():
    t0 = 1_795_000_000 * 10**9
    minutes = [m for m in range(31) if not 10 <= m < 15]  # no samples for 5 minutes
    times = np.array([t0 + m * 60 * 10**9 for m in minutes])
    counter = np.array([m * MW_MIN for m in minutes])  # 1 MW throughout
    edges = np.array([t0 + m * 60 * 10**9 for m in range(31)])
    minute_kwh = energy_from_counter(times, counter, edges, max_gap_s=60)["energy"].to_numpy()
    assert minute_kwh[10:15] == pytest.approx([MW_MIN] * 5)  # the gap's energy, spread in time
    assert np.nanmax(sliding_demand_kw(minute_kwh)) == pytest.approx(1000.0)


def test_projection_of_the_windows_ending_soon():
    energy = np.full(15, 2 * MW_MIN)  # 2 MW for the last 15 minutes
    assert projected_demand_kw(energy, 2000.0, minutes_ahead=5) == pytest.approx(2000.0)
    # a mill starts: 5 MW now; the window ending in 5 minutes has 10 minutes at 2 MW behind it
    assert projected_demand_kw(energy, 5000.0, minutes_ahead=5) == pytest.approx((10 * 2 * MW_MIN + 5000 / 12) * 4)
    assert projected_demand_kw(energy, 5000.0, minutes_ahead=15) == pytest.approx(5000.0)
    with pytest.raises(ValueError, match="minutes_ahead 16 must be within one window"):
        projected_demand_kw(energy, 1.0, minutes_ahead=16)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=15, max_size=180),
       st.integers(min_value=0, max_value=14))
def test_sliding_maximum_is_never_below_fixed(energy, offset):
    minute_kwh = np.array(energy)
    fixed = fixed_demand_kw(minute_kwh, first_block_offset=offset)
    if len(fixed):
        assert np.nanmax(sliding_demand_kw(minute_kwh)) >= fixed.max() - 1e-9
