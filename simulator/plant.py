"""The simulated plant: every configured device's readings at any instant (pure).

Counters integrate power from a fixed origin on a 60-s grid, so the live
simulator and a back-fill agree on every counter value; incomers carry the sum
of the areas they feed plus transformer and line losses.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np

from plantems.config import DeviceKind, PlantConfig
from plantems.schema import Field
from plantems.simulator.economy import Economy
from plantems.simulator.profiles import DEFAULT_RATED_KW, Array, Profile, evaluate, reactive_kvar
from plantems.simulator.scenarios import Scenario, apply_leaf, incomer_capacitor_kvar

__all__ = ["GRID_S", "ORIGIN_S", "SimulatedPlant"]

ORIGIN_S: Final = 1_767_196_800.0  # 2026-01-01T00:00:00+08:00: counters start here
GRID_S: Final = 60.0
_KW_PER_M3MIN: Final = 6.2  # a loaded screw compressor at 7 bar: kW per m3/min of free air
# Natural gas: about 35.5 MJ/Nm3 lower heating value (GB/T 2589 Annex A: 32,238-38,931 kJ/m3), in kWh.
_KWH_PER_NM3: Final = 9.87
COUNTERS: Final = (Field.E_IMP_KWH.value, Field.E_EXP_KWH.value, Field.EQ_IMP_KVARH.value,
                   Field.EQ_EXP_KVARH.value)


@dataclass(frozen=True)
class SimDevice:
    device_id: str
    profile: Profile
    feeds: tuple[str, ...]
    counter_offset_kwh: float


class SimulatedPlant:
    def __init__(self, plant: PlantConfig, scenarios: Sequence[Scenario] = (), economy: Economy | None = None
                 ) -> None:
        self.plant = plant
        self.scenarios = tuple(scenarios)
        self.economy = economy  # daily production and measures (simulator/economy.py); None: neither
        # gas, air and production meters: no electrical load of their own in an incomer's sum
        self.non_electrical = {d.id for d in plant.devices
                               if not {Field.P_KW.value, Field.E_IMP_KWH.value} & plant.quantities_of(d)}
        # gas meters: their device's rated_kw is the burner's thermal input, its profile the firing rate
        self.gas = {d.id for d in plant.devices if Field.GAS_M3.value in plant.quantities_of(d)}
        now = datetime.now(plant.site.tz)
        offset = now.utcoffset()
        self.utc_offset_s = offset.total_seconds() if offset else 0.0
        self.devices: list[SimDevice] = []
        for device in plant.devices:
            seed = zlib.crc32(device.id.encode())
            rated = device.rated_kw or DEFAULT_RATED_KW.get(device.kind.value, 200.0)
            if device.kind in (DeviceKind.INCOMER, DeviceKind.FEEDER) and device.rated_kw is None:
                rated = sum(d.rated_kw or DEFAULT_RATED_KW.get(d.kind.value, 200.0) for d in plant.devices
                            if d.area in device.feeds and not d.feeds and d.id not in self.non_electrical)
            self.devices.append(SimDevice(device.id, Profile(device.kind.value, seed, rated), device.feeds,
                                          counter_offset_kwh=float(10_000 + seed % 900_000)))

    def _raw_power(self, t_s: Array) -> dict[str, tuple[Array, Array]]:
        """p_kw and pf per device; incomers from the devices of the areas they feed."""
        areas = {d.id: d.area for d in self.plant.devices}
        out = {}
        for dev in self.devices:
            if not dev.feeds and dev.device_id not in self.non_electrical:
                p, pf = dev.profile.power(t_s, utc_offset_s=self.utc_offset_s)
                p, pf = apply_leaf(self.scenarios, dev.profile.kind, dev.profile.rated_kw, t_s, self.utc_offset_s,
                                   p, pf)
                if self.economy is not None:  # after the scenarios: a measure saves during them too
                    p = self.economy.adjust(dev.device_id, dev.profile.kind, t_s, self.utc_offset_s, p)
                out[dev.device_id] = (p, pf)
        for dev in self.devices:
            if dev.feeds:
                fed = [out[d.device_id] for d in self.devices if not d.feeds and areas[d.device_id] in dev.feeds
                       and d.device_id not in self.non_electrical]
                p = sum((f[0] for f in fed), np.zeros_like(t_s))
                q = sum((reactive_kvar(f[0], f[1]) for f in fed), np.zeros_like(t_s))
                rated = dev.profile.rated_kw
                p = p + 0.008 * np.abs(p) + 0.004 * rated + 1e-6 * p ** 2 * 1000.0 / max(rated, 1.0)
                q = q + 0.03 * rated  # transformer magnetising
                q = q - incomer_capacitor_kvar(self.scenarios, rated, t_s, self.utc_offset_s)
                pf = np.where(q < 0, -1.0, 1.0) * np.abs(p) / np.maximum(np.hypot(p, q), 1e-9)  # - : leading
                out[dev.device_id] = (p, pf)
        return out

    def _air(self, t_s: Array, raw: Mapping[str, tuple[Array, Array]]) -> dict[str, dict[str, Array]]:
        """Compressed-air meters: free air delivered by their compressors while loaded, header pressure.

        A screw compressor unloaded at 30 % of its power delivers nothing; loaded it delivers its
        rating / 6.2 kW per m3/min. The header pressure sags while the station is loaded.
        """
        rated = {d.device_id: d.profile.rated_kw for d in self.devices}
        out = {}
        for device in self.plant.devices:
            if device.kind is not DeviceKind.AIR_FLOW or not device.compressors:
                continue
            flow, loaded = np.zeros_like(t_s), np.zeros_like(t_s)
            for name in device.compressors:
                if name in raw:
                    share = np.clip((raw[name][0] / rated[name] - 0.3) / 0.67, 0.0, 1.0)
                    flow, loaded = flow + share * rated[name] / _KW_PER_M3MIN, loaded + share / len(device.compressors)
            out[device.id] = {Field.AIR_M3MIN.value: flow,
                              Field.AIR_BAR.value: 7.3 - 0.4 * loaded + 0.05 * np.sin(2 * np.pi * t_s / 97.0)}
        return out

    def _gas(self, t_s: Array) -> dict[str, dict[str, Array]]:
        """Gas meters: the burner's firing (its profile, on the day's output and under the measures) as
        Nm3/h of natural gas; a fuel switch's retired furnace burns nothing from its go-live."""
        out = {}
        for dev in self.devices:
            if dev.device_id in self.gas:
                thermal_kw, _ = dev.profile.power(t_s, utc_offset_s=self.utc_offset_s)
                if self.economy is not None:
                    thermal_kw = self.economy.adjust(dev.device_id, dev.profile.kind, t_s, self.utc_offset_s,
                                                     thermal_kw)
                out[dev.device_id] = {Field.GAS_M3H.value: thermal_kw / _KWH_PER_NM3}
        return out

    def instantaneous(self, t_s: Array) -> dict[str, dict[str, Array]]:
        """Every quantity but the counters, per device, at times ``t_s``."""
        seeds = {d.device_id: d.profile.seed for d in self.devices}
        raw = self._raw_power(t_s)
        out = {dev_id: evaluate(p, pf, t_s, seeds[dev_id]) for dev_id, (p, pf) in raw.items()}
        out.update(self._air(t_s, raw))
        out.update(self._gas(t_s))
        return out

    def _rates(self, t_s: Array) -> dict[str, dict[str, Array]]:
        """Counter rates (per hour, each direction >= 0) per device."""
        raw = self._raw_power(t_s)
        rates = {dev_id: counter_rates({Field.P_KW.value: p, Field.Q_KVAR.value: reactive_kvar(p, pf)})
                 for dev_id, (p, pf) in raw.items()}
        rates.update({dev_id: counter_rates(values) for dev_id, values in self._air(t_s, raw).items()})
        rates.update({dev_id: counter_rates(values) for dev_id, values in self._gas(t_s).items()})
        return rates

    def integrate(self, grid: Array, base: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, Array]]:
        """Counter values on ``grid`` (trapezoid), starting from ``base`` at ``grid[0]``."""
        out: dict[str, dict[str, Array]] = {}
        for dev_id, rates in self._rates(grid).items():
            out[dev_id] = {}
            for name, rate in rates.items():
                steps = (rate[1:] + rate[:-1]) * 0.5 * np.diff(grid) / 3600.0
                out[dev_id][name] = base[dev_id][name] + np.concatenate(([0.0], np.cumsum(steps)))
        return out

    def origin_counters(self) -> dict[str, dict[str, float]]:
        kinds = {d.id: d.kind for d in self.plant.devices}
        out: dict[str, dict[str, float]] = {}
        for d in self.devices:
            if kinds[d.device_id] is DeviceKind.AIR_FLOW:
                out[d.device_id] = {Field.AIR_M3.value: d.counter_offset_kwh * 10.0}
            elif d.device_id in self.gas:
                out[d.device_id] = {Field.GAS_M3.value: d.counter_offset_kwh}
            elif d.device_id not in self.non_electrical:
                out[d.device_id] = {name: d.counter_offset_kwh if name == Field.E_IMP_KWH.value
                                    else d.counter_offset_kwh / 10.0 for name in COUNTERS}
        return out

    def counters_at(self, t_s: float) -> dict[str, dict[str, float]]:
        """Counter values at grid time ``t_s`` (integrated from ORIGIN_S in 10-day pieces)."""
        current = self.origin_counters()
        piece_s = 10 * 86_400.0
        t = ORIGIN_S
        while t < t_s:
            end = min(t + piece_s, t_s)
            grid = np.arange(t, end + GRID_S / 2, GRID_S)
            values = self.integrate(grid, current)
            current = {dev: {k: float(v[-1]) for k, v in c.items()} for dev, c in values.items()}
            t = float(grid[-1])
        return current

    def counters_on_grid(self, start_s: float, end_s: float, *, base: Mapping[str, Mapping[str, float]] | None = None
                         ) -> tuple[Array, dict[str, dict[str, Array]]]:
        """Grid times in [start_s, end_s] and counter values there; ``base`` = counters at start_s if known."""
        grid = np.arange(start_s, end_s + GRID_S / 2, GRID_S)
        return grid, self.integrate(grid, base if base is not None else self.counters_at(start_s))


