"""The user's targets (``config/targets.yaml``): the intensity pathway and the renewable share goal."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField

from plantems.yamlconf import load_yaml, validate

__all__ = ["Targets", "load_targets"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IntensityPathway(_Frozen):
    name: str
    source: str = PydField(min_length=1)
    unit: str
    base_year: int
    by_year: dict[int, float]

    def for_year(self, year: int) -> float | None:
        """The pathway value for ``year``; after its last year, the last value holds."""
        known = [y for y in self.by_year if y <= year]
        return self.by_year[max(known)] if known else None


class ShareTarget(_Frozen):
    name: str
    by_year: dict[int, float]


class Targets(_Frozen):
    intensity: IntensityPathway
    renewable_share: ShareTarget
    raw_material: IntensityPathway | None = None  # Scope 3 cat. 1 per t of aluminium purchased (analytics/metal.py)


def load_targets(path: Path) -> Targets:
    data, lines = load_yaml(path)
    return validate(Targets, data, path, lines)
