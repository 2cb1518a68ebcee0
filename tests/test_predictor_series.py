"""An InfluxDB field as a predictor: hourly samples in a real InfluxDB -> daily mean or sum per local day
(Asia/Shanghai midnights, not UTC's), degree-days by hand, a day outside the valid range left out."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from plantems.analytics.predictor_series import daily_values, read_influx_series, register_series
from plantems.config import load_plant
from plantems.influx import InfluxClient, V1Writer
from plantems.localservers import free_port
from plantems.measures import PlantNames, load_register
from tests.support import write_plant

TZ = ZoneInfo("Asia/Shanghai")
BODY = """\
production_lines:
  - {{id: roll-1, areas: [util]}}
gateways:
  - {{id: gw, host: 127.0.0.1, port: {gw}, timeout_s: 0.5}}
devices:
  - {{id: fan-1, area: util, kind: exhaust_fan, meter: eastron_sdm630, gateway: gw, unit_id: 3, rated_kw: 160}}
"""
REGISTER = """\
predictors:
  - id: cdd18
    influx: {measurement: weather, field: temp_c, tags: {station: roof}}
    valid_range: [-20, 45]
    degree_days: {kind: cooling, base_c: 18}
  - {id: shifts, influx: {measurement: shift_log, field: shifts, aggregate: sum}}
measures:
  - id: fan-1-vsd
    name: VSD on exhaust fan 1
    type: retrofit
    boundary: {devices: [fan-1]}
    go_live: 2026-10-04
    ipmvp_option: B
    baseline: {start: 2026-10-01, end: 2026-10-03}
    claimed: {kwh_per_year: 1000, source: test}
"""
# local day -> the 24 hourly temperatures: Oct 1 warm (mean 24), Oct 2 at 18, Oct 3 a broken sensor (mean 80)
HOURS = {date(2026, 10, 1): [20.0] * 12 + [28.0] * 12, date(2026, 10, 2): [18.0] * 24,
         date(2026, 10, 3): [80.0] * 24}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, influx_url: str):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("predictorseries")
    path = write_plant(tmp, influx_url=influx_url, db="predictordb", body=BODY.format(gw=free_port()))
    plant = load_plant(path)
    lines = []
    for day, temperatures in HOURS.items():
        for hour, temp in enumerate(temperatures):
            t = int(datetime(day.year, day.month, day.day, hour, 30, tzinfo=TZ).timestamp()) * 10**9
            lines.append(f"weather,site=testsite,station=roof temp_c={temp!r} {t}")
            lines.append(f"weather,site=testsite,station=yard temp_c=-5.0 {t}")  # another station: not read
            lines.append(f"weather,site=othersite,station=roof temp_c=-5.0 {t}")  # another site: not read
        for hour in (7, 15, 23):  # three shifts a day, logged at their start
            t = int(datetime(day.year, day.month, day.day, hour, tzinfo=TZ).timestamp()) * 10**9
            lines.append(f"shift_log,site=testsite shifts=1.0 {t}")
    V1Writer(plant.influxdb).write("predictordb", lines)
    (tmp / "measures.yaml").write_text(REGISTER)
    return plant, load_register(tmp / "measures.yaml", PlantNames.of(plant))


def test_daily_means_and_sums_per_local_day(site) -> None:  # type: ignore[no-untyped-def]
    plant, register = site
    weather, shifts = register.predictors
    client = InfluxClient(plant.influxdb)
    assert weather.influx is not None and shifts.influx is not None
    means = read_influx_series(client, plant, weather.influx, date(2026, 10, 1), date(2026, 10, 3))
    assert means == {date(2026, 10, 1): pytest.approx(24.0), date(2026, 10, 2): pytest.approx(18.0),
                     date(2026, 10, 3): pytest.approx(80.0)}
    sums = read_influx_series(client, plant, shifts.influx, date(2026, 10, 1), date(2026, 10, 3))
    assert sums == {date(2026, 10, d): pytest.approx(3.0) for d in (1, 2, 3)}


def test_degree_days_and_a_broken_day_left_out(site, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    plant, register = site
    with caplog.at_level(logging.ERROR):
        series = register_series(register, InfluxClient(plant.influxdb), plant, date(2026, 10, 1), date(2026, 10, 3))
    assert series["cdd18"] == {date(2026, 10, 1): pytest.approx(6.0), date(2026, 10, 2): pytest.approx(0.0)}
    assert "predictor cdd18: 1 day(s) outside its valid range [-20.0, 45.0] left out: 2026-10-03 80" in caplog.text
    assert series["shifts"][date(2026, 10, 2)] == pytest.approx(3.0)


def test_a_predictor_needs_exactly_one_source(tmp_path: Path) -> None:
    from plantems.yamlconf import ConfigError

    (tmp_path / "measures.yaml").write_text(REGISTER.replace("    influx: {measurement: weather",
                                                             "    csv: w.csv\n    influx: {measurement: weather"))
    with pytest.raises(ConfigError) as info:
        load_register(tmp_path / "measures.yaml", PlantNames(frozenset({"fan-1"}), frozenset({"util"}),
                                                             frozenset({"roll-1"})))
    (problem,) = info.value.problems
    assert ":3 predictor 'cdd18': csv = 'w.csv': a predictor needs either csv (with column) or influx" in problem
    assert daily_values(register_predictor(), {date(2026, 1, 1): 10.0}) == {date(2026, 1, 1): 8.0}


def register_predictor():  # type: ignore[no-untyped-def]
    from plantems.measures import PredictorSeries

    return PredictorSeries.model_validate({"id": "hdd18", "influx": {"measurement": "w", "field": "t"},
                                           "degree_days": {"kind": "heating", "base_c": 18}})
