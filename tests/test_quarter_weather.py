"""The demo's weather predictor end to end: the simulator's exhaust fan follows the shipped (synthetic)
Changsha temperature's cooling degree-days; back-fill -> energy_15m -> `plantems quarter` recovers the
VSD's built-in saving with a baseline on tonnage and degree-days, where tonnage alone would not.

The expected saving comes from the simulator's own model (the plant without the measure minus with
it, over the reporting days); early October is warm (CDD up to ~5.5 K·d), the second half is not."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plantems.analytics.enpi_job import CALORIFIC, read_days
from plantems.analytics.quarter import BoundaryDay, QuarterFactors, verify_measure
from plantems.analytics.quarter_job import boundary_days
from plantems.config import load_plant
from plantems.influx import InfluxClient, init_databases
from plantems.localservers import free_port
from plantems.measures import Measure
from plantems.predictors import read_series_csv
from plantems.simulator.economy import FAN_SHARE_PER_KD, Economy, economy_for, line_output_t
from plantems.simulator.plant import SimulatedPlant
from plantems.simulator.weather import changsha_mean_temperature_c
from tests.quarter_support import model_kwh, simulated_quarter
from tests.support import REPO, copy_reference_data, write_plant

BODY = """\
production_lines:
  - {{id: roll-1, areas: [util]}}
gateways:
  - {{id: gw, host: 127.0.0.1, port: {gw}, timeout_s: 0.5}}
devices:
  - {{id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: {inc}, feeds: [util],
     max_kw: 5000}}
  - {{id: fan-1, area: util, kind: exhaust_fan, meter: eastron_sdm630, gateway: gw, unit_id: 3, rated_kw: 160}}
"""
MEASURES = """\
predictors:
  - {id: cdd18, csv: weather.changsha.csv, column: temp_mean_c, valid_range: [-20, 45],
     degree_days: {kind: cooling, base_c: 18}}
measures:
  - id: fan-1-vsd
    name: Variable-speed drive on exhaust fan 1
    type: retrofit
    boundary: {devices: [fan-1]}
    go_live: 2026-10-15
    ipmvp_option: B
    baselines:
      - {version: 1, start: 2026-10-01, end: 2026-10-14, reason: tonnage only}
      - {version: 2, start: 2026-10-01, end: 2026-10-14, predictors: [cdd18], reason: the fan follows the weather}
    claimed: {kwh_per_year: 200000, source: test}
