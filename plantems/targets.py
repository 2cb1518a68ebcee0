"""Every target of the group's plan (``config/targets.yaml``), each with its base year, yearly values and source.

The ASI intensity pathways (casting-rolling Scope 1+2; raw material, Scope 3 category 1), the recycled share,
the renewable and certificate shares and the metering coverage. ``Targets.intensity``,
``Targets.renewable_share`` and ``Targets.raw_material`` keep the names the rollup, the group and the metal
ledger read; ``Targets.every()`` lists them all (the inventory and the plan page show them side by side).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydField

from plantems.yamlconf import load_yaml, validate

__all__ = ["IntensityPathway", "ShareTarget", "Target", "Targets", "load_targets"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """One target: yearly values from its base year, and where they come from."""

    name: str
    source: str = PydField(min_length=1)
    unit: str
    base_year: int
    by_year: dict[int, float] = PydField(min_length=1)
    # the base year's value where ``by_year`` has none (a goal stated for its final year only)
    base_value: float | None = None
    status: Literal["confirmed", "to_be_confirmed"] = "confirmed"  # to_be_confirmed: shown as such on the plan page

    @model_validator(mode="after")
    def _one_base_value(self) -> Target:
        if self.base_value is not None and self.base_year in self.by_year:
            raise ValueError(f"base_value {self.base_value:g}: by_year already gives the base year "
                             f"{self.base_year} ({self.by_year[self.base_year]:g}); give it once")
        return self

    @property
    def base(self) -> float | None:
        """The base year's value: ``by_year``'s, else ``base_value``; None when the plan states none."""
        return self.by_year.get(self.base_year, self.base_value)

    def for_year(self, year: int) -> float | None:
        """The target value for ``year``; after its last year, the last value holds."""
        known = [y for y in self.by_year if y <= year]
        return self.by_year[max(known)] if known else None

    @property
    def final_year(self) -> int:
        return max(self.by_year)


class IntensityPathway(Target):
    """An ASI 1.5 °C intensity pathway (t CO2e per t)."""


class ShareTarget(Target):
    """A share goal (0-1)."""

    unit: str = "share (0-1)"
    by_year: dict[int, float] = PydField(min_length=1)

    @field_validator("by_year")
    @classmethod
    def _shares(cls, by_year: dict[int, float]) -> dict[int, float]:
        bad = {year: value for year, value in by_year.items() if not 0 <= value <= 1}
        if bad:
            raise ValueError(f"{bad}: a share is between 0 and 1")
        return by_year


class Targets(_Frozen):
    intensity: IntensityPathway
    renewable_share: ShareTarget
    raw_material: IntensityPathway | None = None  # Scope 3 cat. 1 per t of aluminium purchased (analytics/metal.py)
    recycled_share: ShareTarget | None = None  # pre- + post-consumer content / metal input (analytics/metal.py)
    certificate_share: ShareTarget | None = None  # GECs held / consumption (绿色电力消费比例)
    metering_coverage: ShareTarget | None = None  # high-consumption equipment under the energy-management system

    def every(self) -> dict[str, Target]:
        """Every target the file holds, by its key."""
        return {key: value for key in type(self).model_fields if isinstance(value := getattr(self, key), Target)}


def load_targets(path: Path) -> Targets:
    data, lines = load_yaml(path)
    return validate(Targets, data, path, lines)
