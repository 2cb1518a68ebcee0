"""A fuel switch end to end: a gas furnace's fuel counter and its electric replacement's energy counter in a
real InfluxDB -> `plantems analyze --backfill` (energy_15m) -> `plantems quarter` -> net t CO2e and CNY by hand.

The furnace burns gas = 1000 + 10 t m3 a day (t: the casting line's tonnes) until it is retired on
Oct 1; the electric mould cleaner draws nothing before and 200 + t kWh a day after, half in the
10:00-11:00 peak hour and half in the 02:00-03:00 valley hour (the tariff's October calendar). IPMVP
option B on both meters. By hand: gas saved = sum over October of (1000 + 10 t) (the baseline is
exact: its noise is orthogonal to the intercept and the tonnage); electricity added = sum of
(200 + t), metered (no baseline use); net t CO2e = gas x 2.162 / 1000 - kWh x 0.5271 / 1000 (the
domain's gas factor and the 2023 Central China grid factor); CNY = gas x the configured gas price
- kWh x the mix price (1.04 + 0.3055) / 2."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from plantems.cli import main
from plantems.config import load_plant
from plantems.influx import V1Writer, init_databases
from plantems.localservers import free_port
from tests.support import copy_reference_data, write_plant

TZ = ZoneInfo("Asia/Shanghai")
BODY = """\
production_lines:
  - {{id: cast-1, areas: [util]}}
gateways:
  - {{id: gw, host: 127.0.0.1, port: {gw}, timeout_s: 0.5}}
devices:
  - {{id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: {inc}, feeds: [util],
     max_kw: 5000}}
  - {{id: cleaner, area: util, kind: other, meter: eastron_sdm630, gateway: gw, unit_id: 4, rated_kw: 500}}
  - {{id: furnace-1, area: util, kind: furnace, meter: generic_gas_flow, gateway: gw, unit_id: 9}}
