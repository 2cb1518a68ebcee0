"""Scope 2 for a site and month (pure): location-based and market-based, monthly and hourly matching.

- Location-based: grid import x the grid factor (GHG Protocol Scope 2 Guidance 2015).
- Market-based, monthly matching (current rules): certificate-backed MWh claimed for the month
  count at 0, up to the grid import; the rest uses the residual factor (MEE national factor
  excluding market-traded non-fossil power).
- Market-based, hourly matching (2025 consultation draft): an instrument only covers grid import
  in the hours it generated; each instrument's MWh are spread over its generation period by a
  technology profile (solar: daylight, others: flat), since Chinese GECs carry a production
  date but no hourly issuance. Unmatched import uses the residual factor.
- On-site PV consumed on site is renewable and emission-free in both methods; it never passes
  the grid meter, so it only adds to consumption and the renewable share. Its non-tradable GECs
  (``onsite_pv`` ledger rows with serials) are never matched against grid import: that would
  count the same MWh twice.
- Two shares: the GHG Protocol renewable share ((instruments matched monthly + PV self-consumed)
  / consumption) and the certificate-based green share (绿色电力消费比例, as the 2025 rules account
  it: every GEC held for the month, on-site PV's included, / consumption, at most 100 %).
- Consumption, the allocation and the unmetered remainder all come from one energy balance
  (analytics/balance.py). Site emissions are allocated to devices by sub-metered energy; the
  unmetered remainder (losses, unmetered loads) is its own line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from plantems.analytics.balance import EnergyBalance
from plantems.factors import FactorChoice
from plantems.ledger import Instrument, LedgerEntry
from plantems.lineproto import Point
from plantems.schema import SCOPE2, SITE_AREA, UNMETERED_AREA, Field, Granularity, Method, Tag

__all__ = ["SOLAR_PROFILE", "UNMETERED", "AllocationLine", "ExcludedEntry", "MarketResult", "Scope2Result",
           "compute_scope2", "instrument_hourly_kwh"]

UNMETERED: Final = UNMETERED_AREA  # the allocation's line (and area) of what no sub-meter records
# How a certificate's MWh are spread over its generation period for hourly matching (named in the provenance).
SOLAR_PROFILE = ("solar: sin(pi x (local hour + 0.5 - 6) / 12), 0 outside 06:00-18:00, the same every day of the "
                 "generation period; other technologies: flat over every hour of it")


@dataclass(frozen=True)
class MarketResult:
    instruments_kwh: float  # matched to consumption (counted at 0 kg)
    residual_kwh: float
    kgco2e: float


@dataclass(frozen=True)
class AllocationLine:
    """A sub-meter's (or the unmetered remainder's) energy and its share of the site's Scope 2 by method."""

    kwh: float
    kg: Mapping[Method, float]

    def to_json(self) -> dict[str, float]:
        return {"kwh": self.kwh, **{f"{method.value}_kg": kg for method, kg in self.kg.items()}}


