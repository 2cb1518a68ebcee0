"""Metering coverage from the meter register (GB 17167; shared/domain.md section 11), pure.

Reads the plant's devices (their register keys) and its ``unmetered_equipment``; returns per level:

- 配备率 = meters installed on objects that need one / objects that need one, against the required
  rates for electricity (GB 17167-2006 Table 3: 100 % / 100 % / 95 %). An object needs a meter at the site
  boundary always, as a sub-unit from 10 kW, as major equipment from 100 kW (rated); a meter on a smaller
  object is extra and counts in neither;
- the automatic-collection rate (关键能源数据自动采集率) = meters plantems collects / meters required;
  a manual meter counts as installed, not as collected;
- calibrations overdue at a date, devices with no due date, and the in-calibration share;
- site-boundary meters below the required accuracy class (0.5S for a class I user);
- progress towards "every high-consumption machine (>= 100 kW) in the energy-management system by 2030";
- ``submetered_share``: the share of the site's consumption (its site-boundary meters, on-site generation
  included) measured below the boundary, each kWh once: per area, its sub-unit meters if it has any,
  else its major-equipment meters.

GB 17167-2025 (in force 2026-02-01) may change the rates and thresholds: they are parameters here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Protocol

from plantems.meterregister import MeteringLevel, accuracy_rank

__all__ = [
    "REQUIRED_RATE",
    "Calibration",
    "LevelCoverage",
    "MachineProgress",
    "MeteringReport",
    "SubmeteredShare",
    "compute_metering",
    "submetered_share",
]

REQUIRED_RATE: Mapping[MeteringLevel, float] = {  # electricity, GB 17167-2006 Table 3
    MeteringLevel.SITE_BOUNDARY: 1.00, MeteringLevel.SUB_UNIT: 1.00, MeteringLevel.MAJOR_EQUIPMENT: 0.95}
THRESHOLD_KW: Mapping[MeteringLevel, float] = {  # an object needs a meter from this rated power (Tables 1-2)
    MeteringLevel.SITE_BOUNDARY: 0.0, MeteringLevel.SUB_UNIT: 10.0, MeteringLevel.MAJOR_EQUIPMENT: 100.0}
HIGH_CONSUMPTION_KW = 100.0  # the plan's "high-consumption machines": GB 17167 major equipment
TARGET_YEAR = 2030
L1_ACCURACY_CLASS = "0.5S"  # class I user (>= 5 GWh/month or >= 10,000 kVA), GB 17167-2006 Table 4 [U]
NOT_ENERGY_METERS = frozenset({"production", "air_flow"})  # output counters and air-flow meters
NOT_MACHINES = frozenset({"incomer", "feeder", "pv", "production", "air_flow", "lighting"})


class MeterLike(Protocol):
    """A device of the plant config (``plantems.config.Device``), as far as the register goes."""

    @property
    def id(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def rated_kw(self) -> float | None: ...
    @property
    def metering_level(self) -> MeteringLevel | None: ...
    @property
    def accuracy_class(self) -> str | None: ...
    @property
    def calibration_due(self) -> date | None: ...


class EquipmentLike(Protocol):
    """An ``unmetered_equipment`` item of the plant config."""

    @property
    def id(self) -> str: ...
    @property
    def rated_kw(self) -> float: ...
    @property
    def metering_level(self) -> MeteringLevel: ...
    @property
    def manual_meter(self) -> bool: ...


@dataclass(frozen=True)
class LevelCoverage:
    level: MeteringLevel
    installed: int  # meters on objects that need one (collected by plantems or read by hand)
    manual: int  # of which read by hand
    required: int  # objects that need a meter
    required_rate: float
    missing: tuple[str, ...]  # unmetered objects that need a meter

    @property
    def rate(self) -> float | None:
        return self.installed / self.required if self.required else None

    @property
    def meets(self) -> bool | None:
        return None if self.rate is None else self.rate >= self.required_rate - 1e-12


@dataclass(frozen=True)
class Calibration:
    device: str
    due: date
    days_overdue: int


@dataclass(frozen=True)
class MachineProgress:
    in_system: int
    total: int
    remaining: tuple[str, ...]
    target_year: int
    years_left: int  # calendar years left, the current one included

    @property
    def share(self) -> float | None:
        return self.in_system / self.total if self.total else None

    @property
    def machines_per_year_needed(self) -> float | None:
        """Machines to connect per remaining year to finish by the end of the target year."""
        if not self.remaining:
            return 0.0
        return len(self.remaining) / self.years_left if self.years_left > 0 else None


@dataclass(frozen=True)
class MeteringReport:
    on_date: date
    levels: tuple[LevelCoverage, ...]
    auto_collected: int
    required_total: int
    overdue: tuple[Calibration, ...]
    no_due_date: tuple[str, ...]
    registered: int
    accuracy_issues: tuple[tuple[str, str | None], ...]  # (device, class) below L1_ACCURACY_CLASS or unknown
    unregistered: tuple[str, ...]  # energy meters with no metering_level: outside every figure here
    below_threshold: tuple[str, ...]  # unmetered items too small to need a meter at their level
    progress: MachineProgress

    @property
    def auto_collection_rate(self) -> float | None:
        return self.auto_collected / self.required_total if self.required_total else None

    @property
    def in_calibration_share(self) -> float | None:
        """Registered meters with a due date on or after ``on_date`` / registered meters."""
        valid = self.registered - len(self.overdue) - len(self.no_due_date)
        return valid / self.registered if self.registered else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["on_date"] = self.on_date.isoformat()
        data["levels"] = [{**asdict(c), "level": c.level.value, "rate": c.rate, "meets": c.meets} for c in self.levels]
        data["overdue"] = [{**asdict(c), "due": c.due.isoformat()} for c in self.overdue]
        data["progress"] = {**asdict(self.progress), "share": self.progress.share,
                            "machines_per_year_needed": self.progress.machines_per_year_needed}
        data["auto_collection_rate"] = self.auto_collection_rate
        data["in_calibration_share"] = self.in_calibration_share
        return data


def _needs_meter(level: MeteringLevel, rated_kw: float | None, thresholds: Mapping[MeteringLevel, float]) -> bool:
    return rated_kw is None or rated_kw >= thresholds[level]  # an unrated registered object: as declared


def _coverage(devices: list[MeterLike], unmetered: list[EquipmentLike], level: MeteringLevel,
              thresholds: Mapping[MeteringLevel, float], rates: Mapping[MeteringLevel, float]) -> LevelCoverage:
    metered = [d for d in devices if d.metering_level is level and _needs_meter(level, d.rated_kw, thresholds)]
    items = [u for u in unmetered if u.metering_level is level and _needs_meter(level, u.rated_kw, thresholds)]
    manual = [u for u in items if u.manual_meter]
    missing = tuple(u.id for u in items if not u.manual_meter)
    return LevelCoverage(level=level, installed=len(metered) + len(manual), manual=len(manual),
                         required=len(metered) + len(items), required_rate=rates[level], missing=missing)


def _calibrations(registered: list[MeterLike], on_date: date) -> tuple[tuple[Calibration, ...], tuple[str, ...]]:
    overdue = tuple(Calibration(device=d.id, due=d.calibration_due, days_overdue=(on_date - d.calibration_due).days)
                    for d in registered if d.calibration_due is not None and d.calibration_due < on_date)
    return overdue, tuple(d.id for d in registered if d.calibration_due is None)


def _progress(devices: list[MeterLike], unmetered: list[EquipmentLike], on_date: date,
              target_year: int) -> MachineProgress:
    machines = [d.id for d in devices if d.kind not in NOT_MACHINES and (d.rated_kw or 0) >= HIGH_CONSUMPTION_KW]
    remaining = tuple(u.id for u in unmetered if u.rated_kw >= HIGH_CONSUMPTION_KW)  # manual meters are not in EMS
    return MachineProgress(in_system=len(machines), total=len(machines) + len(remaining), remaining=remaining,
                           target_year=target_year, years_left=max(target_year - on_date.year + 1, 0))


def compute_metering(devices: Iterable[MeterLike], unmetered: Iterable[EquipmentLike], *, on_date: date,
                     required_rate: Mapping[MeteringLevel, float] = REQUIRED_RATE,
                     threshold_kw: Mapping[MeteringLevel, float] = THRESHOLD_KW,
                     l1_accuracy_class: str = L1_ACCURACY_CLASS, target_year: int = TARGET_YEAR) -> MeteringReport:
    """The register's KPIs at ``on_date`` (the report's last day); a gas meter's rated_kw is its burner's
    thermal input."""
    devices, unmetered = list(devices), list(unmetered)
    registered = [d for d in devices if d.metering_level is not None]
    levels = tuple(_coverage(registered, unmetered, level, threshold_kw, required_rate) for level in MeteringLevel)
    overdue, no_due = _calibrations(registered, on_date)
    limit = accuracy_rank(l1_accuracy_class)
    accuracy = tuple((d.id, d.accuracy_class) for d in registered if d.metering_level is MeteringLevel.SITE_BOUNDARY
                     and (d.accuracy_class is None or accuracy_rank(d.accuracy_class) > limit))
    return MeteringReport(
        on_date=on_date, levels=levels,
        auto_collected=sum(c.installed - c.manual for c in levels),
        required_total=sum(c.required for c in levels), overdue=overdue, no_due_date=no_due,
        registered=len(registered), accuracy_issues=accuracy,
        unregistered=tuple(d.id for d in devices if d.metering_level is None and d.kind not in NOT_ENERGY_METERS),
        below_threshold=tuple(u.id for u in unmetered if not _needs_meter(u.metering_level, u.rated_kw, threshold_kw)),
        progress=_progress(devices, unmetered, on_date, target_year))


@dataclass(frozen=True)
class SubmeteredShare:
    site_kwh: float
    submetered_kwh: float
    missing_kwh: tuple[str, ...]  # registered meters with no energy for the period: the share is incomplete

    @property
    def share(self) -> float | None:
        return self.submetered_kwh / self.site_kwh if self.site_kwh > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "missing_kwh": list(self.missing_kwh), "share": self.share}


def submetered_share(devices: Iterable[MeterLike], kwh_by_device: Mapping[str, float]) -> SubmeteredShare:
    """The share of consumption measured below the site boundary (see the module docstring)."""
    registered = [d for d in devices if d.metering_level is not None and d.kind not in NOT_ENERGY_METERS]
    missing = tuple(d.id for d in registered if d.id not in kwh_by_device)
    by_area: dict[str, dict[MeteringLevel, float]] = {}
    for device in registered:
        level = device.metering_level
        if level is not None and level is not MeteringLevel.SITE_BOUNDARY and device.id in kwh_by_device:
            levels = by_area.setdefault(device.area, {})
            levels[level] = levels.get(level, 0.0) + kwh_by_device[device.id]
    sub = sum(levels.get(MeteringLevel.SUB_UNIT, levels.get(MeteringLevel.MAJOR_EQUIPMENT, 0.0))
              for levels in by_area.values())
    site = sum(kwh_by_device.get(d.id, 0.0) for d in registered if d.metering_level is MeteringLevel.SITE_BOUNDARY)
    return SubmeteredShare(site_kwh=site, submetered_kwh=sub, missing_kwh=missing)
