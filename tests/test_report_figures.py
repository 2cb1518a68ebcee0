"""The monthly figures a carbon team signs, against hand-computed numbers: one energy balance for
losses, the unmetered remainder and the allocation (PV behind an incomer, export); the site's
output from its output lines; the certificate share; completeness and provenance in rollup.json."""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from plantems.analytics.balance import energy_balance
from plantems.analytics.opportunities import device_totals, reactive_power
from plantems.analytics.report import write_report
from plantems.analytics.rollup import MonthData, Rollup, compute_rollup
from plantems.cli import main
from plantems.config import PlantConfig, load_plant
from plantems.factors import load_factors
from plantems.ledger import Instrument, LedgerEntry
from plantems.production import read_production_csv
from plantems.schema import Method
from plantems.targets import load_targets
from plantems.tariffs import load_tariffs
from plantems.yamlconf import ConfigError
from tests.support import REPO, write_plant

MONTH = "2026-11"
BODY = """
production_lines:
  - {id: cast-1, name: Casting, areas: [cast]}
  - {id: roll-1, name: Cold rolling, areas: [roll]}
demand:
  groups: [{id: grid, meters: [inc-1, inc-2], limit_kw: 5000}]
devices:
  - {id: inc-1, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: 502, feeds: [roll],
     rated_kw: 10000}
  - {id: inc-2, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: 503, feeds: [cast, solar],
     rated_kw: 10000}
  - {id: mill, area: roll, kind: cold_mill, meter: chint_dtsu666_ct, host: 127.0.0.1, port: 504, rated_kw: 3000}
  - {id: caster, area: cast, kind: caster, meter: chint_dtsu666_ct, host: 127.0.0.1, port: 505, rated_kw: 3000}
  - {id: pv, area: solar, kind: pv, meter: generic_float32, host: 127.0.0.1, port: 506, rated_kw: 800}
"""
# the month's energy (kWh): incomer 2 feeds the caster and the roof PV behind it, and exports at noon
IMPORT_KWH = {"inc-1": 400_000.0, "inc-2": 300_000.0, "mill": 380_000.0, "caster": 330_000.0, "pv": 0.0}
EXPORT_KWH = {"inc-2": 20_000.0, "pv": 120_000.0}
P = "43012320240315007"


def plant_file(tmp: Path, body: str = BODY, output_lines: str | None = "[roll-1]") -> Path:
    path = write_plant(tmp, influx_url="http://127.0.0.1:1", db="x", body=body, init=False)
    if output_lines is not None:
        path.write_text(path.read_text().replace("timezone: Asia/Shanghai}",
                                                 f"timezone: Asia/Shanghai, output_lines: {output_lines}}}"))
    return path


@pytest.fixture
def plant(tmp_path: Path) -> PlantConfig:
    return load_plant(plant_file(tmp_path))


def month_data() -> MonthData:
    """One hourly row per device holding the month (coverage: every one of November's 2,880 intervals);
    incomer 2 had 1,000 kWh interpolated across a gap and 2 samples rejected."""
    t0 = pd.Timestamp(f"{MONTH}-01", tz="Asia/Shanghai").tz_convert("UTC").value
    rows = [{"time": t0, "device": d, "tou": "flat", "energy_kwh": kwh, "energy_exp_kwh": EXPORT_KWH.get(d, 0.0),
             "coverage": 2880.0, "reactive_kvarh": 0.0, "reactive_exp_kvarh": 0.0,
             "interp_kwh": 1000.0 if d == "inc-2" else 0.0, "rejected_samples": 2.0 if d == "inc-2" else 0.0,
             "replacements": 0.0} for d, kwh in IMPORT_KWH.items()]
    return MonthData(pd.DataFrame(rows), None, production_by_line={"cast-1": 100.0, "roll-1": 95.0})


def ledger() -> list[LedgerEntry]:
    def entry(entry_id: str, instrument: Instrument, mwh: int, first: int, claim: str) -> LedgerEntry:
        return LedgerEntry(entry_id, "testsite", instrument, float(mwh), f"{P}{first:015d}",
                           f"{P}{first + mwh - 1:015d}", date(2026, 11, 1), date(2026, 11, 30), "solar", "Hunan",
                           date(2026, 12, 5), claim, 2 + first)
    return [entry("gec-nov", Instrument.GEC, 300, 1, MONTH),
            entry("pv-nov", Instrument.ONSITE_PV, 80, 1001, MONTH),  # 80 of the 100 MWh self-consumed issued
            entry("gec-dec", Instrument.GEC, 50, 2001, "2026-12")]  # produced in November, claimed for December


