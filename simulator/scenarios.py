"""Simulator scenarios: situations the analytics must catch, laid over the normal profiles (pure).

- ``mills-peak``: every rolling mill starts a heavy pass at once, a 15-minute demand peak
  (the demand alerts' case);
- ``light-night``: mills idle, so induction motors run at poor PF, and the incomers' fixed
  capacitor bank over-compensates (leading PF, exported kvarh: the reactive-power case);
- ``compressor-peak``: compressors run fully loaded through the peak and sharp tariff hours
  (the load-shifting case);
- ``meter-glitch:DEVICE``: the device's energy registers read 0 for one second in seven (a
  gateway glitch, a meter reboot): the readings the analytics must reject, never turn into energy;
- ``counter-wrap:DEVICE``: the device's first register of each summed counter (e.g. tariff 1 of a
  T1 + T2 meter) is preset so that it passes its rollover at the scenario's start.

A spec is ``NAME``, ``NAME@HH:MM`` (daily, local), ``NAME@+SECONDS`` (once, from now) or
``NAME@EPOCH`` (once), optionally ``/MINUTES`` for the duration; the device scenarios name their
device after a colon. Being functions of absolute time, scenarios keep back-filled and live
counters consistent when both use the same list (the device scenarios act on live registers only).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from plantems.simulator.profiles import Array

__all__ = ["DEVICE_KINDS", "KINDS", "Scenario", "check_devices", "glitching", "parse_scenario", "scenarios_for"]

MILL_KINDS: Final = frozenset({"cold_mill", "finishing_mill", "foil_mill"})
# name -> (default daily start "HH:MM", default duration min)
KINDS: Final = {"mills-peak": ("10:00", 20.0), "light-night": ("00:00", 360.0), "compressor-peak": ("15:00", 420.0),
                "meter-glitch": ("00:00", 1440.0), "counter-wrap": ("+60", 1.0)}
DEVICE_KINDS: Final = frozenset({"meter-glitch", "counter-wrap"})  # these name their device: NAME:DEVICE
_MILL_PEAK_LOAD: Final = 0.95
_CAPACITOR_SHARE: Final = 0.12  # of the incomer's rated kW: a fixed bank left on at light load


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_s: float
    daily_start_s: float | None = None  # seconds after local midnight
    once_start_s: float | None = None  # epoch seconds
    device: str | None = None  # the device of a meter-glitch or counter-wrap

    def active(self, t_s: Array, utc_offset_s: float) -> Array:
        """Boolean mask of the instants ``t_s`` (epoch s) inside the scenario."""
        if self.once_start_s is not None:
            return (t_s >= self.once_start_s) & (t_s < self.once_start_s + self.duration_s)
        assert self.daily_start_s is not None
        since = (t_s + utc_offset_s - self.daily_start_s) % 86_400.0
        return since < self.duration_s


def parse_scenario(spec: str, *, now_s: float | None = None) -> Scenario:
    """``mills-peak@+30/20`` and the like; ValueError names the spec and the rule."""
    head, _, duration = spec.partition("/")
    name, _, start = head.partition("@")
    name, _, device = name.partition(":")
    if name not in KINDS:
        raise ValueError(f"scenario {spec!r}: unknown name {name!r}; known: {', '.join(KINDS)}")
    if (name in DEVICE_KINDS) != bool(device):
        rule = f"name the device: {name}:DEVICE" if name in DEVICE_KINDS else f"{name} applies to no single device"
        raise ValueError(f"scenario {spec!r}: {rule}")
    return replace(_parse_timing(spec, name, start, duration, now_s=now_s), device=device or None)


def _parse_timing(spec: str, name: str, start: str, duration: str, *, now_s: float | None) -> Scenario:
    default_start, default_min = KINDS[name]
    try:
        minutes = float(duration) if duration else default_min
    except ValueError:
        raise ValueError(f"scenario {spec!r}: duration {duration!r} is not a number of minutes") from None
    if not 0 < minutes <= 24 * 60:
        raise ValueError(f"scenario {spec!r}: duration must be 0-1440 minutes")
    start = start or default_start
    if start.startswith("+"):
        return Scenario(name, minutes * 60, once_start_s=(now_s or time.time()) + float(start[1:]))
    if ":" in start:
        hours, _, mins = start.partition(":")
        if not (hours.isdigit() and mins.isdigit() and int(hours) < 24 and int(mins) < 60):
            raise ValueError(f"scenario {spec!r}: {start!r} is not a local time HH:MM")
        return Scenario(name, minutes * 60, daily_start_s=int(hours) * 3600.0 + int(mins) * 60.0)
    try:
        return Scenario(name, minutes * 60, once_start_s=float(start))
    except ValueError:
        raise ValueError(f"scenario {spec!r}: start {start!r} is not HH:MM, +SECONDS or epoch seconds") from None


def scenarios_for(configured: Sequence[str], extra: Sequence[str] = (), *, now_s: float | None = None
                  ) -> list[Scenario]:
    """The plant file's ``simulator.scenarios`` plus command-line ones, parsed."""
    return [parse_scenario(spec, now_s=now_s) for spec in (*configured, *extra)]


