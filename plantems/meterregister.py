"""The meter register's vocabulary (GB 17167; shared/domain.md section 11): metering levels, accuracy
classes and CT/PT ratios. Used by the plant config (``plantems.config``) and ``analytics/metering.py``."""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["ACCURACY_CLASSES", "MeteringLevel", "accuracy_rank", "parse_accuracy_class", "parse_ratio"]


class MeteringLevel(StrEnum):
    SITE_BOUNDARY = "site_boundary"  # L1 进出用能单位: grid incomers, on-site generation, gas station
    SUB_UNIT = "sub_unit"  # L2 进出主要次级用能单位: casting, cold rolling, finishing, utilities
    MAJOR_EQUIPMENT = "major_equipment"  # L3 主要用能设备: electricity >= 100 kW


# Accuracy classes of energy meters and flow meters (GB/T 17215, JJG 596; gas 1.5/2.0, water 2.5).
ACCURACY_CLASSES = ("0.2S", "0.2", "0.5S", "0.5", "1", "1.5", "2", "2.5", "3")
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def parse_accuracy_class(value: object) -> str:
    """``0.5S``, ``0.5`` or ``1`` (YAML may give a number) as the register writes it; ValueError otherwise."""
    text = f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value).strip()
    text = text.upper().removesuffix(".0")  # "1.0" is class 1
    if text not in ACCURACY_CLASSES:
        raise ValueError(f"accuracy class {value!r} is not one of {', '.join(ACCURACY_CLASSES)}")
    return text


def accuracy_rank(accuracy_class: str) -> tuple[float, int]:
    """Sort key, better first: 0.5S before 0.5 (the S class holds its accuracy down to 1 % current)."""
    return float(accuracy_class.removesuffix("S")), 0 if accuracy_class.endswith("S") else 1


def parse_ratio(text: str) -> float:
    """``"2000/5"`` (primary/secondary, as on the nameplate) -> 400.0; ValueError if not that form."""
    match = _RATIO.match(text)
    if match is None or float(match.group(2)) == 0 or float(match.group(1)) == 0:
        raise ValueError(f"ratio {text!r} is not PRIMARY/SECONDARY with positive numbers, e.g. 2000/5")
    return float(match.group(1)) / float(match.group(2))
