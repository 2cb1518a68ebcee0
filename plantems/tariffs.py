"""Time-of-use tariffs: versioned calendars in ``config/tariffs/*.yaml`` (config + pure lookup).

A tariff version has a ``valid_from`` date, prices per period (sharp / peak /
flat / valley), an optional demand charge, a status (``confirmed`` or
``to-be-confirmed``) and its source. Its calendars map months to periods as
local clock ranges that must cover each day exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator, model_validator
from pydantic import Field as PydField

from plantems.calendar import parse_clock
from plantems.yamlconf import ConfigError, LocatedError, load_yaml, validate

__all__ = ["Period", "Tariff", "load_tariffs", "tariff_for"]


class Period(StrEnum):
    SHARP = "sharp"  # 尖峰 (critical peak)
    PEAK = "peak"  # 高峰
    FLAT = "flat"  # 平段
    VALLEY = "valley"  # 低谷


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Calendar(_Frozen):
    months: tuple[int, ...] = PydField(min_length=1)
    periods: dict[Period, tuple[str, ...]]  # "HH:MM-HH:MM" local ranges, end exclusive
    _by_minute: tuple[Period, ...] = PrivateAttr(default=())

    @field_validator("months")
    @classmethod
    def _months(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= m <= 12 for m in value):
            raise ValueError("months are 1-12")
        return value

    @model_validator(mode="after")
    def _covers_the_day(self) -> Self:
        owner: list[Period | None] = [None] * (24 * 60)
        for period, ranges in self.periods.items():
            for text in ranges:
                start, sep, end = text.partition("-")
                if not sep:
                    raise LocatedError(("periods", period.value), f"range {text!r}: expected HH:MM-HH:MM")
                lo, hi = parse_clock(start), parse_clock(end)
                if lo >= hi:
                    raise LocatedError(("periods", period.value), f"range {text!r} is empty or wraps midnight; "
                                                                  "split it at 24:00")
                for minute in range(lo, hi):
                    if owner[minute] is not None:
                        raise LocatedError(("periods", period.value),
                                           f"range {text!r} overlaps {owner[minute]} at {minute // 60:02d}:"
                                           f"{minute % 60:02d}")
                    owner[minute] = period
        if None in owner:
            gap = owner.index(None)
            raise ValueError(f"the day is not covered: nothing at {gap // 60:02d}:{gap % 60:02d}")
        self._by_minute = tuple(p for p in owner if p is not None)
        return self

    def period_at(self, clock: time) -> Period:
        return self._by_minute[clock.hour * 60 + clock.minute]


class Tariff(_Frozen):
    id: str
    valid_from: date
    status: str = PydField(pattern=r"^(confirmed|to-be-confirmed)$")
    source: str = PydField(min_length=1)
    currency: str = "CNY"
    prices_per_kwh: dict[Period, float]
    demand_charge_per_kw_month: float | None = None  # from the bill; None until known
    calendars: tuple[Calendar, ...] = PydField(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        months = [m for c in self.calendars for m in c.months]
        missing = sorted(set(range(1, 13)) - set(months))
        if missing or len(months) != len(set(months)):
            raise ValueError(f"calendars must name each month once; missing {missing}, "
                             f"repeated {sorted({m for m in months if months.count(m) > 1})}")
        used = {p for c in self.calendars for p in c.periods}
        unpriced = sorted(p.value for p in used - set(self.prices_per_kwh))
        if unpriced:
            raise ValueError(f"periods without a price: {unpriced}")
        return self

    def period_at(self, local: datetime) -> Period:
        calendar = next(c for c in self.calendars if local.month in c.months)
        return calendar.period_at(local.time())


def load_tariffs(directory: Path) -> list[Tariff]:
    """Every tariff version in ``directory``, oldest first; ConfigError names file and line."""
    tariffs, problems = [], []
    for path in sorted(directory.glob("*.yaml")):
        data, lines = load_yaml(path)
        try:
            tariffs.append(validate(Tariff, data, path, lines))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return sorted(tariffs, key=lambda t: t.valid_from)


def tariff_for(tariffs: Sequence[Tariff], day: date) -> Tariff:
    """The version in force on ``day``: the latest ``valid_from`` not after it."""
    valid = [t for t in tariffs if t.valid_from <= day]
    if not valid:
        raise LookupError(f"no tariff is valid on {day}; earliest valid_from: "
                          f"{min((t.valid_from for t in tariffs), default='none')}")
    return valid[-1]
