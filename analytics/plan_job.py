"""The plan page's I/O: gathers each target's monthly figures and writes the `plan` points.

Reads, for the month being rolled up, the rollup's figures (Scope 1+2 and output, renewable and certificate
kWh, consumption), the purchased-metal ledger (every month of the year so far, by delivery date) and the meter
register (at the month's end); the earlier months' rollup figures come from the `plan` points their own
rollups wrote (their numerators and denominators). Writes the month's `plan` points through
``replace_window``: the site's under its own site tag (scope ``site``), the group's under each member site's
tag (scope ``group``), so each site's Grafana shows its group's page too. The computation is analytics/plan.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from plantems.analytics.group import GroupRollup
from plantems.analytics.metal import summarise_metal
from plantems.analytics.metering import compute_metering
from plantems.analytics.plan import MonthFigure, PlanPage, TargetActuals, compute_plan, months_of_year
from plantems.analytics.rollup_results import Rollup
from plantems.config import PlantConfig
from plantems.group import Group
from plantems.influx import InfluxClient, LineWriter, detect_api, make_writer
from plantems.metal import MetalPurchase, load_metal_ledger
from plantems.schema import PLAN, Field, PlanScope, PlanTarget, Tag
from plantems.store.query import SiteScope, col
from plantems.store.window import replace_window
from plantems.targets import Targets

__all__ = [
    "FROM_ROLLUPS",
    "RollupMonth",
    "gather_actuals",
    "group_rollup_month",
    "load_metal",
    "metal_figures",
    "metering_figure",
    "month_start_ns",
    "read_plan_months",
    "rollup_figures",
    "run_plan",
    "run_site_plan",
    "site_rollup_month",
    "write_plan",
]

log = logging.getLogger(__name__)

# Targets whose months come from the monthly rollups (earlier months: read back from their `plan` points)
FROM_ROLLUPS = (PlanTarget.INTENSITY, PlanTarget.RENEWABLE_SHARE, PlanTarget.CERTIFICATE_SHARE,
                PlanTarget.METERING_COVERAGE)
NO_ROLLUP = "no monthly rollup recorded for this month"
NO_OUTPUT = "no output recorded: emissions without output would overstate the intensity"
NO_LEDGER = "no purchased-metal ledger (metal_purchases.csv)"


@dataclass(frozen=True)
class RollupMonth:
    """What the plan takes from one month's rollup (a site's, or the group's consolidated one)."""

    month: str
    scope1_t: float
    scope2_location_t: float
    scope2_market_t: float
    production_t: float | None  # None: not recorded (for a group: missing at some site)
    renewable_kwh: float  # instruments matched monthly + on-site PV consumed
    certificates_kwh: float  # GECs held, at most the consumption
    consumption_kwh: float


def rollup_figures(r: RollupMonth) -> tuple[dict[PlanTarget, MonthFigure], dict[PlanTarget, str]]:
    """The month's figures of the rollup-fed targets, and the targets it cannot give with the reason (pure)."""
    figures = {PlanTarget.RENEWABLE_SHARE: MonthFigure(r.month, r.renewable_kwh, r.consumption_kwh),
               PlanTarget.CERTIFICATE_SHARE: MonthFigure(r.month, min(r.certificates_kwh, max(r.consumption_kwh, 0.0)),
                                                         r.consumption_kwh)}
    missing = {}
    if r.production_t:
        figures[PlanTarget.INTENSITY] = MonthFigure(r.month, r.scope1_t + r.scope2_location_t, r.production_t,
                                                    r.scope1_t + r.scope2_market_t)
    else:
        missing[PlanTarget.INTENSITY] = NO_OUTPUT
    return figures, missing


def metal_figures(purchases: Sequence[MetalPurchase], month: str, sites: Sequence[str] | None
                  ) -> dict[PlanTarget, list[MonthFigure]]:
    """Raw-material intensity and recycled share for each month of the year through ``month`` (pure): a month
    without deliveries adds nothing to either sum. ``sites``: None for every site of the ledger."""
    out: dict[PlanTarget, list[MonthFigure]] = {PlanTarget.RAW_MATERIAL: [], PlanTarget.RECYCLED_SHARE: []}
    for period in months_of_year(month):
        mine = [p for p in purchases if sites is None or p.site in sites]
        s = summarise_metal(mine, period=period)
        out[PlanTarget.RAW_MATERIAL].append(MonthFigure(period, s.aluminium_t_co2e, s.aluminium_input_t))
        out[PlanTarget.RECYCLED_SHARE].append(MonthFigure(period, s.recycled_pre_t + s.recycled_post_t,
                                                          s.metal_input_t))
    return out


