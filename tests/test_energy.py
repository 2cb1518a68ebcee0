"""15-minute energy from counters: hand-computed cases."""

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from plantems.analytics.energy import CounterSpec, energy_from_counter, energy_from_power, interval_edges

SH = ZoneInfo("Asia/Shanghai")
T0 = 1_794_931_200 * 10**9  # 2026-11-18T00:00:00+08:00
MIN = 60 * 10**9


def minutes(*ms):
    return np.array([T0 + int(m * MIN) for m in ms], dtype=np.int64)


def run(times, values, spec=None, span_min=30, **kw):
    edges = interval_edges(T0, T0 + span_min * MIN, SH)
    frame = energy_from_counter(times, np.array(values, dtype=float), edges, spec=spec or CounterSpec(), **kw)
    return list(np.round(frame["energy"], 6)), list(np.round(frame["coverage"], 6)), frame.attrs["resets"]


def test_edges_align_to_the_local_quarter_hour():
    edges = interval_edges(T0 + 7 * MIN, T0 + 31 * MIN, SH)
    assert list((edges - T0) // MIN) == [0, 15, 30, 45]


@pytest.mark.parametrize(("times", "values", "spec", "energy", "coverage", "resets"), [
    (minutes(*range(31)), list(range(31)), CounterSpec(), [15, 15], [1, 1], 0),
    (minutes(0, 5, 10, 15, 20), [42949672.90, 42949672.94, 0.02, 0.06, 0.10], CounterSpec(rollover=42949672.96),
     [0.12, 0.04], [1, 1 / 3], 0),
    (minutes(0, 10, 20), [99999999.5, 0.5, 1.5], CounterSpec(rollover=1e8), [1.5, 0.5], [0, 0], 0),
    (minutes(0, 5, 10, 20), [5000.0, 5001.0, 3.0, 5.0], CounterSpec(), [5.0, 1.0], [2 / 3, 0], 1),
    (minutes(0, 5, 10, 20, 25, 30), [0, 5, 10, 20, 25, 30], CounterSpec(), [15, 15], [2 / 3, 2 / 3], 0),
    (minutes(0, 10, 20, 30), [0, 10, 20, 30], CounterSpec(), [15, 15], [0, 0], 0),
    (minutes(10, 0, 5, 5, 15), [10, 0, 4, 5, 15], CounterSpec(), [15, 0], [1, 0], 0),
], ids=["steady", "rollover-2^32-x0.01", "rollover-decimal-max", "meter-replaced", "gap-across-boundary",
        "sparse-samples", "duplicates-and-out-of-order"])
def test_counter_cases(times, values, spec, energy, coverage, resets):
    got_energy, got_coverage, got_resets = run(times, values, spec, max_gap_s=300)  # samples 5 min apart count
    assert got_energy == pytest.approx(energy)
    assert got_coverage == pytest.approx(coverage)
    assert got_resets == resets


def test_total_is_exact_across_a_long_gap():
    times = minutes(0, 1, 2, 50, 51, 52)
    values = [100.0, 101.0, 102.0, 150.0, 151.0, 152.0]
    edges = interval_edges(T0, T0 + 60 * MIN, SH)
    frame = energy_from_counter(times, np.array(values), edges)
    assert frame["energy"].sum() == pytest.approx(52.0)  # every kWh the counter moved is somewhere
    assert frame["coverage"].tolist()[1:3] == [0.0, 0.0]  # ...but the middle intervals say they guessed


def test_power_integration_fallback():
    times = minutes(*range(16))
    frame = energy_from_power(times, np.full(16, 60.0), interval_edges(T0, T0 + 15 * MIN, SH))
    assert frame["energy"].tolist() == pytest.approx([15.0])
    assert frame["coverage"].tolist() == pytest.approx([1.0])


@pytest.mark.parametrize(("tz", "day", "count"), [
    ("Europe/Berlin", "2026-03-29", 92), ("Europe/Berlin", "2026-10-25", 100), ("Asia/Shanghai", "2026-03-29", 96),
], ids=["spring-forward", "fall-back", "no-dst"])
def test_a_local_day_has_92_96_or_100_intervals(tz, day, count):
    import pandas as pd

    zone = ZoneInfo(tz)
    start = pd.Timestamp(day, tz=zone)
    end = pd.Timestamp(pd.Timestamp(day) + pd.Timedelta(days=1), tz=zone)  # next local midnight
    edges = interval_edges(start.value, end.value - 1, zone)
    assert len(edges) - 1 == count


@pytest.mark.parametrize(("count", "offset_s"), [(1, 0.0), (4, 45.0), (60, 59.0)], ids=["60s-grid", "15s", "1s"])
def test_minute_buckets_become_samples_at_their_last_reading(count, offset_s):
    import pandas as pd

    from plantems.analytics.energy_job import minute_samples

    frame = pd.DataFrame({"time": [T0], "e_imp_kwh": [5.0], "n": [count]})
    out = minute_samples(frame)
    assert out["time"].tolist() == [T0 + int(offset_s * 1e9)] and out["e_imp_kwh"].tolist() == [5.0]
    assert "n" not in out


@pytest.mark.parametrize(("tz", "month", "intervals", "utc_start"), [
    ("Europe/Berlin", "2026-10", 31 * 96 + 4, "2026-09-30T22:00:00+00:00"),  # a 25-hour day inside
    ("Europe/Berlin", "2026-03", 31 * 96 - 4, "2026-02-28T23:00:00+00:00"),  # a 23-hour day inside
    ("Asia/Shanghai", "2026-10", 31 * 96, "2026-09-30T16:00:00+00:00"),
], ids=["berlin-october", "berlin-march", "shanghai"])
def test_month_boundaries_in_the_local_calendar(tz, month, intervals, utc_start):
    import pandas as pd

    from plantems.analytics.rollup import month_bounds

    start, end = month_bounds(month, ZoneInfo(tz))
    assert start.tz_convert("UTC").isoformat() == utc_start
    edges = interval_edges(start.value, end.value - 1, ZoneInfo(tz))
    assert len(edges) - 1 == intervals == int((end - start) / pd.Timedelta(minutes=15))