"""
MEASURES = """\
prices: {gas_cny_per_m3: 3.2, source: "test gas contract"}
measures:
  - id: furnace-to-electric
    name: Gas furnace retired, moulds cleaned electrically
    type: fuel_switch
    boundary: {devices: [furnace-1, cleaner]}
    go_live: 2026-10-01
    ipmvp_option: B
    baseline: {start: 2026-08-01, end: 2026-09-30, reason: the furnace's last two months}
    claimed: {gas_m3_per_year: 400000, kwh_per_year: -120000, cny_per_year: 1200000, t_co2e_per_year: 800,
              source: "test plan"}
"""
FIRST, GO_LIVE, LAST = date(2026, 8, 1), date(2026, 10, 1), date(2026, 10, 31)
GAS_KG, LOCATION = 2.162, 0.5271
GAS_CNY, MIX_CNY = 3.2, (1.04 + 0.3055) / 2


def tonnes(day: date) -> float:
    """Groups of four days t1, t2, t2, t1: the noise +e, -e, +e, -e is orthogonal to t and to 1."""
    k = (day - FIRST).days
    t1 = 80.0 + 5 * ((k // 4) % 7)
    return t1 + 30.0 if k % 4 in (1, 2) else t1


def gas_m3(day: date) -> float:
    k = (day - FIRST).days
    noise = 0.0 if k >= 60 else (10.0 if k % 4 in (0, 2) else -10.0)  # whole groups of four (Aug-Sep: 61 days)
    return 0.0 if day >= GO_LIVE else 1000.0 + 10.0 * tonnes(day) + noise


def cleaner_kwh(day: date) -> float:
    return 200.0 + tonnes(day) if day >= GO_LIVE else 0.0


def days() -> list[date]:
    return [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 2)]  # and Nov 1 (counters close Oct)


def counter_lines() -> tuple[list[str], list[str]]:
    """15-minute electrical counters (incomer = cleaner + a 40 kW base load) and hourly gas counter values."""
    electrical, fuel = [], []
    cleaner = inc = 1000.0
    gas = 50_000.0
    for day in days():
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=TZ).timestamp())
        for quarter in range(96):
            t_s = midnight + 900 * quarter
            electrical.append(f"electrical,area=util,device=cleaner,kind=other,site=testsite e_imp_kwh={cleaner!r} "
                              f"{t_s * 10**9}")
            electrical.append(f"electrical,area=sub,device=inc,kind=incomer,site=testsite e_imp_kwh={inc!r} "
                              f"{t_s * 10**9}")
            running = quarter // 4 in (2, 10)  # 02:00-03:00 (valley) and 10:00-11:00 (peak)
            step = cleaner_kwh(day) / 8 if running else 0.0  # half the day's energy in each hour
            cleaner += step
            inc += step + 10.0
            if quarter % 4 == 0:
                fuel.append(f"fuel,area=util,device=furnace-1,kind=furnace,site=testsite gas_m3={gas!r} "
                            f"{t_s * 10**9}")
                gas += gas_m3(day) / 24
    return electrical, fuel


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, influx_url: str) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("fuelswitch")
    path = write_plant(tmp, influx_url=influx_url, db="fueldb", body=BODY.format(gw=free_port(), inc=free_port()),
                       init=False)
    init_databases(load_plant(path).influxdb)
    copy_reference_data(tmp)
    (tmp / "measures.yaml").write_text(MEASURES)
    plant = load_plant(path)
    electrical, fuel = counter_lines()
    writer = V1Writer(plant.influxdb)
    for start in range(0, len(electrical), 5000):
        writer.write("fueldb", electrical[start:start + 5000])
    writer.write("fueldb", fuel)
    runner = CliRunner()
    result = runner.invoke(main, ["analyze", "--config", str(path), "--backfill", str(FIRST), str(LAST)])
    assert result.exit_code == 0, result.output
    (tmp / "production.csv").write_text("date,line,output_t\n" + "".join(
        f"{d},cast-1,{tonnes(d)}\n" for d in days()[:-1]))
    result = runner.invoke(main, ["production", "import", "--config", str(path), str(tmp / "production.csv")])
    assert result.exit_code == 0, result.output
    from plantems.analytics.quarter_job import run_quarter
    from plantems.influx import InfluxClient

    run_quarter(plant, "2026Q4", config_dir=tmp, client=InfluxClient(plant.influxdb), out_root=tmp / "reports",
                as_of=LAST + timedelta(days=1))
    data: dict[str, Any] = json.loads((tmp / "reports" / "2026Q4" / "quarter.json").read_text())
    data["_folder"] = str(tmp / "reports" / "2026Q4")
    return data


def test_the_fuel_switch_net_effect_by_hand(report: dict[str, Any]) -> None:
    october = [d for d in days() if GO_LIVE <= d <= LAST]
    gas_saved = sum(1000.0 + 10.0 * tonnes(d) for d in october)
    kwh_added = sum(cleaner_kwh(d) for d in october)
    (switch,) = report["measures"]
    carriers = {c["carrier"]: c for c in switch["carriers"]}
    gas, power = carriers["gas_m3"], carriers["electricity_kwh"]
    assert gas["verified"] and gas["method"] == "regression" and gas["baseline"]["valid"]
    assert gas["baseline"]["coefficients"]["output_t"]["value"] == pytest.approx(10.0, rel=1e-6)
    assert gas["saving"] == pytest.approx(gas_saved, rel=1e-6)
    assert power["verified"] and power["method"] == "metered" and power["baseline"] is None
    assert power["saving"] == pytest.approx(-kwh_added, rel=1e-6)
    scope1 = gas_saved * GAS_KG / 1000
    scope2 = kwh_added * LOCATION / 1000
    assert switch["scope1_removed_t_co2e"] == pytest.approx(scope1, rel=1e-6)
    assert switch["scope2_added_t_co2e"] == pytest.approx(scope2, rel=1e-6)
    assert switch["verified_t_co2e"] == pytest.approx(scope1 - scope2, rel=1e-6)
    assert 0 < switch["verified_t_co2e"] < scope1  # the added electricity's Scope 2 is counted against it
    # like with like: the yearly claim pro rata over the 31 days, and the verified figure annualised
    assert switch["claimed"]["t_co2e"] == pytest.approx(800 * 31 / 365)
    assert switch["verified_annualised"]["t_co2e"] == pytest.approx((scope1 - scope2) * 365 / 31, rel=1e-6)


def test_verified_cny_at_the_boundary_tariff_mix(report: dict[str, Any]) -> None:
    october = [d for d in days() if GO_LIVE <= d <= LAST]
    gas_saved = sum(1000.0 + 10.0 * tonnes(d) for d in october)
    kwh_added = sum(cleaner_kwh(d) for d in october)
    (switch,) = report["measures"]
    carriers = {c["carrier"]: c for c in switch["carriers"]}
    assert carriers["electricity_kwh"]["price_cny_per_unit"] == pytest.approx(MIX_CNY, rel=1e-9)
    assert carriers["gas_m3"]["price_cny_per_unit"] == GAS_CNY
    assert switch["verified_cny"] == pytest.approx(gas_saved * GAS_CNY - kwh_added * MIX_CNY, rel=1e-6)
    assert switch["claimed_cny"] == pytest.approx(1_200_000 * 31 / 365)
    assert "tariff mix" in report["provenance"]["cny"]["electricity"]
    assert report["provenance"]["cny"]["gas"] == "3.2 CNY/m3 (test gas contract)"
    html = (Path(report["_folder"]) / "report.html").read_text()
    assert "verified CNY" in html and "Scope 1 removed" in html
