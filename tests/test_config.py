"""Bad configuration refuses to start with one clear message: file:line, object, value, rule."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantems.cli import main
from plantems.config import load_plant
from plantems.yamlconf import ConfigError

GOOD = """\
site: {id: cs, timezone: Asia/Shanghai}
gateways:
  - {id: gw-a, host: 127.0.0.1, port: 1502}
devices:
  - {id: mill-1, area: cold, kind: cold_mill, meter: chint_dtsu666, max_kw: 60, gateway: gw-a, unit_id: 1}
  - {id: fan-7, area: util, kind: exhaust_fan, meter: acrel_adw300, rated_kw: 90, gateway: gw-a, unit_id: 3}
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "plant.yaml"
    path.write_text(text)
    return load_plant(path), path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.problems


def test_good_config_loads(tmp_path):
    plant, _ = load(tmp_path, GOOD)
    assert [d.id for d in plant.devices] == ["mill-1", "fan-7"]
    assert plant.gateway_of(plant.devices[1]).endpoint == "127.0.0.1:1502"
    assert len(plant.config_sha256) == 64


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.replace("unit_id: 3", "unit_id: 3, colour: red"),
     r"plant.yaml:6 device 'fan-7': colour = 'red': unknown key"),
    (lambda t: t.replace("id: fan-7", "id: mill-1"),
     r"plant.yaml:6 device 'mill-1': id = 'mill-1': duplicate device id 'mill-1' \(first defined as devices\[0\]\)"),
    (lambda t: t.replace("unit_id: 3", "unit_id: 1"),
     r"plant.yaml:6 device 'fan-7': unit_id = 1: unit_id 1 is already used by 'mill-1' on gateway 'gw-a'"),
    (lambda t: t.replace("meter: acrel_adw300", "meter: acrel_adw999"),
     r"plant.yaml:6 device 'fan-7': meter = 'acrel_adw999': unknown meter model 'acrel_adw999'; known: .*"
     r"chint_dtsu666"),
    (lambda t: t.replace("gateway: gw-a, unit_id: 3", "gateway: gw-b, unit_id: 3"),
     r"plant.yaml:6 device 'fan-7': gateway = 'gw-b': unknown gateway 'gw-b'; defined: \['gw-a'\]"),
    (lambda t: t.replace("timezone: Asia/Shanghai", "timezone: Asia/Changsha"),
     r"plant.yaml:1 site 'cs': timezone = 'Asia/Changsha': unknown IANA timezone"),
    (lambda t: t.replace("kind: exhaust_fan", "kind: fan"),
     r"plant.yaml:6 device 'fan-7': kind = 'fan': Input should be 'incomer'"),
    (lambda t: t.replace(", max_kw: 60", ""),
     r"plant.yaml:5 device 'mill-1': max_kw: required for a device with an energy counter: give max_kw"),
    (lambda t: t.replace(", max_kw: 60", ", max_kw: 0"),
     r"plant.yaml:5 device 'mill-1': max_kw = 0: Input should be greater than 0"),
    (lambda t: t + "influxdb: {password: hunter2}\n",
     r"plant.yaml:7 influxdb: password = <hidden>: a secret is never written in the config: "
     r"give \{env: VARIABLE\} or \{file: PATH\}$"),
], ids=["unknown-key", "duplicate-device", "duplicate-unit-id", "unknown-meter", "unknown-gateway",
        "bad-timezone", "bad-kind", "no-max-kw", "zero-max-kw", "literal-secret"])
def test_one_clear_message(tmp_path, edit, expected):
    found = problems(tmp_path, edit(GOOD))
    assert len(found) == 1, found
    assert re.search(expected, found[0]), found[0]
    assert "hunter2" not in found[0]


def test_overlapping_registers_in_a_user_meter(tmp_path):
    meters = tmp_path / "meters"
    meters.mkdir()
    (meters / "acme_x1.yaml").write_text(
        "vendor: ACME\nmodel: X1\ndatasheet: ACME X1 manual p. 3\n"
        "registers:\n"
        "  - {quantity: p_kw, address: 10}\n"
        "  - {quantity: q_kvar, address: 11}\n")
    text = "meters_dirs: [meters]\n" + GOOD.replace("meter: acrel_adw300", "meter: acme_x1")
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].startswith(f"{meters / 'acme_x1.yaml'}:6: ")
    assert "address = 11: registers overlap: 11 lies inside p_kw at 10..11 (holding)" in found[0]


