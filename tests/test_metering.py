"""The meter register: config keys refused with file:line; coverage, auto-collection, calibration,
accuracy, 2030 progress and the sub-metered share against hand-computed cases."""

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from plantems.analytics.metering import compute_metering, submetered_share
from plantems.config import load_plant
from plantems.meterregister import MeteringLevel
from plantems.yamlconf import ConfigError

REPO = Path(__file__).resolve().parent.parent
L1, L2, L3 = MeteringLevel.SITE_BOUNDARY, MeteringLevel.SUB_UNIT, MeteringLevel.MAJOR_EQUIPMENT


@dataclass(frozen=True)
class Dev:
    id: str
    area: str = "a"
    kind: str = "cold_mill"
    rated_kw: float | None = None
    metering_level: MeteringLevel | None = None
    accuracy_class: str | None = None
    calibration_due: date | None = None


@dataclass(frozen=True)
class Item:
    id: str
    rated_kw: float
    metering_level: MeteringLevel = L3
    manual_meter: bool = False


ON = date(2026, 11, 30)


def test_demo_plant_register_by_hand():
    plant = load_plant(REPO / "config" / "plant.demo.yaml")
    report = compute_metering(plant.devices, plant.unmetered_equipment, on_date=ON)
    by_level = {c.level: c for c in report.levels}
    # L1: incomer-1, incomer-2, pv-1, all metered
    assert (by_level[L1].installed, by_level[L1].required, by_level[L1].meets) == (3, 3, True)
    assert by_level[L2].rate is None  # the demo declares no sub-unit meters
    # L3: 10 metered electrical machines + 2 gas meters (burners of 10,000 and 750 kW thermal input) +
    # furnace-fan-1 read by hand / those 13 + mill-3 and slitter-1; mould-clean-1 (60 kW) is below 100 kW
    assert (by_level[L3].installed, by_level[L3].required) == (13, 15)
    assert by_level[L3].rate == pytest.approx(13 / 15) and by_level[L3].meets is False  # 86.7 % < 95 %
    assert by_level[L3].missing == ("mill-3", "slitter-1")
    assert report.auto_collection_rate == pytest.approx(15 / 18)  # (3 + 12 automatic) / (3 + 15 required)
    assert [(c.device, c.days_overdue) for c in report.overdue] == [("fan-2", 61)]  # due 30 Sep
    assert report.no_due_date == ("comp-3", "fan-3")
    assert report.in_calibration_share == pytest.approx(13 / 16)  # 16 registered, fan-2 overdue, 2 undated
    assert report.accuracy_issues == () and report.unregistered == ()  # air-1 is not an energy meter
    progress = report.progress
    assert (progress.in_system, progress.total, progress.years_left) == (12, 15, 5)  # 2026..2030
    assert progress.remaining == ("mill-3", "slitter-1", "furnace-fan-1")  # a hand-read meter is not in the EMS
    assert progress.machines_per_year_needed == pytest.approx(3 / 5)
    data = report.to_json()
    assert data["levels"][2]["level"] == "major_equipment" and data["overdue"][0]["due"] == "2026-09-30"


def test_thresholds_accuracy_and_unregistered_by_hand():
    devices = [
        Dev("i1", kind="incomer", metering_level=L1, accuracy_class="0.2S", calibration_due=date(2027, 1, 1)),
        Dev("i2", kind="incomer", metering_level=L1, accuracy_class="1", calibration_due=ON),  # due today: valid
        Dev("i3", kind="incomer", metering_level=L1),
        Dev("f1", kind="feeder", metering_level=L2, rated_kw=None, calibration_due=date(2026, 11, 29)),
        Dev("small", metering_level=L3, rated_kw=50),  # extra meter on a 50 kW motor: counts nowhere
        Dev("m1", metering_level=L3, rated_kw=100),  # exactly the threshold: needs a meter
        Dev("loose", kind="pump", rated_kw=120),  # no metering_level: outside the register
        Dev("out", kind="production"),
    ]
    unmetered = [Item("shop-x", rated_kw=8, metering_level=L2), Item("shop-y", rated_kw=40, metering_level=L2),
                 Item("m9", rated_kw=99.9), Item("m8", rated_kw=400, manual_meter=True)]
    report = compute_metering(devices, unmetered, on_date=ON)
    by_level = {c.level: c for c in report.levels}
    assert (by_level[L2].installed, by_level[L2].required, by_level[L2].missing) == (1, 2, ("shop-y",))
    assert (by_level[L3].installed, by_level[L3].manual, by_level[L3].required) == (2, 1, 2)
    assert by_level[L3].meets is True
    assert report.required_total == 3 + 2 + 2
    assert report.auto_collection_rate == pytest.approx((3 + 1 + 1) / 7)  # m8 is read by hand
    assert report.below_threshold == ("shop-x", "m9")
    assert report.accuracy_issues == (("i2", "1"), ("i3", None))  # worse than 0.5S, or unknown
    assert report.unregistered == ("loose",)
    assert [c.device for c in report.overdue] == ["f1"] and report.overdue[0].days_overdue == 1
    assert report.registered == 6 and report.in_calibration_share == pytest.approx(2 / 6)
    # machines >= 100 kW: m1, loose in the EMS; m8 (hand-read) remains; m9 is below 100 kW
    assert (report.progress.in_system, report.progress.total) == (2, 3)