def rollup_of(plant: PlantConfig) -> Rollup:
    return compute_rollup(plant, MONTH, month_data(), tariffs=load_tariffs(REPO / "config" / "tariffs"),
                          factors=load_factors(REPO / "config" / "emission_factors.yaml"), ledger=ledger(),
                          targets=load_targets(REPO / "config" / "targets.yaml"), as_of=date(2026, 12, 2))


def test_energy_balance_counts_pv_behind_an_incomer_and_export(plant):
    totals = device_totals(month_data().intervals)
    site = energy_balance(plant, totals)
    # 400,000 + 300,000 - 20,000 + 120,000 = 800,000 consumed; loads 380,000 + 330,000 = 710,000
    assert site.consumption_kwh == 800_000 and site.sub_metered_kwh == 710_000
    assert site.unmetered_kwh == 90_000  # "incomers minus sub-meters" would say 700,000 - 710,000 < 0: no losses
    assert site.generation_self_kwh == 100_000  # 120,000 generated, 20,000 of it exported
    # behind each incomer (its feeds): 400,000 - 380,000 and 300,000 - 20,000 + 120,000 - 330,000
    assert energy_balance(plant, totals, grid_meters=["inc-1"]).unmetered_kwh == 20_000
    assert energy_balance(plant, totals, grid_meters=["inc-2"]).unmetered_kwh == 70_000


def test_losses_allocation_and_unmetered_remainder_are_one_number(plant):
    rollup = rollup_of(plant)
    s2 = rollup.scope2
    assert s2.consumption_kwh == 800_000 and s2.pv_self_kwh == 100_000
    assert s2.allocation["unmetered"].kwh == 90_000
    assert s2.allocation["mill"].kg[Method.LOCATION] == pytest.approx(700_000 * 0.5271 * 380_000 / 800_000)
    group = plant.demand.groups[0]
    reactive = reactive_power(plant, group, month_data().intervals, totals=device_totals(month_data().intervals),
                              energy_cost_cny=1.0, average_price_cny_per_kwh=0.65).month
    assert reactive is not None and reactive.losses_kwh_upper_bound == 90_000 == s2.unmetered_kwh


def test_site_intensity_uses_the_output_lines_and_each_line_its_own(plant):
    rollup = rollup_of(plant)
    assert rollup.production_t == 95.0  # cast 100 t, then 95 t rolled from it: the site made 95 t, not 195
    location_t = 700_000 * 0.5271 / 1000
    assert rollup.intensity.location_t_per_t == pytest.approx(location_t / 95)
    assert rollup.intensity.output_lines == ("roll-1",)
    cast, roll = rollup.lines["cast-1"], rollup.lines["roll-1"]
    assert cast.production_t == 100.0 and roll.production_t == 95.0
    assert cast.intensity_location_t_per_t == pytest.approx(location_t * 330_000 / 800_000 / 100)
    assert roll.intensity_location_t_per_t == pytest.approx(location_t * 380_000 / 800_000 / 95)


def test_certificate_share_beside_the_renewable_share(plant):
    s2 = rollup_of(plant).scope2
    assert s2.market_monthly.instruments_kwh == 300_000  # on-site PV's GECs never offset grid import
    assert s2.market_monthly.kgco2e == pytest.approx(400_000 * 0.6096)
    assert s2.renewable_share == pytest.approx((300_000 + 100_000) / 800_000)  # GHG Protocol: 50 %
    assert s2.certificates_kwh == 380_000  # 300 bought + 80 on-site PV GECs
    assert s2.certificate_share == pytest.approx(380_000 / 800_000)  # 47.5 %
    assert s2.entries_used == ("gec-nov",)
    excluded = {e.entry_id: e.reason for e in s2.entries_excluded}
    assert set(excluded) == {"pv-nov", "gec-dec"}
    assert "non-tradable GECs count in the certificate share only" in excluded["pv-nov"]
    assert excluded["gec-dec"] == "claimed for 2026-12, not this month"


