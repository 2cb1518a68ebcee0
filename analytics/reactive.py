"""Reactive power (pure): monthly power factor, the 1983 bill adjustment, capacitor sizing, line losses.

Sources (shared/domain.md sections 5 and 7): 功率因数调整电费办法 (83)水电财字第215号 and its
table (wgbc.cn); capacitor sizing Qc = P x (tan acos PF1 - tan acos PF2) (NERX, IEC 61921
implementations); line-loss reduction 1 - (PF1/PF2)^2 (myelectrical2015, NEPSI).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CapacitorSizing", "capacitor_kvar", "line_loss_reduction", "monthly_pf", "pf_adjustment_percent",
           "size_capacitor_bank"]

# Reduction cap (bill change at or above these PFs) per standard, in % of the bill.
_REDUCTION_CAP = {90: -0.75, 85: -1.1, 80: -1.3}


def monthly_pf(kwh: float, kvarh_import: float, kvarh_export: float) -> float:
    """The tariff's monthly PF: kWh / sqrt(kWh^2 + (|import| + |export| kvarh)^2), to 2 decimals.

    Exported kvarh (over-compensation) counts against the PF like imported kvarh does.
    """
    kvarh = abs(kvarh_import) + abs(kvarh_export)
    if kwh <= 0:
        raise ValueError(f"monthly PF needs positive active energy, got {kwh} kWh")
    return round(kwh / math.hypot(kwh, kvarh), 2)


def pf_adjustment_percent(pf: float, standard: float) -> float:
    """Bill change in % (negative: reduction) for a monthly ``pf`` under the 0.90/0.85/0.80 ``standard``.

    Below the standard: +0.5 % per 0.01 for 20 steps (+10 %), +1 % per 0.01 for 5 more (+15 %),
    then +2 % per 0.01 without a cap. Above it: -0.1 % per 0.01 up to 0.90 (0.85 and 0.80
    scales), -0.15 % per 0.01 above 0.90, capped at -0.75 / -1.1 / -1.3 %.
    """
    s = round(standard * 100)
    if s not in _REDUCTION_CAP:
        raise ValueError(f"standard {standard} is not one of 0.90, 0.85, 0.80")
    p = round(pf * 100)
    if p < s:
        steps = s - p
        if steps <= 20:
            return 0.5 * steps
        if steps <= 25:
            return 10.0 + (steps - 20)
        return 15.0 + 2.0 * (steps - 25)
    reduction = 0.1 * (min(p, 90) - s) + 0.15 * max(p - 90, 0)
    return round(max(-reduction, _REDUCTION_CAP[s]), 4)


def capacitor_kvar(p_kw: float, pf_now: float, pf_target: float) -> float:
    """kvar that raise ``p_kw`` at ``pf_now`` to ``pf_target`` (0 if already there)."""
    if not (0 < pf_now <= 1 and 0 < pf_target <= 1):
        raise ValueError(f"power factors must be in (0, 1]: {pf_now}, {pf_target}")
    return max(p_kw * (math.tan(math.acos(pf_now)) - math.tan(math.acos(pf_target))), 0.0)


def line_loss_reduction(pf_now: float, pf_target: float) -> float:
    """Share of I^2R losses saved at constant power: 1 - (PF1 / PF2)^2."""
    return 1.0 - (pf_now / pf_target) ** 2


@dataclass(frozen=True)
class CapacitorSizing:
    average_kvar: float  # from the period's totals (what the average PF suggests)
    p95_kvar: float  # needed in 95 % of the 15-minute intervals: the bank to buy
    max_kvar: float
    over_compensated_intervals: int  # intervals that already export reactive power


def size_capacitor_bank(p_kw: Sequence[float], q_kvar: Sequence[float], *, pf_target: float = 0.95
                        ) -> CapacitorSizing:
    """Size a bank from the distribution of 15-minute average kW and kvar, not only their mean.

    Per interval, the kvar to add is Q - P x tan(acos(target)); a bank sized on the mean
    under-serves the heavy intervals that set the month's PF and demand.
    """
    p = np.asarray(p_kw, dtype=float)
    q = np.asarray(q_kvar, dtype=float)
    allowed = np.clip(p, 0.0, None) * math.tan(math.acos(pf_target))
    needed = np.clip(q - allowed, 0.0, None)
    average = max(float(q.mean() - allowed.mean()), 0.0) if len(q) else 0.0
    return CapacitorSizing(average, float(np.percentile(needed, 95)) if len(needed) else 0.0,
                           float(needed.max()) if len(needed) else 0.0, int((q < 0).sum()))
