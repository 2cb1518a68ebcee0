"""The measures register: the demo file loads against the demo plant; bad entries name file:line, value, rule."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from plantems.config import load_plant
from plantems.measures import PlantNames, load_measures, load_register
from plantems.reference import builtin
from plantems.yamlconf import ConfigError

PLANT = PlantNames(devices=frozenset({"comp-1", "fan-1"}), areas=frozenset({"utilities", "casting"}),
                   lines=frozenset({"cast-1"}))
GOOD = """\
measures:
  - id: fan-1-vsd
    name: VSD on exhaust fan 1
    type: retrofit
    boundary: {devices: [fan-1]}
    go_live: 2026-06-15
    ipmvp_option: B
    baseline: {start: 2025-06-01, end: 2026-05-31}
    claimed: {kwh_per_year: 196000, source: vendor offer}
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "measures.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_measures(path, PLANT)
    return info.value.problems


def test_the_demo_register_loads_against_the_demo_plant() -> None:
    plant = load_plant(builtin("plant.demo.yaml"))
    measures = load_measures(builtin("measures.yaml"), PlantNames.of(plant))
    by_id = {m.id: m for m in measures}
    assert set(by_id) == {"air-pressure-0.5bar", "fan-1-vsd", "furnace-to-electric-cleaning"}
    furnace = by_id["furnace-to-electric-cleaning"]
    assert furnace.type == "fuel_switch"
    assert furnace.claimed.t_co2e_per_year == 800
    assert furnace.claimed.gas_m3_per_year is not None and furnace.claimed.gas_m3_per_year > 0
    assert furnace.claimed.kwh_per_year is not None and furnace.claimed.kwh_per_year < 0  # electricity added
    air = by_id["air-pressure-0.5bar"]
    assert air.ipmvp_option == "B" and "air-1" in air.boundary.devices
    assert air.non_routine_adjustments[0].start == date(2027, 1, 1)
    register = load_register(builtin("measures.yaml"), PlantNames.of(plant))
    assert register.enpi_baseline is not None and register.enpi_baseline.start == date(2026, 10, 1)


def test_an_enpi_baseline_needs_its_order_and_reason(tmp_path: Path) -> None:
    reversed_period = problems(tmp_path, GOOD + "enpi_baseline: {start: 2026-03-01, end: 2026-02-01, reason: demo}\n")
    assert reversed_period == [f"{tmp_path / 'measures.yaml'}:10 enpi_baseline: end = datetime.date(2026, 2, 1): "
                               "end 2026-02-01 must be after start 2026-03-01"]
    (no_reason,) = problems(tmp_path, GOOD + "enpi_baseline: {start: 2026-01-01, end: 2026-02-01, reason: x}\n")
    assert no_reason.endswith(":10 enpi_baseline: reason = 'x': String should have at least 3 characters")


def test_a_good_entry_loads(tmp_path: Path) -> None:
    path = tmp_path / "measures.yaml"
    path.write_text(GOOD)
    (measure,) = load_measures(path, PLANT)
    assert (measure.id, measure.go_live, measure.claimed.kwh_per_year) == ("fan-1-vsd", date(2026, 6, 15), 196000)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("devices: [fan-1]", "devices: [fan-9]",
     ":5 measure 'fan-1-vsd': devices ['fan-9'] not in the plant; its devices: ['comp-1', 'fan-1']"),
    ("boundary: {devices: [fan-1]}", "boundary: {areas: [utilities]}",
     ":5 measure 'fan-1-vsd': devices: IPMVP option B (retrofit isolation) needs the measure's own meters"),
    ("end: 2026-05-31", "end: 2026-06-30",
     ":8 measure 'fan-1-vsd': end = datetime.date(2026, 6, 30): the baseline period must end before go_live"),
    ("start: 2025-06-01", "start: 2026-06-01", ":8 measure 'fan-1-vsd': end = datetime.date(2026, 5, 31): end "
     "2026-05-31 must be after start 2026-06-01"),
    ("type: retrofit", "type: fuel_switch", ":9 measure 'fan-1-vsd': gas_m3_per_year: a fuel switch claims both sides"),
    ("ipmvp_option: B", "ipmvp_option: A", ":7 measure 'fan-1-vsd': ipmvp_option = 'A': Input should be 'B' or 'C'"),
    ("source: vendor offer", "source: ''", ":9 measure 'fan-1-vsd': source = '': String should have at least 1"),
    ("kwh_per_year: 196000", "kwh_per_yr: 196000", ":9 measure 'fan-1-vsd': kwh_per_yr = 196000: unknown key"),
], ids=["unknown-device", "option-b-no-meter", "baseline-after-go-live", "baseline-order", "fuel-switch-one-side",
        "option", "no-source", "typo"])
