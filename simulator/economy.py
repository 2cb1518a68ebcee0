"""Daily production and energy-saving measures in the simulated plant (pure, deterministic).

Switched on by a ``measures.yaml`` beside the plant file (the demo's, config/measures.yaml):

- production: each local day has an output factor f in [0.7, 1.3] (a hash of the day); every line
  produces ``(180 - 30 x its index) x f`` tonnes that day, and the production-driven loads follow
  it: mills and casters at ``0.4 + 0.6 f`` of their profile, compressors at ``0.4 + 0.6 f``, exhaust
  fans at ``0.5 + 0.5 f``. Energy thus depends on the daily tonnage with a fixed part, as a real
  plant's does, and a baseline has to normalise for it;
- measures, from their go-live day (local midnight), on the devices of their boundary:
  an ``operational`` measure on compressors lowers the header pressure by
  ``compressed_air.pressure_reduction_bar``, saving ``saving_per_bar`` of compressor energy per bar
  (7 %/bar x 0.5 bar = 3.5 %); a ``retrofit`` on exhaust fans fits a variable-speed drive, its fan
  then drawing ``VSD_POWER_SHARE`` of the power (flow regulated by speed, fan law, instead of dampers);
  a ``fuel_switch`` retires the gas meters of its boundary (they burn nothing from go-live) and
  commissions its electric devices (they draw nothing before go-live).
Other measures have no simulated effect (the report shows them unverified or flat). Gas meters follow
the day's output as furnaces do (``0.3 + 0.7 f`` of their firing).

Weather: when the register configures a cooling-degree-day predictor (``predictors`` with
``degree_days: {kind: cooling}``; the demo's is the synthetic Changsha temperature of
simulator/weather.py), exhaust fans draw ``0.5 + 0.5 f + FAN_SHARE_PER_KD x CDD`` of their
profile that day (ventilating a hot casting hall: added to the output's share, not scaling it), so a
fan's baseline has weather to normalise for.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from plantems.config import DeviceKind, PlantConfig
from plantems.measures import REGISTER_FILE, Measure, PlantNames, site_register
from plantems.schema import Field
from plantems.simulator.profiles import Array, unit_hash

__all__ = ["FAN_SHARE_PER_KD", "VSD_POWER_SHARE", "Economy", "SimMeasure", "day_factor", "economy_for", "line_output_t"]

log = logging.getLogger(__name__)

_SEED: Final = zlib.crc32(b"production")
VSD_POWER_SHARE: Final = 0.75
FAN_SHARE_PER_KD: Final = 0.05  # extra exhaust-fan load per cooling degree-day
# share of each kind's load that follows the day's output (the rest is fixed: idling, ventilation)
_VARIABLE_SHARE: Final[Mapping[str, float]] = {
    "cold_mill": 0.6, "finishing_mill": 0.6, "foil_mill": 0.6, "caster": 0.6, "compressor": 0.6, "exhaust_fan": 0.5,
    "furnace": 0.7}


def day_factor(day_index: npt.NDArray[np.int64]) -> Array:
    """The output factor of local days (days since the epoch, local)."""
    factor: Array = 0.7 + 0.6 * unit_hash(_SEED, day_index.astype(np.int64))
    return factor


def _local_day(t_s: Array, utc_offset_s: float) -> npt.NDArray[np.int64]:
    days: npt.NDArray[np.int64] = np.floor((t_s + utc_offset_s) / 86_400.0).astype(np.int64)
    return days


def line_output_t(line_index: int, day: date) -> float:
    """Tonnes the line at ``line_index`` of production_lines produced on the local ``day``."""
    index = np.array([(day - date(1970, 1, 1)).days], dtype=np.int64)
    return float((180.0 - 30.0 * line_index) * day_factor(index)[0])


@dataclass(frozen=True)
class SimMeasure:
    measure_id: str
    devices: frozenset[str]
    start_s: float  # epoch s of the go-live day's local midnight
    power_share: float  # the devices' power after go-live, as a share of their profile
    share_before: float = 1.0  # ... and before it (0: commissioned at go-live)


def _sim_measures(plant: PlantConfig, measure: Measure) -> list[SimMeasure]:
    """What the measure does in the simulated plant (nothing for the types it does not model)."""
    kinds = {d.id: d.kind for d in plant.devices}
    go_live = datetime(measure.go_live.year, measure.go_live.month, measure.go_live.day, tzinfo=plant.site.tz)
    start = go_live.timestamp()
    boundary = measure.boundary.devices
    if measure.type == "operational":
        compressors = frozenset(d for d in boundary if kinds.get(d) is DeviceKind.COMPRESSOR)
        air = plant.compressed_air
        if compressors:
            return [SimMeasure(measure.id, compressors, start, 1 - air.pressure_reduction_bar * air.saving_per_bar)]
    if measure.type == "retrofit":
        fans = frozenset(d for d in boundary if kinds.get(d) is DeviceKind.EXHAUST_FAN)
        if fans:
            return [SimMeasure(measure.id, fans, start, VSD_POWER_SHARE)]
    if measure.type == "fuel_switch":
        devices = {d.id: d for d in plant.devices}
        gas = frozenset(d for d in boundary if d in devices and Field.GAS_M3.value in plant.quantities_of(devices[d]))
        electric = frozenset(d for d in boundary if d in devices and Field.E_IMP_KWH.value in
                             plant.quantities_of(devices[d]))
        if gas and electric:
            return [SimMeasure(measure.id, gas, start, 0.0), SimMeasure(measure.id, electric, start, 1.0, 0.0)]
    return []


class Economy:
    """What production and the measures do to each simulated load."""

    def __init__(self, plant: PlantConfig, measures: Sequence[Measure],
                 cooling_kd: Mapping[date, float] | None = None) -> None:
        self.measures = tuple(m for measure in measures for m in _sim_measures(plant, measure))
        epoch = date(1970, 1, 1)
        self.cooling_kd = {(day - epoch).days: kd for day, kd in (cooling_kd or {}).items()}  # by local day index

    def _weather_kd(self, day_index: npt.NDArray[np.int64]) -> Array:
        """The days' cooling degree-days (a day without a value: none)."""
        kd: Array = np.array([self.cooling_kd.get(int(i), 0.0) for i in day_index], dtype=np.float64)
        return kd

    def adjust(self, device_id: str, kind: str, t_s: Array, utc_offset_s: float, p_kw: Array,
               *, with_measures: bool = True) -> Array:
        """The load's power on the day's output and, from their go-live, under the measures."""
        share = _VARIABLE_SHARE.get(kind)
        if share is not None:
            days = _local_day(t_s, utc_offset_s)
            level = (1 - share) + share * day_factor(days)
            if self.cooling_kd and kind == DeviceKind.EXHAUST_FAN.value:  # added to, not scaling, the output's
                unique, inverse = np.unique(days, return_inverse=True)
                level = level + self._weather_kd(unique)[inverse] * FAN_SHARE_PER_KD
            p_kw = p_kw * level
        if with_measures:
            for measure in self.measures:
                if device_id in measure.devices:
                    p_kw = np.where(t_s >= measure.start_s, p_kw * measure.power_share, p_kw * measure.share_before)
        return p_kw


def economy_for(plant: PlantConfig, config_dir: Path) -> Economy | None:
    """The economy of the ``measures.yaml`` beside the plant file; None without one. Another site's
    register (its ``site``) leaves daily production on without measures; a wrong one of this site
    raises ConfigError (the simulator refuses to start)."""
    if not (config_dir / REGISTER_FILE).exists():
        return None
    register = site_register(config_dir, plant.site.id, PlantNames.of(plant))
    measures: Sequence[Measure] = register.measures if register is not None else ()
    cooling: Mapping[date, float] | None = None
    if register is not None:
        series = next((s for s in register.predictors if s.csv and s.degree_days and s.degree_days.kind == "cooling"),
                      None)
        cooling = register.series(series.id) if series is not None else None
    economy = Economy(plant, measures, cooling)
    log.info("simulator: daily production on%s; measures simulated: %s",
             ", exhaust fans follow the cooling degree-days" if cooling else "",
             ", ".join(f"{m.measure_id} (x{m.power_share:g} from {m.start_s:.0f})" for m in economy.measures) or "none")
    return economy