def apply_leaf(scenarios: Sequence[Scenario], kind: str, rated_kw: float, t_s: Array, utc_offset_s: float,
               p_kw: Array, pf: Array) -> tuple[Array, Array]:
    """A metered load's p and pf with the scenarios active at ``t_s`` laid over."""
    from plantems.simulator.profiles import motor_pf

    for scenario in scenarios:
        if scenario.name == "mills-peak" and kind in MILL_KINDS:
            on = scenario.active(t_s, utc_offset_s)
            p_kw, pf = np.where(on, rated_kw * _MILL_PEAK_LOAD, p_kw), np.where(on, motor_pf(_MILL_PEAK_LOAD), pf)
        elif scenario.name == "light-night" and kind in MILL_KINDS:
            on = scenario.active(t_s, utc_offset_s)
            p_kw, pf = np.where(on, rated_kw * 0.04, p_kw), np.where(on, motor_pf(0.04), pf)
        elif scenario.name == "compressor-peak" and kind == "compressor":
            on = scenario.active(t_s, utc_offset_s)
            p_kw, pf = np.where(on, rated_kw * 0.97, p_kw), np.where(on, 0.86, pf)
    return p_kw, pf


def incomer_capacitor_kvar(scenarios: Sequence[Scenario], rated_kw: float, t_s: Array, utc_offset_s: float) -> Array:
    """kvar a fixed capacitor bank feeds back while ``light-night`` is on (0 otherwise)."""
    bank = np.zeros_like(t_s)
    for scenario in scenarios:
        if scenario.name == "light-night":
            bank = np.where(scenario.active(t_s, utc_offset_s), _CAPACITOR_SHARE * rated_kw, bank)
    return bank


_GLITCH_EVERY_S: Final = 7


def glitching(scenarios: Sequence[Scenario], device: str, t_s: float) -> bool:
    """Whether ``device``'s energy registers read 0 at ``t_s``: one whole second in seven while a
    meter-glitch on it is active (so a 1-s poll inside that second reads the glitch)."""
    return any(s.name == "meter-glitch" and s.device == device and bool(s.active(np.array([t_s]), 0.0)[0])
               and int(t_s) % _GLITCH_EVERY_S == 0 for s in scenarios)


def check_devices(scenarios: Sequence[Scenario], modbus_devices: Sequence[str]) -> None:
    """ValueError naming a device scenario whose device is not a Modbus device of the plant."""
    for scenario in scenarios:
        if scenario.device is not None and scenario.device not in modbus_devices:
            raise ValueError(f"scenario {scenario.name}:{scenario.device}: no Modbus device {scenario.device!r} in "
                             f"the plant; known: {', '.join(sorted(modbus_devices))}")