def test_a_bad_entry_names_line_measure_value_and_rule(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    (problem,) = problems(tmp_path, GOOD.replace(old, new))
    assert problem.startswith(f"{tmp_path / 'measures.yaml'}:"), problem
    assert expected in problem, problem


def test_non_routine_adjustments_need_an_amount_a_note_and_the_reporting_period(tmp_path: Path) -> None:
    base = GOOD + "    non_routine_adjustments:\n"
    (no_note,) = problems(tmp_path, base + "      - {start: 2026-08-01, kwh_per_month: 900}\n")
    assert ":11 measure 'fan-1-vsd': note: Field required" in no_note
    (no_amount,) = problems(tmp_path, base + "      - {start: 2026-08-01, note: second fan duct added}\n")
    assert "needs kwh_per_month or gas_m3_per_month" in no_amount
    (early,) = problems(tmp_path, base + "      - {start: 2026-01-01, kwh_per_month: 900, note: duct}\n")
    assert "start = datetime.date(2026, 1, 1): before go_live 2026-06-15" in early


def test_an_empty_register_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "measures: []\n")
    assert problem.endswith(":1: no measures: list at least one, or remove the file"), problem


def test_a_measure_id_given_twice_is_refused(tmp_path: Path) -> None:
    twice = GOOD + GOOD.removeprefix("measures:\n")
    (problem,) = problems(tmp_path, twice)
    assert ":10 measure 'fan-1-vsd': id = 'fan-1-vsd': duplicate measure id 'fan-1-vsd' (first defined as " \
           "measures[0])" in problem


def test_non_routine_adjustments_by_month(tmp_path: Path) -> None:
    path = tmp_path / "measures.yaml"
    path.write_text(GOOD + "    non_routine_adjustments:\n"
                    "      - {start: 2026-08-15, end: 2026-10-01, kwh_per_month: 900, note: temporary duct}\n"
                    "      - {start: 2026-10-01, kwh_per_month: 400, gas_m3_per_month: 10, note: second duct}\n")
    (measure,) = load_measures(path, PLANT)
    assert measure.non_routine_in_month(2026, 7) == (0.0, 0.0, ())
    assert measure.non_routine_in_month(2026, 8) == (900.0, 0.0, ("temporary duct",))
    assert measure.non_routine_in_month(2026, 10) == (1300.0, 10.0, ("temporary duct", "second duct"))
    assert measure.non_routine_in_month(2026, 11) == (400.0, 10.0, ("second duct",))
    assert measure.non_routine_in_month(2027, 12) == (400.0, 10.0, ("second duct",))  # December's end wraps


def test_a_register_belongs_to_its_site_and_a_wrong_one_refuses_to_start(tmp_path: Path) -> None:
    """Two parks' plant files share a folder: the register with `site: changsha` is Changsha's; Changde's
    plant leaves it alone (rather than refusing it for naming devices it lacks), and check-config says so.
    A wrong register of the site itself refuses check-config, analyze and simulate at start (exit 2)."""
    from click.testing import CliRunner

    from plantems.cli import main
    from plantems.measures import site_register
    from tests.support import copy_reference_data

    copy_reference_data(tmp_path)
    for name in ("plant.demo.yaml", "plant.changde.yaml", "measures.yaml", "weather.changsha.csv"):
        (tmp_path / name).write_text(builtin(name).read_text())
    changsha, changde = (load_plant(tmp_path / name) for name in ("plant.demo.yaml", "plant.changde.yaml"))
    own = site_register(tmp_path, "changsha", PlantNames.of(changsha))
    assert own is not None and own.site == "changsha" and len(own.measures) == 3
    assert site_register(tmp_path, "changde", PlantNames.of(changde)) is None
    runner = CliRunner()
    result = runner.invoke(main, ["check-config", str(tmp_path / "plant.changde.yaml")])
    assert result.exit_code == 0 and "another site's register" in result.output, result.output
    # Changsha's register names a device Changsha does not have: refused, with the file's line
    text = (tmp_path / "measures.yaml").read_text()
    (tmp_path / "measures.yaml").write_text(text.replace("devices: [fan-1]}", "devices: [fan-9]}", 1))
    line = 1 + text[:text.index("devices: [fan-1]}")].count("\n")
    for command in (["check-config", str(tmp_path / "plant.demo.yaml")],
                    ["analyze", "--config", str(tmp_path / "plant.demo.yaml")],
                    ["simulate", "--config", str(tmp_path / "plant.demo.yaml")]):
        result = runner.invoke(main, command)
        assert result.exit_code == 2, (command, result.output)
        assert f"measures.yaml:{line} " in result.output and "fan-9" in result.output, result.output
    assert site_register(tmp_path, "changde", PlantNames.of(changde)) is None  # still not Changde's concern