def test_progress_after_the_target_year_has_no_rate():
    report = compute_metering([Dev("m1", metering_level=L3, rated_kw=300)], [Item("m2", rated_kw=300)],
                              on_date=date(2031, 1, 15))
    assert report.progress.years_left == 0 and report.progress.machines_per_year_needed is None


def test_submetered_share_counts_each_kwh_once():
    devices = [
        Dev("i1", area="sub", kind="incomer", metering_level=L1), Dev("pv", area="roof", kind="pv", metering_level=L1),
        Dev("f1", area="A", kind="feeder", metering_level=L2), Dev("m1", area="A", metering_level=L3),
        Dev("m2", area="B", metering_level=L3), Dev("m3", area="B", metering_level=L3),
        Dev("m4", area="C", metering_level=L3), Dev("x", area="B"),
    ]
    kwh = {"i1": 600.0, "pv": 400.0, "f1": 500.0, "m1": 300.0, "m2": 100.0, "m3": 50.0, "x": 999.0}
    result = submetered_share(devices, kwh)
    # area A by its sub-unit meter (m1 is inside it), area B by its machines; x is not registered
    assert (result.site_kwh, result.submetered_kwh) == (1000.0, 650.0)
    assert result.share == pytest.approx(0.65)
    assert result.missing_kwh == ("m4",)
    assert result.to_json()["share"] == pytest.approx(0.65)


GOOD = """\
site: {id: cs}
devices:
  - {id: in-1, area: sub, kind: incomer, meter: chint_dtsu666, max_kw: 900, host: 127.0.0.1,
     metering_level: site_boundary, accuracy_class: 0.5S, ct_ratio: 2000/5, pt_ratio: 10000/100,
     calibration_due: 2028-06-30}
  - {id: mill-1, area: cold, kind: cold_mill, meter: chint_dtsu666, rated_kw: 300, host: 127.0.0.2,
     metering_level: major_equipment, accuracy_class: 1.0}
unmetered_equipment:
  - {id: mill-2, name: Cold mill 2, name_zh: 2号冷轧机, area: cold, rated_kw: 2500}
"""


def load(tmp_path, text):
    path = tmp_path / "plant.yaml"
    path.write_text(text)
    return load_plant(path)


def test_register_keys_load(tmp_path):
    plant = load(tmp_path, GOOD)
    incomer, mill = plant.devices
    assert (incomer.metering_level, incomer.accuracy_class, incomer.calibration_due) == (
        L1, "0.5S", date(2028, 6, 30))
    assert incomer.meter_multiplier == pytest.approx(400 * 100)
    assert mill.accuracy_class == "1" and mill.meter_multiplier == 1.0
    assert plant.unmetered_equipment[0].metering_level is L3 and not plant.unmetered_equipment[0].manual_meter


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("accuracy_class: 0.5S", "accuracy_class: 0.7",
     r"plant.yaml:4 device 'in-1': accuracy_class = 0.7: accuracy class 0.7 is not one of 0.2S, 0.2, 0.5S"),
    ("ct_ratio: 2000/5", "ct_ratio: 400",
     r"plant.yaml:4 device 'in-1': ct_ratio = 400: ratio '400' is not PRIMARY/SECONDARY with positive numbers"),
    ("pt_ratio: 10000/100", "pt_ratio: 10kV/100V",
     r"plant.yaml:4 device 'in-1': pt_ratio = '10kV/100V': ratio '10kV/100V' is not PRIMARY/SECONDARY"),
    ("metering_level: major_equipment", "metering_level: L3",
     r"plant.yaml:7 device 'mill-1': metering_level = 'L3': Input should be 'site_boundary', 'sub_unit'"),
    ("calibration_due: 2028-06-30", "calibration_due: 2028-06-31",
     r"plant.yaml:5: '2028-06-31': not a valid date \(day is out of range for month\)"),
    ("id: mill-2,", "id: mill-1,",
     r"plant.yaml:9 unmetered_equipment 'mill-1': id = 'mill-1': 'mill-1' is a device under devices: \(metered\)"),
    ("rated_kw: 2500", "rated_kw: 0",
     r"plant.yaml:9 unmetered_equipment 'mill-2': rated_kw = 0: Input should be greater than 0"),
    ("rated_kw: 2500}", "rated_kw: 2500, kw: 3}",
     r"plant.yaml:9 unmetered_equipment 'mill-2': kw = 3: unknown key"),
], ids=["accuracy", "ct-number", "pt-text", "level", "due-date", "clash", "rated-kw", "unknown-key"])
def test_bad_register_keys_are_refused_with_file_line(tmp_path, old, new, expected):
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        load(tmp_path, GOOD.replace(old, new))
    assert len(info.value.problems) == 1
    assert re.search(expected, info.value.problems[0]), info.value.problems[0]