def metering_figure(plants: Iterable[PlantConfig], month: str) -> MonthFigure:
    """High-consumption machines in plantems / all listed ones, at the month's last day, over ``plants``."""
    first = date.fromisoformat(f"{month}-01")
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    in_system = total = 0
    for plant in plants:
        progress = compute_metering(plant.devices, plant.unmetered_equipment, on_date=last).progress
        in_system, total = in_system + progress.in_system, total + progress.total
    return MonthFigure(month, float(in_system), float(total))


def month_start_ns(plant: PlantConfig, month: str) -> tuple[int, int]:
    """[start, end) of ``month`` in the site's local calendar, ns."""
    from plantems.analytics.rollup import month_bounds

    start, end = month_bounds(month, plant.site.tz)
    return int(start.value), int(end.value)


def read_plan_months(client: InfluxClient, plant: PlantConfig, scope: PlanScope, month: str
                     ) -> dict[PlanTarget, list[MonthFigure]]:
    """The rollup-fed targets' figures of the months of ``month``'s year before it, from their `plan` points."""
    months = months_of_year(month)[:-1]
    if not months:
        return {}
    start, _ = month_start_ns(plant, months[0])
    end, _ = month_start_ns(plant, month)
    columns = [col(f.value) for f in (Field.NUMERATOR, Field.DENOMINATOR, Field.NUMERATOR_MARKET)]
    query = SiteScope(plant.site.id).select(PLAN, columns, tags={Tag.SCOPE.value: scope.value}, start_ns=start,
                                            end_ns=end, group_by=[Tag.TARGET.value])
    out: dict[PlanTarget, list[MonthFigure]] = {}
    label = {month_start_ns(plant, m)[0]: m for m in months}
    for series in client.query(query, database=plant.influxdb.derived_database):
        target = PlanTarget(series.tags[Tag.TARGET.value])
        for time_ns, numerator, denominator, market in series.values:
            if target in FROM_ROLLUPS and numerator is not None and int(time_ns) in label:
                out.setdefault(target, []).append(MonthFigure(label[int(time_ns)], float(numerator),
                                                              float(denominator),
                                                              None if market is None else float(market)))
    return out


def gather_actuals(month: str, *, earlier: Mapping[PlanTarget, Sequence[MonthFigure]], rollup: RollupMonth,
                   metal: Mapping[PlanTarget, Sequence[MonthFigure]] | None, metering: MonthFigure
                   ) -> dict[PlanTarget, TargetActuals]:
    """Each target's months with data and the months without (pure)."""
    now, now_missing = rollup_figures(rollup)
    now[PlanTarget.METERING_COVERAGE] = metering
    out: dict[PlanTarget, TargetActuals] = {}
    for target in FROM_ROLLUPS:
        months = [m for m in earlier.get(target, ()) if m.month < month]
        have = {m.month for m in months}
        missing = [(m, NO_ROLLUP) for m in months_of_year(month)[:-1] if m not in have]
        if target in now:
            months.append(now[target])
        else:
            missing.append((month, now_missing[target]))
        out[target] = TargetActuals(tuple(months), tuple(missing))
    for target in (PlanTarget.RAW_MATERIAL, PlanTarget.RECYCLED_SHARE):
        if metal is None:
            out[target] = TargetActuals((), tuple((m, NO_LEDGER) for m in months_of_year(month)))
        else:
            out[target] = TargetActuals(tuple(metal[target]))
    return out


def load_metal(config_dir: Path) -> list[MetalPurchase] | None:
    """The ledger beside the plant or group file (``metal_purchases.csv``), None without one."""
    path = config_dir / "metal_purchases.csv"
    return load_metal_ledger(path) if path.exists() else None


