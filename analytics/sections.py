"""The monthly report's plan sections, computed in the rollup (rollup.json ``sections``): EnPIs per line and
site for the month and the year to date (issue 13 item 1), metering coverage (issue 14 item 3) and the
purchased-metal ledger (issue 14 item 1). Pure apart from ``read_enpi_months``; the figures come from the
existing pure modules (analytics/enpi_job.py's `enpi` month points, analytics/metering.py, analytics/metal.py).

EnPIs: the month's figures are its `enpi` month point; the year to date sums the months' energy, kgce,
emissions and output, then divides (never an average of monthly ratios). Production completeness is the
share of calendar days with output recorded (days of a month without a point count as without output).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from plantems.analytics.metal import MetalSummary, summarise_metal
from plantems.analytics.metering import MeteringReport, SubmeteredShare, compute_metering, submetered_share
from plantems.config import DeviceKind, PlantConfig
from plantems.influx import InfluxClient
from plantems.metal import MetalPurchase
from plantems.schema import ENPI, Field, Granularity, Tag
from plantems.store.query import SiteScope, col
from plantems.targets import Targets

__all__ = ["EnpiFigures", "EnpiMonth", "ReportSections", "compute_sections", "enpi_figures", "metered_kwh",
           "read_enpi_months"]

SITE_ENTITY = ""  # the site's `enpi` points carry no line tag (analytics/enpi_job.py)
_SUPPLY = (DeviceKind.INCOMER, DeviceKind.FEEDER)
_GENERATION = (DeviceKind.PV,)
_SUMS = ("electricity_kwh", "gas_m3", "kgce", "t_co2e", "output_t", "production_days")


@dataclass(frozen=True)
class EnpiMonth:
    """One entity's `enpi` month point: the month's sums (ratios are recomputed from them)."""

    entity: str  # a production line id, or SITE_ENTITY
    month: str  # YYYY-MM
    electricity_kwh: float
    gas_m3: float
    kgce: float
    t_co2e: float
    output_t: float
    production_days: float


@dataclass(frozen=True)
class EnpiFigures:
    """One entity's EnPIs over a period (the month, or the year to its end)."""

    entity: str
    period: str  # YYYY-MM or YYYY-01..YYYY-MM
    calendar_days: int
    electricity_kwh: float
    gas_m3: float
    kgce: float
    t_co2e: float
    output_t: float
    production_days: float

    def _per_t(self, value: float) -> float | None:
        return value / self.output_t if self.output_t > 0 else None

    @property
    def kwh_per_t(self) -> float | None:
        return self._per_t(self.electricity_kwh)

    @property
    def kgce_per_t(self) -> float | None:
        return self._per_t(self.kgce)

    @property
    def t_co2e_per_t(self) -> float | None:
        return self._per_t(self.t_co2e)

    @property
    def production_completeness(self) -> float:
        """Days with output recorded / calendar days: a missing day makes a ratio look better than it is."""
        return self.production_days / self.calendar_days if self.calendar_days else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kwh_per_t": self.kwh_per_t, "kgce_per_t": self.kgce_per_t,
                "t_co2e_per_t": self.t_co2e_per_t, "production_completeness": self.production_completeness}


def _month_days(month: str) -> int:
    first = date.fromisoformat(f"{month}-01")
    return ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - first).days


def _summed(entity: str, period: str, days: int, rows: Sequence[EnpiMonth]) -> EnpiFigures:
    totals = {name: sum(getattr(r, name) for r in rows) for name in _SUMS}
    return EnpiFigures(entity=entity, period=period, calendar_days=days, **totals)


def enpi_figures(months: Iterable[EnpiMonth], month: str) -> tuple[tuple[EnpiFigures, ...], tuple[EnpiFigures, ...]]:
    """Per entity (lines by id, the site last): the month's EnPIs and the year to the month's end."""
    year = month[:4]
    rows = [m for m in months if m.month[:4] == year and m.month <= month]
    entities = sorted({r.entity for r in rows}, key=lambda e: (e == SITE_ENTITY, e))
    ytd_days = sum(_month_days(f"{year}-{n:02d}") for n in range(1, int(month[5:]) + 1))
    this = tuple(_summed(e, month, _month_days(month), [r for r in rows if r.entity == e and r.month == month])
                 for e in entities)
    ytd = tuple(_summed(e, f"{year}-01..{month}", ytd_days, [r for r in rows if r.entity == e]) for e in entities)
    return this, ytd


