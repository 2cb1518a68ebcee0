"""The measures register (``config/measures.yaml``): energy-saving measures and how their savings are verified.

Each measure names its measurement boundary (devices, areas or production lines of the plant), its
type, go-live date, IPMVP option (B: isolation with its own meters; C: whole facility or line), its
baseline period, the saving claimed for it (with a source) and its non-routine adjustments, each
with a note. Loaded once, validated against the plant (every device, area and line must exist);
errors read ``file:line measure 'id': key = value: rule``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator
from pydantic import Field as PydField

from plantems.yamlconf import LocatedError, load_yaml, validate

__all__ = ["Boundary", "EnpiBaseline", "Measure", "MeasureType", "MeasuresFile", "PlantNames", "load_measures",
           "load_register"]

Id = Annotated[str, PydField(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
MeasureType = Literal["retrofit", "fuel_switch", "operational", "pv", "storage"]
IpmvpOption = Literal["B", "C"]


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


class BaselinePeriod(_Frozen):
    start: date  # first day
    end: date  # last day, included

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.end <= self.start:
            raise LocatedError(("end",), f"end {self.end} must be after start {self.start}")
        return self


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
    baseline: BaselinePeriod
    claimed: ClaimedSaving
    non_routine_adjustments: tuple[NonRoutineAdjustment, ...] = ()

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
        if self.baseline.end >= self.go_live:
            raise LocatedError(("baseline", "end"), f"the baseline period must end before go_live {self.go_live}")
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


class EnpiBaseline(_Frozen):
    """The period the site's and lines' EnPI baselines are fitted over (ISO 50006 EnB), with its reason."""

    start: date
    end: date  # included
    reason: str = PydField(min_length=3)  # why this period (auditors read it)

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.end <= self.start:
            raise LocatedError(("end",), f"end {self.end} must be after start {self.start}")
        return self


class MeasuresFile(_Frozen):
    # not min_length: pydantic would add "at least 1 item" to every failed entry's own message
    measures: tuple[Measure, ...]
    enpi_baseline: EnpiBaseline | None = None  # default: before the first go-live (analytics/quarter_job.py)

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
        names = (info.context or {}).get("plant")
        if isinstance(names, PlantNames):
            for index, measure in enumerate(self.measures):
                _check_boundary(measure.boundary, names, ("measures", index, "boundary"))
        return self


def _check_boundary(boundary: Boundary, names: PlantNames, loc: tuple[str | int, ...]) -> None:
    for key, given, known in (("devices", boundary.devices, names.devices), ("areas", boundary.areas, names.areas),
                              ("lines", boundary.lines, names.lines)):
        unknown = [name for name in given if name not in known]
        if unknown:
            raise LocatedError((*loc, key), f"{key} {unknown} not in the plant; its {key}: {sorted(known) or 'none'}")


def load_register(path: Path, plant: PlantNames) -> MeasuresFile:
    """The whole register (measures and the EnPI baseline period), validated against the plant."""
    data, lines = load_yaml(path)
    return validate(MeasuresFile, data, path, lines, context={"plant": plant})


def load_measures(path: Path, plant: PlantNames) -> tuple[Measure, ...]:
    """Load and validate the register against the plant; raise ConfigError listing every problem."""
    return load_register(path, plant).measures