def test_cli_refuses_bad_config_with_exit_2(tmp_path):
    path = tmp_path / "plant.yaml"
    path.write_text(GOOD.replace("unit_id: 3", "unit_id: 1"))
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "unit_id 1 is already used by 'mill-1'" in result.output


def test_check_config_prints_planned_reads(tmp_path):
    path = tmp_path / "plant.yaml"
    path.write_text(GOOD)
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    # DTSU666: the 0x10xx energy block and the 0x2000 block, each read whole (max_gap_fill 40)
    assert "mill-1       chint_dtsu666      127.0.0.1:1502 unit 1 every 1 s: 2 reads/poll " \
           "[FC3 4126+52, FC3 8192+70]" in result.output


def test_secret_from_env_and_file(tmp_path, monkeypatch):
    (tmp_path / "pw").write_text("s3cret\n")
    plant, _ = load(tmp_path, GOOD + "influxdb: {username: u, password: {file: pw}, token: {env: PLANTEMS_T}}\n")
    assert plant.influxdb.password is not None
    with pytest.raises(ConfigError, match="environment variable PLANTEMS_T is not set"):
        plant.influxdb.token.resolve()
    monkeypatch.setenv("PLANTEMS_T", "tok")
    assert plant.influxdb.token.resolve().get_secret_value() == "tok"
    assert "tok" not in repr(plant.influxdb.token.resolve())


DEMAND = GOOD + """\
demand:
  groups: [{id: grid, meters: [mill-1], limit_kw: 5000}]
alerts:
  channels:
    - {id: mail, type: email, host: 127.0.0.1, sender: a@b}
  shifts:
    - {id: day, start: "08:00", end: "20:00", notify: {mail: [lead@plant]}}
    - {id: night, start: "20:00", end: "08:00", notify: {mail: [lead@plant]}}
"""


def test_demand_and_roster_load(tmp_path):
    from datetime import time

    plant, _ = load(tmp_path, DEMAND)
    assert plant.demand.groups[0].levels[1].at == 1.0
    assert plant.alerts.shift_at(time(23, 30)).id == "night" and plant.alerts.shift_at(time(8, 0)).id == "day"


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.replace("meters: [mill-1]", "meters: [mill-9]"),
     r"plant.yaml:8 group 'grid': unknown device 'mill-9'; a billing group sums configured meters"),
    (lambda t: t.replace('end: "08:00"', 'end: "07:00"'),
     r"no shift is on duty at 07:00; the roster must cover the whole day"),
    (lambda t: t.replace('start: "20:00"', 'start: "19:00"'),
     r"shift 'night' overlaps shift 'day' at 19:00"),
    (lambda t: t.replace("notify: {mail: [lead@plant]}}\n    - {id: night", "notify: {pager: []}}\n    - {id: night"),
     r"unknown channel 'pager'; defined: \['mail'\]"),
    (lambda t: t.replace("notify: {mail: [lead@plant]}}\n    - {id: night", "notify: {mail: []}}\n    - {id: night"),
     r"e-mail channel 'mail' needs at least one address"),
    (lambda t: t.replace("sender: a@b}", "sender: a@b, password: hunter2}"),
     r"plant.yaml:11 channel 'mail': password: a secret is never written in the config"),
    (lambda t: t.replace("unit_id: 3}", "unit_id: 3, shift_windows: [\"22:00-06:00\"]}"),
     r"plant.yaml:6 device 'fan-7': shift_windows needs shiftable: true"),
    (lambda t: t.replace("unit_id: 3}", "unit_id: 3, shiftable: true, shift_windows: [\"22:00-25:00\"]}"),
     r"device 'fan-7'.*'25:00' is not a time of day"),
], ids=["unknown-meter", "roster-gap", "roster-overlap", "unknown-channel", "mail-without-address", "literal-secret",
        "windows-not-shiftable", "bad-window"])
def test_demand_and_alerts_refuse_with_one_clear_message(tmp_path, edit, expected):
    found = problems(tmp_path, edit(DEMAND))
    assert len(found) == 1, found
    assert re.search(expected, found[0]), found[0]
    assert "hunter2" not in found[0]
