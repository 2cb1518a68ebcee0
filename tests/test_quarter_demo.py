"""The demo's measures recovered end to end: simulator back-fill -> energy_15m -> `plantems quarter`.

The expected savings come from the simulator's own model: the same plant simulated without the
measures (the counterfactual) minus with them, integrated over the reporting days."""

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from plantems.config import load_plant
from plantems.influx import V1Writer, init_databases
from plantems.localservers import free_port
from plantems.simulator.economy import Economy, economy_for, line_output_t
from plantems.simulator.plant import SimulatedPlant
from tests.quarter_support import TZ, local_s, model_kwh, simulated_quarter
from tests.support import copy_reference_data, write_plant

BODY = """\
production_lines:
  - {{id: roll-1, areas: [util]}}
gateways:
  - {{id: gw, host: 127.0.0.1, port: {gw}, timeout_s: 0.5}}
devices:
  - {{id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: {inc}, feeds: [util],
     max_kw: 5000}}
  - {{id: comp-1, area: util, kind: compressor, meter: eastron_sdm630, gateway: gw, unit_id: 2, rated_kw: 250}}
  - {{id: fan-1, area: util, kind: exhaust_fan, meter: eastron_sdm630, gateway: gw, unit_id: 3, rated_kw: 160}}
  - {{id: twin-gas, area: util, kind: furnace, meter: generic_gas_flow, gateway: gw, unit_id: 4, rated_kw: 750,
     max_flow_m3h: 120}}
  - {{id: clean-1, area: util, kind: furnace, meter: eastron_sdm630, gateway: gw, unit_id: 5, rated_kw: 60}}
"""
MEASURES = """\
measures:
  - id: air-pressure-0.5bar
    name: Compressed-air header pressure lowered by 0.5 bar
    type: operational
    boundary: {devices: [comp-1]}
    go_live: 2026-10-13
    ipmvp_option: B
    baseline: {start: 2026-10-01, end: 2026-10-12}
    claimed: {kwh_per_year: 60000, source: test}
  - id: fan-1-vsd
    name: Variable-speed drive on exhaust fan 1
    type: retrofit
    boundary: {devices: [fan-1]}
    go_live: 2026-10-15
    ipmvp_option: B
    baseline: {start: 2026-10-01, end: 2026-10-14}
    claimed: {kwh_per_year: 200000, source: test}
  - id: furnace-switch
    name: Twin-chamber gas furnace retired for electric mould cleaning
    type: fuel_switch
    boundary: {devices: [twin-gas, clean-1]}
    go_live: 2026-10-13
    ipmvp_option: B
    baseline: {start: 2026-10-01, end: 2026-10-12}
    claimed: {gas_m3_per_year: 370000, kwh_per_year: -300000, t_co2e_per_year: 800, source: test}
enpi_baseline: {start: 2026-10-01, end: 2026-10-12, reason: before the compressed-air measure}
"""
FIRST, LAST = date(2026, 10, 1), date(2026, 10, 22)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory, influx_url):
    tmp = tmp_path_factory.mktemp("quarterdemo")
    path = write_plant(tmp, influx_url=influx_url, db="qdemodb", body=BODY.format(gw=free_port(), inc=free_port()),
                       init=False)
    init_databases(load_plant(path).influxdb)
    copy_reference_data(tmp)
    (tmp / "measures.yaml").write_text(MEASURES)
    plant = load_plant(path)
    economy = economy_for(plant, tmp)
    assert economy is not None and {m.measure_id for m in economy.measures} == {"air-pressure-0.5bar", "fan-1-vsd",
                                                                                 "furnace-switch"}
    report = simulated_quarter(plant, path, economy, FIRST, LAST)
    return plant, report


@pytest.mark.parametrize(("measure", "device", "go_live", "share"),
                         [("air-pressure-0.5bar", "comp-1", date(2026, 10, 13), 1 - 0.5 * 0.07),
                          ("fan-1-vsd", "fan-1", date(2026, 10, 15), 0.75)])
def test_demo_measures_are_recovered_within_their_uncertainty(demo_report, measure, device, go_live, share):
    plant, report = demo_report
    with_measures = SimulatedPlant(plant, economy=economy_for_test(plant, with_measures=True))
    without = SimulatedPlant(plant, economy=economy_for_test(plant, with_measures=False))
    actual = model_kwh(with_measures, device, go_live, LAST)
    counterfactual = model_kwh(without, device, go_live, LAST)
    true_saving = counterfactual - actual
    assert true_saving == pytest.approx((1 - share) * counterfactual, rel=1e-9)  # the built-in size
    (result,) = [m for m in report["measures"] if m["id"] == measure]
    (power,) = result["carriers"]
    assert power["verified"], power
    assert power["baseline"]["coefficients"]["output_t"]["value"] > 0  # energy follows the daily tonnage
    # within the stated 90 % band (a 68 % band is missed by one result in three, by definition)
    assert abs(power["saving"] - true_saving) <= power["uncertainty_90pct"], (power["saving"], true_saving)
    assert power["uncertainty_68pct"] < 0.5 * true_saving  # G14's acceptance
    # normalisation does real work: before-vs-after daily means, blind to tonnage, miss by more
    start = date.fromisoformat(power["baseline"]["period"][0])
    before_per_day = model_kwh(with_measures, device, start, go_live - timedelta(days=1)) / (go_live - start).days
    naive = before_per_day * ((LAST - go_live).days + 1) - actual
    assert abs(naive - true_saving) > 2 * abs(power["saving"] - true_saving)


