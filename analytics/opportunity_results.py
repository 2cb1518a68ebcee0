"""The opportunities' results (load shifting, maximum demand, reactive power, compressed air): frozen,
each with ``to_json()`` (its part of rollup.json) and ``to_points()`` (its `opportunity` points)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from plantems.analytics.balance import EnergyBalance
from plantems.lineproto import Point
from plantems.schema import OPPORTUNITY, Field, Granularity, OpportunityType, Tag
from plantems.tariffs import Period

__all__ = ["NO_DATA", "CompressedAir", "DemandPeak", "DevicePf", "LoadShift", "MaxDemand", "Opportunities",
           "ReactiveMonth", "ReactivePower"]

NO_DATA = "no energy_15m data from the group's meters"


def _point(kind: OpportunityType, key: Tag, name: str, fields: dict[str, float], *, site: str, time_ns: int,
           granularity: Granularity) -> Point:
    """One `opportunity` point of a device or billing group (``key``: Tag.DEVICE or Tag.METER_GROUP)."""
    tags = {Tag.SITE.value: site, Tag.GRANULARITY.value: granularity.value, Tag.TYPE.value: kind.value,
            key.value: name}
    return Point(OPPORTUNITY, tags, fields, time_ns)


@dataclass(frozen=True, kw_only=True)
class LoadShift:
    """A shiftable device's sharp+peak energy and cost, and the saving at the cheapest period it may move to."""

    device: str
    peak_sharp_kwh: float
    peak_sharp_cost_cny: float
    move_to: Period
    move_to_price_cny_per_kwh: float
    saving_cny: float
    windows: tuple[str, ...]  # the device's shift_windows; empty: any time

    @property
    def windows_text(self) -> list[str]:
        return list(self.windows) or ["any time"]

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "peak_sharp_kwh": self.peak_sharp_kwh,
                "peak_sharp_cost_cny": self.peak_sharp_cost_cny, "move_to": self.move_to.value,
                "move_to_price_cny_per_kwh": self.move_to_price_cny_per_kwh, "saving_cny": self.saving_cny,
                "windows": self.windows_text}

    def to_points(self, *, site: str, time_ns: int, granularity: Granularity) -> list[Point]:
        fields = {Field.ENERGY_KWH.value: self.peak_sharp_kwh, Field.COST_CNY.value: self.peak_sharp_cost_cny,
                  Field.SAVING_CNY.value: self.saving_cny}
        return [_point(OpportunityType.LOAD_SHIFT, Tag.DEVICE, self.device, fields, site=site, time_ns=time_ns,
                       granularity=granularity)]


@dataclass(frozen=True, kw_only=True)
class DemandPeak:
    """The 15-minute interval that set a billing group's maximum, and the maximum had loads shifted."""

    limit_kw: float
    max_kw: float
    max_at_ns: int
    max_at_local: str  # YYYY-MM-DD HH:MM, site time
    max_tou: str
    contributors_kw: tuple[tuple[str, float], ...]  # loads in that interval, largest first
    shiftable_at_max: tuple[tuple[str, float], ...]
    max_kw_if_shifted: float
    reduction_kw: float
    saving_cny: float | None  # None: the tariff has no demand charge
    demand_charge_cny_per_kw_month: float | None


