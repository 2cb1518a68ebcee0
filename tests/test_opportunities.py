"""Load shifting, maximum demand and reactive power against hand-computed numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from plantems.analytics.opportunities import (
    Opportunities,
    allowed_periods,
    device_totals,
    group_peak,
    interval_devices,
    load_shift,
    max_demand,
    reactive_power,
)
from plantems.config import load_plant
from plantems.schema import Granularity
from plantems.tariffs import Period, load_tariffs
from tests.support import REPO, write_plant

TARIFF = load_tariffs(REPO / "config" / "tariffs")[0]  # Nov: sharp 19-22, peak 8-11 & 15-19, valley 0-7 & 23-24
T0 = 1_795_000_500 * 10**9
Q = 900 * 10**9


@pytest.fixture
def plant(tmp_path: Path):
    body = """
devices:
  - {id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, feeds: [mill, util], max_kw: 20000}
  - {id: mill, area: mill, kind: cold_mill, meter: chint_dtsu666_ct, host: 127.0.0.1, port: 503, rated_kw: 3000,
     shiftable: true}
  - {id: comp, area: util, kind: compressor, meter: eastron_sdm630, host: 127.0.0.1, port: 504, rated_kw: 200,
     shiftable: true, shift_windows: ["11:00-15:00"]}
  - {id: fan, area: util, kind: exhaust_fan, meter: acrel_adw300, host: 127.0.0.1, port: 505, max_kw: 5000}
demand:
  groups: [{id: grid, meters: [inc], limit_kw: 3500, pf_standard: 0.9, pf_target: 0.95}]
"""
    return load_plant(write_plant(tmp_path, influx_url="http://127.0.0.1:1", db="x", body=body, init=False))


def test_allowed_periods_follow_the_windows_and_the_months_calendar():
    assert allowed_periods(TARIFF, 11, ()) == set(Period)
    assert allowed_periods(TARIFF, 11, ("11:00-15:00",)) == {Period.FLAT}
    assert allowed_periods(TARIFF, 11, ("22:00-08:00",)) == {Period.VALLEY, Period.FLAT}  # 22-23, 23-7, 7-8
    assert allowed_periods(TARIFF, 11, ("18:00-20:00",)) == {Period.PEAK, Period.SHARP}
    assert allowed_periods(TARIFF, 7, ("12:00-15:00",)) == {Period.VALLEY}  # summer: midday valley


def test_load_shift_saving_at_the_cheapest_allowed_period(plant):
    table = pd.DataFrame([
        {"device": "mill", "kwh_sharp": 100.0, "kwh_peak": 200.0, "cost_sharp_cny": 124.8, "cost_peak_cny": 208.0},
        {"device": "comp", "kwh_sharp": 10.0, "kwh_peak": 20.0, "cost_sharp_cny": 12.48, "cost_peak_cny": 20.8}])
    by_device = {s.device: s for s in load_shift(table, [d for d in plant.devices if d.shiftable], TARIFF, 11)}
    # mill may run any time: valley at 0.3055 -> 332.8 - 300 x 0.3055 = 241.15
    assert by_device["mill"].move_to is Period.VALLEY
    assert by_device["mill"].saving_cny == pytest.approx(241.15)
    # the compressor may only run 11-15, which is flat at 0.65 -> 33.28 - 30 x 0.65 = 13.78
    assert by_device["comp"].move_to is Period.FLAT
    assert by_device["comp"].saving_cny == pytest.approx(13.78)


def _intervals(rows: list[tuple[int, str, str, float, float, float]]) -> pd.DataFrame:
    """(interval index, device, tou, kWh, import kvarh, export kvarh) -> an energy_15m frame."""
    return pd.DataFrame([{"time": T0 + i * Q, "device": d, "tou": tou, "energy_kwh": e, "reactive_kvarh": qi,
                          "reactive_exp_kvarh": qe} for i, d, tou, e, qi, qe in rows])


def _four_intervals() -> pd.DataFrame:
    """Two valley and two peak intervals; the mill and compressor run hard in the first peak one."""
    rows = []
    for i, tou, mill, comp, fan in ((0, "valley", 100, 10, 20), (1, "valley", 100, 10, 20),
                                    (2, "peak", 700, 50, 20), (3, "peak", 300, 10, 20)):
        rows += [(i, "inc", tou, mill + comp + fan + 5, 0.7 * mill, 0), (i, "mill", tou, mill, 0.7 * mill, 0),
                 (i, "comp", tou, comp, 0, 0), (i, "fan", tou, fan, 0.2 * fan, 0)]
    return _intervals(rows)


def test_max_demand_names_its_loads_and_prices_shifting(plant):
    result = max_demand(plant, plant.demand.groups[0], _four_intervals(), TARIFF, 11).peak
    assert result is not None
    assert result.max_kw == pytest.approx((700 + 50 + 20 + 5) * 4)  # 3,100 kW in interval 2
    assert result.max_at_ns == T0 + 2 * Q and result.max_tou == "peak"
    assert [name for name, _ in result.contributors_kw] == ["mill", "comp", "fan"]
    # the mill's peak energy (1000 kWh) spreads over both valley intervals (+500 each), but the
    # compressor's windows (11-15) are flat-only and no interval here is flat: it stays
    moved = [135 + 500, 135 + 500, 775 - 700, 335 - 300]
    assert result.max_kw_if_shifted == pytest.approx(max(moved) * 4)
    assert result.reduction_kw == pytest.approx((775 - 635) * 4)
    assert result.saving_cny is None  # the draft tariff has no demand charge yet


def test_reading_only_meters_and_shiftable_loads_gives_the_same_answers(plant):
    """The rollup reads 15-minute rows only for billing meters and shiftable loads (hundreds of meters
    would not fit one query), plus month totals and each group's peak interval for the rest."""
    group, full = plant.demand.groups[0], _four_intervals()
    needed = full[full["device"].isin(interval_devices(plant))]
    assert sorted(needed["device"].unique()) == ["comp", "inc", "mill"]  # the fan is read as totals only
    peak = group_peak(plant, group, needed)
    at_peak = dict(zip(full[full["time"] == peak]["device"], full[full["time"] == peak]["energy_kwh"], strict=True))
    assert max_demand(plant, group, needed, TARIFF, 11, at_peak=at_peak) == max_demand(plant, group, full, TARIFF, 11)
    costs = {"energy_cost_cny": 1000.0, "average_price_cny_per_kwh": 0.6}
    assert (reactive_power(plant, group, needed, totals=device_totals(full), **costs)
            == reactive_power(plant, group, full, totals=device_totals(full), **costs))