def economy_for_test(plant, *, with_measures: bool) -> Economy:
    economy = economy_for(plant, plant.source_path.parent)
    assert economy is not None
    return economy if with_measures else Economy(plant, ())


def test_normalisation_does_real_work(demo_report):
    """The daily tonnage varies, and the raw compressor energy with it: without normalising for it the
    before/after comparison would mistake a low-output week for a saving (or hide one)."""
    _, report = demo_report
    tonnes = [line_output_t(0, FIRST + timedelta(days=n)) for n in range(22)]
    assert max(tonnes) / min(tonnes) > 1.3
    (site,) = [e for e in report["enpis"] if e["entity"] == "site"]
    assert site["baseline"]["valid"] and site["baseline"]["r2"] > 0.5
    assert site["baseline"]["period"] == ["2026-10-01", "2026-10-12"]  # measures.yaml enpi_baseline
    assert report["provenance"]["enpi_baseline_reason"] == "before the compressed-air measure"


def test_the_nightly_job_writes_the_days_enpis(demo_report, influx_url):
    """DailyEnergy at 00:30: the day before's energy, then its EnPI points and its month so far."""
    from plantems.analytics.service import DailyEnergy
    from plantems.influx import InfluxClient
    from plantems.tariffs import load_tariffs
    from tests.support import rows

    plant, _ = demo_report
    tmp = plant.source_path.parent
    night = datetime(2026, 10, 23, 0, 30, tzinfo=TZ).timestamp()
    DailyEnergy(plant, load_tariffs(tmp / "tariffs"), InfluxClient(plant.influxdb), V1Writer(plant.influxdb),
                clock=lambda: night, config_dir=tmp).run()
    day = rows(influx_url, "qdemodb_derived", "SELECT * FROM enpi WHERE granularity = 'day' AND line = 'roll-1' "
                                              f"AND time = {int(local_s(LAST)) * 10**9}")
    assert len(day) == 1 and day[0]["output_t"] == pytest.approx(line_output_t(0, LAST), abs=5e-4)
    month = rows(influx_url, "qdemodb_derived", "SELECT * FROM enpi WHERE granularity = 'month' AND line = ''")
    assert len(month) == 1 and month[0]["days"] == 22 and month[0]["production_days"] == 22
    assert month[0]["production_completeness"] == pytest.approx(22 / 31)


GAS_KG_PER_M3, GRID_KG_PER_KWH = 2.162, 0.5271  # domain.md: natural gas; Central China grid 2023


def test_the_demo_fuel_switch_is_verified_net_of_the_electricity_it_adds(demo_report):
    """The retired furnace's gas is a saving (its regression baseline on tonnage against the simulator's
    counterfactual); the cleaning machine, dark before go-live, is a metered new load; the net t CO2e
    counts both (Scope 1 removed - Scope 2 added)."""
    plant, report = demo_report
    go_live = date(2026, 10, 13)
    without = SimulatedPlant(plant, economy=economy_for_test(plant, with_measures=False))
    with_measures = SimulatedPlant(plant, economy=economy_for_test(plant, with_measures=True))
    gas_saved = model_kwh(without, "twin-gas", go_live, LAST, "gas_m3h")
    assert model_kwh(with_measures, "twin-gas", go_live, LAST, "gas_m3h") == 0.0
    kwh_added = model_kwh(with_measures, "clean-1", go_live, LAST)
    before = np.arange(local_s(FIRST), local_s(go_live), 60.0)
    assert not with_measures.instantaneous(before)["clean-1"]["p_kw"].any()  # commissioned at go-live
    (switch,) = [m for m in report["measures"] if m["id"] == "furnace-switch"]
    carriers = {c["carrier"]: c for c in switch["carriers"]}
    gas, power = carriers["gas_m3"], carriers["electricity_kwh"]
    assert gas["verified"] and gas["baseline"]["coefficients"]["output_t"]["value"] > 0
    assert abs(gas["saving"] - gas_saved) <= gas["uncertainty_90pct"], (gas["saving"], gas_saved)
    assert power["method"] == "metered" and power["saving"] == pytest.approx(-kwh_added, rel=2e-3)
    true_net_t = (gas_saved * GAS_KG_PER_M3 - kwh_added * GRID_KG_PER_KWH) / 1000
    band_t = gas["uncertainty_90pct"] * GAS_KG_PER_M3 / 1000 + 2e-3 * kwh_added * GRID_KG_PER_KWH / 1000
    assert abs(switch["verified_t_co2e"] - true_net_t) <= band_t, (switch["verified_t_co2e"], true_net_t)
    assert switch["scope2_added_t_co2e"] == pytest.approx(kwh_added * GRID_KG_PER_KWH / 1000, rel=2e-3)