def write_plan(client: InfluxClient, writer: LineWriter, plant: PlantConfig, page: PlanPage) -> int:
    """The page's points for its month under ``plant``'s site tag, replacing that month's (of the page's scope)."""
    start, end = month_start_ns(plant, page.month)
    points = page.to_points(site=plant.site.id, time_ns=start)
    replace_window(client, writer, site=SiteScope(plant.site.id), database=plant.influxdb.derived_database,
                   measurement=PLAN, tags={Tag.SCOPE.value: page.scope.value}, start_ns=start, end_ns=end,
                   points=points)
    return len(points)


def run_plan(*, plants: Sequence[PlantConfig], client_of: Mapping[str, tuple[InfluxClient, LineWriter]],
             targets: Targets, month: str, rollup: RollupMonth, scope: PlanScope, entity: str,
             metal: Sequence[MetalPurchase] | None) -> PlanPage:
    """Compute the page of ``entity`` (a site, or a group of ``plants``) for ``month`` and write its points: a
    site's under its tag, a group's under each member's. Earlier months are read from the first plant's points."""
    first = plants[0]
    client, _ = client_of[first.site.id]
    earlier = read_plan_months(client, first, scope, month)
    sites = [p.site.id for p in plants]
    actuals = gather_actuals(month, earlier=earlier, rollup=rollup,
                             metal=None if metal is None else metal_figures(metal, month, sites),
                             metering=metering_figure(plants, month))
    page = compute_plan(targets, actuals, entity=entity, scope=scope, month=month)
    for plant in plants:
        site_client, writer = client_of[plant.site.id]
        write_plan(site_client, writer, plant, page)
    gaps = [f"{row.target.value} {len(row.missing)}" for row in page.rows if row.missing]
    if gaps:  # the year to date covers fewer months than the year so far: the report lists which and why
        log.warning("plan %s %s: months of the year without a figure: %s", entity, month, ", ".join(gaps))
    return page


def site_rollup_month(rollup: Rollup) -> RollupMonth:
    """The plan's figures of a site's monthly rollup."""
    s2 = rollup.scope2
    return RollupMonth(month=rollup.month, scope1_t=sum(rollup.scope1_kgco2e.values()) / 1000,
                       scope2_location_t=s2.location_kgco2e / 1000, scope2_market_t=s2.market_monthly.kgco2e / 1000,
                       production_t=rollup.production_t,
                       renewable_kwh=s2.market_monthly.instruments_kwh + s2.pv_self_kwh,
                       certificates_kwh=s2.certificates_kwh, consumption_kwh=s2.consumption_kwh)


def group_rollup_month(group: GroupRollup) -> RollupMonth:
    """The plan's figures of the group's consolidated month (production None when a site recorded none)."""
    return RollupMonth(month=group.month, scope1_t=group.total("scope1_kgco2e") / 1000,
                       scope2_location_t=group.total("scope2_location_kgco2e") / 1000,
                       scope2_market_t=group.total("scope2_market_kgco2e") / 1000,
                       production_t=None if group.missing_output else group.production_t,
                       renewable_kwh=group.total("renewable_kwh"), certificates_kwh=group.total("certificates_kwh"),
                       consumption_kwh=group.total("consumption_kwh"))


def run_site_plan(plant: PlantConfig, rollup: Rollup, *, targets: Targets, config_dir: Path, client: InfluxClient,
                  writer: LineWriter) -> PlanPage:
    """The monthly rollup's step: the site's plan page for the month, written as its `plan` points."""
    metal = load_metal(config_dir)
    return run_plan(plants=[plant], client_of={plant.site.id: (client, writer)}, targets=targets, month=rollup.month,
                    rollup=site_rollup_month(rollup), scope=PlanScope.SITE, entity=plant.site.id, metal=metal)


def run_group_plan(group: Group, rollup: GroupRollup) -> PlanPage:
    """The group rollup's step: the group's page for the month (every site consolidated: sums of the sites'
    numerators and denominators), written under each member site's tag with scope ``group``."""
    clients: dict[str, tuple[InfluxClient, LineWriter]] = {}
    try:
        for plant in group.plants:
            cfg = plant.influxdb
            clients[plant.site.id] = (InfluxClient(cfg), make_writer(cfg, detect_api(cfg)))
        return run_plan(plants=group.plants, client_of=clients, targets=group.targets, month=rollup.month,
                        rollup=group_rollup_month(rollup), scope=PlanScope.GROUP, entity=group.id,
                        metal=load_metal(group.path.parent))
    finally:
        for client, writer in clients.values():
            writer.close()
            client.close()