"""
FIRST, GO_LIVE, LAST = date(2026, 10, 1), date(2026, 10, 15), date(2026, 10, 31)


def test_the_shipped_weather_csv_is_the_simulators_and_has_warm_and_cool_days() -> None:
    values = read_series_csv(REPO / "config" / "weather.changsha.csv", series_id="t", column="temp_mean_c")
    days = [date(2025, 1, 1) + timedelta(days=n) for n in range(0, 4 * 365, 17)]
    assert all(values[d] == changsha_mean_temperature_c(d) for d in days)
    assert 3 < np.mean([values[date(2026, 1, d)] for d in range(1, 32)]) < 7  # January, about 4.6 °C
    assert 27 < np.mean([values[date(2026, 7, d)] for d in range(1, 32)]) < 31  # July, about 29 °C
    warm = [max(values[FIRST + timedelta(days=n)] - 18, 0) for n in range(14)]
    assert max(warm) > 4 and min(warm) == 0  # the baseline spans warm and cool days


@pytest.fixture(scope="module")
def weather_report(tmp_path_factory: pytest.TempPathFactory, influx_url: str) -> tuple[Any, Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("quarterweather")
    path = write_plant(tmp, influx_url=influx_url, db="qweatherdb",
                       body=BODY.format(gw=free_port(), inc=free_port()), init=False)
    init_databases(load_plant(path).influxdb)
    copy_reference_data(tmp)
    shutil.copy(REPO / "config" / "weather.changsha.csv", tmp / "weather.changsha.csv")
    (tmp / "measures.yaml").write_text(MEASURES)
    plant = load_plant(path)
    economy = economy_for(plant, tmp)
    assert economy is not None and economy.cooling_kd  # the fan follows the register's degree-days
    return plant, tmp, simulated_quarter(plant, path, economy, FIRST, LAST)


def true_saving(plant: Any, tmp: Path) -> float:
    with_vsd = SimulatedPlant(plant, economy=economy_for(plant, tmp))
    counterfactual = economy_for(plant, tmp)
    assert counterfactual is not None
    without = SimulatedPlant(plant, economy=Economy(plant, (), {d: kd for d, kd in _cdd(tmp).items()}))
    saving = model_kwh(without, "fan-1", GO_LIVE, LAST) - model_kwh(with_vsd, "fan-1", GO_LIVE, LAST)
    assert saving == pytest.approx(0.25 * model_kwh(without, "fan-1", GO_LIVE, LAST), rel=1e-9)  # the VSD built in
    return saving


def _cdd(tmp: Path) -> dict[date, float]:
    return dict(read_series_csv(tmp / "weather.changsha.csv", series_id="cdd18", column="temp_mean_c",
                                degree=("cooling", 18.0)))


def test_the_weather_drives_the_fan_by_its_degree_days(weather_report: tuple[Any, Path, dict[str, Any]]) -> None:
    plant, tmp, _ = weather_report
    warm_day = FIRST  # 23.5 °C: 5.5 K·d
    cdd = _cdd(tmp)
    assert cdd[warm_day] == pytest.approx(23.5 - 18)
    weather = SimulatedPlant(plant, economy=Economy(plant, (), cdd))
    still = SimulatedPlant(plant, economy=Economy(plant, ()))
    # the fan's level that day: 0.5 + 0.5 f without weather, + 0.05 x 5.5 with it
    level = 0.5 + 0.5 * line_output_t(0, warm_day) / 180.0
    ratio = model_kwh(weather, "fan-1", warm_day, warm_day) / model_kwh(still, "fan-1", warm_day, warm_day)
    assert ratio == pytest.approx((level + FAN_SHARE_PER_KD * 5.5) / level, rel=1e-5)  # the trapezoid: next day


def test_degree_days_recover_the_vsd_where_tonnage_alone_would_not(
        weather_report: tuple[Any, Path, dict[str, Any]]) -> None:
    plant, tmp, report = weather_report
    expected = true_saving(plant, tmp)
    (measure,) = report["measures"]
    (power,) = measure["carriers"]
    assert power["verified"], power
    assert power["baseline_version"] == 2 and power["baseline"]["predictors"] == ["output_t", "cdd18"]
    assert power["baseline"]["coefficients"]["cdd18"]["value"] > 0
    assert power["baseline"]["coefficients"]["cdd18"]["p_value"] < 0.1
    assert abs(power["saving"] - expected) <= power["uncertainty_90pct"], (power["saving"], expected)
    # version 1 (tonnage only) on the same days: the cooler reporting weather counted as a saving
    days = read_days(InfluxClient(plant.influxdb), plant, FIRST, LAST)
    register_measure = Measure.model_validate({**_v1_only(), "go_live": GO_LIVE})
    base = boundary_days(plant, register_measure.boundary, [d for d in days if d.day < GO_LIVE])
    after = boundary_days(plant, register_measure.boundary, [d for d in days if d.day >= GO_LIVE])
    factors = QuarterFactors(0.5271, 2.162, CALORIFIC)
    (tonnage_only,) = verify_measure(register_measure, base, after, factors).carriers
    assert tonnage_only.saving is not None and tonnage_only.saving > expected
    assert abs(tonnage_only.saving - expected) > 2 * abs(power["saving"] - expected)


def _v1_only() -> dict[str, Any]:
    return {"id": "fan-1-vsd", "name": "VSD", "type": "retrofit", "boundary": {"devices": ["fan-1"]},
            "ipmvp_option": "B", "claimed": {"kwh_per_year": 200000, "source": "test"},
            "baseline": {"start": FIRST, "end": GO_LIVE - timedelta(days=1)}}


def test_the_shipped_demo_register_recovers_the_fan_vsd_with_its_weather_baseline() -> None:
    """The demo plant's own model (no InfluxDB: the pipeline is tested above), its register's fan-1-vsd
    from go-live to the year's end: v2 (tonnage + cdd18) within its 90 % band, v1 (tonnage) further off."""
    from plantems.analytics.quarter_job import _boundary_devices, _boundary_lines
    from plantems.measures import PlantNames, load_register
    from plantems.reference import builtin

    plant = load_plant(builtin("plant.demo.yaml"))
    config_dir = builtin("plant.demo.yaml").parent
    register = load_register(config_dir / "measures.yaml", PlantNames.of(plant))
    measure = {m.id: m for m in register.measures}["fan-1-vsd"]
    economy = economy_for(plant, config_dir)
    assert economy is not None and economy.cooling_kd
    cdd = register.series("cdd18")
    with_vsd = SimulatedPlant(plant, economy=economy)
    without = SimulatedPlant(plant, economy=Economy(plant, (), cdd))
    lines = [line.id for line in plant.production_lines]
    tonnage_lines = _boundary_lines(plant, measure.boundary, _boundary_devices(plant, measure.boundary))

    def day(model: SimulatedPlant, when: date) -> BoundaryDay:
        return BoundaryDay(when, fan_kwh(model, when), 0.0,
                           sum(line_output_t(lines.index(line), when) for line in tonnage_lines), {"cdd18": cdd[when]})

    version = measure.in_force
    base = [day(with_vsd, version.start + timedelta(days=n)) for n in range((version.end - version.start).days + 1)]
    reporting = [measure.go_live + timedelta(days=n) for n in range((date(2026, 12, 31) - measure.go_live).days + 1)]
    report = [day(with_vsd, d) for d in reporting]
    expected = sum(fan_kwh(without, d) for d in reporting) - sum(d.kwh for d in report)
    factors = QuarterFactors(0.5271, 2.162, CALORIFIC)
    (weather,) = verify_measure(measure, base, report, factors).carriers
    assert weather.verified and weather.spec.version == 2 and weather.saving is not None
    assert abs(weather.saving - expected) <= (weather.uncertainty_90 or 0.0), (weather.saving, expected)
    (tonnage,) = verify_measure(Measure.model_validate({**_v1_only(), "go_live": measure.go_live,
                                                       "baseline": {"start": version.start, "end": version.end}}),
                                base, report, factors).carriers
    assert tonnage.saving is not None and abs(tonnage.saving - expected) > 2 * abs(weather.saving - expected)


def fan_kwh(model: SimulatedPlant, when: date) -> float:
    return model_kwh(model, "fan-1", when, when)
