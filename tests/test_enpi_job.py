"""EnPI points end to end: energy_15m, gas counters and production in InfluxDB -> `enpi` points, by hand."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from plantems.analytics.enpi_job import run_enpi, run_enpi_month
from plantems.cli import main
from plantems.config import load_plant
from plantems.influx import InfluxClient, V1Writer, init_databases
from plantems.localservers import free_port
from tests.support import copy_reference_data, rows, write_plant

BODY = """\
production_lines:
  - {{id: cast-1, areas: [util]}}
  - {{id: roll-1, areas: [roll]}}
gateways:
  - {{id: gw, host: 127.0.0.1, port: {gw}, timeout_s: 0.5}}
devices:
  - {{id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: {inc}, feeds: [roll, util],
     max_kw: 20000}}
  - {{id: mill, area: roll, kind: cold_mill, meter: chint_dtsu666_ct, gateway: gw, unit_id: 1, rated_kw: 3000}}
  - {{id: comp, area: util, kind: compressor, meter: eastron_sdm630, gateway: gw, unit_id: 2, rated_kw: 250}}
  - {{id: furnace-1, area: util, kind: furnace, meter: generic_gas_flow, gateway: gw, unit_id: 9}}
"""
# per device and day (kWh): the incomer also carries 50 kWh of losses (the site consumption)
INC_KWH, MILL_KWH, COMP_KWH = 1050.0, 700.0, 300.0
GAS_M3_PER_H = 100.0  # the furnace: 2,400 m3 a day
LOCATION = 0.5271  # kg/kWh: central_china 2023, the newest published (config/emission_factors.yaml)
GAS_KG = 2.162  # kg CO2 per Nm3
OCT1, OCT2, OCT3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
# roll-1 (the site's output line) records nothing on Oct 2
PRODUCTION = {(OCT1, "cast-1"): 100.0, (OCT1, "roll-1"): 90.0, (OCT2, "cast-1"): 110.0,
              (OCT3, "cast-1"): 120.0, (OCT3, "roll-1"): 80.0}


@pytest.fixture(scope="module")
def enpi_plant(tmp_path_factory, influx_url):
    tmp = tmp_path_factory.mktemp("enpi")
    path = write_plant(tmp, influx_url=influx_url, db="enpidb", body=BODY.format(gw=free_port(), inc=free_port()),
                       init=False)
    path.write_text(path.read_text().replace("timezone: Asia/Shanghai}",
                                             "timezone: Asia/Shanghai, output_lines: [roll-1]}"))
    init_databases(load_plant(path).influxdb)
    copy_reference_data(tmp)
    plant = load_plant(path)
    writer = V1Writer(plant.influxdb)
    energy = []
    for day in (OCT1, OCT2, OCT3):
        for device, kwh in (("inc", INC_KWH), ("mill", MILL_KWH), ("comp", COMP_KWH)):
            # four quarter hours at 09:00-10:00 and one at 23:45 local: all inside the local day
            for hour, minute in ((9, 0), (9, 15), (9, 30), (9, 45), (23, 45)):
                t = int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=plant.site.tz).timestamp())
                energy.append(f"energy_15m,device={device},site=testsite,tou=flat energy_kwh={kwh / 5!r},"
                              f"coverage=1 {t * 10**9}")
    writer.write("enpidb_derived", energy)
    t0 = int(datetime(2026, 9, 30, 22, tzinfo=plant.site.tz).timestamp())
    writer.write("enpidb", [f"fuel,area=util,device=furnace-1,kind=furnace,site=testsite "
                            f"gas_m3={1000 + GAS_M3_PER_H * k / 6!r} {(t0 + 600 * k) * 10**9}"
                            for k in range(6 * 24 * 4)])
    (tmp / "production.csv").write_text("date,line,output_t\n" + "".join(
        f"{day},{line},{t}\n" for (day, line), t in PRODUCTION.items()))
    result = CliRunner().invoke(main, ["production", "import", "--config", str(path), str(tmp / "production.csv")])
    assert result.exit_code == 0, result.output
    return plant, tmp


def enpi_rows(influx_url: str, granularity: str) -> dict[tuple[str, str], dict]:
    found = rows(influx_url, "enpidb_derived", f"SELECT * FROM enpi WHERE granularity = '{granularity}' GROUP BY *")
    tz = ZoneInfo("Asia/Shanghai")
    return {(r.get("line") or "site", datetime.fromtimestamp(r["time"] / 1e9, tz).date().isoformat()): r
            for r in found}


def test_day_and_month_enpis_by_hand(enpi_plant, influx_url):
    plant, tmp = enpi_plant
    client = InfluxClient(plant.influxdb)
    written = run_enpi_month(plant, client, V1Writer(plant.influxdb), "2026-10", config_dir=tmp,
                             as_of=date(2026, 11, 1))
    assert written == 3 * 3 + 3  # (2 lines + site) x 3 days with energy, and the month of each
    days = enpi_rows(influx_url, "day")
    # Oct 1, the caster line: its compressor's electricity and the furnace's gas over 100 t
    cast = days[("cast-1", "2026-10-01")]
    gas = 24 * GAS_M3_PER_H
    assert cast["energy_kwh"] == pytest.approx(COMP_KWH) and cast["gas_m3"] == pytest.approx(gas)
    assert cast["kwh_per_t"] == pytest.approx(300 / 100)
    assert cast["kgce_per_t"] == pytest.approx((300 * 0.1229 + 2400 * 1.2143) / 100)
    # Scope 2 is the site's grid import x factor, shared by consumption: 300/1050 of 1050 kWh
    assert cast["t_co2e_per_t"] == pytest.approx((2400 * GAS_KG + 300 * LOCATION) / 1000 / 100)
    roll = days[("roll-1", "2026-10-01")]
    assert roll["kwh_per_t"] == pytest.approx(700 / 90)
    assert roll["t_co2e_per_t"] == pytest.approx(700 * LOCATION / 1000 / 90)
    site = days[("site", "2026-10-01")]
    assert "line" not in site or not site["line"]
    assert site["energy_kwh"] == pytest.approx(INC_KWH) and site["output_t"] == pytest.approx(90)  # rolled only
    assert site["kgce_per_t"] == pytest.approx((1050 * 0.1229 + 2400 * 1.2143) / 90)
    assert site["t_co2e_per_t"] == pytest.approx((1050 * LOCATION + 2400 * GAS_KG) / 1000 / 90)
    assert site["production_completeness"] == 1
    # Oct 2: no rolled output, so the site has no ratio, and says its production is incomplete
    no_output = days[("site", "2026-10-02")]
    assert no_output["kwh_per_t"] is None and no_output["production_completeness"] == 0
    assert no_output["energy_kwh"] == pytest.approx(INC_KWH)  # the energy is still counted
    months = enpi_rows(influx_url, "month")
    month = months[("site", "2026-10-01")]
    # the month: sums of its days, then divided (never an average of daily ratios)
    assert month["energy_kwh"] == pytest.approx(3 * INC_KWH) and month["output_t"] == pytest.approx(170)
    assert month["kwh_per_t"] == pytest.approx(3 * 1050 / 170)
    assert month["days"] == 3 and month["production_days"] == 2
    assert month["production_completeness"] == pytest.approx(2 / 31)
    cast_month = months[("cast-1", "2026-10-01")]
    assert cast_month["kgce_per_t"] == pytest.approx(3 * (300 * 0.1229 + 2400 * 1.2143) / 330)


def test_a_rerun_replaces_the_days_points(enpi_plant, influx_url):
    plant, tmp = enpi_plant
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    run_enpi(plant, client, writer, OCT3, OCT3, config_dir=tmp, as_of=date(2026, 11, 1))
    run_enpi(plant, client, writer, OCT3, OCT3, config_dir=tmp, as_of=date(2026, 11, 1))
    days = enpi_rows(influx_url, "day")
    assert days[("roll-1", "2026-10-03")]["kwh_per_t"] == pytest.approx(700 / 80)
    assert len([k for k in days if k[1] == "2026-10-03"]) == 3
    with pytest.raises(ValueError, match="within one month"):
        run_enpi(plant, client, writer, date(2026, 9, 30), OCT1, config_dir=tmp, as_of=date(2026, 11, 1))


def test_day_sums_never_straddle_a_local_midnight():
    from plantems.analytics.enpi_job import day_bucket

    assert day_bucket(ZoneInfo("Asia/Shanghai"), OCT1) == "1h"  # UTC+8: hours align with local days
    assert day_bucket(ZoneInfo("Asia/Kolkata"), OCT1) == "15m"  # UTC+5:30: an hour would cross midnight
