"""The plantems dashboards, generated from the plant configuration (``plantems grafana build``).

A new device, area, incomer or billing group appears without editing JSON. Queries are
InfluxQL (every InfluxDB version speaks it); names come from ``plantems.schema``. Prices
and the month-to-date emission factor are taken from the tariff and factor files at build
time and named in the panel titles and descriptions, so a figure says what it rests on.

Trends read the analytics' tiers (``power_1m``, ``device_1m``, ``device_1h``, ``collector_1m``/``1h``),
whatever the range: a panel's minimum interval is the tier's period, so its response is bounded by
the panel's width, not by the plant's size or the range. Per-device panels are worst-N tables with
a drill-down to the equipment dashboard. Only live views read raw points, over a fixed short
range (a panel time override), so they never scan months of 1-s data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, TimePicker
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DynamicConfigValue,
    VariableRefresh,
    VariableSort,
)

from plantems.config import DeviceKind, PlantConfig
from plantems.demandconfig import MeterGroup
from plantems.factors import Factor, select_factor
from plantems.grafana.model import DERIVED, RAW, Grid, InfluxQL, data_link, panel, sort_and_limit
from plantems.schema import (
    AIR,
    ALERT,
    ALL_DEVICES_SOURCE,
    ANALYTICS_STATUS,
    COLLECTOR_1H,
    COLLECTOR_1M,
    COLLECTOR_STATUS,
    DEMAND,
    DEVICE_1H,
    DEVICE_1M,
    ELECTRICAL,
    ENERGY_15M,
    MQTT_SOURCE,
    OPPORTUNITY,
    POWER_1M,
    SCOPE2,
    SPOOL_SOURCE,
    Area,
    Field,
    Granularity,
    Method,
    OpportunityType,
    Stat,
    Tag,
    tier_field,
)
from plantems.store.query import ident, literal
from plantems.tariffs import Period, Tariff, tariff_for

__all__ = ["DASHBOARDS", "build_dashboards", "dashboard_json"]

KW, KWH, KVAR, TONNES, CNY, PERCENT_UNIT, NONE, MS = ("kwatt", "kwatth", "kvoltampreact", "masst", "currency:¥",
                                                      "percentunit", "none", "ms")
LIVE_REFRESH, HISTORY_REFRESH = "10s", "5m"
_NOT_LOADS = (DeviceKind.INCOMER.value, DeviceKind.FEEDER.value, DeviceKind.PV.value)
_TOU_ORDER = (Period.SHARP, Period.PEAK, Period.FLAT, Period.VALLEY)
DASHBOARDS = ("overview", "equipment", "energy-cost", "power-factor", "scope2", "collector", "group", "plan", "enpi")
TIER_INTERVAL = "1m"  # the finest tier: a panel's $__interval never goes below it
# The fixed range of the live panels that read raw points: it covers the minute tiers' lag (device_1m and
# collector_1m are written each quarter hour, docs/operations.md) with a margin.
LIVE_FROM = "30m"
AREA_POINTS = 500  # buckets per area series: 34 areas stay under ~1 MB at any range (Grafana rounds up to 720)
WORST_N = 10  # rows of a worst-N table (InfluxDB returns no more: the response stays small at any plant size)
EQUIPMENT_UID = "plantems-equipment"


# Quoting as in the store's query layer: identifiers, and tag values escaped
_q, _s = ident, literal


def _t(field: Field, stat: Stat = Stat.MEAN) -> str:
    """A quoted tier field, e.g. ``"p_kw_mean"``."""
    return _q(tier_field(field, stat))


def _device_link(column: str) -> Any:
    """Drill-down from a worst-N row to the equipment dashboard of that device, same site and time range."""
    return data_link(f"Equipment ${{__data.fields.{column}}}",
                     f"/d/{EQUIPMENT_UID}/equipment?var-site=$site&var-area=$__all&var-kind=$__all"
                     f"&var-device=${{__data.fields.{column}}}&${{__url_time_range}}")


class _Ctx:
    """What every query needs from the configuration: the sites' plant files, one dashboard set for all.

    Every query is filtered by the dashboard's ``site`` variable; a panel that only some sites need
    (a billing group, compressed air, MQTT) is there when any site has it.
    """

    def __init__(self, plants: Sequence[PlantConfig]) -> None:
        if not plants:
            raise ValueError("the dashboards need at least one plant file")
        self.plants = tuple(plants)
        if len({p.site.timezone for p in plants}) > 1:
            raise ValueError("sites " + ", ".join(f"{p.site.id} ({p.site.timezone})" for p in plants) + ": the "
                             "dashboards' days are in one timezone; build one dashboard set per timezone")
        self.site = f"{_q(Tag.SITE)} =~ /^$site$/"
        self.tz = f"tz({_s(plants[0].site.timezone)})"
        self.loads = " AND ".join(f"{_q(Tag.KIND)} != {_s(k)}" for k in _NOT_LOADS)
        self.incomers = f"{_q(Tag.KIND)} = {_s(DeviceKind.INCOMER.value)}"

    @property
    def demand_groups(self) -> dict[str, list[tuple[str, MeterGroup]]]:
        """Billing groups by id, each with the sites that have a group of that id."""
        groups: dict[str, list[tuple[str, MeterGroup]]] = {}
        for plant in self.plants:
            for group in plant.demand.groups if plant.demand else ():
                groups.setdefault(group.id, []).append((plant.site.id, group))
        return groups

    @property
    def pf_standard(self) -> float:
        return min((g.pf_standard for p in self.plants if p.demand for g in p.demand.groups), default=0.9)

    @property
    def has_air(self) -> bool:
        return any(d.kind is DeviceKind.AIR_FLOW for p in self.plants for d in p.devices)

    @property
    def has_mqtt(self) -> bool:
        return any(p.mqtt_devices for p in self.plants)

    def label(self, name: str, name_zh: str, fallback: str) -> str:
        return " ".join(part for part in (name or fallback, name_zh) if part)


def _incomer_pf(ctx: _Ctx) -> str:
    p, q = _t(Field.P_KW), _t(Field.Q_KVAR)
    return (f"SELECT mean({p}) / SQRT(POW(mean({p}), 2) + POW(mean({q}), 2)) FROM {_q(DEVICE_1M)} "
            f"WHERE {ctx.site} AND {ctx.incomers} AND $timeFilter "
            f"GROUP BY time($__interval), {_q(Tag.DEVICE)} fill(null)")


def _incomer_trend(ctx: _Ctx, field: Field) -> str:
    """One incomer series per device from the 1-minute tier (a site has a handful of incomers)."""
    return (f"SELECT mean({_t(field)}) FROM {_q(DEVICE_1M)} WHERE {ctx.site} AND {ctx.incomers} AND $timeFilter "
            f"GROUP BY time($__interval), {_q(Tag.DEVICE)} fill(null)")


def _level_steps(group: MeterGroup) -> list[tuple[float | None, str]]:
    """Green below the first alert level, orange from each warning level, red from the limit."""
    return [(None, "green"), *((lv.at * group.limit_kw, "orange" if lv.at < 1 else "red") for lv in group.levels)]


def _shared_steps(groups: Sequence[tuple[str, MeterGroup]]) -> list[tuple[float | None, str]]:
    """The level colours where every site's group of this id has the same limit and levels, else none:
    one site's limit drawn over another's demand would mislead (the `limit` series shows each)."""
    steps = {tuple(_level_steps(group)) for _, group in groups}
    return list(steps.pop()) if len(steps) == 1 else []


def _limits_note(groups: Sequence[tuple[str, MeterGroup]]) -> str:
    return "; ".join(f"{site}: {group.method} window, limit {group.limit_kw:g} kW" for site, group in groups)


def _alerts_annotation(ctx: _Ctx) -> dict[str, Any]:
    query = (f"SELECT {_q(Field.TITLE)}, {_q(Field.TEXT)}, {_q(Field.DELIVERIES)} FROM {_q(ALERT)} "
             f"WHERE {ctx.site} AND $timeFilter")
    return {"name": "Demand alerts 需量告警", "datasource": {"type": DERIVED.type_val, "uid": DERIVED.uid},
            "enable": True, "hide": False, "iconColor": "red",
            "target": {"query": query, "rawQuery": True, "refId": "Anno", "fromAnnotations": True,
                       "textColumn": Field.TEXT.value, "titleColumn": Field.TITLE.value, "tagsColumn": Tag.LEVEL.value}}


def _dashboard(uid: str, title: str, *, refresh: str, time_from: str, tags: Sequence[str],
               compare: bool = False) -> Dashboard:
    """A dashboard whose first variable is ``site``: one site at a time, or (``compare``) any of them."""
    board = (Dashboard(title).uid(uid).tags(["plantems", *tags]).refresh(refresh).time(time_from, "now")
             .timezone("browser").editable().tooltip(DashboardCursorSync.CROSSHAIR)
             .timepicker(TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m", "15m", "1h"])))
    site = (QueryVariable("site").label("Site 工厂").datasource(RAW)
            .query(f"SHOW TAG VALUES FROM {_q(ELECTRICAL)} WITH KEY = {_q(Tag.SITE)}")
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD).sort(VariableSort.ALPHABETICAL_ASC))
    return board.with_variable(site.multi(True).include_all(True).all_value(".*") if compare else site)


def overview(ctx: _Ctx, factors: dict[str, Factor]) -> Dashboard:
    grid = Grid()
    board = _dashboard("plantems-overview", "Site overview 工厂总览", refresh=LIVE_REFRESH, time_from="now-6h",
                       tags=["overview"])
    p = _q(Field.P_KW)
    board.with_panel(panel("stat", "Site power 全厂功率", [InfluxQL(
        "A", f"SELECT sum({_q('p')}) FROM (SELECT last({p}) AS {_q('p')} FROM {_q(ELECTRICAL)} WHERE {ctx.site} "
             f"AND {ctx.incomers} AND $timeFilter GROUP BY {_q(Tag.DEVICE)})", datasource=RAW)],
        unit=KW, grid=grid, w=6, h=5, datasource=RAW, time_from=LIVE_FROM,
        description=f"Sum of the incomers' latest active power (raw, the last {LIVE_FROM})."))
    for group_id, groups in ctx.demand_groups.items():
        where = f"{ctx.site} AND {_q(Tag.METER_GROUP)} = {_s(group_id)} AND $timeFilter"
        board.with_panel(panel("stat", f"Demand {group_id} 当前需量", [InfluxQL(
            "A", f"SELECT last({_q(Field.DEMAND_KW)}) AS {_q('demand')}, last({_q(Field.PROJECTED_KW)}) AS "
                 f"{_q('projected')} FROM {_q(DEMAND)} WHERE {where}", datasource=DERIVED)],
            unit=KW, grid=grid, w=6, h=5, datasource=DERIVED, steps=_shared_steps(groups),
            description=_limits_note(groups)))
    board.with_panel(_scope2_month_stat(ctx, factors, grid))
    board.with_panel(panel("timeseries", "Site power by incomer 进线功率", [InfluxQL(
        "A", _incomer_trend(ctx, Field.P_KW), datasource=DERIVED, alias="$tag_device")],
        unit=KW, grid=grid, w=12, datasource=DERIVED, stacked=True, min_interval=TIER_INTERVAL,
        description="The 1-minute tier (up to 15 minutes behind); the live panel beside it has every poll."))
    board.with_panel(panel("timeseries", f"Incomer power, live 进线实时功率 (last {LIVE_FROM})", [InfluxQL(
        "A", f"SELECT mean({p}) FROM {_q(ELECTRICAL)} WHERE {ctx.site} AND {ctx.incomers} AND $timeFilter "
             f"GROUP BY time($__interval), {_q(Tag.DEVICE)} fill(null)", datasource=RAW, alias="$tag_device")],
        unit=KW, grid=grid, w=12, datasource=RAW, stacked=True, time_from=LIVE_FROM))
    for group_id, groups in ctx.demand_groups.items():
        group = groups[0][1]
        board.with_panel(panel("timeseries", f"15-minute demand 需量: {ctx.label(group.name, group.name_zh, group_id)}",
                               [InfluxQL("A", f"SELECT last({_q(Field.DEMAND_KW)}) AS {_q('demand')}, "
                                              f"last({_q(Field.PROJECTED_KW)}) AS {_q('projected')}, "
                                              f"last({_q(Field.LIMIT_KW)}) AS {_q('limit')} FROM {_q(DEMAND)} WHERE "
                                              f"{ctx.site} AND {_q(Tag.METER_GROUP)} = {_s(group_id)} AND "
                                              "$timeFilter GROUP BY time($__interval) fill(null)", datasource=DERIVED)],
                               unit=KW, grid=grid, w=12, datasource=DERIVED, threshold_lines=True,
                               steps=_shared_steps(groups),
                               description=f"{_limits_note(groups)}; alerts are annotations"))
    # power_1m rows per billing group have no area tag; each area row is the sum of its loads' minute means
    board.with_panel(panel("timeseries", "Power by area 分区功率", [InfluxQL(
        "A", f"SELECT mean({p}) FROM {_q(POWER_1M)} WHERE {ctx.site} AND {_q(Tag.AREA)} != '' AND $timeFilter "
             f"GROUP BY time($__interval), {_q(Tag.AREA)} fill(null)", datasource=DERIVED, alias="$tag_area")],
        unit=KW, grid=grid, w=12, datasource=DERIVED, stacked=True, min_interval=TIER_INTERVAL,
        max_data_points=AREA_POINTS,
        description="The loads of each area (incomers, feeders and PV excluded), from the 1-minute tier."))
    standard = ctx.pf_standard
    board.with_panel(panel("timeseries", "Power factor per incomer 进线功率因数", [InfluxQL(
        "A", _incomer_pf(ctx), datasource=DERIVED, alias="$tag_device")], unit=NONE, grid=grid, w=12,
        datasource=DERIVED, min_interval=TIER_INTERVAL, steps=[(None, "red"), (standard, "green")],
        threshold_lines=True, min_value=0.5, max_value=1, decimals=3))
    board.with_panel(panel("bargauge", "Today's energy by tariff period 今日分时电量", [InfluxQL(
        "A", f"SELECT sum({_q(Field.ENERGY_KWH)}) FROM {_q(ENERGY_15M)} WHERE {ctx.site} AND {ctx.incomers} AND "
             f"$timeFilter GROUP BY {_q(Tag.TOU)}", datasource=DERIVED, alias="$tag_tou")],
        unit=KWH, grid=grid, w=12, datasource=DERIVED, time_from="now/d"))
    board.with_panel(panel("table", "Recent alerts 最近告警", [InfluxQL(
        "A", f"SELECT {_q(Field.TITLE)}, {_q(Field.SHIFT)}, {_q(Field.DELIVERIES)} FROM {_q(ALERT)} WHERE {ctx.site} "
             f"AND $timeFilter GROUP BY {_q(Tag.LEVEL)}, {_q(Tag.METER_GROUP)}", datasource=DERIVED,
        result_format="table")], unit=NONE, grid=grid, w=24, h=7, datasource=DERIVED, time_from="7d"))
    return board


def _variable(name: str, label: str, measurement: str, key: str, where: str) -> QueryVariable:
    return (QueryVariable(name).label(label).datasource(RAW)
            .query(f"SHOW TAG VALUES FROM {_q(measurement)} WITH KEY = {_q(key)} WHERE {where}")
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD).sort(VariableSort.ALPHABETICAL_ASC).include_all(True)
            .all_value(".*"))


def equipment(ctx: _Ctx, tariff: Tariff) -> Dashboard:
    grid = Grid()
    board = _dashboard(EQUIPMENT_UID, "Equipment 设备", refresh=LIVE_REFRESH, time_from="now-6h",
                       tags=["equipment"])
    board.with_variable(_variable("area", "Area 区域", ELECTRICAL, Tag.AREA, ctx.site))
    board.with_variable(_variable("kind", "Kind 类型", ELECTRICAL, Tag.KIND,
                                  f"{ctx.site} AND {_q(Tag.AREA)} =~ /^$area$/"))
    board.with_variable(_variable("device", "Device 设备", ELECTRICAL, Tag.DEVICE,
                                  f"{ctx.site} AND {_q(Tag.AREA)} =~ /^$area$/ AND {_q(Tag.KIND)} =~ /^$kind$/")
                        .include_all(False))
    device = f"{ctx.site} AND {_q(Tag.DEVICE)} =~ /^$device$/ AND $timeFilter"
    p = _q(Field.P_KW)
    board.with_panel(panel("timeseries", f"Live active power $device 实时有功功率 (last {LIVE_FROM})", [InfluxQL(
        "A", f"SELECT mean({p}) AS {p} FROM {_q(ELECTRICAL)} WHERE {device} GROUP BY time($__interval) fill(null)",
        datasource=RAW)], unit=KW, grid=grid, w=24, h=6, datasource=RAW, time_from=LIVE_FROM,
        description="Every poll (raw points), always the last minutes; the panels below read the 1-minute tier."))

    def tier(title: str, fields: Sequence[Field], unit: str, *, band: bool = False, **options: Any) -> None:
        """Minute means; with ``band`` also the lowest minimum and highest maximum of each bucket."""
        stats = ((Stat.MIN, "min"), (Stat.MEAN, "mean"), (Stat.MAX, "max")) if band else ((Stat.MEAN, "mean"),)
        select = ", ".join(f"{agg}({_t(f, stat)}) AS {_q(tier_field(f, stat) if band else f)}"
                           for f in fields for stat, agg in stats)
        query = f"SELECT {select} FROM {_q(DEVICE_1M)} WHERE {device} GROUP BY time($__interval) fill(null)"
        # alias $col: the series are named by their column, which the band's overrides name
        built = panel("timeseries", title, [InfluxQL("A", query, datasource=DERIVED, alias="$col")], unit=unit,
                      grid=grid, w=12, datasource=DERIVED, min_interval=TIER_INTERVAL, **options)
        for f in fields if band else ():  # the min-max range as a shaded band around the mean line
            low, high = tier_field(f, Stat.MIN), tier_field(f, Stat.MAX)
            built = built.override_by_name(high, [DynamicConfigValue(id_val="custom.fillBelowTo", value=low),
                                                  DynamicConfigValue(id_val="custom.lineWidth", value=0)])
            built = built.override_by_name(low, [DynamicConfigValue(id_val="custom.lineWidth", value=0)])
        board.with_panel(built)

    tier("Active power $device 有功功率 (min, mean, max)", [Field.P_KW], KW, band=True)
    tier("Reactive power $device 无功功率 (min, mean, max)", [Field.Q_KVAR], KVAR, band=True)
    tier("Currents $device 电流", [Field.I_L1_A, Field.I_L2_A, Field.I_L3_A], "amp")
    tier("Voltages $device 电压", [Field.V_L1_V, Field.V_L2_V, Field.V_L3_V], "volt")
    p, q = _t(Field.P_KW), _t(Field.Q_KVAR)
    board.with_panel(panel("timeseries", "Power factor $device 功率因数 (from P and Q)", [InfluxQL(
        "A", f"SELECT mean({p}) / SQRT(POW(mean({p}), 2) + POW(mean({q}), 2)) AS {_q('pf')} FROM {_q(DEVICE_1M)} "
             f"WHERE {device} GROUP BY time($__interval) fill(null)", datasource=DERIVED)],
        unit=NONE, grid=grid, w=12, datasource=DERIVED, min_interval=TIER_INTERVAL, min_value=0, max_value=1,
        decimals=3, steps=[(None, "red"), (0.9, "green")]))
    board.with_panel(panel("timeseries", "Energy per 15 minutes $device 15分钟电量", [InfluxQL(
        "A", f"SELECT sum({_q(Field.ENERGY_KWH)}) FROM {_q(ENERGY_15M)} WHERE {device} GROUP BY time(15m), "
             f"{_q(Tag.TOU)} fill(none)", datasource=DERIVED, alias="$tag_tou")],
        unit=KWH, grid=grid, w=12, datasource=DERIVED, bars=True, stacked=True))
    board.with_panel(panel("timeseries", f"Cost per day $device 每日电费 ({tariff.id})", _cost_targets(
        ctx, tariff, device, "time(1d)"), unit=CNY, grid=grid, w=24, datasource=DERIVED, bars=True, stacked=True,
        time_from="30d", description=_tariff_note(tariff)))
    return board


def _tariff_note(tariff: Tariff) -> str:
    prices = ", ".join(f"{p.value} {tariff.prices_per_kwh[p]:g}" for p in _TOU_ORDER if p in tariff.prices_per_kwh)
    return (f"Energy x the {tariff.id} price per tariff period ({prices} {tariff.currency}/kWh; status "
            f"{tariff.status}). The monthly report prices each day by the tariff valid that day.")


def _cost_targets(ctx: _Ctx, tariff: Tariff, where: str, group_by: str) -> list[InfluxQL]:
    targets = []
    for ref, period in zip("ABCD", _TOU_ORDER, strict=True):
        price = tariff.prices_per_kwh.get(period)
        if price is None:
            continue
        targets.append(InfluxQL(ref, f"SELECT sum({_q(Field.ENERGY_KWH)}) * {price!r} AS {_q(period.value)} FROM "
                                     f"{_q(ENERGY_15M)} WHERE {where} AND {_q(Tag.TOU)} = {_s(period.value)} "
                                     f"GROUP BY {group_by} fill(none) {ctx.tz}", datasource=DERIVED))
    return targets


def energy_cost(ctx: _Ctx, tariff: Tariff) -> Dashboard:
    grid = Grid()
    board = _dashboard("plantems-energy-cost", "Energy and cost 能耗与电费", refresh=HISTORY_REFRESH,
                       time_from="now-30d", tags=["energy"])
    energy = _q(Field.ENERGY_KWH)
    board.with_panel(panel("timeseries", "Energy per day by area 分区日电量", [InfluxQL(
        "A", f"SELECT sum({energy}) FROM {_q(ENERGY_15M)} WHERE {ctx.site} AND {ctx.loads} AND $timeFilter "
             f"GROUP BY time(1d), {_q(Tag.AREA)} fill(none) {ctx.tz}", datasource=DERIVED, alias="$tag_area")],
        unit=KWH, grid=grid, w=12, datasource=DERIVED, bars=True, stacked=True))
    board.with_panel(panel("timeseries", "Grid energy per day by tariff period 分时日电量", [InfluxQL(
        "A", f"SELECT sum({energy}) FROM {_q(ENERGY_15M)} WHERE {ctx.site} AND {ctx.incomers} AND $timeFilter "
             f"GROUP BY time(1d), {_q(Tag.TOU)} fill(none) {ctx.tz}", datasource=DERIVED, alias="$tag_tou")],
        unit=KWH, grid=grid, w=12, datasource=DERIVED, bars=True, stacked=True))
    board.with_panel(panel("timeseries", f"Grid cost per day by tariff period 分时日电费 ({tariff.id})", _cost_targets(
        ctx, tariff, f"{ctx.site} AND {ctx.incomers} AND $timeFilter", "time(1d)"), unit=CNY, grid=grid, w=12,
        datasource=DERIVED, bars=True, stacked=True, description=_tariff_note(tariff)))
    board.with_panel(panel("table", "Energy by area and tariff period 分区分时电量", [InfluxQL(
        "A", f"SELECT sum({energy}) AS {_q(Field.ENERGY_KWH)} FROM {_q(ENERGY_15M)} WHERE {ctx.site} AND {ctx.loads} "
             f"AND $timeFilter GROUP BY {_q(Tag.AREA)}, {_q(Tag.TOU)}", datasource=DERIVED, result_format="table")],
        unit=KWH, grid=grid, w=12, datasource=DERIVED))
    board.with_panel(panel("table", "Data quality per meter 数据质量", [InfluxQL(
        "A", f"SELECT mean({_q(Field.COVERAGE)}) AS {_q('coverage')}, sum({_q(Field.INTERP_KWH)}) AS "
             f"{_q('interpolated kWh')}, sum({_q(Field.REJECTED_SAMPLES)}) AS {_q('rejected samples')}, "
             f"sum({_q(Field.REPLACEMENTS)}) AS {_q('replacements')} FROM {_q(ENERGY_15M)} WHERE {ctx.site} AND "
             f"$timeFilter GROUP BY {_q(Tag.DEVICE)}", datasource=DERIVED, result_format="table")],
        unit=NONE, grid=grid, w=24, datasource=DERIVED,
        description="Per meter over the range: coverage (share of time with samples no more than max(60 s, 3 polls) "
                    "apart), energy interpolated across gaps, counter samples rejected as physically implausible "
                    "(glitches, never energy) and meter replacements (the step onto a new meter adds nothing)."))
    opp = (f"{ctx.site} AND {_q(Tag.TYPE)} = {_s(OpportunityType.LOAD_SHIFT)} AND {_q(Tag.GRANULARITY)} = "
           f"{_s(Granularity.DAY)} AND $timeFilter")
    board.with_panel(panel("table", "Load shifting: sharp+peak energy and the saving off-peak 移峰填谷", [InfluxQL(
        "A", f"SELECT sum({energy}) AS {_q('sharp+peak kWh')}, sum({_q(Field.COST_CNY)}) AS {_q('sharp+peak CNY')}, "
             f"sum({_q(Field.SAVING_CNY)}) AS {_q('saving CNY')} FROM {_q(OPPORTUNITY)} WHERE {opp} "
             f"GROUP BY {_q(Tag.DEVICE)}", datasource=DERIVED, result_format="table")],
        unit=CNY, grid=grid, w=12, datasource=DERIVED,
        description="Shiftable devices only (shiftable: true); the saving if their sharp and peak energy ran at the "
                    "cheapest period their shift_windows reach."))
    board.with_panel(panel("timeseries", "Load-shifting saving per day 每日可节省", [InfluxQL(
        "A", f"SELECT sum({_q(Field.SAVING_CNY)}) FROM {_q(OPPORTUNITY)} WHERE {opp} GROUP BY time(1d), "
             f"{_q(Tag.DEVICE)} fill(none) {ctx.tz}", datasource=DERIVED, alias="$tag_device")],
        unit=CNY, grid=grid, w=12, datasource=DERIVED, bars=True, stacked=True))
    month = f"{ctx.site} AND {_q(Tag.GRANULARITY)} = {_s(Granularity.MONTH)} AND $timeFilter"
    if ctx.demand_groups:
        board.with_panel(panel("table", "Monthly maximum demand and the shifting potential 月最大需量", [InfluxQL(
            "A", f"SELECT {_q(Field.DEMAND_KW)}, {_q(Field.REDUCTION_KW)}, {_q(Field.LIMIT_KW)} FROM {_q(OPPORTUNITY)} "
                 f"WHERE {month} AND {_q(Tag.TYPE)} = {_s(OpportunityType.MAX_DEMAND)} GROUP BY {_q(Tag.METER_GROUP)}",
            datasource=DERIVED, result_format="table")], unit=KW, grid=grid, w=12, datasource=DERIVED, time_from="1y"))
    if ctx.has_air:
        board.with_panel(panel("table", "Compressed air: specific power and pressure saving 压缩空气", [InfluxQL(
            "A", f"SELECT {_q(Field.SPECIFIC_POWER_KW_PER_M3MIN)}, {_q(Field.AIR_BAR)}, {_q(Field.SAVING_KWH)}, "
                 f"{_q(Field.SAVING_CNY)} FROM {_q(OPPORTUNITY)} WHERE {month} AND {_q(Tag.TYPE)} = "
                 f"{_s(OpportunityType.COMPRESSED_AIR)} GROUP BY {_q(Tag.DEVICE)}", datasource=DERIVED,
            result_format="table")],
            unit=NONE, grid=grid, w=12, datasource=DERIVED, time_from="1y"))
        board.with_panel(panel("timeseries", "Compressed-air flow and header pressure 空压流量与压力", [InfluxQL(
            "A", f"SELECT mean({_q(Field.AIR_M3MIN)}) AS {_q('m3/min')}, mean({_q(Field.AIR_BAR)}) AS {_q('bar')} "
                 f"FROM {_q(AIR)} WHERE {ctx.site} AND $timeFilter GROUP BY time($__interval), {_q(Tag.DEVICE)} "
                 "fill(null)", datasource=RAW)],
            unit=NONE, grid=grid, w=12, datasource=RAW))
    return board


def power_factor(ctx: _Ctx) -> Dashboard:
    grid = Grid()
    board = _dashboard("plantems-power-factor", "Power factor and reactive power 功率因数与无功",
                       refresh=HISTORY_REFRESH, time_from="now-7d", tags=["power-factor"])
    standard = ctx.pf_standard
    board.with_panel(panel("timeseries", "Power factor per incomer 进线功率因数", [InfluxQL(
        "A", _incomer_pf(ctx), datasource=DERIVED, alias="$tag_device")], unit=NONE, grid=grid, w=12,
        datasource=DERIVED, min_interval=TIER_INTERVAL, steps=[(None, "red"), (standard, "green")],
        threshold_lines=True, min_value=0.5, max_value=1, decimals=3))
    board.with_panel(panel("timeseries", "Reactive power per incomer 进线无功 (negative: fed back)", [InfluxQL(
        "A", _incomer_trend(ctx, Field.Q_KVAR), datasource=DERIVED, alias="$tag_device")], unit=KVAR, grid=grid,
        w=12, datasource=DERIVED, min_interval=TIER_INTERVAL))
    month = f"{ctx.site} AND {_q(Tag.GRANULARITY)} = {_s(Granularity.MONTH)} AND $timeFilter"
    board.with_panel(panel("table", "Monthly PF, bill adjustment and capacitor bank 力调电费与补偿容量", [InfluxQL(
        "A", f"SELECT {_q(Field.PF)}, {_q(Field.ADJUSTMENT_PCT)}, {_q(Field.ADJUSTMENT_CNY)}, {_q(Field.KVAR)} "
             f"AS {_q('bank kvar (p95)')}, {_q(Field.SAVING_KWH)} AS {_q('line-loss kWh')}, {_q(Field.SAVING_CNY)} "
             f"FROM {_q(OPPORTUNITY)} WHERE {month} AND {_q(Tag.TYPE)} = {_s(OpportunityType.REACTIVE)} "
             f"GROUP BY {_q(Tag.METER_GROUP)}", datasource=DERIVED, result_format="table")],
        unit=NONE, grid=grid, w=12, datasource=DERIVED, time_from="1y",
        description="The 1983 power-factor adjustment (功率因数调整电费办法) on the group's standard; capacitor bank "
                    "sized on the 95th percentile of 15-minute kW and kvar."))
    board.with_panel(panel("table", "Devices by power factor (latest month) 低功率因数设备", [InfluxQL(
        "A", f"SELECT last({_q(Field.PF)}) AS {_q(Field.PF)}, last({_q(Field.REACTIVE_KVARH)}) AS "
             f"{_q(Field.REACTIVE_KVARH)} FROM {_q(OPPORTUNITY)} WHERE {month} AND {_q(Tag.TYPE)} = "
             f"{_s(OpportunityType.LOW_PF)} GROUP BY {_q(Tag.DEVICE)}", datasource=DERIVED, result_format="table")],
        unit=NONE, grid=grid, w=12, datasource=DERIVED, time_from="1y"))
    board.with_panel(_lowest_pf(ctx, grid, standard))
    return board


def _lowest_pf(ctx: _Ctx, grid: Grid, standard: float) -> Any:
    """The WORST_N loads with the lowest PF over the range, from hourly P and Q means (one row per device,
    picked by InfluxDB's bottom(): the response is WORST_N rows whatever the plant's size)."""
    p, q, pf, kw, kvar = _t(Field.P_KW), _t(Field.Q_KVAR), _q(Field.PF), _q("mean kW"), _q("mean kvar")
    inner = (f"SELECT mean({p}) / SQRT(POW(mean({p}), 2) + POW(mean({q}), 2)) AS {pf}, mean({p}) AS {kw}, "
             f"mean({q}) AS {kvar} FROM {_q(DEVICE_1H)} WHERE {ctx.site} AND {ctx.loads} AND $timeFilter "
             f"GROUP BY {_q(Tag.DEVICE)}, {_q(Tag.AREA)}")
    # an idle device (no mean power) has no meaningful PF: it is left out rather than ranked worst
    query = (f"SELECT bottom({pf}, {_q(Tag.DEVICE)}, {WORST_N}) AS {pf}, {_q(Tag.AREA)}, {kw}, {kvar} "
             f"FROM ({inner}) WHERE {kw} > 0")
    return panel("table", f"Lowest power factor: the worst {WORST_N} devices 功率因数最低的设备", [InfluxQL(
        "A", query, datasource=DERIVED, result_format="table")], unit=NONE, grid=grid, w=24, datasource=DERIVED,
        decimals=3, steps=[(None, "red"), (standard, "green")], links=[_device_link(Tag.DEVICE.value)],
        transformations=sort_and_limit(Field.PF.value, descending=False, limit=WORST_N),
        description=f"PF from the mean active and reactive power over the range (hourly tier), loads only; "
                    f"below {standard:g} in red. Click a device for its equipment dashboard.")


def scope2(ctx: _Ctx) -> Dashboard:
    grid = Grid()
    board = _dashboard("plantems-scope2", "Scope 2 and intensity 范围二排放与强度", refresh=HISTORY_REFRESH,
                       time_from="now-1y", tags=["scope2"])
    site_rows = f"{ctx.site} AND {_q(Tag.AREA)} = {_s(Area.SITE)} AND $timeFilter"
    board.with_panel(panel("timeseries", "Monthly Scope 2, location- and market-based 月度范围二排放", [InfluxQL(
        "A", f"SELECT {_q(Field.KGCO2E)} / 1000 FROM {_q(SCOPE2)} WHERE {site_rows} GROUP BY {_q(Tag.METHOD)}",
        datasource=DERIVED, alias="$tag_method")], unit=TONNES, grid=grid, w=12, datasource=DERIVED, bars=True,
        description="From the monthly rollups (plantems rollup); provenance in reports/YYYY-MM/rollup.json."))
    board.with_panel(panel("timeseries", "Renewable share 可再生电力占比", [InfluxQL(
        "A", f"SELECT {_q(Field.RENEWABLE_SHARE)} FROM {_q(SCOPE2)} WHERE {site_rows} AND {_q(Tag.METHOD)} = "
             f"{_s(Method.MARKET)}", datasource=DERIVED, alias="renewable share")],
        unit=PERCENT_UNIT, grid=grid, w=12, datasource=DERIVED, bars=True, min_value=0, max_value=1,
        steps=[(None, "red"), (0.5, "orange"), (1.0, "green")]))
    board.with_panel(panel("timeseries", "Scope 1+2 intensity against the pathway 排放强度 (t CO2e / t)", [InfluxQL(
        "A", f"SELECT {_q(Field.INTENSITY_T_PER_T)} AS {_q('intensity')}, {_q(Field.TARGET_T_PER_T)} AS "
             f"{_q('pathway')} FROM {_q(SCOPE2)} WHERE {site_rows} AND {_q(Tag.METHOD)} = {_s(Method.MARKET)}",
        datasource=DERIVED)], unit=NONE, grid=grid, w=12, datasource=DERIVED, decimals=3))
    board.with_panel(panel("timeseries", "Location-based Scope 2 by area 分区范围二排放", [InfluxQL(
        "A", f"SELECT {_q(Field.KGCO2E)} / 1000 FROM {_q(SCOPE2)} WHERE {ctx.site} AND {_q(Tag.AREA)} != "
             f"{_s(Area.SITE)} AND {_q(Tag.METHOD)} = {_s(Method.LOCATION)} AND $timeFilter GROUP BY {_q(Tag.AREA)}",
        datasource=DERIVED, alias="$tag_area")], unit=TONNES, grid=grid, w=12, datasource=DERIVED, bars=True,
        stacked=True))
    return board


def collector(ctx: _Ctx) -> Dashboard:
    grid = Grid()
    board = _dashboard("plantems-collector", "Collector health 采集健康", refresh=LIVE_REFRESH, time_from="now-1h",
                       tags=["collector"])
    status, source = _q(COLLECTOR_STATUS), _q(Tag.SOURCE)
    # the spool and MQTT sources carry a shard suffix (spool-0of2) when the plant is sharded
    own = f"/^({SPOOL_SOURCE}|{MQTT_SOURCE})/"
    devices = f"{ctx.site} AND {source} !~ {own} AND $timeFilter"
    board.with_panel(panel("stat", "Devices up 设备在线", [InfluxQL(
        "A", f"SELECT last({_q(Field.UP)}) FROM {status} WHERE {devices} GROUP BY {source}", datasource=RAW,
        alias="$tag_source")], unit=NONE, grid=grid, w=24, h=6, datasource=RAW, time_from=LIVE_FROM,
        steps=[(None, "red"), (1, "green")], description=f"Each source's latest state (raw, the last {LIVE_FROM})."))
    _collector_trends(board, grid, ctx.site, devices)
    _collector_worst(board, grid, devices)
    spool = f"{ctx.site} AND {source} =~ /^{SPOOL_SOURCE}/ AND $timeFilter"
    board.with_panel(panel("timeseries", "Spool depth 缓存积压", [InfluxQL(
        "A", f"SELECT last({_q(Field.SPOOL_LINES)}) AS {_q('lines')} FROM {status} WHERE {spool} "
             f"GROUP BY time($__interval), {source} fill(null)", datasource=RAW, alias="$tag_source")],
        unit=NONE, grid=grid, w=12, datasource=RAW,
        description="Lines waiting for InfluxDB; it grows while InfluxDB is away and drains when it is back."))
    board.with_panel(panel("timeseries", "Write errors, shed and dead-lettered lines 写入错误", [InfluxQL(
        "A", f"SELECT non_negative_difference(last({_q(Field.ERRORS)})) AS {_q('failed writes')}, "
             f"non_negative_difference(last({_q(Field.SHED_LINES)})) AS {_q('shed')}, "
             f"non_negative_difference(last({_q(Field.DEAD_LETTERED_LINES)})) AS {_q('dead-lettered')} FROM {status} "
             f"WHERE {spool} GROUP BY time($__interval), {source} fill(null)", datasource=RAW,
        alias="$tag_source $col")],
        unit=NONE, grid=grid, w=12, datasource=RAW))
    board.with_panel(panel("timeseries", "Spool faults and the memory buffer 缓存故障", [InfluxQL(
        "A", f"SELECT non_negative_difference(last({_q(Field.SPOOL_ERRORS)})) AS {_q('spool errors')}, "
             f"last({_q(Field.BUFFERED_LINES)}) AS {_q('buffered')}, "
             f"non_negative_difference(last({_q(Field.BUFFER_DROPPED_LINES)})) AS {_q('dropped from buffer')} "
             f"FROM {status} WHERE {spool} GROUP BY time($__interval), {source} fill(null)", datasource=RAW,
        alias="$tag_source $col")], unit=NONE, grid=grid, w=12, datasource=RAW,
        description="A full disk or a corrupt page: readings wait in memory and the collector retries; it exits "
                    "(status 3) for its supervisor after spool.unusable_exit_s."))
    board.with_panel(panel("table", "Analytics jobs 分析任务", [InfluxQL(
        "A", f"SELECT last({_q(Field.OK)}) AS {_q('ok')}, last({_q(Field.CONSECUTIVE_FAILURES)}) AS "
             f"{_q('consecutive failures')} FROM {_q(ANALYTICS_STATUS)} WHERE {ctx.site} AND $timeFilter "
             f"GROUP BY {source}", datasource=DERIVED, result_format="table")],
        unit=NONE, grid=grid, w=12, datasource=DERIVED, time_from="7d",
        description="Each scheduled job's last attempt: ok 0 means it failed and is being retried with backoff "
                    "(the analytics log has the error at ERROR)."))
    if ctx.has_mqtt:
        board.with_panel(panel("timeseries", "MQTT messages, rejected and unknown MQTT消息", [InfluxQL(
            "A", f"SELECT non_negative_difference(last({_q(Field.MESSAGES)})) AS {_q('messages')}, "
                 f"non_negative_difference(last({_q(Field.REJECTED)})) AS {_q('rejected')}, "
                 f"non_negative_difference(last({_q(Field.UNKNOWN)})) AS {_q('unknown')} FROM {status} WHERE "
                 f"{ctx.site} AND {source} =~ /^{MQTT_SOURCE}/ AND $timeFilter GROUP BY time($__interval), {source} "
                 "fill(null)", datasource=RAW, alias="$tag_source $col")], unit=NONE, grid=grid, w=24, datasource=RAW))
    return board


def _collector_trends(board: Dashboard, grid: Grid, site: str, devices: str) -> None:
    """Latency and faults of all device sources together: live from raw, over the range from the site's
    ``ALL_DEVICES_SOURCE`` rows of the 1-minute tier (one series per site whatever the number of devices; the
    worst-N tables name the devices). ``devices`` filters site, device sources and time; ``site`` the site."""
    where = f"{devices} GROUP BY time($__interval) fill(null)"
    latency = _q(Field.LATENCY_MS)
    board.with_panel(panel("timeseries", f"Poll latency, all devices, live 实时采集延迟 (last {LIVE_FROM})", [InfluxQL(
        "A", f"SELECT mean({latency}) AS {_q('mean')}, max({latency}) AS {_q('max')} FROM {_q(COLLECTOR_STATUS)} "
             f"WHERE {where}", datasource=RAW)], unit=MS, grid=grid, w=24, h=6, datasource=RAW, time_from=LIVE_FROM,
        description="Every status point (raw); the panels below read the 1-minute tier, up to 15 minutes behind."))
    every = (f"{site} AND {_q(Tag.SOURCE)} = {_s(ALL_DEVICES_SOURCE)} AND $timeFilter "
             "GROUP BY time($__interval) fill(null)")
    board.with_panel(panel("timeseries", "Poll latency, all devices 采集延迟", [InfluxQL(
        "A", f"SELECT mean({_t(Field.LATENCY_MS)}) AS {_q('mean')}, max({_t(Field.LATENCY_MS, Stat.MAX)}) AS "
             f"{_q('max')} FROM {_q(COLLECTOR_1M)} WHERE {every}", datasource=DERIVED)],
        unit=MS, grid=grid, w=12, datasource=DERIVED, min_interval=TIER_INTERVAL))
    board.with_panel(panel("timeseries", "Errors and missed polls per interval, all devices 错误与漏采", [InfluxQL(
        "A", f"SELECT sum({_q(Field.ERRORS)}) AS {_q('errors')}, sum({_q(Field.MISSED_POLLS)}) AS {_q('missed')} "
             f"FROM {_q(COLLECTOR_1M)} WHERE {every}", datasource=DERIVED)],
        unit=NONE, grid=grid, w=12, datasource=DERIVED, min_interval=TIER_INTERVAL, bars=True))


def _collector_worst(board: Dashboard, grid: Grid, devices: str) -> None:
    """The WORST_N device sources by latency and by errors plus missed polls over the range, picked by
    InfluxDB's top() over per-source aggregates of the hourly tier (the hours overlapping the range, so a short
    range still has the last complete hour; the current hour's row is rewritten each quarter); each row links to
    its device."""
    overlapping = devices.replace("$timeFilter", "time > ${__from}ms - 1h AND time <= ${__to}ms")
    where = f"{overlapping} GROUP BY {_q(Tag.SOURCE)}"
    source, mean, worst = _q(Tag.SOURCE), _q("mean ms"), _q("max ms")
    board.with_panel(panel("table", f"Slowest devices: the worst {WORST_N} 延迟最高的设备", [InfluxQL(
        "A", f"SELECT top({mean}, {source}, {WORST_N}) AS {mean}, {worst} FROM (SELECT mean({_t(Field.LATENCY_MS)}) "
             f"AS {mean}, max({_t(Field.LATENCY_MS, Stat.MAX)}) AS {worst} FROM {_q(COLLECTOR_1H)} WHERE {where})",
        datasource=DERIVED, result_format="table")], unit=MS, grid=grid, w=12, datasource=DERIVED,
        links=[_device_link(Tag.SOURCE.value)], transformations=sort_and_limit("mean ms", descending=True,
                                                                               limit=WORST_N),
        description="Mean poll latency per device over the hours that overlap the range (hourly tier; the "
                    "current hour so far is up to 15 minutes behind); click a device for its equipment dashboard."))
    problems, errors, missed = _q("errors + missed"), _q("errors"), _q("missed polls")
    title = f"Most errors and missed polls: the worst {WORST_N} 错误与漏采最多的设备"
    board.with_panel(panel("table", title, [InfluxQL(
        "A", f"SELECT top({problems}, {source}, {WORST_N}) AS {problems}, {errors}, {missed} FROM (SELECT "
             f"sum({_q(Field.ERRORS)}) + sum({_q(Field.MISSED_POLLS)}) AS {problems}, sum({_q(Field.ERRORS)}) AS "
             f"{errors}, sum({_q(Field.MISSED_POLLS)}) AS {missed} FROM {_q(COLLECTOR_1H)} WHERE {where}) "
             f"WHERE {problems} > 0", datasource=DERIVED, result_format="table")],
        unit=NONE, grid=grid, w=12, datasource=DERIVED, links=[_device_link(Tag.SOURCE.value)],
        transformations=sort_and_limit("errors + missed", descending=True, limit=WORST_N),
        description="Failed requests and missed polls over the hours that overlap the range (hourly tier, the "
                    "current hour up to 15 minutes behind); only devices that had any."))


def group(ctx: _Ctx) -> Dashboard:
    """The sites side by side: energy, Scope 2, Scope 1+2 intensity against the pathway, renewable share."""
    grid = Grid()
    board = _dashboard("plantems-group", "Group: the sites compared 集团各厂对比", refresh=HISTORY_REFRESH,
                       time_from="now-1y", tags=["group"], compare=True)
    site, energy = _q(Tag.SITE), _q(Field.ENERGY_KWH)
    site_rows = f"{ctx.site} AND {_q(Tag.AREA)} = {_s(Area.SITE)} AND $timeFilter"
    market = f"{site_rows} AND {_q(Tag.METHOD)} = {_s(Method.MARKET)}"
    board.with_panel(panel("timeseries", "Grid energy per day by site 各厂日电量", [InfluxQL(
        "A", f"SELECT sum({energy}) FROM {_q(ENERGY_15M)} WHERE {ctx.site} AND {ctx.incomers} AND $timeFilter "
             f"GROUP BY time(1d), {site} fill(none) {ctx.tz}", datasource=DERIVED, alias="$tag_site")],
        unit=KWH, grid=grid, w=12, datasource=DERIVED, bars=True, time_from="30d",
        description="The incomers' 15-minute energy (grid import), per local day."))
    board.with_panel(panel("timeseries", "Monthly grid energy by site 各厂月电量", [InfluxQL(
        "A", f"SELECT {energy} FROM {_q(SCOPE2)} WHERE {market} GROUP BY {site}", datasource=DERIVED,
        alias="$tag_site")], unit=KWH, grid=grid, w=12, datasource=DERIVED, bars=True,
        description="From each site's monthly rollup (the figures its report signs)."))
    both = f"{site_rows} AND {_q(Tag.METHOD)} =~ /^({Method.LOCATION.value}|{Method.MARKET.value})$/"
    board.with_panel(panel("timeseries", "Monthly Scope 1+2 by site, location and market 各厂月度范围一+二", [InfluxQL(
        "A", f"SELECT ({_q(Field.SCOPE1_KGCO2E)} + {_q(Field.KGCO2E)}) / 1000 FROM {_q(SCOPE2)} WHERE {both} "
             f"GROUP BY {site}, {_q(Tag.METHOD)}", datasource=DERIVED, alias="$tag_site $tag_method")],
        unit=TONNES, grid=grid, w=12, datasource=DERIVED, bars=True,
        description="Scope 1 (fuel) plus Scope 2, each site with its own grid-factor region and its own green-power "
                    "instruments."))
    board.with_panel(panel("timeseries", "Scope 1+2 intensity by site against the pathway 各厂排放强度 (t CO2e / t)",
                           [InfluxQL("A", f"SELECT {_q(Field.INTENSITY_T_PER_T)} FROM {_q(SCOPE2)} WHERE {market} "
                                          f"GROUP BY {site}", datasource=DERIVED, alias="$tag_site"),
                            InfluxQL("B", f"SELECT max({_q(Field.TARGET_T_PER_T)}) AS {_q('pathway')} FROM "
                                          f"{_q(SCOPE2)} WHERE {market} GROUP BY time(1d) fill(none)",
                                     datasource=DERIVED, alias="pathway")],
                           unit=NONE, grid=grid, w=12, datasource=DERIVED, decimals=3,
                           description="Market-based Scope 1+2 per tonne of each site's output (site.output_lines); "
                                       "the pathway from config/targets.yaml."))
    board.with_panel(panel("timeseries", "Renewable share by site 各厂可再生电力占比", [InfluxQL(
        "A", f"SELECT {_q(Field.RENEWABLE_SHARE)} FROM {_q(SCOPE2)} WHERE {market} GROUP BY {site}",
        datasource=DERIVED, alias="$tag_site")], unit=PERCENT_UNIT, grid=grid, w=12, datasource=DERIVED, bars=True,
        min_value=0, max_value=1, steps=[(None, "red"), (0.5, "orange"), (1.0, "green")]))
    board.with_panel(panel("table", "The sites over the time range 各厂汇总", [InfluxQL(
        "A", f"SELECT sum({energy}) AS {_q('grid kWh')}, sum({_q(Field.SCOPE1_KGCO2E)}) / 1000 AS "
             f"{_q('Scope 1 t')}, sum({_q(Field.KGCO2E)}) / 1000 AS "
             f"{_q('Scope 2 market t')}, sum({_q(Field.GREEN_KWH)}) AS {_q('green instruments kWh')} FROM "
             f"{_q(SCOPE2)} WHERE {market} GROUP BY {site}", datasource=DERIVED, result_format="table")],
        unit=NONE, grid=grid, w=12, datasource=DERIVED,
        description="Sums of the monthly rollups in the range; the signed group figures are the group report "
                    "(plantems group rollup)."))
    return board


def _scope2_month_stat(ctx: _Ctx, factors: dict[str, Factor], grid: Grid) -> Any:
    """Grid import this month x each site's month-to-date location factor (one target per distinct factor)."""
    by_factor: dict[str, list[str]] = {}
    for site, factor in factors.items():
        by_factor.setdefault(factor.id, []).append(site)
    chosen = {factor.id: factor for factor in factors.values()}
    targets = []
    for ref, (factor_id, sites) in zip("ABCDEFGH", sorted(by_factor.items()), strict=False):
        only = "" if len(by_factor) == 1 else f" AND {_q(Tag.SITE)} =~ /^({'|'.join(sites)})$/"
        targets.append(InfluxQL(ref, f"SELECT sum({_q(Field.ENERGY_KWH)}) * {chosen[factor_id].kg_per_unit!r} / 1000 "
                                     f"AS {_q(factor_id)} FROM {_q(ENERGY_15M)} WHERE {ctx.site}{only} AND "
                                     f"{ctx.incomers} AND $timeFilter", datasource=DERIVED))
    notes = "; ".join(f"{', '.join(sites)}: {chosen[fid].kg_per_unit} kg CO2/kWh ({fid}, {chosen[fid].source[:80]})"
                      for fid, sites in sorted(by_factor.items()))
    return panel("stat", f"Scope 2 this month 本月范围二 ({', '.join(sorted(by_factor))})", targets, unit=TONNES,
                 grid=grid, w=6, h=5, datasource=DERIVED, time_from="now/M", decimals=1,
                 description=f"Grid import this month x the site's factor ({notes}). Location-based and indicative: "
                             "the signed figure is the monthly report.")


