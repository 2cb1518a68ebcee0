"""One energy balance per site (pure): the figure that losses, the unmetered remainder and the
allocation of emissions all come from.

    consumption = grid import - grid export + on-site generation
    unmetered   = consumption - sub-metered loads      (losses plus loads without a meter)

On-site generation (PV) behind an incomer never passes the grid meter, so a balance that left it
out would show the loads exceeding the supply and losses of zero while real losses exist.
Incomers and feeders are supply meters and PV is generation; every other device with energy is a
load. Devices without electrical energy (gas, air, production counters) have no row and no part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from plantems.config import DeviceKind, PlantConfig
from plantems.schema import Field, Tag

__all__ = ["EnergyBalance", "energy_balance"]

_SUPPLY = (DeviceKind.INCOMER, DeviceKind.FEEDER)
# columns of the per-device month totals: the schema's names
_DEVICE, _KWH, _EXP_KWH = Tag.DEVICE.value, Field.ENERGY_KWH.value, Field.ENERGY_EXP_KWH.value
_GENERATION = (DeviceKind.PV,)


@dataclass(frozen=True)
class EnergyBalance:
    grid_import_kwh: float
    grid_export_kwh: float
    generation_kwh: float  # on-site PV output (its meter's export counter)
    loads_kwh: Mapping[str, float] = field(default_factory=dict)  # per sub-metered load
    grid_meters: tuple[str, ...] = ()
    generators: tuple[str, ...] = ()

    @property
    def consumption_kwh(self) -> float:
        return self.grid_import_kwh - self.grid_export_kwh + self.generation_kwh

    @property
    def generation_self_kwh(self) -> float:
        """Generation consumed on site: what was not exported (export beyond it came from elsewhere)."""
        return min(self.generation_kwh, max(self.generation_kwh - self.grid_export_kwh, 0.0))

    @property
    def sub_metered_kwh(self) -> float:
        return sum(self.loads_kwh.values())

    @property
    def unmetered_kwh(self) -> float:
        """Losses plus unmetered loads; negative means the sub-meters exceed the supply (a metering fault)."""
        return self.consumption_kwh - self.sub_metered_kwh

    def to_json(self) -> dict[str, float | list[str]]:
        return {"grid_import_kwh": self.grid_import_kwh, "grid_export_kwh": self.grid_export_kwh,
                "generation_kwh": self.generation_kwh, "generation_self_kwh": self.generation_self_kwh,
                "consumption_kwh": self.consumption_kwh, "sub_metered_kwh": self.sub_metered_kwh,
                "unmetered_kwh": self.unmetered_kwh, "grid_meters": list(self.grid_meters),
                "generators": list(self.generators)}


def energy_balance(plant: PlantConfig, totals: pd.DataFrame, *, grid_meters: Sequence[str] | None = None
                   ) -> EnergyBalance:
    """The balance behind ``grid_meters`` (default: every incomer, i.e. the site) from per-device
    month totals (columns device, energy_kwh and, where a meter exports, energy_exp_kwh).

    Behind a set of meters are the areas they ``feeds``; behind every incomer, or behind a meter
    that lists no areas, is the whole site.
    """
    kinds = {d.id: d.kind for d in plant.devices}
    incomers = [d.id for d in plant.devices if d.kind is DeviceKind.INCOMER]
    meters = list(grid_meters) if grid_meters is not None else incomers
    fed = [d.feeds for d in plant.devices if d.id in meters]
    whole_site = set(meters) >= set(incomers) or not fed or not all(fed)
    areas = None if whole_site else {a for feeds in fed for a in feeds}
    behind = {d.id for d in plant.devices if areas is None or d.area in areas}
    table = totals.set_index(_DEVICE) if len(totals) else pd.DataFrame(columns=[_KWH, _EXP_KWH])
    imports = _column(table, _KWH)
    exports = _column(table, _EXP_KWH)
    generators = [d for d in table.index if d in behind and kinds.get(d) in _GENERATION]
    loads = {d: max(imports.get(d, 0.0), 0.0) for d in table.index
             if d in behind and d in kinds and kinds[d] not in (*_SUPPLY, *_GENERATION)}
    return EnergyBalance(grid_import_kwh=sum(imports.get(m, 0.0) for m in meters),
                         grid_export_kwh=sum(exports.get(m, 0.0) for m in meters),
                         generation_kwh=sum(exports.get(g, 0.0) for g in generators), loads_kwh=loads,
                         grid_meters=tuple(meters), generators=tuple(generators))


def _column(table: pd.DataFrame, name: str) -> dict[str, float]:
    if name not in table:
        return {}
    return {str(device): float(value) for device, value in table[name].fillna(0.0).items()}
