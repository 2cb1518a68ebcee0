"""The plan page (pure): every target of config/targets.yaml against its actual, for a site or its group.

Reads the targets and each target's monthly figures for the year so far (numerator and denominator per
month, from the monthly rollups, the purchased-metal ledger and the meter register; analytics/plan_job.py
gathers them); returns per target the base year and value, this year's target, the goal, the actual year
to date, the monthly trend, a status and the provenance of the actual. Written as `plan` points and shown
in the monthly and group reports (analytics/plan_report.py) and on the Grafana "Plan" dashboard.

- **Year to date** of a ratio is the sum of the months' numerators over the sum of their denominators
  (t CO2e / t, kWh / kWh), never a mean of monthly ratios. The metering coverage is a state, not a flow:
  its year to date is the latest month's.
- **This year's target** is the plan's value for the year; for a goal the plan states only for its final
  year (the shares), the straight line from the base year's value (``base_value``) to the goal; without a
  base value there is no interim target.
- **Status**: "on track" when the year-to-date actual is at or below this year's target (intensities) or at
  or above it (shares and coverage), else "off track"; "no data" without an actual; "no interim target" when
  the year has no target (unless the goal is already met: "on track").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from plantems.lineproto import Point
from plantems.schema import PLAN, Field, PlanScope, PlanTarget, Tag
from plantems.targets import Target, Targets

__all__ = ["LOWER_IS_BETTER", "PROVENANCE", "STOCK", "MonthFigure", "PlanPage", "PlanRow", "Status",
           "TargetActuals", "compute_plan", "interim_target", "months_of_year", "plan_row", "year_to_date"]

LOWER_IS_BETTER: Final = frozenset({PlanTarget.INTENSITY, PlanTarget.RAW_MATERIAL})
STOCK: Final = frozenset({PlanTarget.METERING_COVERAGE})  # a state at each month's end, not a monthly flow
_EPS = 1e-12


class Status:
    ON_TRACK = "on track"
    OFF_TRACK = "off track"
    NO_DATA = "no data"
    NO_INTERIM = "no interim target"


# Where each actual comes from (shown beside it on the plan page and in the JSON).
PROVENANCE: Final[Mapping[PlanTarget, str]] = {
    PlanTarget.INTENSITY: "monthly rollups: Scope 1 (fuel meters) + location-based Scope 2, t CO2e / t of output of "
                          "the output lines (market-based beside it)",
    PlanTarget.RAW_MATERIAL: "purchased-metal ledger (metal_purchases.csv): t CO2e of the aluminium purchased / t of "
                             "aluminium purchased, by delivery date",
    PlanTarget.RECYCLED_SHARE: "purchased-metal ledger: pre- + post-consumer content / all purchased metal input, "
                               "by mass, not yield-adjusted",
    PlanTarget.RENEWABLE_SHARE: "monthly rollups: (instruments matched monthly + on-site PV consumed) / consumption",
    PlanTarget.CERTIFICATE_SHARE: "monthly rollups: GECs held for the month (at most the consumption) / consumption",
    PlanTarget.METERING_COVERAGE: "meter register (plant file) at each month's end: machines >= 100 kW in plantems / "
                                  "all listed machines >= 100 kW",
}


@dataclass(frozen=True)
class MonthFigure:
    """One month's numerator and denominator of a target's actual (e.g. t CO2e and t of output)."""

    month: str  # YYYY-MM
    numerator: float
    denominator: float
    numerator_market: float | None = None  # intensity: Scope 1 + market-based Scope 2

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator > 0 else None

    @property
    def market_value(self) -> float | None:
        m = self.numerator_market
        return m / self.denominator if m is not None and self.denominator > 0 else None


@dataclass(frozen=True)
class TargetActuals:
    """A target's months of the year through the reported month: those with data, and those without (why)."""

    months: tuple[MonthFigure, ...]
    missing: tuple[tuple[str, str], ...] = ()  # (month, reason)


