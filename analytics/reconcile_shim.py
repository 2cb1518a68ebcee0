"""TEMPORARY stand-in for branch `energy`'s ``analytics.energy.judge_counter`` (same interface);
removed when that branch is merged."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plantems.config import Device, PlantConfig
from plantems.schema import Field

_MARGIN = 1.5


@dataclass(frozen=True)
class CounterSpec:
    rollovers: tuple[float, ...] = ()
    max_per_h: float | None = None


@dataclass(frozen=True)
class CounterSteps:
    times_ns: np.ndarray
    energy: np.ndarray
    rejected_ns: np.ndarray
    replaced_ns: np.ndarray
    wraps: int


def counter_spec(plant: PlantConfig, device: Device) -> CounterSpec:
    rollovers = () if device.mqtt is not None else tuple(
        r.rollover or 0.0 for r in plant.meter_of(device).registers if r.quantity == Field.E_IMP_KWH)
    max_kw = getattr(device, "max_kw", None) or (device.rated_kw * _MARGIN if device.rated_kw else None)
    return CounterSpec(tuple(r for r in rollovers if r), max_kw)


def _fits(delta: float, hours: float, spec: CounterSpec) -> bool:
    return delta >= 0 and (spec.max_per_h is None or delta <= spec.max_per_h * hours + 1e-9)


def judge_counter(times_ns: np.ndarray, values: np.ndarray, spec: CounterSpec) -> CounterSteps:
    """Accept a reading if its step fits the maximum rate (or is a wrap of one summed register);
    reject a lone reading the next one contradicts (a glitch); a lasting drop is a replacement."""
    times, energy, rejected, replaced, wraps = [], [], [], [], 0
    last_t, last_v = int(times_ns[0]), float(values[0])
    times.append(last_t)
    for i in range(1, len(values)):
        t, v = int(times_ns[i]), float(values[i])
        hours = (t - last_t) / 3.6e12
        delta = v - last_v
        step = None
        if _fits(delta, hours, spec):
            step = delta
        else:
            wrapped = [delta + r for r in spec.rollovers if _fits(delta + r, hours, spec)]
            if wrapped:
                step, wraps = wrapped[0], wraps + 1
            elif i + 1 < len(values) and _fits(float(values[i + 1]) - last_v, (int(times_ns[i + 1]) - last_t) / 3.6e12,
                                                spec):
                rejected.append(t)  # the next reading carries on from the last good one: a glitch
                continue
            elif delta < 0:
                step = 0.0  # a new counter: what it counts from its own zero is unknown before this reading
                replaced.append(t)
            else:
                rejected.append(t)
                continue
        times.append(t)
        energy.append(step)
        last_t, last_v = t, v
    return CounterSteps(np.array(times, dtype=np.int64), np.array(energy, dtype=float),
                        np.array(rejected, dtype=np.int64), np.array(replaced, dtype=np.int64), wraps)
