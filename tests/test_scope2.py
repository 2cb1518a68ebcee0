"""Scope 2 of a site-month: hand-computed cases."""

from datetime import date
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from plantems.analytics.balance import EnergyBalance
from plantems.analytics.scope2 import UNMETERED, compute_scope2
from plantems.factors import Factor, FactorChoice
from plantems.ledger import Instrument, LedgerEntry
from plantems.schema import Method

SH = ZoneInfo("Asia/Shanghai")
LOC = FactorChoice(Factor(id="loc", method="location", region="central_china", year=2023, kg_per_unit=0.5271,
                          status="verified", published=date(2026, 1, 15), source="t"), provisional=True)
RES = FactorChoice(Factor(id="res", method="residual", region="national", year=2023, kg_per_unit=0.6096,
                          status="verified", published=date(2026, 1, 15), source="t"), provisional=True)


def hours(month="2026-11"):
    start = pd.Timestamp(f"{month}-01", tz=SH)
    return pd.date_range(start, start + pd.offsets.MonthBegin(1), freq="1h", inclusive="left").tz_convert("UTC")


def gec(mwh, technology="wind", month="2026-11", entry_id="g"):
    first, last = 1, int(mwh)
    return LedgerEntry(entry_id, "cs", Instrument.GEC, float(mwh), f"{'1' * 17}{first:015d}", f"{'1' * 17}{last:015d}",
                       date(2026, 11, 1), date(2026, 11, 30), technology, "Hunan", date(2026, 11, 30), month, 2)


def flat_import(total_kwh):
    index = hours()
    return pd.Series(total_kwh / len(index), index=index)


def scope2(hourly, *, export_kwh=0.0, pv_kwh=0.0, loads=None, entries=()):
    """compute_scope2 over the balance of ``hourly`` import, export, PV output and sub-metered loads."""
    balance = EnergyBalance(float(hourly.sum()), export_kwh, pv_kwh, loads or {})
    return compute_scope2(month="2026-11", tz=SH, grid_import_hourly=hourly, balance=balance, entries=list(entries),
                          location=LOC, residual=RES)


def test_location_and_monthly_market_for_1000_mwh_with_300_mwh_of_gecs():
    result = scope2(flat_import(1_000_000.0), entries=[gec(300)])
    assert result.location_kgco2e == pytest.approx(1_000_000 * 0.5271)
    assert result.market_monthly.instruments_kwh == pytest.approx(300_000)
    assert result.market_monthly.kgco2e == pytest.approx(700_000 * 0.6096)
    assert result.renewable_share == pytest.approx(0.3)
    assert result.entries_used == ("g",)


def test_hourly_matching_differs_from_monthly_on_a_night_profile():
    index = hours()
    night = pd.Series([1000.0 if (t.tz_convert(SH).hour < 6 or t.tz_convert(SH).hour >= 20) else 0.0
                       for t in index], index=index)
    result = scope2(night, entries=[gec(100, "solar")])
    assert result.market_monthly.instruments_kwh == pytest.approx(100_000)  # annual/monthly: all of it counts
    assert result.market_hourly.instruments_kwh == pytest.approx(0.0)  # solar never generated at night
    assert result.market_hourly.kgco2e == pytest.approx(night.sum() * 0.6096)
    wind = scope2(night, entries=[gec(100, "wind")])
    # flat wind: 100 MWh / 720 h = 138.9 kWh each hour; the 300 night hours can use 300 x 138.9
    assert wind.market_hourly.instruments_kwh == pytest.approx(100_000 * 300 / 720)


def test_instruments_never_exceed_import_and_other_months_do_not_count():
    result = scope2(flat_import(200_000.0), entries=[gec(300), gec(50, month="2026-10", entry_id="october")])
    assert result.market_monthly.instruments_kwh == pytest.approx(200_000)
    assert result.market_monthly.kgco2e == 0
    assert result.entries_used == ("g",)


def test_pv_and_allocation_with_the_unmetered_remainder():
    result = scope2(flat_import(900_000.0), export_kwh=10_000, pv_kwh=110_000,
                    loads={"mill-1": 600_000, "comp-1": 300_000})
    assert result.pv_self_kwh == 100_000 and result.consumption_kwh == 1_000_000
    assert result.renewable_share == pytest.approx(0.1)
    assert result.allocation[UNMETERED].kwh == pytest.approx(100_000)
    assert result.allocation["mill-1"].kg[Method.LOCATION] == pytest.approx(900_000 * 0.5271 * 0.6)
    assert sum(line.kg[Method.LOCATION] for line in result.allocation.values()) == pytest.approx(result.location_kgco2e)


def test_certificate_share_is_at_most_the_whole_consumption():
    # 300 MWh of GECs for 200,000 kWh consumed: 100 % green by certificates, 200,000 kWh matched
    result = scope2(flat_import(200_000.0), entries=[gec(300)])
    assert result.certificates_kwh == 300_000 and result.certificate_share == 1.0
    assert result.market_monthly.instruments_kwh == pytest.approx(200_000)