def months_of_year(month: str) -> tuple[str, ...]:
    """January to ``month`` (YYYY-MM) of its year."""
    year, last = int(month[:4]), int(month[5:7])
    return tuple(f"{year:04d}-{m:02d}" for m in range(1, last + 1))


def year_to_date(target: PlanTarget, months: Sequence[MonthFigure]) -> tuple[float | None, float | None]:
    """The year-to-date actual (and its market-based twin for the intensity): sums of numerators over sums of
    denominators; for a state (metering coverage) the latest month's value."""
    if not months:
        return None, None
    if target in STOCK:
        last = max(months, key=lambda m: m.month)
        return last.value, last.market_value
    numerator = sum(m.numerator for m in months)
    denominator = sum(m.denominator for m in months)
    markets = [m.numerator_market for m in months]
    market = sum(x for x in markets if x is not None) if all(x is not None for x in markets) else None
    if denominator <= 0:
        return None, None
    return numerator / denominator, (market / denominator if market is not None else None)


def interim_target(target: Target, year: int) -> tuple[float | None, str]:
    """This year's target and how it was found: the plan's value for the year (or its last value after its
    final year), else the straight line from the base year's value to the plan's next value."""
    if year in target.by_year or year > target.final_year:
        return target.for_year(year), "plan"
    later = min((y for y in target.by_year if y > year), default=None)
    known = {y: v for y, v in target.by_year.items() if y < year}
    if target.base is not None and target.base_year < year:
        known.setdefault(target.base_year, target.base)
    if later is None or not known:
        return None, "none"
    start = max(known)
    value = known[start] + (target.by_year[later] - known[start]) * (year - start) / (later - start)
    return value, f"straight line from {start} ({known[start]:g}) to {later} ({target.by_year[later]:g})"


def _decide(key: PlanTarget, actual: float | None, this_year: float | None, goal: float) -> tuple[bool | None, str]:
    if actual is None:
        return None, Status.NO_DATA
    lower = key in LOWER_IS_BETTER

    def meets(limit: float) -> bool:
        return actual <= limit + _EPS if lower else actual >= limit - _EPS

    if this_year is None:
        return (True, Status.ON_TRACK) if meets(goal) else (None, Status.NO_INTERIM)
    return (True, Status.ON_TRACK) if meets(this_year) else (False, Status.OFF_TRACK)


@dataclass(frozen=True, kw_only=True)
class PlanRow:
    """One target on the plan page."""

    target: PlanTarget
    name: str
    unit: str
    source: str
    to_be_confirmed: bool
    base_year: int
    base_value: float | None
    year: int
    target_value: float | None  # this year's
    target_basis: str  # "plan", a straight line, or "none"
    goal_year: int
    goal_value: float
    months: tuple[MonthFigure, ...]
    missing: tuple[tuple[str, str], ...]
    actual_ytd: float | None
    actual_ytd_market: float | None
    on_track: bool | None
    status: str
    provenance: str

    @property
    def lower_is_better(self) -> bool:
        return self.target in LOWER_IS_BETTER

    def trend(self) -> list[tuple[str, float | None, float | None]]:
        """(month, the month's value, the year to date through it) for each month with data."""
        ordered = sorted(self.months, key=lambda m: m.month)
        return [(m.month, m.value, year_to_date(self.target, ordered[:i + 1])[0]) for i, m in enumerate(ordered)]

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target.value, "name": self.name, "unit": self.unit, "source": self.source,
                "to_be_confirmed": self.to_be_confirmed, "base_year": self.base_year, "base_value": self.base_value,
                "year": self.year, "target_value": self.target_value, "target_basis": self.target_basis,
                "goal_year": self.goal_year, "goal_value": self.goal_value, "actual_ytd": self.actual_ytd,
                "actual_ytd_market": self.actual_ytd_market, "on_track": self.on_track, "status": self.status,
                "lower_is_better": self.lower_is_better, "provenance": self.provenance,
                "months": [{"month": m.month, "numerator": m.numerator, "denominator": m.denominator,
                            "numerator_market": m.numerator_market, "value": m.value} for m in self.months],
                "months_missing": [{"month": month, "reason": why} for month, why in self.missing],
                "trend": [{"month": month, "value": v, "ytd": ytd} for month, v, ytd in self.trend()]}