def counter_rates(values: Mapping[str, Any]) -> dict[str, Any]:
    """Each counter's rate per hour from instantaneous values (floats or arrays): energy and
    reactive energy by direction from p and q, free air from the flow in m3/min, gas from Nm3/h."""
    rates: dict[str, Any] = {}
    if Field.P_KW.value in values:
        p, q = values[Field.P_KW.value], values[Field.Q_KVAR.value]
        rates.update({Field.E_IMP_KWH.value: np.maximum(p, 0.0), Field.E_EXP_KWH.value: np.maximum(-p, 0.0),
                      Field.EQ_IMP_KVARH.value: np.maximum(q, 0.0), Field.EQ_EXP_KVARH.value: np.maximum(-q, 0.0)})
    if Field.AIR_M3MIN.value in values:
        rates[Field.AIR_M3.value] = values[Field.AIR_M3MIN.value] * 60.0
    if Field.GAS_M3H.value in values:
        rates[Field.GAS_M3.value] = values[Field.GAS_M3H.value]
    return rates


def integrate_step(previous: Mapping[str, float], inst_prev: Mapping[str, float],
                   inst_now: Mapping[str, float], dt_s: float) -> dict[str, float]:
    """Advance counters by one live tick (trapezoid), as counters_on_grid does per grid step."""
    before, after = counter_rates(inst_prev), counter_rates(inst_now)
    return {name: previous[name] + float(before[name] + after[name]) * 0.5 * dt_s / 3600.0 for name in previous}