@dataclass(frozen=True)
class ExcludedEntry:
    """A ledger row that concerns the month but is not matched against its grid import, and why."""

    entry_id: str
    line: int  # in the ledger file
    reason: str

    def to_json(self) -> dict[str, str | int]:
        return {"entry_id": self.entry_id, "line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class Scope2Result:
    month: str
    grid_import_kwh: float
    grid_export_kwh: float
    pv_generation_kwh: float
    pv_self_kwh: float
    consumption_kwh: float
    location_kgco2e: float
    market_monthly: MarketResult
    market_hourly: MarketResult
    renewable_share: float  # (instruments matched monthly + PV self-consumed) / consumption
    location_factor: FactorChoice
    residual_factor: FactorChoice
    entries_used: tuple[str, ...]
    allocation: Mapping[str, AllocationLine] = field(default_factory=dict)  # per sub-meter, and UNMETERED
    balance: EnergyBalance = field(default_factory=lambda: EnergyBalance(0.0, 0.0, 0.0))
    certificates_kwh: float = 0.0  # every GEC held for the month (bought and on-site PV's), 1 GEC = 1,000 kWh
    certificate_share: float = 0.0  # certificates_kwh / consumption, at most 1
    entries_excluded: tuple[ExcludedEntry, ...] = ()

    @property
    def unmetered_kwh(self) -> float:
        return float(self.balance.unmetered_kwh)

    def kgco2e(self, method: Method) -> float:
        return {Method.LOCATION: self.location_kgco2e, Method.MARKET: self.market_monthly.kgco2e,
                Method.MARKET_HOURLY: self.market_hourly.kgco2e}[method]

    def to_json(self) -> dict[str, Any]:
        """The Scope 2 figures of rollup.json (its keys, in its order)."""
        return {"grid_import_kwh": self.grid_import_kwh, "grid_export_kwh": self.grid_export_kwh,
                "pv_generation_kwh": self.pv_generation_kwh, "pv_self_kwh": self.pv_self_kwh,
                "consumption_kwh": self.consumption_kwh, "unmetered_kwh": self.unmetered_kwh,
                "balance": self.balance.to_json(),
                "scope2_kgco2e": {m.value: self.kgco2e(m) for m in Method},
                "green_kwh": {"monthly": self.market_monthly.instruments_kwh,
                              "hourly": self.market_hourly.instruments_kwh},
                "renewable_share": self.renewable_share, "certificate_share": self.certificate_share,
                "certificates_kwh": self.certificates_kwh,
                "allocation": {name: line.to_json() for name, line in self.allocation.items()}}

    def to_points(self, *, site: str, area_of: Mapping[str, str], time_ns: int,
                  intensity_t_per_t: Mapping[Method, float | None], target_t_per_t: float | None) -> list[Point]:
        """`scope2` points of the month, per method: the site's, then one per area (``area_of``: device ->
        area; a line without one, the unmetered remainder, is its own area). ``intensity_t_per_t``: Scope
        1+2 per tonne by method, where output was recorded."""
        factors = {Method.LOCATION: (self.location_factor, 0.0),
                   Method.MARKET: (self.residual_factor, self.market_monthly.instruments_kwh),
                   Method.MARKET_HOURLY: (self.residual_factor, self.market_hourly.instruments_kwh)}
        points = []
        for method, (factor, green_kwh) in factors.items():
            tags = {Tag.SITE.value: site, Tag.GRANULARITY.value: Granularity.MONTH.value,
                    Tag.METHOD.value: method.value}
            fields = {Field.ENERGY_KWH.value: self.grid_import_kwh, Field.KGCO2E.value: self.kgco2e(method),
                      Field.FACTOR_KG_PER_KWH.value: factor.factor.kg_per_unit, Field.GREEN_KWH.value: green_kwh,
                      Field.RENEWABLE_SHARE.value: self.renewable_share}
            intensity = intensity_t_per_t.get(method)
            if intensity is not None:
                fields[Field.INTENSITY_T_PER_T.value] = intensity
            if target_t_per_t is not None:
                fields[Field.TARGET_T_PER_T.value] = target_t_per_t
            points.append(Point(SCOPE2, {**tags, Tag.AREA.value: SITE_AREA}, fields, time_ns))
            by_area: dict[str, tuple[float, float]] = {}
            for device, line in self.allocation.items():
                area = area_of.get(device, UNMETERED)
                kwh, kg = by_area.get(area, (0.0, 0.0))
                by_area[area] = (kwh + line.kwh, kg + line.kg[method])
            points.extend(Point(SCOPE2, {**tags, Tag.AREA.value: area},
                                {Field.ENERGY_KWH.value: kwh, Field.KGCO2E.value: kg}, time_ns)
                          for area, (kwh, kg) in by_area.items())
        return points


def _weights(hours: pd.DatetimeIndex, technology: str, tz: ZoneInfo) -> np.ndarray:
    if technology != "solar":
        return np.ones(len(hours))
    local_hour = hours.tz_convert(tz).hour.to_numpy() + 0.5
    return np.clip(np.sin(np.pi * (local_hour - 6.0) / 12.0), 0.0, None)  # daylight 06:00-18:00


def instrument_hourly_kwh(entries: Sequence[LedgerEntry], hours: pd.DatetimeIndex, tz: ZoneInfo) -> np.ndarray:
    """kWh the instruments generated in each of ``hours`` (UTC hour starts), by technology profile."""
    total = np.zeros(len(hours))
    for entry in entries:
        start = pd.Timestamp(datetime(entry.generation_start.year, entry.generation_start.month,
                                      entry.generation_start.day, tzinfo=tz))
        end = pd.Timestamp(datetime(entry.generation_end.year, entry.generation_end.month,
                                    entry.generation_end.day, tzinfo=tz) + timedelta(days=1))
        period = pd.date_range(start, end, freq="1h", inclusive="left").tz_convert("UTC")
        weights = _weights(period, entry.technology, tz)
        per_hour = pd.Series(entry.mwh * 1000.0 * weights / weights.sum(), index=period)
        total += per_hour.reindex(hours, fill_value=0.0).to_numpy()
    return total


def _market(import_kwh: float, green_kwh: float, residual: FactorChoice) -> MarketResult:
    matched = min(green_kwh, import_kwh)
    residual_kwh = import_kwh - matched
    return MarketResult(matched, residual_kwh, residual_kwh * residual.factor.kg_per_unit)


def compute_scope2(*, month: str, tz: ZoneInfo, grid_import_hourly: pd.Series, balance: EnergyBalance,
                   entries: Sequence[LedgerEntry], location: FactorChoice, residual: FactorChoice) -> Scope2Result:
    """Scope 2 of one site-month. ``grid_import_hourly``: kWh per UTC hour start of the month (for
    hourly matching; its sum is the balance's grid import); ``entries``: the site's ledger rows."""
    certificates = [e for e in entries if e.instrument.has_certificates and e.claim_month == month]
    held = [e for e in entries if e.certified and e.claim_month == month]
    grid_import = balance.grid_import_kwh
    pv_self = balance.generation_self_kwh
    consumption = balance.consumption_kwh
    certificates_kwh = sum(e.mwh for e in held) * 1000.0
    monthly = _market(grid_import, sum(e.mwh for e in certificates) * 1000.0, residual)
    hourly_green = instrument_hourly_kwh(certificates, pd.DatetimeIndex(grid_import_hourly.index), tz)
    matched = float(np.minimum(grid_import_hourly.to_numpy(), hourly_green).sum())
    hourly = MarketResult(matched, grid_import - matched, (grid_import - matched) * residual.factor.kg_per_unit)
    location_kg = grid_import * location.factor.kg_per_unit
    share = (monthly.instruments_kwh + pv_self) / consumption if consumption else 0.0
    allocation = _allocate(balance, {Method.LOCATION: location_kg, Method.MARKET: monthly.kgco2e,
                                     Method.MARKET_HOURLY: hourly.kgco2e})
    return Scope2Result(month, grid_import, balance.grid_export_kwh, balance.generation_kwh, pv_self, consumption,
                        location_kg, monthly, hourly, share, location, residual,
                        tuple(e.entry_id for e in certificates), allocation, balance, certificates_kwh,
                        min(certificates_kwh / consumption, 1.0) if consumption > 0 else 0.0,
                        _excluded(entries, month))


def _excluded(entries: Sequence[LedgerEntry], month: str) -> tuple[ExcludedEntry, ...]:
    """The site's rows that concern the month (claimed for it, or generated in it) but are not
    matched against its grid import, each with the reason."""
    first = datetime.fromisoformat(f"{month}-01").date()
    last = (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()
    out = []
    for entry in entries:
        if entry.instrument.has_certificates and entry.claim_month == month:
            continue  # used
        if entry.claim_month != month and not (entry.generation_start <= last and entry.generation_end >= first):
            continue  # nothing to do with this month
        if entry.claim_month != month:
            reason = f"claimed for {entry.claim_month}, not this month"
        elif entry.instrument is Instrument.ONSITE_PV and entry.certified:
            reason = (f"on-site PV: its energy is measured by the PV meter (renewable share); its {entry.mwh:g} "
                      "non-tradable GECs count in the certificate share only, never against grid import")
        else:
            reason = ("on-site PV without issued GECs: its energy is measured by the PV meter (renewable share); "
                      "no certificate share until the GECs are issued and recorded")
        out.append(ExcludedEntry(entry.entry_id, entry.line, reason))
    return tuple(out)


def _allocate(balance: EnergyBalance, site_kg: Mapping[Method, float]) -> dict[str, AllocationLine]:
    """Each sub-meter's share of the site's emissions by energy; the rest is ``unmetered``."""
    lines = dict(balance.loads_kwh)
    lines[UNMETERED] = balance.unmetered_kwh  # negative would mean sub-meters exceed the site
    consumption_kwh = balance.consumption_kwh
    out = {}
    for name, kwh in lines.items():
        share = kwh / consumption_kwh if consumption_kwh else 0.0
        out[name] = AllocationLine(kwh, {method: kg * share for method, kg in site_kg.items()})
    return out
