"""15-minute demand as the utility meter computes it (pure), and its projection.

shared/domain.md section 7: a Chinese demand meter averages power over a 15-minute period
that slides by 1 minute (滑差式), or over fixed 15-minute blocks (区间式); the month's
maximum of those averages is billed. The maximum over sliding windows is never below the
maximum over fixed blocks of the same data, so a monitor that assumes fixed blocks
under-predicts a sliding meter. Inputs are per-minute energy (kWh), e.g. from
``analytics.energy.energy_from_counter`` on 1-minute edges, which keeps a window that spans
a data gap exact.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["WINDOW_MIN", "fixed_demand_kw", "projected_demand_kw", "sliding_demand_kw"]

WINDOW_MIN = 15
_HOURS_PER_WINDOW = WINDOW_MIN / 60.0
Array = npt.NDArray[np.float64]


def sliding_demand_kw(minute_kwh: Array) -> Array:
    """Demand of the window ending with each minute (NaN until 15 minutes are there)."""
    energy = np.asarray(minute_kwh, dtype=float)
    out = np.full(len(energy), np.nan)
    if len(energy) >= WINDOW_MIN:
        sums = np.convolve(energy, np.ones(WINDOW_MIN), mode="valid")
        out[WINDOW_MIN - 1:] = sums / _HOURS_PER_WINDOW
    return out


def fixed_demand_kw(minute_kwh: Array, *, first_block_offset: int = 0) -> Array:
    """Demand of each whole 15-minute block; blocks start ``first_block_offset`` minutes in."""
    energy = np.asarray(minute_kwh, dtype=float)[first_block_offset:]
    blocks = len(energy) // WINDOW_MIN
    return energy[:blocks * WINDOW_MIN].reshape(blocks, WINDOW_MIN).sum(axis=1) / _HOURS_PER_WINDOW


def projected_demand_kw(minute_kwh: Array, p_now_kw: float, *, minutes_ahead: int) -> float:
    """Demand of the window ending ``minutes_ahead`` from now if power stays at ``p_now_kw``.

    (energy of the window's elapsed minutes + p_now x remaining hours) / 0.25 h. ``minute_kwh``
    ends with the last complete minute.
    """
    if not 0 <= minutes_ahead <= WINDOW_MIN:
        raise ValueError(f"minutes_ahead {minutes_ahead} must be within one window (0-{WINDOW_MIN})")
    elapsed = WINDOW_MIN - minutes_ahead
    energy = np.asarray(minute_kwh, dtype=float)
    known = float(energy[len(energy) - elapsed:].sum()) if elapsed else 0.0
    return (known + p_now_kw * minutes_ahead / 60.0) / _HOURS_PER_WINDOW
