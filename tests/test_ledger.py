"""The green-power ledger refuses double claims, expired certificates and over-claims, by line."""

from datetime import date
from pathlib import Path

import pytest

from plantems.ledger import Instrument, gec_expiry, load_ledger
from plantems.yamlconf import ConfigError

REPO = Path(__file__).resolve().parent.parent
HEADER = ("entry_id,site,instrument,mwh,serial_first,serial_last,generation_start,generation_end,technology,"
          "location,retired,claim_month\n")
P = "43012320240315007"  # a 17-digit project id


def row(entry_id="a", instrument="gec", mwh="100", first=1, last=100, gen=("2026-10-01", "2026-10-31"),
        retired="2026-11-10", claim="2026-10", project=P):
    return (f"{entry_id},changsha,{instrument},{mwh},{project}{first:015d},{project}{last:015d},{gen[0]},{gen[1]},"
            f"wind,Hunan,{retired},{claim}\n")


def load(tmp_path, *rows):
    path = tmp_path / "green_power.csv"
    path.write_text(HEADER + "".join(rows))
    return load_ledger(path), path


def test_shipped_ledger_loads():
    entries = load_ledger(REPO / "config" / "green_power.csv")
    assert [(e.entry_id, e.instrument, e.mwh) for e in entries] == [
        ("demo-2026-10-wind", Instrument.GREEN_TRADE, 300.0), ("demo-2026-11-solar", Instrument.GEC, 200.0),
        ("demo-2026-10-pv", Instrument.ONSITE_PV, 80.0)]
    assert entries[0].retired == date(2026, 11, 10) and entries[0].claim_month == "2026-10"
    assert entries[2].certified and not entries[2].tradable  # the roof PV's self-consumption GECs


@pytest.mark.parametrize(("rows", "line", "message"), [
    ((row("a"), row("b", first=100, last=199, claim="2026-11")), 3,
     "entry 'b': serials .* overlap entry 'a' \\(line 2\\): a certificate is claimed twice"),
    ((row("a", mwh="120"),), 2, "entry 'a': claims 120 MWh but serials 1..100 are 100 certificates"),
    # produced October 2026: valid through September 2028 (24 months, October 2026 included); the old rule
    # (2 years after the end of generation, 2028-10-31) would have accepted this retirement
    ((row("a", retired="2028-10-15"),), 2, "entry 'a': retired 2028-10-15: certificates produced in 2026-10 "
                                           "expired after 2028-09-30 \\(valid 2 years from the production month"),
    ((row("a", gen=("2023-06-01", "2023-06-30"), retired="2026-01-01", claim="2023-06"),), 2,
     "entry 'a': retired 2026-01-01: certificates produced in 2023-06 expired after 2025-12-31 "
     "\\(output before 2024 is valid to the end of 2025\\)"),
    ((row("a", retired="2026-09-30"),), 2, "entry 'a': retired 2026-09-30 is before generation started"),
    ((row("a"), row("a", first=200, last=299)), 3, "entry 'a': duplicate entry_id \\(first on line 2\\)"),
    ((row("a", instrument="rec"),), 2, "entry 'a': instrument 'rec' is not one of green_trade, gec, ppa, onsite_pv"),
    ((row("a", last=100).replace(f"{P}{100:015d}", "12345"),), 2, "serial '12345' is not a 32-digit GEC code"),
], ids=["serial-reused-across-months", "more-claimed-than-bought", "expired", "expired-pre-2024",
        "before-generation", "duplicate-id",
        "unknown-instrument", "bad-serial"])
def test_refused_with_line_and_reason(tmp_path, rows, line, message):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, *rows)
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.startswith(f"{tmp_path / 'green_power.csv'}:{line} ")
    import re
    assert re.search(message, problem), problem


def test_onsite_pv_needs_no_serials(tmp_path):
    entries, _ = load(tmp_path, "pv-2026-10,changsha,onsite_pv,42.5,,,2026-10-01,2026-10-31,solar,Hunan,2026-10-31,"
                                "2026-10\n")
    assert entries[0].instrument is Instrument.ONSITE_PV and entries[0].mwh == 42.5


@pytest.mark.parametrize(("produced", "last_valid"), [
    ("2025-03-01", date(2027, 2, 28)),  # the 67号 reading: March 2025 -> end of February 2027
    ("2026-10-17", date(2028, 9, 30)),  # the day within the month does not matter
    ("2024-01-01", date(2025, 12, 31)),  # first month under the 2-year rule
    ("2024-02-29", date(2026, 1, 31)),
    ("2023-12-31", date(2025, 12, 31)),  # before 2024: end of 2025
    ("2019-05-01", date(2025, 12, 31)),
])
def test_validity_counts_from_the_production_month(produced, last_valid):
    assert gec_expiry(date.fromisoformat(produced)) == last_valid


def test_retiring_on_the_last_valid_day_is_accepted(tmp_path):
    entries, _ = load(tmp_path, row("a", retired="2028-09-30"),
                      row("b", first=101, last=200, gen=("2023-11-01", "2023-11-30"), retired="2025-12-31",
                          claim="2023-11"))
    assert [e.expiry for e in entries] == [date(2028, 9, 30), date(2025, 12, 31)]


def test_onsite_pv_certificates_are_recorded_non_tradable_and_checked(tmp_path):
    pv = (f"pv-2026-10,changsha,onsite_pv,42,{P}{1:015d},{P}{42:015d},2026-10-01,2026-10-31,solar,Hunan,"
          "2026-11-20,2026-10\n")
    entries, _ = load(tmp_path, pv, row("b", first=43, last=142))
    assert entries[0].certified and not entries[0].tradable  # self-consumed PV: GECs, not tradable (67号)
    assert entries[1].certified and entries[1].tradable
    with pytest.raises(ConfigError, match=r"entry 'pv-2026-10': claims 43 MWh but serials 1..42 are 42"):
        load(tmp_path, pv.replace(",42,", ",43,", 1))
    with pytest.raises(ConfigError, match=r"entry 'b': serials .* overlap entry 'pv-2026-10'"):
        load(tmp_path, pv, row("b", first=42, last=141))