@dataclass(frozen=True)
class ReportSections:
    """The plan sections of one site's month."""

    enpi_month: tuple[EnpiFigures, ...]
    enpi_ytd: tuple[EnpiFigures, ...]
    enpi_basis: str  # the standard-coal coefficients' basis and source
    metering: MeteringReport
    submetered: SubmeteredShare
    metal_month: MetalSummary | None  # None: no metal ledger
    metal_ytd: MetalSummary | None
    metal_ledger: str | None  # the ledger file (provenance)

    def to_json(self) -> dict[str, Any]:
        return {"enpi": {"month": [e.to_json() for e in self.enpi_month], "year_to_date": [e.to_json() for e in
                                                                                          self.enpi_ytd],
                         "basis": self.enpi_basis},
                "metering": {**self.metering.to_json(), "submetered": self.submetered.to_json()},
                "metal": None if self.metal_month is None or self.metal_ytd is None else
                {"month": self.metal_month.to_json(), "year_to_date": self.metal_ytd.to_json(),
                 "ledger": self.metal_ledger}}


def metered_kwh(plant: PlantConfig, devices: pd.DataFrame) -> dict[str, float]:
    """Each meter's kWh for the sub-metered share (the rollup's per-device table): an incomer or feeder its net
    import (export is not consumed), on-site generation its export counter (what it generated), a load its
    import; so the site-boundary meters add up to the balance's consumption (analytics/balance.py). A meter
    with no data in the month is left out, so the share names it as missing instead of counting 0 kWh."""
    kinds = {d.id: d.kind for d in plant.devices}
    out = {}
    for device, imported, exported, coverage in zip(devices["device"], devices["energy_kwh"],
                                                    devices["energy_exp_kwh"], devices["coverage"], strict=True):
        if not float(coverage) > 0:
            continue
        kind = kinds.get(str(device))
        out[str(device)] = (float(imported) - float(exported) if kind in _SUPPLY else float(exported)
                            if kind in _GENERATION else float(imported))
    return out


def compute_sections(plant: PlantConfig, month: str, *, kwh_by_device: Mapping[str, float],
                     enpi_months: Iterable[EnpiMonth], enpi_basis: str, metal: Sequence[MetalPurchase] | None,
                     metal_ledger: str | None, targets: Targets) -> ReportSections:
    """The plan sections of ``month`` (pure): ``kwh_by_device`` is the rollup's energy per meter."""
    last_day = date.fromisoformat(f"{month}-01").replace(day=_month_days(month))
    this, ytd = enpi_figures(enpi_months, month)
    pathway = targets.raw_material.for_year(last_day.year) if targets.raw_material is not None else None
    metal_month = metal_ytd = None
    if metal is not None:
        site = plant.site.id
        metal_month = summarise_metal(metal, period=month, site=site, pathway_t_co2e_per_t=pathway)
        metal_ytd = summarise_metal([p for p in metal if p.delivered <= last_day], period=month[:4], site=site,
                                    pathway_t_co2e_per_t=pathway)
    return ReportSections(
        enpi_month=this, enpi_ytd=ytd, enpi_basis=enpi_basis,
        metering=compute_metering(plant.devices, plant.unmetered_equipment, on_date=last_day),
        submetered=submetered_share(plant.devices, kwh_by_device), metal_month=metal_month, metal_ytd=metal_ytd,
        metal_ledger=metal_ledger)


_ENPI_FIELDS = {"electricity_kwh": Field.ENERGY_KWH, "gas_m3": Field.GAS_M3, "kgce": Field.KGCE,
                "t_co2e": Field.T_CO2E, "output_t": Field.OUTPUT_T, "production_days": Field.PRODUCTION_DAYS}


def read_enpi_months(client: InfluxClient, plant: PlantConfig, month: str) -> list[EnpiMonth]:
    """The `enpi` month points of the site from January to ``month`` (written by the rollup's EnPI step)."""
    tz = plant.site.tz
    start = datetime(int(month[:4]), 1, 1, tzinfo=tz)
    first = date.fromisoformat(f"{month}-01")
    end_day = first.replace(day=_month_days(month)) + timedelta(days=1)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
    query = SiteScope(plant.site.id).select(
        ENPI, [col(f.value) for f in _ENPI_FIELDS.values()], tags={Tag.GRANULARITY.value: Granularity.MONTH.value},
        start_ns=int(start.timestamp()) * 10**9, end_ns=int(end.timestamp()) * 10**9, group_by=[Tag.LINE.value])
    out = []
    for series in client.query(query, database=plant.influxdb.derived_database):
        entity = series.tags.get(Tag.LINE.value) or SITE_ENTITY
        for values in series.values:
            row = dict(zip(series.columns, values, strict=True))
            when = datetime.fromtimestamp(int(row["time"]) / 10**9, tz)
            out.append(EnpiMonth(entity=entity, month=f"{when:%Y-%m}",
                                 **{k: float(row.get(f.value) or 0.0) for k, f in _ENPI_FIELDS.items()}))
    return out
