"""The measures register (``config/measures.yaml``): energy-saving measures and how their savings are verified.

Each measure names its measurement boundary (devices, areas or production lines of the plant), its
type, go-live date, IPMVP option (B: isolation with its own meters; C: whole facility or line), its
baseline period, the saving claimed for it (with a source) and its non-routine adjustments, each
with a note. Loaded once, validated against the plant (every device, area and line must exist);
errors read ``file:line measure 'id': key = value: rule``.

Its ``site`` names the site it belongs to: the parks' plant files may share a folder (the demo's
do), and a plant of another site leaves the register alone (``site_register``), where it would
otherwise be refused for naming devices that plant does not have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationInfo, model_validator
from pydantic import Field as PydField

from plantems.predictors import read_series_csv
from plantems.schema import Field
from plantems.yamlconf import ConfigError, LocatedError, load_yaml, validate

__all__ = [
    "BaselineVersion",
    "Boundary",
    "EnpiBaseline",
    "InfluxSource",
    "Measure",
    "MeasureType",
    "MeasuresFile",
    "PlantNames",
    "PredictorSeries",
    "StaticFactorChange",
    "load_measures",
    "load_register",
    "site_register",
]

Id = Annotated[str, PydField(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
MeasureType = Literal["retrofit", "fuel_switch", "operational", "pv", "storage"]
IpmvpOption = Literal["B", "C"]
OUTPUT_PREDICTOR = Field.OUTPUT_T.value  # the tonnage predictor's name
REGISTER_FILE = "measures.yaml"  # beside the plant file


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Boundary(_Frozen):
    """What the measure touches: its meters (devices), or whole areas or production lines."""

    devices: tuple[Id, ...] = ()
    areas: tuple[Id, ...] = ()
    lines: tuple[Id, ...] = ()

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not (self.devices or self.areas or self.lines):
            raise ValueError("a measurement boundary needs devices, areas or lines")
        return self


class StaticFactorChange(_Frozen):
    """A change of a static factor (equipment, product family, shift system, boundary) that the baseline
    model cannot know: from ``date`` on, the baseline is adjusted by a fixed amount a day or by a
    percentage of its prediction (ISO 50001 6.5, ISO 50006: the adjustment is logged in the report)."""

    date: date
    description: str = PydField(min_length=3)  # what changed and where the figure comes from
    kwh_per_day: float | None = None  # signed, as it changes the baseline
    gas_m3_per_day: float | None = None
    percent: float | None = PydField(default=None, gt=-100, le=100)  # of the baseline's prediction

    @model_validator(mode="after")
    def _amount(self) -> Self:
        absolute = self.kwh_per_day is not None or self.gas_m3_per_day is not None
        if absolute == (self.percent is not None):
            raise ValueError("a static-factor change needs either kwh_per_day / gas_m3_per_day (a fixed amount a "
                             "day) or percent (of the baseline's prediction), not both and not neither")
        return self


class BaselineVersion(_Frozen):
    """One version of a baseline (EnB): its period, its relevant variables besides tonnage, why it was
    set and the static-factor changes that adjust it."""

    version: int = PydField(default=1, ge=1)
    start: date  # first day
    end: date  # last day, included
    reason: str = ""  # required in a ``baselines`` list (why this version)
    predictors: tuple[Id, ...] = ()  # ids of the register's predictors (series), besides the tonnage (always one)
    static_factors: tuple[StaticFactorChange, ...] = ()

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.end <= self.start:
            raise LocatedError(("end",), f"end {self.end} must be after start {self.start}")
        for index, change in enumerate(self.static_factors):
            if change.date <= self.end:
                raise LocatedError(("static_factors", index, "date"), f"on or before the baseline's end {self.end}: "
                                   "a change inside the baseline period needs a new baseline version, not an "
                                   "adjustment")
        if len(set(self.predictors)) != len(self.predictors):
            raise LocatedError(("predictors",), "a predictor is named twice")
        return self


BaselinePeriod = BaselineVersion  # the single ``baseline:`` of a measure is its version 1


class ClaimedSaving(_Frozen):
    """The saving claimed per year, signed: positive saves; a fuel switch's added electricity is negative."""

    kwh_per_year: float | None = None
    gas_m3_per_year: float | None = None
    cny_per_year: float | None = None
    t_co2e_per_year: float | None = None
    source: str = PydField(min_length=1)  # who claimed it, where (a plan, an audit, a vendor's offer)


