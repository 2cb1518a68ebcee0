"""Load profiles of a cast-roll plant (pure, vectorised, deterministic).

Every profile is a function of absolute time: the same instant gives the same
kW in the live simulator and in a back-fill, so history and live data join
without a seam. Randomness comes from a hash of (device seed, time bucket).

- cold / finishing / foil mills roll coils in passes (MW-scale), thread between
  passes, and idle during coil changes and shift handovers;
- casters run steadily; compressors cycle load/unload; VFD fans follow the day;
- PV follows the sun with passing clouds (exported, so p_kw < 0);
- power factor falls at light load (induction motors), VFDs stay near 0.95.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_RATED_KW", "Profile", "evaluate", "motor_pf", "reactive_kvar", "unit_hash"]

Array = npt.NDArray[np.float64]
_MASK64: Final = np.uint64(0xFFFFFFFFFFFFFFFF)


def _unit_hash(seed: int, bucket: npt.NDArray[np.int64]) -> Array:
    """Uniform [0, 1) per (seed, bucket) via splitmix64: vectorised, stable across runs."""
    with np.errstate(over="ignore"):
        z = (bucket.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


unit_hash = _unit_hash  # for simulator/economy.py


def _local_hour(t_s: Array, utc_offset_s: float) -> Array:
    return ((t_s + utc_offset_s) % 86_400.0) / 3600.0


def _handover(hour: Array) -> Array:
    """1 during the half hour around the 08:00 and 20:00 shift changes."""
    return ((np.abs(hour - 8.0) < 0.25) | (np.abs(hour - 20.0) < 0.25)).astype(np.float64)


def _mill(t_s: Array, seed: int, rated_kw: float, hour: Array, *, period_s: float, passes: int) -> tuple[Array, Array]:
    coil = np.floor(t_s / period_s).astype(np.int64)
    phase = t_s - coil * period_s
    pass_s = period_s * 0.8 / passes
    in_pass = np.floor(phase / pass_s)
    within = phase - in_pass * pass_s
    rolling = (in_pass < passes) & (within < pass_s * 0.85)
    threading = (in_pass < passes) & ~rolling
    night = (hour < 6.0) | (hour >= 22.0)
    skip = _unit_hash(seed + 7, coil) < np.where(night, 0.35, 0.1)  # no coil ready
    level = 0.55 + 0.35 * _unit_hash(seed, coil * 8 + in_pass.astype(np.int64))
    ripple = 1.0 + 0.04 * np.sin(2 * np.pi * within / 23.0)
    load = np.where(rolling, level * ripple, np.where(threading, 0.08, 0.04))
    load = np.where(skip | (_handover(hour) > 0), 0.04, load)
    return rated_kw * load, motor_pf(load)


def motor_pf(load: Array) -> Array:
    return np.clip(0.5 + 0.42 * np.sqrt(np.clip(load, 0.0, 1.0)), 0.45, 0.92)


def _caster(t_s: Array, seed: int, rated_kw: float, hour: Array) -> tuple[Array, Array]:
    noise = _unit_hash(seed, np.floor(t_s / 5.0).astype(np.int64))
    load = 0.72 + 0.06 * noise - 0.5 * _handover(hour) * 0.2
    return rated_kw * load, np.full_like(t_s, 0.88)


def _compressor(t_s: Array, seed: int, rated_kw: float, hour: Array) -> tuple[Array, Array]:
    cycle_s = 180.0
    cycle = np.floor(t_s / cycle_s).astype(np.int64)
    day = (hour >= 7.0) & (hour < 21.0)
    duty = np.where(day, 0.55, 0.35) + 0.3 * _unit_hash(seed, cycle)
    loaded = (t_s - cycle * cycle_s) < duty * cycle_s
    load = np.where(loaded, 0.97, 0.3)
    return rated_kw * load, np.where(loaded, 0.86, 0.55)


def _fan(t_s: Array, seed: int, rated_kw: float, hour: Array) -> tuple[Array, Array]:
    speed = 0.65 + 0.2 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
    speed = speed + 0.03 * _unit_hash(seed, np.floor(t_s / 30.0).astype(np.int64))
    return rated_kw * speed ** 3, np.full_like(t_s, 0.95)  # fan law; VFD front end


def _pv(t_s: Array, seed: int, rated_kw: float, hour: Array) -> tuple[Array, Array]:
    sun = np.clip(np.sin(np.pi * (hour - 6.0) / 13.0), 0.0, None)
    clouds = 0.6 + 0.4 * _unit_hash(seed, np.floor(t_s / 600.0).astype(np.int64))
    return -rated_kw * 0.85 * sun * clouds, np.ones_like(t_s)


def _steady(t_s: Array, seed: int, rated_kw: float, hour: Array) -> tuple[Array, Array]:
    noise = _unit_hash(seed, np.floor(t_s / 10.0).astype(np.int64))
    return rated_kw * (0.5 + 0.1 * noise), np.full_like(t_s, 0.85)


ProfileFn = Callable[[Array, int, float, Array], tuple[Array, Array]]
_PROFILES: Final[Mapping[str, ProfileFn]] = {
    "cold_mill": lambda t, s, r, h: _mill(t, s, r, h, period_s=1500.0, passes=3),
    "finishing_mill": lambda t, s, r, h: _mill(t, s, r, h, period_s=1200.0, passes=2),
    "foil_mill": lambda t, s, r, h: _mill(t, s, r, h, period_s=2400.0, passes=4),
    "caster": _caster,
    "compressor": _compressor,
    "exhaust_fan": _fan,
    "pv": _pv,
}
DEFAULT_RATED_KW: Final[Mapping[str, float]] = {
    "cold_mill": 3200.0, "finishing_mill": 1600.0, "foil_mill": 1800.0, "caster": 900.0,
    "compressor": 250.0, "exhaust_fan": 160.0, "pv": 800.0, "furnace": 600.0, "pump": 110.0,
}


@dataclass(frozen=True)
class Profile:
    """One simulated load: ``kind`` picks the shape, ``seed`` makes it this device's own."""

    kind: str
    seed: int
    rated_kw: float

    def power(self, t_s: Array, *, utc_offset_s: float) -> tuple[Array, Array]:
        """Active power (kW, + import) and power factor (+ lagging) at times ``t_s`` (epoch s)."""
        fn = _PROFILES.get(self.kind, _steady)
        return fn(t_s, self.seed, self.rated_kw, _local_hour(t_s, utc_offset_s))


