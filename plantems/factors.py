"""Grid emission factors (``config/emission_factors.yaml``) and the rule that picks one for a month.

Rule: among factors of the method that were published by the reporting date, take
the first region of the site's chain (most specific first) that has a factor for a
year not after the month's year, and its latest such year. A factor for an earlier
year makes the month *provisional*; when the month's own year is published, the
same rule picks it and the month is restated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PydField

from plantems.yamlconf import LocatedError, load_yaml, validate

__all__ = ["Factor", "FactorChoice", "load_factors", "select_factor"]

Method = Literal["location", "residual", "fuel"]


class Factor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    method: Method  # location: grid average; residual: excluding market-traded non-fossil power; fuel: Scope 1
    region: str
    year: int = PydField(ge=2000, le=2100)
    kg_per_unit: float = PydField(ge=0, le=10)
    unit: Literal["kWh", "Nm3"] = "kWh"  # grid factors per kWh; natural gas per normal cubic metre
    status: Literal["verified", "cross-checked", "uncertain"]
    published: date
    source: str = PydField(min_length=1)


class FactorFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    factors: tuple[Factor, ...] = PydField(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: dict[tuple[str, str, int], str] = {}
        for index, factor in enumerate(self.factors):
            key = (factor.method, factor.region, factor.year)
            if key in seen:
                raise LocatedError(("factors", index, "year"), f"{factor.method} {factor.region} {factor.year} "
                                                               f"is already given by {seen[key]!r}")
            seen[key] = factor.id
        return self


@dataclass(frozen=True)
class FactorChoice:
    factor: Factor
    provisional: bool  # the factor's year is before the reported month's year

    @property
    def label(self) -> str:
        """How a report shows the factor and its standing."""
        note = "; provisional: a later year has no factor yet" if self.provisional else ""
        return f"{self.factor.id} ({self.factor.kg_per_unit} kg/{self.factor.unit}, {self.factor.status}{note})"


def load_factors(path: Path) -> tuple[Factor, ...]:
    data, lines = load_yaml(path)
    return validate(FactorFile, data, path, lines).factors


def select_factor(factors: Sequence[Factor], *, method: Method, regions: Sequence[str], year: int,
                  as_of: date) -> FactorChoice:
    """The factor for a month of ``year``, as known on ``as_of`` (pure)."""
    known = [f for f in factors if f.method == method and f.published <= as_of and f.year <= year]
    for region in regions:
        mine = [f for f in known if f.region == region]
        if mine:
            best = max(mine, key=lambda f: f.year)
            # a fuel's carbon content does not change with the year; grid factors do
            return FactorChoice(best, provisional=best.year < year and method != "fuel")
    raise LookupError(f"no {method} factor for {year} in regions {list(regions)} published by {as_of}")