def test_reactive_power_bill_adjustment_bank_and_over_compensation(plant):
    # incomer: 1000 kWh per interval; lagging 900 kvarh three times, then leading (exported) 100 at light load
    rows = [(i, "inc", "flat", 1000.0, 900.0, 0.0) for i in range(3)] + [(3, "inc", "valley", 200.0, 0.0, 100.0)]
    rows += [(i, "mill", "flat", 800.0, 850.0, 0.0) for i in range(3)] + [(3, "mill", "valley", 150.0, 40.0, 0.0)]
    frame = _intervals(rows)
    result = reactive_power(plant, plant.demand.groups[0], frame[frame["device"] == "inc"],
                            totals=device_totals(frame), energy_cost_cny=2000.0, average_price_cny_per_kwh=0.6).month
    assert result is not None
    # PF = 3200 / sqrt(3200^2 + (2700 + 100)^2) = 0.7526 -> 0.75: 15 steps below 0.90 -> +7.5 %
    assert result.pf == 0.75
    assert result.adjustment_pct == 7.5 and result.adjustment_cny == pytest.approx(150.0)
    # per interval: 4000 kW x tan(acos 0.95) = 1314.7 kvar allowed; 3600 kvar drawn -> 2285.3 needed
    assert result.capacitor_kvar_max == pytest.approx(3600 - 4000 * 0.328684, rel=1e-4)
    assert result.leading_intervals == 1 and result.leading_intervals_at_light_load == 1
    assert result.over_compensated
    assert [d.device for d in result.devices_by_pf] == ["mill"]
    # losses: 3200 - 2550 = 650 kWh; at PF 0.95 instead of 0.75: 1 - (0.75/0.95)^2 = 37.7 % of them
    assert result.losses_kwh_upper_bound == pytest.approx(650.0)
    assert result.line_loss_saving_kwh == pytest.approx(650 * (1 - (0.75 / 0.95) ** 2))
    # adjustment avoided: +7.5 % -> -0.75 % at 0.95, i.e. 8.25 % of 2000 CNY, plus the losses at 0.6 CNY/kWh
    assert result.saving_cny == pytest.approx(165.0 + result.line_loss_saving_kwh * 0.6)