@dataclass(frozen=True, kw_only=True)
class MaxDemand:
    """A billing group's monthly maximum demand (``peak`` None: no data from its meters)."""

    group: str
    peak: DemandPeak | None
    sliding_max_kw: float | None = None  # the live monitor's sliding-window maximum, where it ran
    sliding_read: bool = False  # whether the live maximum was looked up (rollup.json names it only then)

    def with_sliding(self, kw: float | None) -> MaxDemand:
        return replace(self, sliding_max_kw=kw, sliding_read=True)

    def to_json(self) -> dict[str, Any]:
        p = self.peak
        out: dict[str, Any] = ({"group": self.group, "max_kw": None, "note": NO_DATA} if p is None else {
            "group": self.group, "limit_kw": p.limit_kw, "max_kw": p.max_kw, "max_at_ns": p.max_at_ns,
            "max_at_local": p.max_at_local, "max_tou": p.max_tou,
            "contributors_kw": [list(c) for c in p.contributors_kw],
            "shiftable_at_max": [list(c) for c in p.shiftable_at_max], "max_kw_if_shifted": p.max_kw_if_shifted,
            "reduction_kw": p.reduction_kw, "saving_cny": p.saving_cny,
            "demand_charge_cny_per_kw_month": p.demand_charge_cny_per_kw_month})
        if self.sliding_read:
            out["sliding_max_kw"] = self.sliding_max_kw
        return out

    def to_points(self, *, site: str, time_ns: int, granularity: Granularity) -> list[Point]:
        p = self.peak
        if p is None:
            return []
        fields = {Field.DEMAND_KW.value: p.max_kw, Field.REDUCTION_KW.value: p.reduction_kw,
                  Field.LIMIT_KW.value: p.limit_kw}
        if p.saving_cny is not None:
            fields[Field.SAVING_CNY.value] = p.saving_cny
        return [_point(OpportunityType.MAX_DEMAND, Tag.METER_GROUP, self.group, fields, site=site, time_ns=time_ns,
                       granularity=granularity)]


@dataclass(frozen=True, kw_only=True)
class DevicePf:
    """A load's month: reactive energy (import + export kvarh) and its PF."""

    device: str
    kvarh: float
    pf: float
    kwh: float

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "kvarh": self.kvarh, "pf": self.pf, "kwh": self.kwh}


@dataclass(frozen=True, kw_only=True)
class ReactiveMonth:
    """A billing group's reactive-power figures for the month."""

    kwh: float
    kvarh_import: float
    kvarh_export: float
    pf: float
    pf_standard: float
    pf_target: float
    adjustment_pct: float
    adjustment_cny: float
    capacitor_kvar_p95: float
    capacitor_kvar_average: float
    capacitor_kvar_max: float
    leading_intervals: int
    leading_intervals_at_light_load: int
    over_compensated: bool
    devices: tuple[DevicePf, ...]
    losses_kwh_upper_bound: float
    balance: EnergyBalance
    line_loss_saving_kwh: float
    line_loss_saving_cny: float
    saving_cny: float

    @property
    def devices_by_kvarh(self) -> list[DevicePf]:
        return sorted(self.devices, key=lambda d: -d.kvarh)

    @property
    def devices_by_pf(self) -> list[DevicePf]:
        return sorted(self.devices, key=lambda d: d.pf)


@dataclass(frozen=True, kw_only=True)
class ReactivePower:
    """A billing group's reactive power (``month`` None: no data from its meters)."""

    group: str
    month: ReactiveMonth | None

    def to_json(self) -> dict[str, Any]:
        m = self.month
        if m is None:
            return {"group": self.group, "pf": None, "note": NO_DATA}
        return {"group": self.group, "kwh": m.kwh, "kvarh_import": m.kvarh_import, "kvarh_export": m.kvarh_export,
                "pf": m.pf, "pf_standard": m.pf_standard, "pf_target": m.pf_target,
                "adjustment_pct": m.adjustment_pct, "adjustment_cny": m.adjustment_cny,
                "capacitor_kvar_p95": m.capacitor_kvar_p95, "capacitor_kvar_average": m.capacitor_kvar_average,
                "capacitor_kvar_max": m.capacitor_kvar_max, "leading_intervals": m.leading_intervals,
                "leading_intervals_at_light_load": m.leading_intervals_at_light_load,
                "over_compensated": m.over_compensated,
                "devices_by_kvarh": [d.to_json() for d in m.devices_by_kvarh],
                "devices_by_pf": [d.to_json() for d in m.devices_by_pf],
                "losses_kwh_upper_bound": m.losses_kwh_upper_bound, "balance": m.balance.to_json(),
                "line_loss_saving_kwh": m.line_loss_saving_kwh, "line_loss_saving_cny": m.line_loss_saving_cny,
                "saving_cny": m.saving_cny}

    def to_points(self, *, site: str, time_ns: int, granularity: Granularity) -> list[Point]:
        """The group's point, then one ``low_pf`` point per load (lowest PF first)."""
        m = self.month
        if m is None:
            return []
        fields = {Field.PF.value: m.pf, Field.ADJUSTMENT_PCT.value: m.adjustment_pct,
                  Field.ADJUSTMENT_CNY.value: m.adjustment_cny, Field.KVAR.value: m.capacitor_kvar_p95,
                  Field.SAVING_KWH.value: m.line_loss_saving_kwh, Field.SAVING_CNY.value: m.saving_cny}
        return [_point(OpportunityType.REACTIVE, Tag.METER_GROUP, self.group, fields, site=site, time_ns=time_ns,
                       granularity=granularity),
                *(_point(OpportunityType.LOW_PF, Tag.DEVICE, d.device,
                         {Field.PF.value: d.pf, Field.REACTIVE_KVARH.value: d.kvarh}, site=site, time_ns=time_ns,
                         granularity=granularity) for d in m.devices_by_pf)]


