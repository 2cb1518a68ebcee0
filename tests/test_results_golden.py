"""The typed results reproduce what the dict-based code produced: rollup.json key for key and value for
value (site consolidation reads it), and the same `scope2` and `opportunity` points. The golden files
were written by the dict-based code (tests/golden/capture_old.py.txt) from the month in typed_fixture."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from plantems.analytics.opportunity_job import month_opportunities
from plantems.analytics.report import write_report
from plantems.analytics.rollup import Rollup, compute_rollup, month_bounds
from plantems.config import PlantConfig
from plantems.factors import load_factors
from plantems.lineproto import format_line
from plantems.schema import Granularity
from plantems.targets import load_targets
from plantems.tariffs import load_tariffs
from tests import typed_fixture as fx
from tests.support import REPO

GOLDEN = Path(__file__).parent / "golden"
TARIFFS = load_tariffs(REPO / "config" / "tariffs")


@pytest.fixture
def plant(tmp_path: Path) -> PlantConfig:
    return fx.plant(tmp_path)


def month(plant: PlantConfig) -> Rollup:
    data = fx.month_data()
    rollup = compute_rollup(plant, fx.MONTH, data, tariffs=TARIFFS,
                            factors=load_factors(REPO / "config" / "emission_factors.yaml"), ledger=fx.ledger(),
                            targets=load_targets(REPO / "config" / "targets.yaml"), as_of=fx.AS_OF)
    rollup = dataclasses.replace(rollup, provenance=dataclasses.replace(rollup.provenance, restates=fx.RESTATES))
    found = month_opportunities(plant, rollup, data.intervals, TARIFFS, air_m3=fx.AIR_M3, air_bar=fx.AIR_BAR)
    found = dataclasses.replace(found, max_demand=tuple(m.with_sliding(fx.SLIDING_MAX_KW.get(m.group))
                                                        for m in found.max_demand))
    return dataclasses.replace(rollup, opportunities=found)


def test_rollup_json_is_the_documented_document(plant, tmp_path):
    write_report(month(plant), tmp_path)
    text = (tmp_path / "rollup.json").read_text()
    # the config file's hash depends on the test's temporary paths: the golden file has a placeholder
    assert text.replace(plant.config_sha256, "CONFIG_SHA256") == (GOLDEN / "rollup.json").read_text()


def test_golden_covers_every_kind_of_result():
    """The comparison above means something: the golden month has each result with figures in it."""
    report = json.loads((GOLDEN / "rollup.json").read_text())
    found = report["opportunities"]
    assert [len(found[k]) for k in ("load_shift", "max_demand", "reactive", "compressed_air")] == [2, 1, 1, 1]
    assert found["max_demand"][0]["sliding_max_kw"] == 3210.0 and found["reactive"][0]["devices_by_pf"]
    assert set(report["lines"]) == {"cast-1", "roll-1"} and report["provenance"]["restates"] == fx.RESTATES
    assert [e["entry_id"] for e in report["provenance"]["ledger_entries_excluded"]] == ["pv-nov", "gec-dec"]
    assert set(report["allocation"]) == {"mill", "caster", "comp", "unmetered"}


def test_points_are_the_same(plant):
    rollup = month(plant)
    start, _ = month_bounds(fx.MONTH, plant.site.tz)
    points = rollup.to_points(area_of={d.id: d.area for d in plant.devices}, time_ns=start.value)
    assert rollup.opportunities is not None
    points += rollup.opportunities.to_points(site=plant.site.id, time_ns=123, granularity=Granularity.MONTH)
    assert [format_line(p) + "\n" for p in points] == (GOLDEN / "points.lp").read_text().splitlines(keepends=True)


def test_results_are_frozen(plant):
    rollup = month(plant)
    assert rollup.opportunities is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        rollup.opportunities.load_shift[0].saving_cny = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rollup.provenance.restates = None  # type: ignore[misc]