def test_shifted_maximum_only_uses_the_loads_shift_windows(tmp_path: Path):
    """The compressor may only run 11:00-15:00 (flat in November). Its 100 kWh of peak energy goes to
    the two flat intervals inside that window, never to the flat interval at 22:15."""
    body = """
devices:
  - {id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, rated_kw: 5000}
  - {id: comp, area: util, kind: compressor, meter: eastron_sdm630, host: 127.0.0.1, port: 504, rated_kw: 600,
     shiftable: true, shift_windows: ["11:00-15:00"]}
  - {id: fan, area: util, kind: exhaust_fan, meter: acrel_adw300, host: 127.0.0.1, port: 505, rated_kw: 300}
demand:
  groups: [{id: grid, meters: [inc], limit_kw: 3500}]
"""
    plant = load_plant(write_plant(tmp_path, influx_url="http://127.0.0.1:1", db="x", body=body, init=False))
    rows = []
    for local, tou, comp, fan in (("03:00", "valley", 10, 20), ("12:00", "flat", 10, 20), ("16:00", "peak", 100, 20),
                                  ("22:15", "flat", 10, 60), ("14:45", "flat", 10, 20)):
        t = pd.Timestamp(f"2026-11-10 {local}", tz="Asia/Shanghai").tz_convert("UTC").value
        rows += [{"time": t, "device": "inc", "tou": tou, "energy_kwh": float(comp + fan)},
                 {"time": t, "device": "comp", "tou": tou, "energy_kwh": float(comp)},
                 {"time": t, "device": "fan", "tou": tou, "energy_kwh": float(fan)}]
    result = max_demand(plant, plant.demand.groups[0], pd.DataFrame(rows), TARIFF, 11).peak
    assert result is not None
    assert result.max_kw == 120 * 4  # 16:00, peak
    # the 100 kWh leave 16:00 (-> 20) and split over 12:00 and 14:45 (30 + 50 each); 22:15 keeps 70
    assert result.max_kw_if_shifted == pytest.approx(80 * 4)
    assert result.reduction_kw == pytest.approx((120 - 80) * 4)


def test_a_group_without_data_is_named_not_priced(plant):
    """No energy from the group's meters: rollup.json says so (as it always has), and no point is written."""
    only_fan = _four_intervals()
    only_fan = only_fan[only_fan["device"] == "fan"]
    demand = max_demand(plant, plant.demand.groups[0], only_fan, TARIFF, 11)
    reactive = reactive_power(plant, plant.demand.groups[0], only_fan, totals=device_totals(only_fan),
                              energy_cost_cny=0.0, average_price_cny_per_kwh=0.0)
    note = "no energy_15m data from the group's meters"
    assert demand.to_json() == {"group": "grid", "max_kw": None, "note": note}
    assert demand.with_sliding(None).to_json() == {"group": "grid", "max_kw": None, "note": note,
                                                   "sliding_max_kw": None}
    assert reactive.to_json() == {"group": "grid", "pf": None, "note": note}
    found = Opportunities(tariff=TARIFF.id, max_demand=(demand,), reactive=(reactive,))
    assert found.to_points(site="s", time_ns=T0, granularity=Granularity.DAY) == []


def test_points_carry_the_type_granularity_and_device(plant):
    result = max_demand(plant, plant.demand.groups[0], _four_intervals(), TARIFF, 11)
    shift = load_shift(pd.DataFrame([{"device": "mill", "kwh_sharp": 1.0, "kwh_peak": 2.0, "cost_sharp_cny": 1.248,
                                      "cost_peak_cny": 2.08}]), [d for d in plant.devices if d.shiftable], TARIFF, 11)
    points = Opportunities(tariff=TARIFF.id, load_shift=shift, max_demand=(result,)).to_points(
        site="s", time_ns=T0, granularity=Granularity.DAY)
    assert [(p.measurement, dict(p.tags)) for p in points] == [
        ("opportunity", {"site": "s", "granularity": "day", "type": "load_shift", "device": "mill"}),
        ("opportunity", {"site": "s", "granularity": "day", "type": "max_demand", "meter_group": "grid"})]
    assert points[0].fields == {"energy_kwh": 3.0, "cost_cny": pytest.approx(3.328),
                                "saving_cny": pytest.approx(3.328 - 3 * 0.3055)}
    assert "saving_cny" not in points[1].fields  # the draft tariff has no demand charge: nothing to price