def plan_row(key: PlanTarget, target: Target, actuals: TargetActuals, month: str) -> PlanRow:
    """One target's row for the year of ``month`` (pure)."""
    year = int(month[:4])
    this_year, basis = interim_target(target, year)
    months = tuple(sorted(actuals.months, key=lambda m: m.month))
    actual, market = year_to_date(key, months)
    on_track, status = _decide(key, actual, this_year, target.by_year[target.final_year])
    return PlanRow(target=key, name=target.name, unit=target.unit, source=target.source,
                   to_be_confirmed=target.status == "to_be_confirmed", base_year=target.base_year,
                   base_value=target.base, year=year, target_value=this_year, target_basis=basis,
                   goal_year=target.final_year, goal_value=target.by_year[target.final_year], months=months,
                   missing=actuals.missing, actual_ytd=actual, actual_ytd_market=market, on_track=on_track,
                   status=status, provenance=PROVENANCE[key])


@dataclass(frozen=True, kw_only=True)
class PlanPage:
    """Every target of the file for a site or a group, through ``month``."""

    entity: str  # the site or group id
    scope: PlanScope
    month: str
    rows: tuple[PlanRow, ...] = field(default_factory=tuple)

    def row(self, target: PlanTarget) -> PlanRow | None:
        return next((r for r in self.rows if r.target is target), None)

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "scope": self.scope.value, "month": self.month,
                "status_rule": ("year to date against this year's target: at or below it for the intensities, at "
                                "or above it for the shares and the coverage; a goal with no value for the year "
                                "is judged against the straight line from base_value, else only once met"),
                "targets": [r.to_json() for r in self.rows]}

    def to_points(self, *, site: str, time_ns: int) -> list[Point]:
        """The month's `plan` points, one per target, tagged with ``site`` (a group's go under each member site)."""
        return [_point(row, self.month, site=site, scope=self.scope, time_ns=time_ns) for row in self.rows]


def _point(row: PlanRow, month: str, *, site: str, scope: PlanScope, time_ns: int) -> Point:
    fields: dict[str, float | str] = {Field.BASE_YEAR.value: float(row.base_year),
                                      Field.GOAL_VALUE.value: row.goal_value,
                                      Field.MONTHS_COUNTED.value: float(len(row.months)),
                                      Field.TO_BE_CONFIRMED.value: float(row.to_be_confirmed)}
    optional = {Field.TARGET_VALUE: row.target_value, Field.BASE_VALUE: row.base_value,
                Field.ACTUAL_YTD_VALUE: row.actual_ytd, Field.ACTUAL_YTD_MARKET_VALUE: row.actual_ytd_market,
                Field.ON_TRACK: None if row.on_track is None else float(row.on_track)}
    this = next((m for m in row.months if m.month == month), None)
    if this is not None:  # the month's own figures: what a later month's year to date is summed from
        optional.update({Field.NUMERATOR: this.numerator, Field.DENOMINATOR: this.denominator,
                         Field.NUMERATOR_MARKET: this.numerator_market, Field.ACTUAL_VALUE: this.value,
                         Field.ACTUAL_MARKET_VALUE: this.market_value})
    fields.update({key.value: float(value) for key, value in optional.items() if value is not None})
    tags = {Tag.SITE.value: site, Tag.SCOPE.value: scope.value, Tag.TARGET.value: row.target.value}
    return Point(PLAN, tags, fields, time_ns)


def compute_plan(targets: Targets, actuals: Mapping[PlanTarget, TargetActuals], *, entity: str, scope: PlanScope,
                 month: str) -> PlanPage:
    """Every target the file holds (in the plan's order: PlanTarget), each against its actuals (pure)."""
    held = targets.every()
    rows = [plan_row(which, held[which.value], actuals.get(which, TargetActuals(())), month)
            for which in PlanTarget if which.value in held]
    return PlanPage(entity=entity, scope=scope, month=month, rows=tuple(rows))
