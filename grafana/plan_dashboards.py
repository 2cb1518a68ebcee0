"""The plan and EnPI dashboards (``plantems grafana build``), beside those of grafana/dashboards.py and built
with its helpers: one site at a time through the ``site`` variable.

- "Plan 规划目标" reads the `plan` points the monthly rollups write (scope ``site``) and those the group rollup
  writes under each member site (scope ``group``): every target's base year and value, this year's target,
  the goal, the actual year to date and its status; the intensities and shares month by month.
- "EnPI 能效指标" reads the `enpi` points (analytics/enpi_job.py): kWh/t, kgce/t and t CO2e/t of the site and
  each production line, by day and by month, with the production completeness that qualifies them.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard

from plantems.grafana.dashboards import HISTORY_REFRESH, NONE, PERCENT_UNIT, _Ctx, _dashboard, _q, _s
from plantems.grafana.model import DERIVED, Grid, InfluxQL, panel
from plantems.schema import ENPI, PLAN, Field, Granularity, PlanScope, PlanTarget, Tag

__all__ = ["PLAN_DASHBOARDS", "enpi", "plan"]

PLAN_DASHBOARDS = ("plan", "enpi")
_SHARES = (PlanTarget.RECYCLED_SHARE, PlanTarget.RENEWABLE_SHARE, PlanTarget.CERTIFICATE_SHARE,
           PlanTarget.METERING_COVERAGE)
_TABLE = ((Field.BASE_YEAR, "base year"), (Field.BASE_VALUE, "base value"), (Field.TARGET_VALUE, "this year's target"),
          (Field.GOAL_VALUE, "goal"), (Field.ACTUAL_YTD_VALUE, "actual YTD"),
          (Field.ACTUAL_YTD_MARKET_VALUE, "actual YTD, market-based"), (Field.ON_TRACK, "on track (1/0)"),
          (Field.MONTHS_COUNTED, "months"), (Field.TO_BE_CONFIRMED, "to be confirmed"))


def _scope(ctx: _Ctx, scope: PlanScope) -> str:
    return f"{ctx.site} AND {_q(Tag.SCOPE)} = {_s(scope)} AND $timeFilter"


def _target_is(target: PlanTarget) -> str:
    return f"{_q(Tag.TARGET)} = {_s(target)}"


def _plan_table(ctx: _Ctx, scope: PlanScope, title: str, grid: Grid) -> Any:
    columns = ", ".join(f"{_q(f)} AS {_q(label)}" for f, label in _TABLE)
    return panel("table", title, [InfluxQL(
        "A", f"SELECT {columns} FROM {_q(PLAN)} WHERE {_scope(ctx, scope)} GROUP BY {_q(Tag.TARGET)} "
             "ORDER BY time DESC LIMIT 1", datasource=DERIVED, result_format="table")],
        unit=NONE, grid=grid, w=24, h=8, datasource=DERIVED, decimals=3,
        description="The latest month's point of each target (the values of its monthly rollup): shares and the "
                    "coverage are 0-1. on track is absent when it cannot be decided (no data, or a goal for 2030 "
                    "only without a base_value in targets.yaml). The signed figures are the reports' plan pages.")


def _intensity(ctx: _Ctx, target: PlanTarget, title: str, grid: Grid) -> Any:
    site, group = f"{_scope(ctx, PlanScope.SITE)} AND {_target_is(target)}", \
        f"{_scope(ctx, PlanScope.GROUP)} AND {_target_is(target)}"
    market = (f", {_q(Field.ACTUAL_YTD_MARKET_VALUE)} AS {_q('site YTD, market-based')}"
              if target is PlanTarget.INTENSITY else "")
    return panel("timeseries", title, [
        InfluxQL("A", f"SELECT {_q(Field.ACTUAL_VALUE)} AS {_q('site month')}, {_q(Field.ACTUAL_YTD_VALUE)} AS "
                      f"{_q('site YTD')}{market}, {_q(Field.TARGET_VALUE)} AS {_q('this year target')} FROM "
                      f"{_q(PLAN)} WHERE {site}", datasource=DERIVED),
        InfluxQL("B", f"SELECT {_q(Field.ACTUAL_YTD_VALUE)} AS {_q('group YTD')} FROM {_q(PLAN)} WHERE {group}",
                 datasource=DERIVED)],
        unit=NONE, grid=grid, w=12, datasource=DERIVED, decimals=3,
        description="t CO2e per t; year to date = the year's summed emissions / summed tonnes (never a mean of "
                    "monthly ratios). Group: both parks consolidated.")


def _shares(ctx: _Ctx, scope: PlanScope, title: str, grid: Grid) -> Any:
    shares = "|".join(t.value for t in _SHARES)
    return panel("timeseries", title, [InfluxQL(
        "A", f"SELECT {_q(Field.ACTUAL_YTD_VALUE)} FROM {_q(PLAN)} WHERE {_scope(ctx, scope)} AND {_q(Tag.TARGET)} "
             f"=~ /^({shares})$/ GROUP BY {_q(Tag.TARGET)}", datasource=DERIVED, alias="$tag_target")],
        unit=PERCENT_UNIT, grid=grid, w=12, datasource=DERIVED, min_value=0, max_value=1,
        description="Year to date at each month's rollup: recycled share (goal 35 % by 2030), renewable and "
                    "certificate shares (100 % by 2030), high-consumption machines in plantems (all by 2030).")


def plan(ctx: _Ctx) -> Dashboard:
    grid = Grid()
    board: Dashboard = _dashboard("plantems-plan", "Plan 规划目标", refresh=HISTORY_REFRESH, time_from="now-1y",
                                  tags=["plan"])
    board.with_panel(_plan_table(ctx, PlanScope.SITE, "This site's targets 本厂规划目标", grid))
    board.with_panel(_plan_table(ctx, PlanScope.GROUP, "The group's targets, both parks 集团规划目标", grid))
    board.with_panel(_intensity(ctx, PlanTarget.INTENSITY, "ASI casting-rolling Scope 1+2 intensity 铸轧碳排放强度",
                                grid))
    board.with_panel(_intensity(ctx, PlanTarget.RAW_MATERIAL, "ASI raw material, Scope 3 cat. 1 原材料碳排放强度",
                                grid))
    board.with_panel(_shares(ctx, PlanScope.SITE, "Shares and coverage, this site 本厂占比与覆盖率", grid))
    board.with_panel(_shares(ctx, PlanScope.GROUP, "Shares and coverage, the group 集团占比与覆盖率", grid))
    return board


def _enpi(ctx: _Ctx, granularity: Granularity) -> str:
    return f"{ctx.site} AND {_q(Tag.GRANULARITY)} = {_s(granularity)} AND $timeFilter"


def _ratio(ctx: _Ctx, field: Field, granularity: Granularity, title: str, unit: str, grid: Grid,
           time_from: str = "") -> Any:
    where = _enpi(ctx, granularity)
    line = _q(Tag.LINE)
    return panel("timeseries", title, [
        InfluxQL("A", f"SELECT {_q(field)} FROM {_q(ENPI)} WHERE {where} AND {line} = ''", datasource=DERIVED,
                 alias="site 全厂"),
        InfluxQL("B", f"SELECT {_q(field)} FROM {_q(ENPI)} WHERE {where} AND {line} != '' GROUP BY {line}",
                 datasource=DERIVED, alias="$tag_line")],
        unit=unit, grid=grid, w=12, datasource=DERIVED, decimals=2, bars=granularity is Granularity.MONTH,
        time_from=time_from,
        description="Summed energy (or emissions) / summed output of the period; absent when nothing was produced. "
                    "Read it with the production completeness: a day without output recorded makes a ratio look "
                    "better than it is.")


def enpi(ctx: _Ctx) -> Dashboard:
    grid = Grid()
    board: Dashboard = _dashboard("plantems-enpi", "EnPI 能效指标", refresh=HISTORY_REFRESH, time_from="now-90d",
                       tags=["enpi"])
    day, month = Granularity.DAY, Granularity.MONTH
    for field, unit, name in ((Field.KWH_PER_T, "kWh/t", "Electricity per tonne 单位产品电耗"),
                              (Field.KGCE_PER_T, "kgce/t", "Energy per tonne 单位产品综合能耗"),
                              (Field.T_CO2E_PER_T, "t CO2e/t", "Emissions per tonne 单位产品碳排放")):
        board.with_panel(_ratio(ctx, field, day, f"{name}, daily ({unit})", NONE, grid, time_from="30d"))
        board.with_panel(_ratio(ctx, field, month, f"{name}, monthly ({unit})", NONE, grid))
    board.with_panel(_ratio(ctx, Field.PRODUCTION_COMPLETENESS, month, "Production completeness 产量数据完整率",
                            PERCENT_UNIT, grid))
    columns = ", ".join(f"{_q(f)} AS {_q(label)}" for f, label in (
        (Field.OUTPUT_T, "output t"), (Field.ENERGY_KWH, "kWh"), (Field.KWH_PER_T, "kWh/t"),
        (Field.KGCE_PER_T, "kgce/t"), (Field.T_CO2E_PER_T, "t CO2e/t"),
        (Field.PRODUCTION_COMPLETENESS, "production completeness")))
    board.with_panel(panel("table", "This month so far, site and lines 本月至今", [InfluxQL(
        "A", f"SELECT {columns} FROM {_q(ENPI)} WHERE {_enpi(ctx, month)} GROUP BY {_q(Tag.LINE)} ORDER BY time DESC "
             "LIMIT 1", datasource=DERIVED, result_format="table")], unit=NONE, grid=grid, w=12, datasource=DERIVED,
        decimals=2, description="The latest month point per line (an empty line is the site): kgce on the GB/T "
                                "2589 calorific basis (当量值); t CO2e = Scope 1 + location-based Scope 2."))
    return board
