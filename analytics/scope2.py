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
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from plantems.analytics.balance import EnergyBalance
from plantems.factors import FactorChoice
from plantems.ledger import Instrument, LedgerEntry
from plantems.schema import Area

__all__ = ["SOLAR_PROFILE", "Scope2Result", "compute_scope2", "instrument_hourly_kwh"]

UNMETERED = Area.UNMETERED.value
# How a certificate's MWh are spread over its generation period for hourly matching (named in the provenance).
SOLAR_PROFILE = ("solar: sin(pi x (local hour + 0.5 - 6) / 12), 0 outside 06:00-18:00, the same every day of the "
                 "generation period; other technologies: flat over every hour of it")


@dataclass(frozen=True)
class MarketResult:
    instruments_kwh: float  # matched to consumption (counted at 0 kg)
    residual_kwh: float
    kgco2e: float


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
    allocation: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # device -> kwh, kg by method
    balance: EnergyBalance = field(default_factory=lambda: EnergyBalance(0.0, 0.0, 0.0))
    certificates_kwh: float = 0.0  # every GEC held for the month (bought and on-site PV's), 1 GEC = 1,000 kWh
    certificate_share: float = 0.0  # certificates_kwh / consumption, at most 1
    entries_excluded: tuple[Mapping[str, str | int], ...] = ()  # entry_id, line, reason

    @property
    def unmetered_kwh(self) -> float:
        return self.balance.unmetered_kwh


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
    allocation = _allocate(balance, {"location": location_kg, "market": monthly.kgco2e,
                                     "market_hourly": hourly.kgco2e})
    return Scope2Result(month, grid_import, balance.grid_export_kwh, balance.generation_kwh, pv_self, consumption,
                        location_kg, monthly, hourly, share, location, residual,
                        tuple(e.entry_id for e in certificates), allocation, balance, certificates_kwh,
                        min(certificates_kwh / consumption, 1.0) if consumption > 0 else 0.0,
                        _excluded(entries, month))


def _excluded(entries: Sequence[LedgerEntry], month: str) -> tuple[dict[str, str | int], ...]:
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
        out.append({"entry_id": entry.entry_id, "line": entry.line, "reason": reason})
    return tuple(out)


def _allocate(balance: EnergyBalance, site_kg: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Each sub-meter's share of the site's emissions by energy; the rest is ``unmetered``."""
    lines = dict(balance.loads_kwh)
    lines[UNMETERED] = balance.unmetered_kwh  # negative would mean sub-meters exceed the site
    consumption_kwh = balance.consumption_kwh
    out = {}
    for name, kwh in lines.items():
        share = kwh / consumption_kwh if consumption_kwh else 0.0
        out[name] = {"kwh": kwh, **{f"{method}_kg": kg * share for method, kg in site_kg.items()}}
    return out