def test_rollup_json_carries_completeness_and_provenance(plant, tmp_path):
    write_report(rollup_of(plant), tmp_path / "out")
    report = json.loads((tmp_path / "out" / "rollup.json").read_text())
    assert report["production_t"] == 95.0 and report["unmetered_kwh"] == 90_000
    assert report["certificate_share"] == pytest.approx(0.475)
    grid = report["provenance"]["completeness"]["grid_import_kwh"]
    # through the incomers: 400,000 + 300,000 imported + 20,000 exported, 1,000 of it interpolated
    assert grid["meters"] == ["inc-1", "inc-2"] and grid["energy_kwh"] == 720_000
    assert grid["energy_measured_kwh"] == 719_000 and grid["energy_interpolated_kwh"] == 1000
    assert grid["samples_rejected"] == 2 and grid["coverage_min"] == 1.0
    assert grid["missing_meters"] == []
    assert report["provenance"]["completeness"]["unmetered_kwh"]["meters"] == ["caster", "inc-1", "inc-2", "mill",
                                                                               "pv"]
    provenance = report["provenance"]
    (tariff,) = provenance["tariff"]["versions"]
    assert tariff["prices_per_kwh"] == {"sharp": 1.248, "peak": 1.04, "flat": 0.65, "valley": 0.3055}
    assert provenance["pathway"]["source"].startswith("2026 greenhouse-gas reduction plan")
    assert provenance["hourly_matching_profile"].startswith("solar: sin(pi")
    assert [e["entry_id"] for e in provenance["ledger_entries_excluded"]] == ["pv-nov", "gec-dec"]
    assert provenance["certificates_beyond_import_kwh"] == 0.0  # 300,000 kWh of GECs against 700,000 imported
    assert provenance["site_output"] == {"output_lines": ["roll-1"],
                                         "production_t_by_line": {"cast-1": 100.0, "roll-1": 95.0}}
    assert provenance["scope1"] == "not metered: no fuel meter delivered data this month"
    with (tmp_path / "out" / "scope2.csv").open() as handle:
        meters = [r for r in csv.DictReader(handle) if r["scope"] == "meter"]
    assert {(r["method"], r["factor_id"]) for r in meters} == {
        ("location", "mee-central-2023"), ("market", "mee-residual-2023"), ("market_hourly", "mee-residual-2023")}
    html = (tmp_path / "out" / "report.html").read_text()
    assert "47.5%" in html and "99.86% measured" in html  # 719,000 / 720,000
    assert "Site output, lines roll-1" in html


@pytest.mark.parametrize(("output_lines", "message"), [
    (None, "site 'testsite': output_lines: required with more than one production line"),
    ("[roll-2]", "site 'testsite': 'roll-2' is not a production line; defined under production_lines: "
                 "\\['cast-1', 'roll-1'\\]"),
    ("[roll-1, roll-1]", "a line is listed twice"),
], ids=["missing-with-two-lines", "unknown-line", "twice"])
def test_check_config_refuses_ambiguous_output_lines(tmp_path, output_lines, message):
    path = plant_file(tmp_path, output_lines=output_lines)
    with pytest.raises(ConfigError, match=message) as info:
        load_plant(path)
    assert info.value.problems[0].startswith(f"{path}:1 ")  # the site line
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2 and info.value.problems[0] in result.output, result.output


def test_a_meter_without_data_is_named_beside_the_figures_it_feeds(plant):
    data = month_data()
    silent = data.intervals[data.intervals["device"] != "pv"]  # the PV meter delivered nothing this month
    rollup = compute_rollup(plant, MONTH, MonthData(silent, None, production_by_line={"roll-1": 95.0}),
                            tariffs=load_tariffs(REPO / "config" / "tariffs"),
                            factors=load_factors(REPO / "config" / "emission_factors.yaml"), ledger=[],
                            targets=load_targets(REPO / "config" / "targets.yaml"), as_of=date(2026, 12, 2))
    figures = rollup.provenance.completeness
    assert figures["pv_self_kwh"]["missing_meters"] == ["pv"] and figures["grid_import_kwh"]["missing_meters"] == []
    assert "pv" in " ".join(rollup.poor_coverage)


def test_one_line_is_its_own_site_output(tmp_path):
    body = BODY.replace("  - {id: roll-1, name: Cold rolling, areas: [roll]}\n", "")
    plant = load_plant(plant_file(tmp_path, body=body, output_lines=None))
    assert plant.site_output_lines == ("cast-1",)


def test_production_import_refuses_an_unknown_line(tmp_path):
    path = plant_file(tmp_path)
    csv_path = tmp_path / "production.csv"
    csv_path.write_text("date,line,output_t\n2026-11-01,cast-1,100\n2026-11-01,rol-1,95\n")
    with pytest.raises(ValueError, match=re.escape(f"{csv_path}:3: line 'rol-1' is not a production line of site "
                                                   "'testsite'; defined under production_lines: ['cast-1', 'roll-1']")):
        read_production_csv(csv_path, load_plant(path))
    result = CliRunner().invoke(main, ["production", "import", "--config", str(path), str(csv_path)])
    assert result.exit_code == 2 and f"{csv_path}:3: line 'rol-1'" in result.output
