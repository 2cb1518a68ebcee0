"""A month with every kind of result (PV behind an incomer, export, ledger rows, two process lines,
shiftable loads, a compressed-air meter, reactive energy, a billing group): the input of the
golden comparison of rollup.json and of the `scope2` / `opportunity` points (test_results_golden)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from plantems.analytics.rollup import MonthData
from plantems.config import PlantConfig, load_plant
from plantems.ledger import Instrument, LedgerEntry
from tests.support import write_plant

MONTH = "2026-11"
BODY = """
production_lines:
  - {id: cast-1, name: Casting, areas: [cast]}
  - {id: roll-1, name: Cold rolling, areas: [roll]}
demand:
  groups: [{id: grid, meters: [inc-1, inc-2], limit_kw: 5000}]
devices:
  - {id: inc-1, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: 502, feeds: [roll],
     rated_kw: 10000}
  - {id: inc-2, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: 503, feeds: [cast, solar],
     rated_kw: 10000}
  - {id: mill, area: roll, kind: cold_mill, meter: chint_dtsu666_ct, host: 127.0.0.1, port: 504, rated_kw: 3000,
     shiftable: true}
  - {id: caster, area: cast, kind: caster, meter: chint_dtsu666_ct, host: 127.0.0.1, port: 505, rated_kw: 3000}
  - {id: comp, area: roll, kind: compressor, meter: eastron_sdm630, host: 127.0.0.1, port: 507, rated_kw: 200,
     shiftable: true, shift_windows: ["11:00-15:00"]}
  - {id: air-1, area: roll, kind: air_flow, meter: generic_air_flow, host: 127.0.0.1, port: 508, compressors: [comp]}
  - {id: pv, area: solar, kind: pv, meter: generic_float32, host: 127.0.0.1, port: 506, rated_kw: 800}
"""
IMPORT_KWH = {"inc-1": 400_000.0, "inc-2": 300_000.0, "mill": 370_000.0, "caster": 330_000.0, "comp": 10_000.0,
              "pv": 0.0}
EXPORT_KWH = {"inc-2": 20_000.0, "pv": 120_000.0}
SHARES = {"valley": 0.4, "flat": 0.3, "peak": 0.2, "sharp": 0.1}
P = "43012320240315007"


def plant(tmp: Path) -> PlantConfig:
    path = write_plant(tmp, influx_url="http://127.0.0.1:1", db="x", body=BODY, init=False)
    path.write_text(path.read_text().replace("timezone: Asia/Shanghai}",
                                             "timezone: Asia/Shanghai, output_lines: [roll-1]}"))
    return load_plant(path)


def month_data() -> MonthData:
    """Per device four hourly rows (one per tariff period) on the first and second day."""
    t0 = pd.Timestamp(f"{MONTH}-01", tz="Asia/Shanghai").tz_convert("UTC").value
    rows = []
    for n, (tou, share) in enumerate(SHARES.items()):
        for d, kwh in IMPORT_KWH.items():
            rows.append({"time": t0 + n * 86_400 * 10**9 + 3600 * 10**9 * (3 + n), "device": d, "tou": tou,
                         "energy_kwh": kwh * share, "energy_exp_kwh": EXPORT_KWH.get(d, 0.0) * share,
                         "coverage": 2880.0 * share, "reactive_kvarh": kwh * share * 0.4,
                         "reactive_exp_kvarh": 500.0 if d == "inc-2" and tou == "valley" else 0.0,
                         "interp_kwh": 250.0 if d == "inc-2" else 0.0,
                         "rejected_samples": 1.0 if d == "inc-2" and n < 2 else 0.0, "replacements": 0.0})
    return MonthData(pd.DataFrame(rows), None, fuel_m3={}, production_by_line={"cast-1": 100.0, "roll-1": 95.0})


def ledger() -> list[LedgerEntry]:
    def entry(entry_id: str, instrument: Instrument, mwh: int, first: int, claim: str) -> LedgerEntry:
        return LedgerEntry(entry_id, "testsite", instrument, float(mwh), f"{P}{first:015d}",
                           f"{P}{first + mwh - 1:015d}", date(2026, 11, 1), date(2026, 11, 30), "solar", "Hunan",
                           date(2026, 12, 5), claim, 2 + first)
    return [entry("gec-nov", Instrument.GEC, 300, 1, MONTH),
            entry("pv-nov", Instrument.ONSITE_PV, 80, 1001, MONTH),
            entry("gec-dec", Instrument.GEC, 50, 2001, "2026-12")]


AIR_M3 = {"air-1": (50_000.0, 0.98)}
AIR_BAR = {"air-1": 6.8}
SLIDING_MAX_KW = {"grid": 3210.0}
RESTATES = {"as_of": "2026-12-01", "factors": {"location_factor": {"was": "a", "now": "b"}},
            "scope2_kgco2e": {"location": 1.0}}
AS_OF = date(2026, 12, 2)