def reactive_kvar(p_kw: Array, pf: Array) -> Array:
    """Q from P and the signed PF: + lagging (drawn), - leading (fed back)."""
    return np.sign(pf) * np.abs(p_kw) * np.tan(np.arccos(np.clip(np.abs(pf), 0.05, 1.0)))


def evaluate(p_kw: Array, pf: Array, t_s: Array, seed: int) -> dict[str, Array]:
    """Derive q, s, voltages, currents and frequency from p and the signed pf (pure)."""
    q_kvar = reactive_kvar(p_kw, pf)
    pf = np.sign(pf) * np.clip(np.abs(pf), 0.05, 1.0)
    s_kva = np.hypot(p_kw, q_kvar)
    second = np.floor(t_s).astype(np.int64)
    out = {"p_kw": p_kw, "q_kvar": q_kvar, "s_kva": s_kva, "pf": pf,
           "f_hz": 50.0 + 0.04 * (_unit_hash(seed + 99, second // 10) - 0.5)}
    for n, phase in enumerate(("l1", "l2", "l3")):
        v = 230.0 + 3.0 * (_unit_hash(seed + 11 + n, second // 5) - 0.5) - 0.002 * s_kva / 100.0
        out[f"v_{phase}_v"] = v
        out[f"i_{phase}_a"] = s_kva * 1000.0 / (3.0 * v)
    return out