@dataclass(frozen=True, kw_only=True)
class CompressedAir:
    """An air meter's compressors: energy, specific power, and the saving of a lower header pressure."""

    device: str
    compressors: tuple[str, ...]
    compressor_kwh: float
    air_m3: float | None  # None: the meter delivered no data
    air_coverage: float
    kwh_per_m3: float | None
    specific_power_kw_per_m3min: float | None
    mean_bar: float | None
    pressure_reduction_bar: float
    saving_kwh: float
    saving_cny: float

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "compressors": list(self.compressors), "compressor_kwh": self.compressor_kwh,
                "air_m3": self.air_m3, "air_coverage": self.air_coverage, "kwh_per_m3": self.kwh_per_m3,
                "specific_power_kw_per_m3min": self.specific_power_kw_per_m3min, "mean_bar": self.mean_bar,
                "pressure_reduction_bar": self.pressure_reduction_bar, "saving_kwh": self.saving_kwh,
                "saving_cny": self.saving_cny}

    def to_points(self, *, site: str, time_ns: int, granularity: Granularity) -> list[Point]:
        fields = {Field.ENERGY_KWH.value: self.compressor_kwh, Field.SAVING_KWH.value: self.saving_kwh,
                  Field.SAVING_CNY.value: self.saving_cny}
        if self.specific_power_kw_per_m3min is not None:
            fields[Field.SPECIFIC_POWER_KW_PER_M3MIN.value] = self.specific_power_kw_per_m3min
        if self.mean_bar is not None:
            fields[Field.AIR_BAR.value] = self.mean_bar
        return [_point(OpportunityType.COMPRESSED_AIR, Tag.DEVICE, self.device, fields, site=site, time_ns=time_ns,
                       granularity=granularity)]


@dataclass(frozen=True, kw_only=True)
class Opportunities:
    """A window's opportunities (a month's, or a day's load shifting only)."""

    tariff: str  # id of the tariff version they are priced at
    load_shift: tuple[LoadShift, ...] = ()
    max_demand: tuple[MaxDemand, ...] = ()
    reactive: tuple[ReactivePower, ...] = ()
    compressed_air: tuple[CompressedAir, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"tariff": self.tariff, "load_shift": [s.to_json() for s in self.load_shift],
                "max_demand": [m.to_json() for m in self.max_demand],
                "reactive": [r.to_json() for r in self.reactive],
                "compressed_air": [a.to_json() for a in self.compressed_air]}

    def to_points(self, *, site: str, time_ns: int, granularity: Granularity) -> list[Point]:
        """`opportunity` points: one per device (load shift, low PF, compressed air) or billing group."""
        items: tuple[LoadShift | MaxDemand | ReactivePower | CompressedAir, ...] = (
            *self.load_shift, *self.max_demand, *self.reactive, *self.compressed_air)
        return [p for item in items for p in item.to_points(site=site, time_ns=time_ns, granularity=granularity)]
