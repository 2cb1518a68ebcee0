"""Predictor series (CSV, degree-days) and versioned baselines in measures.yaml: hand-computed values,
and every bad entry named by file:line, object, value and rule."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from plantems.measures import PlantNames, load_register
from plantems.predictors import degree_days, read_series_csv
from plantems.yamlconf import ConfigError

PLANT = PlantNames(devices=frozenset({"comp-1", "fan-1"}), areas=frozenset({"utilities"}), lines=frozenset({"cast-1"}))
WEATHER = "date,temp_mean_c\n2026-07-01,30.5\n2026-07-02,18.0\n2026-07-03,12.25\n"
REGISTER = """\
predictors:
  - id: cdd18
    csv: weather.csv
    column: temp_mean_c
    unit: K·d
    valid_range: [-40, 50]
    degree_days: {kind: cooling, base_c: 18}
measures:
  - id: fan-1-vsd
    name: VSD on exhaust fan 1
    type: retrofit
    boundary: {devices: [fan-1]}
    go_live: 2026-07-03
    ipmvp_option: B
    baselines:
      - version: 1
        start: 2026-06-01
        end: 2026-06-30
        reason: first baseline, tonnage only
      - version: 2
        start: 2026-07-01
        end: 2026-07-02
        reason: refitted with cooling degree-days (the fan's load follows the weather)
        predictors: [cdd18]
        static_factors:
          - {date: 2026-07-10, description: second duct joined to fan 1, kwh_per_day: 120}
    claimed: {kwh_per_year: 196000, source: vendor offer}
"""


@pytest.mark.parametrize(("temperature_c", "kind", "base_c", "expected"), [
    (30.5, "cooling", 18.0, 12.5), (18.0, "cooling", 18.0, 0.0), (12.25, "cooling", 18.0, 0.0),
    (12.25, "heating", 18.0, 5.75), (-3.0, "heating", 15.5, 18.5), (20.0, "heating", 15.5, 0.0),
], ids=["hot", "at-base", "cool", "hdd", "frost", "no-hdd"])
def test_degree_days_by_hand(temperature_c: float, kind: str, base_c: float, expected: float) -> None:
    assert degree_days(temperature_c, kind=kind, base_c=base_c) == expected  # type: ignore[arg-type]


def test_a_weather_csv_becomes_cooling_degree_days(tmp_path: Path) -> None:
    path = tmp_path / "weather.csv"
    path.write_text(WEATHER)
    values = read_series_csv(path, series_id="cdd18", column="temp_mean_c", degree=("cooling", 18.0))
    assert values == {date(2026, 7, 1): 12.5, date(2026, 7, 2): 0.0, date(2026, 7, 3): 0.0}
    raw = read_series_csv(path, series_id="t", column="temp_mean_c")
    assert raw[date(2026, 7, 3)] == 12.25


@pytest.mark.parametrize(("text", "expected"), [
    ("day,temp_mean_c\n2026-07-01,1\n", ":1 series 's': columns ['date'] missing; the header has ['day', "),
    ("date,temp_mean_c\n2026-07-01,1\n2026-07-32,2\n", ":3 series 's': date = '2026-07-32': must be an ISO date"),
    ("date,temp_mean_c\n2026-07-01,1\n2026-07-01,2\n", ":3 series 's': date = 2026-07-01: given twice (first on "
     "line 2)"),
    ("date,temp_mean_c\n2026-07-01,warm\n", ":2 series 's': temp_mean_c = 'warm': must be a number"),
    ("date,temp_mean_c\n2026-07-01,nan\n", ":2 series 's': temp_mean_c = 'nan': must be finite"),
    ("date,temp_mean_c\n2026-07-01,305\n", ":2 series 's': temp_mean_c = 305: outside the series' valid range "
     "[-40, 50]"),
    ("date,temp_mean_c\n", ":1 series 's': no rows"),
], ids=["no-date-column", "bad-date", "twice", "not-a-number", "nan", "out-of-range", "empty"])
def test_a_bad_csv_names_file_line_series_value_and_rule(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "weather.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        read_series_csv(path, series_id="s", column="temp_mean_c", valid_range=(-40.0, 50.0))
    assert str(info.value).startswith(f"{path}{expected}"), str(info.value)


def load(tmp_path: Path, text: str, weather: str = WEATHER):  # type: ignore[no-untyped-def]
    (tmp_path / "weather.csv").write_text(weather)
    path = tmp_path / "measures.yaml"
    path.write_text(text)
    return load_register(path, PLANT)


def test_versions_series_and_static_factors_load(tmp_path: Path) -> None:
    register = load(tmp_path, REGISTER)
    (measure,) = register.measures
    assert [v.version for v in measure.versions] == [1, 2]
    assert measure.in_force.version == 2 and measure.in_force.predictors == ("cdd18",)
    (change,) = measure.in_force.static_factors
    assert (change.date, change.kwh_per_day, change.percent) == (date(2026, 7, 10), 120.0, None)
    assert register.series("cdd18")[date(2026, 7, 1)] == 12.5


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("predictors: [cdd18]", "predictors: [hdd]",
     ":24 measure 'fan-1-vsd': ['hdd'] not among the register's predictors ['cdd18']"),
    ("      - version: 2\n", "      - version: 1\n",
     ":20 measure 'fan-1-vsd': version = 1: versions must increase; the one before is version 1"),
    ("reason: first baseline, tonnage only", "reason: ''",
     ":19 measure 'fan-1-vsd': reason = '': every baseline version needs its reason"),
    ("date: 2026-07-10", "date: 2026-07-02",
     ":26 measure 'fan-1-vsd': date = datetime.date(2026, 7, 2): on or before the baseline's end 2026-07-02"),
    ("kwh_per_day: 120", "kwh_per_day: 120, percent: 5",
     ":26 measure 'fan-1-vsd': a static-factor change needs either kwh_per_day"),
    ("id: cdd18", "id: output_t", ":2 predictor 'output_t': id = 'output_t': 'output_t' is the tonnage"),
    ("end: 2026-07-02\n", "end: 2026-07-05\n",
     ":22 measure 'fan-1-vsd': end = datetime.date(2026, 7, 5): the baseline period must end before go_live"),
], ids=["unknown-predictor", "version-order", "no-reason", "change-in-baseline", "both-amounts",
        "reserved-id", "version-after-go-live"])
def test_a_bad_version_names_line_object_value_and_rule(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in REGISTER
    with pytest.raises(ConfigError) as info:
        load(tmp_path, REGISTER.replace(old, new, 1))
    (problem,) = info.value.problems
    assert problem.startswith(f"{tmp_path / 'measures.yaml'}:"), problem
    assert expected in problem, problem


def test_baseline_and_baselines_together_are_refused(tmp_path: Path) -> None:
    text = REGISTER.replace("    baselines:\n", "    baseline: {start: 2026-06-01, end: 2026-06-30}\n    baselines:\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert "give either baseline (one period) or baselines (its versions), exactly one" in info.value.problems[0]


def test_a_bad_series_file_refuses_the_register(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, REGISTER, weather=WEATHER + "2026-07-04,91\n")
    assert info.value.problems == [f"{tmp_path / 'weather.csv'}:5 series 'cdd18': temp_mean_c = 91: outside the "
                                   "series' valid range [-40, 50]"]


def test_plantems_quarter_refuses_a_register_with_a_bad_series(tmp_path: Path) -> None:
    """Exit 2 and the CSV's file:line, before anything is read or written."""
    from click.testing import CliRunner

    from plantems.cli import main
    from tests.support import copy_reference_data, write_plant

    body = ("devices:\n  - {id: fan-1, area: utilities, kind: exhaust_fan, meter: eastron_sdm630, host: 127.0.0.1,"
            " port: 1502, unit_id: 3, rated_kw: 160}\nproduction_lines:\n  - {id: cast-1, areas: [utilities]}\n")
    path = write_plant(tmp_path, influx_url="http://127.0.0.1:9", db="unused", body=body, init=False)
    copy_reference_data(tmp_path)
    (tmp_path / "weather.csv").write_text(WEATHER + "2026-07-04,hot\n")
    (tmp_path / "measures.yaml").write_text(REGISTER)
    result = CliRunner().invoke(main, ["quarter", "--config", str(path), "--quarter", "2026Q3",
                                       "--reports", str(tmp_path / "reports")])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'weather.csv'}:5 series 'cdd18': temp_mean_c = 'hot': must be a number" in result.output
    assert not (tmp_path / "reports").exists()
