"""15-minute energy from counters: hand-computed cases, and the judge of every counter step."""

from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from plantems.analytics.energy import (
    CounterSpec,
    coverage_from_holes,
    energy_from_counter,
    energy_from_power,
    interval_edges,
    judge_counter,
)

SH = ZoneInfo("Asia/Shanghai")
T0 = 1_794_931_200 * 10**9  # 2026-11-18T00:00:00+08:00
MIN = 60 * 10**9
SEC = 10**9
U32 = 2**32 * 0.01  # a uint32 register of 0.01 kWh wraps here
KW60 = CounterSpec(max_per_h=120.0)  # 60 kW loads below, judged against 120 kW


def minutes(*ms):
    return np.array([T0 + int(m * MIN) for m in ms], dtype=np.int64)


def run(times, values, spec=None, span_min=30, **kw):
    edges = interval_edges(T0, T0 + span_min * MIN, SH)
    frame = energy_from_counter(times, np.array(values, dtype=float), edges, spec=spec or CounterSpec(), **kw)
    return frame


def test_edges_align_to_the_local_quarter_hour():
    edges = interval_edges(T0 + 7 * MIN, T0 + 31 * MIN, SH)
    assert list((edges - T0) // MIN) == [0, 15, 30, 45]


@pytest.mark.parametrize(("times", "values", "spec", "energy", "coverage", "wraps"), [
    (minutes(*range(31)), list(range(31)), KW60, [15, 15], [1, 1], 0),
    (minutes(0, 5, 10, 15, 20), [U32 - 0.06, U32 - 0.02, 0.02, 0.06, 0.10], CounterSpec((U32,), 120.0),
     [0.12, 0.04], [1, 1 / 3], 1),
    (minutes(0, 10, 20), [99999999.5, 0.5, 1.5], CounterSpec((1e8,), 120.0), [1.5, 0.5], [0, 0], 1),
    (minutes(0, 10, 20), [99999999.5, 0.5, 1.5], CounterSpec((1e8,)), [1.5, 0.5], [0, 0], 1),
    (minutes(0, 5, 10, 20, 25, 30), [0, 5, 10, 20, 25, 30], KW60, [15, 15], [2 / 3, 2 / 3], 0),
    (minutes(0, 10, 20, 30), [0, 10, 20, 30], KW60, [15, 15], [0, 0], 0),
    (minutes(10, 0, 5, 5, 15), [10, 0, 4, 5, 15], KW60, [15, 0], [1, 0], 0),
], ids=["steady", "rollover-2^32-x0.01", "rollover-decimal-max", "rollover-without-max-kw", "gap-across-boundary",
        "sparse-samples", "duplicates-and-out-of-order"])
def test_counter_cases(times, values, spec, energy, coverage, wraps):
    frame = run(times, values, spec, max_gap_s=300)  # samples 5 min apart count as covered
    assert frame["energy"].tolist() == pytest.approx(energy)
    assert frame["coverage"].tolist() == pytest.approx(coverage)
    assert frame.attrs["wraps"] == wraps
    assert frame["rejected"].sum() == frame["replaced"].sum() == 0


def sixty_kw(glitch_at: int, reading: float) -> tuple[np.ndarray, np.ndarray]:
    """31 one-minute samples of a counter at 60 kW (1 kWh/min) from 12.3 million kWh, one of them odd."""
    values = 12_300_000.0 + np.arange(31.0)
    values[glitch_at] = reading
    return minutes(*range(31)), values


@pytest.mark.parametrize(("glitch_at", "reading", "rejected"), [
    (7, 0.0, [1, 0]), (20, 1e9, [0, 1]), (29, 0.0, [0, 1]), (30, 0.0, [0, 0]),
], ids=["zero", "spike", "zero-near-the-end", "zero-last-undecided"])
def test_a_glitch_sample_is_rejected_and_counted_never_energy(glitch_at, reading, rejected):
    times, values = sixty_kw(glitch_at, reading)
    frame = run(times, values, CounterSpec((U32,), 120.0))
    # the glitch's neighbours are 2 minutes apart and the counter is linear between them: 1 kWh/min throughout,
    # except the last sample: undecided (no later sample), rejected for now, so the counter ends at minute 29
    total = 29.0 if glitch_at == 30 else 30.0
    assert frame["energy"].tolist() == pytest.approx([15.0, total - 15.0])
    assert frame["rejected"].tolist() == rejected
    assert frame.attrs["rejected"] == 1 and frame.attrs["replaced"] == 0 and frame.attrs["wraps"] == 0


def test_a_replaced_meter_counts_from_its_first_reading():
    # 30,000,000 kWh meter on a uint32 x 0.01 register: a "wrap" would add 12.9 GWh in a minute
    values = [30_000_000.0 + m if m < 10 else 5.0 + (m - 10) for m in range(31)]
    frame = run(minutes(*range(31)), values, CounterSpec((U32,), 120.0))
    # minutes 0-9: 9 kWh on the old meter; the step onto the new one adds 0; minutes 10-30: 20 kWh on the new one
    assert frame["energy"].tolist() == pytest.approx([9.0 + 5.0, 15.0])
    assert frame["replaced"].tolist() == [1, 0] and frame["rejected"].tolist() == [0, 0]
    assert frame.attrs["wraps"] == 0


def test_a_new_meter_reading_higher_is_a_replacement_too():
    values = [5.0 + m if m < 20 else 9_000_000.0 + (m - 20) for m in range(31)]
    frame = run(minutes(*range(31)), values, CounterSpec((U32,), 120.0))
    assert frame["energy"].tolist() == pytest.approx([15.0, 4.0 + 10.0])
    assert frame["replaced"].tolist() == [0, 1]


def test_summed_tariff_registers_wrap_one_at_a_time():
    # Siemens PAC3200 style: import = T1 + T2, each its own uint32 x 0.01 register. T1 counts (1 kWh/min)
    # and wraps at minute 5; T2 (off-peak register) stands at 1,000 kWh.
    t1 = np.array([(U32 - 5.0 + m) % U32 for m in range(31)])
    summed = t1 + 1000.0
    frame = run(minutes(*range(31)), summed, CounterSpec((U32, U32), 120.0))
    assert frame["energy"].tolist() == pytest.approx([15.0, 15.0], abs=1e-6)
    assert frame.attrs["wraps"] == 1 and frame["replaced"].sum() == 0


def test_one_summed_register_reset_adds_nothing():
    # T2 (12,000 kWh, idle) is reset to 0 at minute 12 while T1 counts 1 kWh/min
    summed = np.array([500.0 + m + (12_000.0 if m < 12 else 0.0) for m in range(31)])
    frame = run(minutes(*range(31)), summed, CounterSpec((U32, U32), 120.0))
    # the step 11 -> 12 (1 kWh of T1) is the one lost to the reset: 29 kWh of 30
    assert frame["energy"].tolist() == pytest.approx([14.0, 15.0])
    assert frame["replaced"].tolist() == [1, 0]


def test_jitter_of_a_float32_register_is_no_drop():
    values = np.array([1_000_000.0 + m for m in range(31)], dtype=float)
    values[10] = values[9] - 0.1  # float32 resolution at 1e6 kWh is 0.0625: a re-read an ulp or two lower
    steps = judge_counter(minutes(*range(31)), values, CounterSpec((U32,), 120.0))
    assert len(steps.rejected_ns) == len(steps.replaced_ns) == 0 and steps.energy.sum() == pytest.approx(30.0)
    values[10] = values[9] - 5.0  # beyond the tolerance (2.5e-7 of the reading, 2 ulps): a glitch
    steps = judge_counter(minutes(*range(31)), values, CounterSpec((U32,), 120.0))
    assert len(steps.rejected_ns) == 1 and steps.energy.sum() == pytest.approx(30.0)


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Europe/Berlin"])
def test_a_gap_across_midnight_and_month_end_lands_in_both_days(tz):
    zone = ZoneInfo(tz)
    nov30, dec1, dec2 = (pd.Timestamp(d, tz=zone).value for d in ("2026-11-30", "2026-12-01", "2026-12-02"))
    # 1-minute samples at 200 kW (3.333 kWh/min) from 23:00 Nov 30 to 01:00 Dec 1; silent from 23:40 to 00:20
    grid = np.arange(dec1 - 60 * MIN, dec1 + 60 * MIN + 1, MIN)
    times = grid[(grid <= dec1 - 20 * MIN) | (grid >= dec1 + 20 * MIN)]
    values = 5_000.0 + (times - grid[0]) / MIN * 200.0 / 60
    spec = CounterSpec((U32,), 300.0)
    days = [energy_from_counter(times, values, interval_edges(a, b - 1, zone), spec=spec)
            for a, b in ((nov30, dec1), (dec1, dec2))]
    # each day reads all samples (the job reads the ones at its edges); the sum is the counter difference
    assert days[0]["energy"].sum() + days[1]["energy"].sum() == pytest.approx(values[-1] - values[0])
    # ... and each day has its own side of the gap: 60 minutes before midnight, 60 after
    assert days[0]["energy"].sum() == pytest.approx(200.0)
    assert days[1]["energy"].sum() == pytest.approx(200.0)
    # the gap is interpolated: 20 minutes on each side of midnight, coverage says so
    assert days[0]["interp"].sum() == days[1]["interp"].sum() == pytest.approx(20 * 200 / 60)
    assert days[0]["coverage"].to_numpy()[-2:].tolist() == pytest.approx([2 / 3, 0.0])
    assert days[1]["coverage"].to_numpy()[:2].tolist() == pytest.approx([0.0, 2 / 3])


def test_total_is_exact_across_a_long_gap():
    times = minutes(0, 1, 2, 50, 51, 52)
    values = [100.0, 101.0, 102.0, 150.0, 151.0, 152.0]
    edges = interval_edges(T0, T0 + 60 * MIN, SH)
    frame = energy_from_counter(times, np.array(values), edges, spec=KW60)
    assert frame["energy"].sum() == pytest.approx(52.0)  # every kWh the counter moved is somewhere
    assert frame["coverage"].tolist()[1:3] == [0.0, 0.0]  # ...but the middle intervals say they guessed
    assert frame["interp"].sum() == pytest.approx(48.0)  # 102 -> 150 over 48 minutes


def every(step_s: float, start_s: float, end_s: float, *, missing: tuple[int, ...] = ()) -> np.ndarray:
    times = T0 + (np.arange(start_s, end_s + step_s / 2, step_s) * SEC).astype(np.int64)
    return np.delete(times, list(missing))


@pytest.mark.parametrize(("times", "max_gap_s", "coverage"), [
    (every(1, 0, 1800, missing=(400,)), 60, [1.0, 1.0]),  # one missed 1-s poll: a 2-s gap is covered
    (every(15, 0, 1800, missing=tuple(range(7, 121, 100))), 60, [1.0, 1.0]),  # 15-s polls, 1 % missed
    (every(1, 180, 480), 60, [300 / 900, 0.0]),  # a 5-minute run
    (every(1, 890, 910), 60, [10 / 900, 10 / 900]),  # a 20-s run across the boundary
    (every(120, 0, 1800), 300, [1.0, 1.0]),  # 2-min polls: threshold 3 polls = 6 min
], ids=["1s-one-missed", "15s-1pc-missed", "short-run", "short-run-across-edge", "slow-poll"])
def test_coverage_is_the_share_with_samples_close_enough(times, max_gap_s, coverage):
    values = (times - T0) / SEC / 60.0  # 60 kW
    frame = run(times, values, KW60, max_gap_s=max_gap_s)
    assert frame["coverage"].tolist() == pytest.approx(coverage, abs=1e-9)


def test_coverage_from_holes_by_hand():
    edges = np.array([0, 900, 1800]) * SEC
    # samples from 100 s to 1700 s, holes 200-500 s and 850-1000 s
    got = coverage_from_holes(edges, first_ns=100 * SEC, last_ns=1700 * SEC,
                              hole_start_ns=np.array([850, 200]) * SEC, hole_end_ns=np.array([1000, 500]) * SEC)
    assert got.tolist() == pytest.approx([(800 - 300 - 50) / 900, (800 - 100) / 900])
    assert coverage_from_holes(edges, first_ns=None, last_ns=None, hole_start_ns=np.array([]),
                               hole_end_ns=np.array([])).tolist() == [0.0, 0.0]


def test_power_integration_fallback():
    times = minutes(*range(16))
    frame = energy_from_power(times, np.full(16, 60.0), interval_edges(T0, T0 + 15 * MIN, SH))
    assert frame["energy"].tolist() == pytest.approx([15.0])
    assert frame["coverage"].tolist() == pytest.approx([1.0])


PLANT = """\
site: {id: t, timezone: Asia/Shanghai}
devices:
  - {id: pv, area: roof, kind: pv, meter: generic_float32, host: 127.0.0.1, rated_kw: 400}
"""


def test_an_export_only_interval_in_a_gap_is_written(tmp_path: Path):
    from plantems.analytics.energy_job import compute_energy_15m
    from plantems.config import load_plant
    from plantems.schema import Field

    (tmp_path / "plant.yaml").write_text(PLANT)
    plant = load_plant(tmp_path / "plant.yaml")
    # PV exports 240 kW (4 kWh/min); the meter is silent from minute 10 to minute 50; import stands still
    times = minutes(*range(11), *range(50, 61))
    export = (times - T0) / MIN * 4.0
    frame = pd.DataFrame({"time": times, Field.E_IMP_KWH.value: 77.0, Field.E_EXP_KWH.value: 1000.0 + export})
    from plantems.tariffs import load_tariffs
    from tests.support import REPO

    tariffs = load_tariffs(REPO / "config" / "tariffs")
    points = compute_energy_15m(plant, tariffs, {"pv": frame}, T0, T0 + 60 * MIN)
    assert [(p.time_ns - T0) // MIN for p in points] == [0, 15, 30, 45]  # the two gap-only intervals too
    export_kwh = [p.fields[Field.ENERGY_EXP_KWH.value] for p in points]
    assert export_kwh == pytest.approx([60.0, 60.0, 60.0, 60.0])
    assert [p.fields[Field.COVERAGE.value] for p in points] == pytest.approx([10 / 15, 0.0, 0.0, 10 / 15])
    assert all(p.fields[Field.ENERGY_KWH.value] == 0.0 for p in points)


@pytest.mark.parametrize("glitch_s", [17 * 60, 20 * 60], ids=["3-min-ago", "the-newest-sample"])
def test_the_demand_monitor_ignores_a_glitch(glitch_s):
    from plantems.analytics.alerts import DemandAlerter, DemandReading, Level
    from plantems.analytics.demand_job import evaluate_group, minute_energy_kwh
    from plantems.schema import Field

    # an incomer at 6,000 kW (100 kWh/min) from 12.3 million kWh, 1-s samples; one reads 0, 3 minutes ago
    times = every(1, 0, 20 * 60)
    counter = 12_300_000.0 + (times - T0) / SEC * 6000.0 / 3600
    counter[glitch_s] = 0.0
    frame = pd.DataFrame({"time": times, Field.E_IMP_KWH.value: counter, Field.P_KW.value: 6000.0})
    edges = T0 + np.arange(5, 21) * MIN  # the last 15 complete minutes
    kwh, coverage = minute_energy_kwh(frame, edges, max_gap_s=10.0, spec=CounterSpec((U32,), 12_000.0))
    # the newest sample, undecided, is left out for now: its last second is missing (1.7 of 1,500 kWh)
    assert kwh == pytest.approx(np.full(15, 100.0), abs=1.7) and coverage.min() >= 59 / 60
    demand, projected, _ = evaluate_group(kwh, 6000.0, method="sliding", projection_min=5, minutes_into_block=0)
    assert demand == pytest.approx(6000.0, rel=2e-3) and projected == pytest.approx(6000.0, rel=2e-3)
    alerter = DemandAlerter(site="t", group="grid", limit_kw=8000.0, levels=[Level("warning", 0.9),
                                                                          Level("critical", 1.0)])
    assert alerter.update(DemandReading(int(edges[-1]), demand, projected, 5)) == []


def test_a_meter_with_only_an_export_counter_is_written(tmp_path: Path):
    from plantems.analytics.energy_job import compute_energy_15m
    from plantems.config import load_plant
    from plantems.schema import Field
    from plantems.tariffs import load_tariffs
    from tests.support import REPO

    (tmp_path / "plant.yaml").write_text(PLANT)
    plant = load_plant(tmp_path / "plant.yaml")
    times = minutes(*range(31))
    frame = pd.DataFrame({"time": times, Field.E_EXP_KWH.value: 50.0 + (times - T0) / MIN * 2.0})  # 120 kW out
    points = compute_energy_15m(plant, load_tariffs(REPO / "config" / "tariffs"), {"pv": frame}, T0, T0 + 30 * MIN)
    assert [p.fields[Field.ENERGY_EXP_KWH.value] for p in points] == pytest.approx([30.0, 30.0])
    assert [p.fields[Field.ENERGY_KWH.value] for p in points] == [0.0, 0.0]
    assert [p.fields[Field.COVERAGE.value] for p in points] == pytest.approx([1.0, 1.0])


def test_a_glitch_as_the_very_first_sample_is_rejected_not_a_replacement():
    values = 12_300_000.0 + np.arange(31.0)
    values[0] = 0.0
    frame = run(minutes(*range(31)), values, CounterSpec((U32,), 120.0))
    assert frame["energy"].tolist() == pytest.approx([14.0, 15.0])  # from minute 1 on
    assert frame["rejected"].tolist() == [1, 0] and frame["replaced"].tolist() == [0, 0]


def test_a_zero_after_a_gap_near_the_wrap_point_is_a_glitch_when_the_counter_carries_on():
    """A float32 register near its 2^32 x 0.01 wrap point: 60 kW, read every minute, a 90-minute gap, then a
    reading of 0 (through the wrap and the register's tolerance, as plausible as a wrap), then the counter
    going on from where it was: the 0 is a glitch, not a wrap followed by a new meter."""
    t_min = [*range(0, 30), 120, *range(121, 150)]
    values = [U32 - 100.0 + m for m in t_min]  # 1 kWh a minute
    values[30] = 0.0
    steps = judge_counter(minutes(*t_min), np.array(values), CounterSpec((U32,), 120.0))
    assert steps.rejected_ns.tolist() == [int(minutes(120)[0])] and steps.replaced_ns.tolist() == []
    assert steps.wraps == 0 and steps.energy.sum() == pytest.approx(149.0)  # minute 0 to 149, 1 kWh each


PAC = """\
vendor: test
model: two tariff registers
datasheet: "tests/test_energy.py"
defaults: {register_type: holding, data_type: uint32, scale: 0.01}
registers:
  - {quantity: e_imp_kwh, address: 0}
  - {quantity: e_imp_kwh, address: 2, data_type: uint64, scale: 0.1}
  - {quantity: e_exp_kwh, address: 6, data_type: float32, scale: 1}
  - {quantity: eq_imp_kvarh, address: 8}
"""


def test_every_summed_register_has_its_wrap_point_and_the_device_its_maximum(tmp_path: Path):
    from plantems.analytics.energy_job import counter_spec
    from plantems.config import load_plant
    from plantems.schema import Field

    (tmp_path / "meters").mkdir()
    (tmp_path / "meters" / "pac_t1t2.yaml").write_text(PAC)
    (tmp_path / "plant.yaml").write_text(
        "site: {id: t, plausibility_margin: 1.2}\nmeters_dirs: [meters]\ndevices:\n"
        "  - {id: inc, area: s, kind: incomer, meter: pac_t1t2, host: 127.0.0.1, rated_kw: 1000}\n"
        "  - {id: f, area: s, kind: feeder, meter: pac_t1t2, host: 127.0.0.1, port: 503, rated_kw: 9, max_kw: 900}\n")
    plant = load_plant(tmp_path / "plant.yaml")
    inc, feeder = plant.devices
    assert counter_spec(plant, inc, Field.E_IMP_KWH) == CounterSpec((2**32 * 0.01, 2**64 * 0.1), 1200.0)
    assert counter_spec(plant, inc, Field.E_EXP_KWH) == CounterSpec((), 1200.0)  # a float register: no wrap
    assert counter_spec(plant, inc, Field.EQ_IMP_KVARH) == CounterSpec((2**32 * 0.01,), 2400.0)  # kvar: twice
    assert counter_spec(plant, feeder, Field.E_IMP_KWH).max_per_h == 900.0  # max_kw as given, no margin
