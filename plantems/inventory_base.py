"""The inventory's base year (``config/inventory_base.yaml``): the base-year figures, their source, and the
log of base-year recalculations.

GHG Protocol / ISO 14064-1 (clause 6.4.1): the base year is recalculated for a structural change (an
acquisition, a divestment, an outsourcing), a change of methodology or emission factors, or the discovery
of a significant error. Each recalculation is an entry with its date, reason, description and the change
per scope; the recalculated base is the original figures plus every entry's change, and the inventory
shows both with the log.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField

from plantems.yamlconf import load_yaml, validate

__all__ = ["BaseYear", "BaseYearFigures", "Recalculation", "RecalculationReason", "load_inventory_base"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecalculationReason(StrEnum):
    STRUCTURAL_CHANGE = "structural_change"  # acquisition, divestment, outsourcing, insourcing
    METHODOLOGY = "methodology"  # calculation method or emission factors
    ERROR = "error"  # a significant error discovered


class BaseYearFigures(_Frozen):
    """A boundary's base-year emissions, t CO2e."""

    scope1_t_co2e: float = PydField(ge=0)
    scope2_t_co2e: float = PydField(ge=0)
    scope2_method: str = PydField(min_length=1)  # location or market: which Scope 2 the base figure is
    scope3_t_co2e: float | None = PydField(default=None, ge=0)
    scope3_categories: str = PydField(default="", description="which Scope 3 categories the base figure covers")


class Recalculation(_Frozen):
    """One base-year recalculation: the change it made to the base-year figures of a boundary."""

    date: date
    boundary: str = PydField(min_length=1)  # the group id or a site id
    reason: RecalculationReason
    description: str = PydField(min_length=1)
    scope1_delta_t_co2e: float = 0.0
    scope2_delta_t_co2e: float = 0.0
    scope3_delta_t_co2e: float = 0.0
    approved_by: str = PydField(min_length=1)


class BaseYear(_Frozen):
    year: int
    source: str = PydField(min_length=1)
    boundaries: dict[str, BaseYearFigures] = PydField(min_length=1)  # by group id or site id
    recalculations: tuple[Recalculation, ...] = ()

    def figures(self, boundary: str) -> BaseYearFigures | None:
        return self.boundaries.get(boundary)

    def log(self, boundary: str) -> tuple[Recalculation, ...]:
        """The boundary's recalculations, oldest first."""
        return tuple(sorted((r for r in self.recalculations if r.boundary == boundary), key=lambda r: r.date))


def load_inventory_base(path: Path) -> BaseYear:
    data, lines = load_yaml(path)
    base = validate(BaseYear, data, path, lines)
    return base
