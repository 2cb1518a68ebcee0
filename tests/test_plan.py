"""The plan page: year-to-date weighting, this year's target, status, and the `plan` points round trip
through a real InfluxDB (an earlier month's figures read back into a later month's year to date)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from plantems.analytics.plan import MonthFigure, Status, TargetActuals, compute_plan, interim_target, year_to_date
from plantems.analytics.plan_job import NO_OUTPUT, NO_ROLLUP, RollupMonth, gather_actuals, metal_figures, run_plan
from plantems.config import load_plant
from plantems.influx import InfluxClient, V1Writer
from plantems.localservers import free_port
from plantems.metal import FootprintBasis, MetalPurchase, Product
from plantems.schema import PlanScope, PlanTarget
from plantems.targets import Target, load_targets
from plantems.yamlconf import ConfigError
from tests.support import REPO, rows, write_plant

TARGETS = load_targets(REPO / "config" / "targets.yaml")


def _month(month: str, *, t_co2e: float, output_t: float | None, renewable_kwh: float = 0.0,
           certificates_kwh: float = 0.0, consumption_kwh: float = 1000.0,
           market_t: float | None = None) -> RollupMonth:
    return RollupMonth(month=month, scope1_t=0.0, scope2_location_t=t_co2e,
                       scope2_market_t=t_co2e if market_t is None else market_t, production_t=output_t,
                       renewable_kwh=renewable_kwh, certificates_kwh=certificates_kwh, consumption_kwh=consumption_kwh)


def test_the_intensity_year_to_date_is_summed_emissions_over_summed_output():
    """January 350 t CO2e / 1,000 t (0.35), February 20 t / 100 t (0.20): the mean of the monthly ratios (0.275)
    would be on track against 2026's 0.32; the year to date is 370 / 1,100 = 0.3364, off track."""
    months = (MonthFigure("2026-01", 350.0, 1000.0, 300.0), MonthFigure("2026-02", 20.0, 100.0, 10.0))
    actual, market = year_to_date(PlanTarget.INTENSITY, months)
    assert actual == pytest.approx(370 / 1100) and market == pytest.approx(310 / 1100)
    page = compute_plan(TARGETS, {PlanTarget.INTENSITY: TargetActuals(months)}, entity="s", scope=PlanScope.SITE,
                        month="2026-02")
    row = page.row(PlanTarget.INTENSITY)
    assert row is not None
    assert (row.base_year, row.base_value, row.target_value, row.goal_year, row.goal_value) == (2024, 0.33, 0.32,
                                                                                                2030, 0.30)
    assert row.status == Status.OFF_TRACK and row.on_track is False
    assert [(m, v, ytd) for m, v, ytd in row.trend()] == [("2026-01", 0.35, 0.35),
                                                          ("2026-02", 0.2, pytest.approx(370 / 1100))]
    on = compute_plan(TARGETS, {PlanTarget.INTENSITY: TargetActuals((MonthFigure("2026-01", 320.0, 1000.0),))},
                      entity="s", scope=PlanScope.SITE, month="2026-01").row(PlanTarget.INTENSITY)
    assert on is not None and on.status == Status.ON_TRACK  # 0.32 is at the target: on track


def test_a_goal_for_2030_only_has_no_interim_target_without_a_base_value():
    share = TARGETS.renewable_share
    assert interim_target(share, 2026) == (None, "none")
    with_base = share.model_copy(update={"base_value": 0.1})
    value, basis = interim_target(with_base, 2026)
    assert value == pytest.approx(0.1 + 0.9 * 2 / 6) and basis == "straight line from 2024 (0.1) to 2030 (1)"
    assert interim_target(TARGETS.intensity, 2031) == (0.30, "plan")  # after the last year the last value holds
    months = (MonthFigure("2026-01", 300.0, 1000.0), MonthFigure("2026-02", 450.0, 1000.0))  # 750 / 2000 = 0.375
    none = compute_plan(TARGETS, {PlanTarget.RENEWABLE_SHARE: TargetActuals(months)}, entity="s",
                        scope=PlanScope.SITE, month="2026-02").row(PlanTarget.RENEWABLE_SHARE)
    assert none is not None and none.status == Status.NO_INTERIM and none.on_track is None
    assert none.actual_ytd == pytest.approx(0.375)
    targets = TARGETS.model_copy(update={"renewable_share": with_base})
    off = compute_plan(targets, {PlanTarget.RENEWABLE_SHARE: TargetActuals(months)}, entity="s",
                       scope=PlanScope.SITE, month="2026-02").row(PlanTarget.RENEWABLE_SHARE)
    assert off is not None and off.status == Status.OFF_TRACK  # 0.375 < 0.40 on the straight line
    met = compute_plan(TARGETS, {PlanTarget.METERING_COVERAGE: TargetActuals((MonthFigure("2026-01", 5, 5),))},
                       entity="s", scope=PlanScope.SITE, month="2026-01").row(PlanTarget.METERING_COVERAGE)
    assert met is not None and met.status == Status.ON_TRACK  # the 2030 goal already met