class NonRoutineAdjustment(_Frozen):
    """An unplanned change of a static factor inside the boundary: added to the baseline from start to end."""

    start: date
    end: date | None = None  # open: until revoked
    kwh_per_month: float | None = None  # signed, as it changes the baseline
    gas_m3_per_month: float | None = None
    note: str = PydField(min_length=3)  # what changed and why the figure (auditors read it)

    @model_validator(mode="after")
    def _amount(self) -> Self:
        if self.kwh_per_month is None and self.gas_m3_per_month is None:
            raise ValueError("a non-routine adjustment needs kwh_per_month or gas_m3_per_month")
        if self.end is not None and self.end < self.start:
            raise LocatedError(("end",), f"end {self.end} is before start {self.start}")
        return self


class Measure(_Frozen):
    id: Id
    name: str = PydField(min_length=1)
    name_zh: str = ""
    type: MeasureType
    boundary: Boundary
    go_live: date
    ipmvp_option: IpmvpOption
    baseline: BaselineVersion | None = None  # one version; or ``baselines``: every version, the last in force
    baselines: tuple[BaselineVersion, ...] = ()
    claimed: ClaimedSaving
    non_routine_adjustments: tuple[NonRoutineAdjustment, ...] = ()

    @property
    def versions(self) -> tuple[BaselineVersion, ...]:
        """Every baseline version, oldest first (the record the report shows)."""
        return self.baselines or ((self.baseline,) if self.baseline is not None else ())

    @property
    def in_force(self) -> BaselineVersion:
        """The baseline version the savings are verified against: the newest."""
        return self.versions[-1]

    def non_routine_in_month(self, year: int, month: int) -> tuple[float, float, tuple[str, ...]]:
        """kWh and m3 that the non-routine adjustments add to the baseline in a calendar month, with their notes
        (an adjustment counts in every month it is in force for at least one day)."""
        first = date(year, month, 1)
        last = date(year + month // 12, month % 12 + 1, 1)  # exclusive
        active = [a for a in self.non_routine_adjustments if a.start < last and (a.end is None or a.end >= first)]
        return (sum(a.kwh_per_month or 0.0 for a in active), sum(a.gas_m3_per_month or 0.0 for a in active),
                tuple(a.note for a in active))

    @model_validator(mode="after")
    def _rules(self) -> Self:
        self._check_versions()
        for key, index, version in self._located_versions():
            if version.end >= self.go_live:
                raise LocatedError((*key, index, "end") if index is not None else (*key, "end"),
                                   f"the baseline period must end before go_live {self.go_live}")
        if self.ipmvp_option == "B" and not self.boundary.devices:
            raise LocatedError(("boundary", "devices"), "IPMVP option B (retrofit isolation) needs the measure's "
                               "own meters: list them under boundary.devices, or use option C (whole line)")
        if self.type == "fuel_switch":
            missing = [k for k in ("gas_m3_per_year", "kwh_per_year") if getattr(self.claimed, k) is None]
            if missing:
                raise LocatedError(("claimed", missing[0]), "a fuel switch claims both sides: gas_m3_per_year "
                                   "removed (positive) and kwh_per_year added (negative), so its net t CO2e is what "
                                   "it really changed")
        for index, adjustment in enumerate(self.non_routine_adjustments):
            if adjustment.start < self.go_live:
                raise LocatedError(("non_routine_adjustments", index, "start"),
                                   f"before go_live {self.go_live}: non-routine adjustments apply to the "
                                   "reporting period (change the baseline period instead)")
        return self

    def _located_versions(self) -> list[tuple[tuple[str, ...], int | None, BaselineVersion]]:
        if self.baselines:
            return [(("baselines",), index, version) for index, version in enumerate(self.baselines)]
        return [(("baseline",), None, self.baseline)] if self.baseline is not None else []

    def _check_versions(self) -> None:
        if (self.baseline is None) == (not self.baselines):
            raise LocatedError(("baselines" if self.baselines else "baseline",),
                               "give either baseline (one period) or baselines (its versions), exactly one")
        for index, version in enumerate(self.baselines):
            if len(version.reason.strip()) < 3:
                raise LocatedError(("baselines", index, "reason"), "every baseline version needs its reason "
                                   "(at least 3 characters): auditors read why the baseline changed")
            if index and version.version <= self.baselines[index - 1].version:
                raise LocatedError(("baselines", index, "version"), f"versions must increase; the one before is "
                                   f"version {self.baselines[index - 1].version}")


@dataclass(frozen=True)
class PlantNames:
    """The plant's device, area and line ids that a boundary may name."""

    devices: frozenset[str]
    areas: frozenset[str]
    lines: frozenset[str]

    @classmethod
    def of(cls, plant: _Plant) -> PlantNames:
        return cls(devices=frozenset(d.id for d in plant.devices), areas=frozenset(d.area for d in plant.devices),
                   lines=frozenset(line.id for line in plant.production_lines))


class _Device(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def area(self) -> str: ...


class _Line(Protocol):
    @property
    def id(self) -> str: ...


class _Plant(Protocol):
    @property
    def devices(self) -> Sequence[_Device]: ...
    @property
    def production_lines(self) -> Sequence[_Line]: ...


class EnpiBaseline(BaselineVersion):
    """The period the site's and lines' EnPI baselines are fitted over (ISO 50006 EnB), with its reason,
    its predictors besides tonnage and the static-factor changes that adjust it."""

    reason: str = PydField(min_length=3)  # why this period (auditors read it)


class DegreeDaysSpec(_Frozen):
    kind: Literal["cooling", "heating"]
    base_c: float = PydField(ge=-30, le=40)  # base temperature, e.g. 18 (cooling) or 15.5 (heating)


class InfluxSource(_Frozen):
    """A predictor stored in InfluxDB: one field of one measurement of the site, aggregated per local day."""

    measurement: str = PydField(min_length=1)
    field: str = PydField(min_length=1)
    tags: dict[str, str] = PydField(default_factory=dict)  # besides the site, e.g. {station: roof}
    aggregate: Literal["mean", "sum"] = "mean"  # mean: temperature, share; sum: shifts, hours
    database: Literal["raw", "derived"] = "raw"


class PredictorSeries(_Frozen):
    """A daily relevant variable, e.g. outdoor temperature as degree-days, a product-mix share, shifts
    worked: from a CSV (``date`` and a value column; plantems/predictors.py) or an InfluxDB field."""

    id: Id
    csv: str | None = None  # path, relative to the measures file
    column: str | None = None  # the CSV's value column
    influx: InfluxSource | None = None
    unit: str = ""  # of the value the baseline reads (K·d for degree-days), for the report
    valid_range: tuple[float, float] | None = None  # of the raw value: a CSV value outside refuses the file,
    # an InfluxDB day outside is left out and logged
    degree_days: DegreeDaysSpec | None = None  # turn a daily mean temperature (°C) into degree-days

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.id == OUTPUT_PREDICTOR:
            raise LocatedError(("id",), f"{OUTPUT_PREDICTOR!r} is the tonnage, always a predictor: choose another id")
        if (self.csv is None) == (self.influx is None):
            raise LocatedError(("csv",) if self.csv else ("id",), "a predictor needs either csv (with column) or "
                               "influx (measurement and field), exactly one")
        if self.csv is not None and not self.column:
            raise LocatedError(("column",), "a CSV predictor needs the column to read")
        if self.influx is not None and self.degree_days is not None and self.influx.aggregate != "mean":
            raise LocatedError(("influx", "aggregate"), "degree-days need the day's mean temperature")
        if self.valid_range is not None and self.valid_range[0] >= self.valid_range[1]:
            raise LocatedError(("valid_range",), "must be [low, high] with low < high")
        return self


class Prices(_Frozen):
    """Prices the tariffs do not carry, to state verified savings in CNY (electricity: the tariffs)."""

    gas_cny_per_m3: float = PydField(gt=0, lt=50)
    source: str = PydField(min_length=3)  # the gas bill or contract


class MeasuresFile(_Frozen):
    site: Id | None = None  # the site whose register this is; None: whichever plant file it sits beside
    # not min_length: pydantic would add "at least 1 item" to every failed entry's own message
    measures: tuple[Measure, ...]
    enpi_baseline: EnpiBaseline | None = None  # default: before the first go-live (analytics/quarter_job.py)
    predictors: tuple[PredictorSeries, ...] = ()
    prices: Prices | None = None
    _series: dict[str, Mapping[date, float]] = PrivateAttr(default_factory=dict)

    def series(self, series_id: str) -> Mapping[date, float]:
        """A CSV predictor's daily values (read by load_register); KeyError for an InfluxDB one."""
        return self._series[series_id]

    @model_validator(mode="after")
    def _cross(self, info: ValidationInfo) -> Self:
        if not self.measures:
            raise LocatedError(("measures",), "no measures: list at least one, or remove the file")
        seen: dict[str, int] = {}
        for index, measure in enumerate(self.measures):
            if measure.id in seen:
                raise LocatedError(("measures", index, "id"), f"duplicate measure id {measure.id!r} "
                                   f"(first defined as measures[{seen[measure.id]}])")
            seen[measure.id] = index
        self._check_predictors()
        names = (info.context or {}).get("plant")
        if isinstance(names, PlantNames):
            for index, measure in enumerate(self.measures):
                _check_boundary(measure.boundary, names, ("measures", index, "boundary"))
        return self


    def _check_predictors(self) -> None:
        known: dict[str, int] = {}
        for index, series in enumerate(self.predictors):
            if series.id in known:
                raise LocatedError(("predictors", index, "id"), f"duplicate predictor id {series.id!r}")
            known[series.id] = index
        users: list[tuple[tuple[str | int, ...], BaselineVersion]] = [
            (("measures", m, *(("baselines", v) if measure.baselines else ("baseline",))), version)
            for m, measure in enumerate(self.measures) for v, version in enumerate(measure.versions)]
        if self.enpi_baseline is not None:
            users.append((("enpi_baseline",), self.enpi_baseline))
        for loc, version in users:
            unknown = [p for p in version.predictors if p not in known]
            if unknown:
                raise LocatedError((*loc, "predictors"), f"{unknown} not among the register's predictors "
                                   f"{sorted(known) or 'none'} (the tonnage {OUTPUT_PREDICTOR!r} is always used)")


def _check_boundary(boundary: Boundary, names: PlantNames, loc: tuple[str | int, ...]) -> None:
    for key, given, known in (("devices", boundary.devices, names.devices), ("areas", boundary.areas, names.areas),
                              ("lines", boundary.lines, names.lines)):
        unknown = [name for name in given if name not in known]
        if unknown:
            raise LocatedError((*loc, key), f"{key} {unknown} not in the plant; its {key}: {sorted(known) or 'none'}")


def load_register(path: Path, plant: PlantNames) -> MeasuresFile:
    """The whole register (measures and the EnPI baseline period), validated against the plant."""
    data, lines = load_yaml(path)
    register = validate(MeasuresFile, data, path, lines, context={"plant": plant})
    problems = []
    for series in register.predictors:
        if series.csv is None or series.column is None:
            continue  # an InfluxDB series is read with the days (analytics/predictor_series.py)
        degree = (series.degree_days.kind, series.degree_days.base_c) if series.degree_days else None
        try:
            register._series[series.id] = read_series_csv(path.parent / series.csv, series_id=series.id,
                                                          column=series.column, valid_range=series.valid_range,
                                                          degree=degree)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    return register


def site_register(config_dir: Path, site_id: str, plant: PlantNames) -> MeasuresFile | None:
    """The ``measures.yaml`` beside a plant file if it is this site's (its ``site`` is this one or
    absent), validated against the plant; None without one or when it names another site. A register
    of this site that is wrong raises ConfigError."""
    path = config_dir / REGISTER_FILE
    if not path.exists():
        return None
    data, _ = load_yaml(path)
    owner = data.get("site") if isinstance(data, dict) else None
    if owner is not None and owner != site_id:
        return None
    return load_register(path, plant)


def load_measures(path: Path, plant: PlantNames) -> tuple[Measure, ...]:
    """Load and validate the register against the plant; raise ConfigError listing every problem."""
    return load_register(path, plant).measures
