"""The green-power ledger refuses double claims, expired certificates and over-claims, by line."""

from datetime import date
from pathlib import Path

import pytest

from plantems.ledger import Instrument, load_ledger
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
        ("demo-2026-10-wind", Instrument.GREEN_TRADE, 300.0), ("demo-2026-11-solar", Instrument.GEC, 200.0)]
    assert entries[0].retired == date(2026, 11, 10) and entries[0].claim_month == "2026-10"


@pytest.mark.parametrize(("rows", "line", "message"), [
    ((row("a"), row("b", first=100, last=199, claim="2026-11")), 3,
     "entry 'b': serials .* overlap entry 'a' \\(line 2\\): a certificate is claimed twice"),
    ((row("a", mwh="120"),), 2, "entry 'a': claims 120 MWh but serials 1..100 are 100 certificates"),
    ((row("a", retired="2028-11-01"),), 2, "entry 'a': retired 2028-11-01: certificates generated until 2026-10-31 "
                                           "expired on 2028-10-31 \\(valid 2 years\\)"),
    ((row("a", retired="2026-09-30"),), 2, "entry 'a': retired 2026-09-30 is before generation started"),
    ((row("a"), row("a", first=200, last=299)), 3, "entry 'a': duplicate entry_id \\(first on line 2\\)"),
    ((row("a", instrument="rec"),), 2, "entry 'a': instrument 'rec' is not one of green_trade, gec, ppa, onsite_pv"),
    ((row("a", last=100).replace(f"{P}{100:015d}", "12345"),), 2, "serial '12345' is not a 32-digit GEC code"),
], ids=["serial-reused-across-months", "more-claimed-than-bought", "expired", "before-generation", "duplicate-id",
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