def test_the_metering_coverage_is_a_state_and_the_certificate_share_is_to_be_confirmed():
    months = (MonthFigure("2026-01", 3.0, 5.0), MonthFigure("2026-02", 4.0, 5.0))
    assert year_to_date(PlanTarget.METERING_COVERAGE, months) == (0.8, None)  # February's, not 7 / 10
    page = compute_plan(TARGETS, {}, entity="s", scope=PlanScope.SITE, month="2026-02")
    assert [r.target for r in page.rows] == [PlanTarget.INTENSITY, PlanTarget.RAW_MATERIAL,
                                             PlanTarget.RECYCLED_SHARE, PlanTarget.RENEWABLE_SHARE,
                                             PlanTarget.CERTIFICATE_SHARE, PlanTarget.METERING_COVERAGE]
    assert [r.target for r in page.rows if r.to_be_confirmed] == [PlanTarget.CERTIFICATE_SHARE]
    assert all(r.status == Status.NO_DATA and r.actual_ytd is None for r in page.rows)


def test_a_base_value_given_twice_is_refused(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text((REPO / "config" / "targets.yaml").read_text().replace(
        "  by_year: {2024: 5.9,", "  base_value: 6.0\n  by_year: {2024: 5.9,"))
    with pytest.raises(ConfigError, match=r"targets.yaml:\d+.*base_value 6: by_year already gives the base year 2024"):
        load_targets(path)
    assert Target(name="x", source="y", unit="t", base_year=2024, by_year={2030: 1.0}, base_value=0.2).base == 0.2


def _purchase(month: str, product: Product, tonnes: float, footprint: float, site: str = "a") -> MetalPurchase:
    pre, post = {Product.PRE_CONSUMER_SCRAP: (100.0, 0.0), Product.POST_CONSUMER_SCRAP: (0.0, 100.0)}.get(
        product, (0.0, 0.0))
    return MetalPurchase(delivery_id=f"{month}-{product.value}-{site}", site=site, supplier="s",
                         delivered=date.fromisoformat(f"{month}-10"), tonnes=tonnes, product=product,
                         footprint_t_co2e_per_t=footprint, basis=FootprintBasis.PCF, evidence="e", factor_year=2025,
                         recycled_pre_pct=pre, recycled_post_pct=post, note="", line=1)


def test_metal_months_and_missing_months():
    ledger = [_purchase("2026-01", Product.PRIMARY_INGOT, 100.0, 8.0), _purchase("2026-03", Product.PRIMARY_INGOT,
                                                                                  300.0, 4.0),
              _purchase("2026-03", Product.POST_CONSUMER_SCRAP, 100.0, 0.5),
              _purchase("2026-03", Product.PRIMARY_INGOT, 999.0, 15.0, site="b")]
    metal = metal_figures(ledger, "2026-03", ["a"])
    raw = compute_plan(TARGETS, {PlanTarget.RAW_MATERIAL: TargetActuals(tuple(metal[PlanTarget.RAW_MATERIAL]))},
                       entity="a", scope=PlanScope.SITE, month="2026-03").row(PlanTarget.RAW_MATERIAL)
    # (800 + 1,200 + 50) t CO2e / (100 + 300 + 100) t = 4.1, against 2026's 5.4
    assert raw is not None and raw.actual_ytd == pytest.approx(2050 / 500) and raw.status == Status.ON_TRACK
    recycled = metal[PlanTarget.RECYCLED_SHARE]
    assert [m.value for m in recycled] == [0.0, None, 0.25] and year_to_date(PlanTarget.RECYCLED_SHARE, recycled)[0] \
        == pytest.approx(100 / 500)
    actuals = gather_actuals("2026-03", earlier={PlanTarget.INTENSITY: [MonthFigure("2026-01", 1.0, 10.0)]},
                             rollup=_month("2026-03", t_co2e=5.0, output_t=None), metal=None,
                             metering=MonthFigure("2026-03", 1.0, 2.0))
    assert actuals[PlanTarget.INTENSITY].missing == (("2026-02", NO_ROLLUP), ("2026-03", NO_OUTPUT))
    assert [m.month for m in actuals[PlanTarget.INTENSITY].months] == ["2026-01"]
    assert len(actuals[PlanTarget.RAW_MATERIAL].missing) == 3


BODY = """\
devices:
  - {{id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: {port}, max_kw: 20000,
     metering_level: site_boundary}}
  - {{id: mill, area: roll, kind: cold_mill, meter: janitza_umg604, host: 127.0.0.1, port: {port2}, rated_kw: 3000}}
unmetered_equipment:
  - {{id: mill-9, area: roll, rated_kw: 2500}}
"""


@pytest.fixture
def plan_plant(tmp_path, influx_url):
    path = write_plant(tmp_path, influx_url=influx_url, db="plandb", body=BODY.format(port=free_port(),
                                                                                     port2=free_port()))
    plant = load_plant(path)
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    client.query('DROP SERIES FROM "plan"', database=plant.influxdb.derived_database)
    yield plant, client, writer
    writer.close()
    client.close()


def test_plan_points_round_trip_and_feed_the_next_months_year_to_date(plan_plant, influx_url):
    plant, client, writer = plan_plant
    clients = {plant.site.id: (client, writer)}
    run = dict(plants=[plant], client_of=clients, targets=TARGETS, scope=PlanScope.SITE, entity=plant.site.id,
               metal=None)
    run_plan(month="2026-01", rollup=_month("2026-01", t_co2e=350.0, output_t=1000.0, renewable_kwh=100.0), **run)
    run_plan(month="2026-02", rollup=_month("2026-02", t_co2e=20.0, output_t=100.0, renewable_kwh=500.0,
                                            consumption_kwh=3000.0), **run)
    page = run_plan(month="2026-02", rollup=_month("2026-02", t_co2e=20.0, output_t=100.0, renewable_kwh=500.0,
                                                   consumption_kwh=3000.0), **run)  # a re-run: the same points
    intensity = page.row(PlanTarget.INTENSITY)
    assert intensity is not None and intensity.actual_ytd == pytest.approx(370 / 1100)  # January read back
    local = plant.site.tz
    found = rows(influx_url, "plandb_derived", "SELECT * FROM plan WHERE site = 'testsite' GROUP BY *")
    stored = {(r["target"], datetime.fromtimestamp(r["time"] / 1e9, local).strftime("%Y-%m")): r for r in found}
    assert len(stored) == 12  # six targets, two months, no duplicates after the re-run
    feb = stored[("intensity", "2026-01")], stored[("intensity", "2026-02")]
    assert feb[0]["actual_value"] == pytest.approx(0.35) and feb[1]["actual_value"] == pytest.approx(0.2)
    assert feb[1]["actual_ytd_value"] == pytest.approx(370 / 1100) and feb[1]["on_track"] == 0.0
    assert feb[1]["target_value"] == 0.32 and feb[1]["base_value"] == 0.33 and feb[1]["base_year"] == 2024
    assert feb[1]["numerator"] == 20.0 and feb[1]["denominator"] == 100.0 and feb[1]["months_counted"] == 2
    renewable = stored[("renewable_share", "2026-02")]
    assert renewable["actual_ytd_value"] == pytest.approx(600 / 4000) and renewable.get("on_track") is None
    metering = stored[("metering_coverage", "2026-02")]
    assert metering["actual_ytd_value"] == pytest.approx(0.5)  # mill in plantems, mill-9 not
    raw = stored[("raw_material", "2026-02")]
    assert raw.get("numerator") is None and raw.get("actual_ytd_value") is None and raw["target_value"] == 5.4
    assert stored[("certificate_share", "2026-02")]["to_be_confirmed"] == 1.0
    assert {r["scope"] for r in stored.values()} == {"site"}