def build_dashboards(plants: Sequence[PlantConfig], tariffs: Sequence[Tariff], factors: Sequence[Factor]
                     ) -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON, by file name (pure: the same files give the same JSON on any day).

    One set for all the sites' plant files, each dashboard with a ``site`` variable. Prices are the
    newest tariff version's and the month-to-date factor the newest published location factor of
    each site's regions; both are named on their panels.
    """
    from plantems.grafana.plan_dashboards import enpi, plan  # they build on this module's helpers

    ctx = _Ctx(plants)
    tariff = tariff_for(tariffs, date.max)
    factor = {p.site.id: select_factor(factors, method="location", regions=p.site.grid_factor_regions,
                                       year=date.max.year, as_of=date.max).factor for p in plants}
    boards = {"overview": overview(ctx, factor), "equipment": equipment(ctx, tariff),
              "energy-cost": energy_cost(ctx, tariff), "power-factor": power_factor(ctx), "scope2": scope2(ctx),
              "collector": collector(ctx), "group": group(ctx), "plan": plan(ctx), "enpi": enpi(ctx)}
    out = {}
    for name, board in boards.items():
        model = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
        for number, item in enumerate(model["panels"], start=1):
            item["id"] = number  # stable ids: links and Grafana's panel state survive a rebuild
        if name in ("overview",):
            model["annotations"] = {"list": [_alerts_annotation(ctx)]}
        out[name] = model
    return out


def dashboard_json(model: dict[str, Any]) -> str:
    """Stable text for a committed dashboard (sorted keys, UTF-8, trailing newline)."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
