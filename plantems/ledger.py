"""The green-power ledger (``config/green_power.csv``): "checkable, controllable, traceable".

One row per retirement of renewable electricity for a site: green-power trades
(绿电交易, certificate and energy bundled), stand-alone GECs (绿证), PPAs, and
on-site PV. Certificate rows carry their 32-digit GEC serial range (17-digit
project id + 15-digit sequence part); 1 GEC = 1 MWh.

Refused, with the file's line: a serial range used twice (in any month), a
certificate row whose MWh differs from its serial count (claiming more than was
bought), a retirement more than 2 years after generation (GECs expire) or
before it, and an unknown instrument.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

from plantems.yamlconf import ConfigError

__all__ = ["Instrument", "LedgerEntry", "load_ledger"]

_GEC_VALIDITY_YEARS = 2  # NEA 2024 GEC rules: valid 2 years, cancelled automatically after
_COLUMNS = ("entry_id", "site", "instrument", "mwh", "serial_first", "serial_last", "generation_start",
            "generation_end", "technology", "location", "retired", "claim_month")


class Instrument(StrEnum):
    GREEN_TRADE = "green_trade"  # 绿电交易: energy + GECs moved to the buyer on settlement
    GEC = "gec"  # stand-alone certificate purchase
    PPA = "ppa"  # direct contract conveying certificates
    ONSITE_PV = "onsite_pv"  # self-generated, metered; no certificate needed for self-consumption

    @property
    def has_certificates(self) -> bool:
        return self in (Instrument.GREEN_TRADE, Instrument.GEC, Instrument.PPA)


@dataclass(frozen=True)
class LedgerEntry:
    entry_id: str
    site: str
    instrument: Instrument
    mwh: float
    serial_first: str
    serial_last: str
    generation_start: date
    generation_end: date
    technology: str
    location: str
    retired: date
    claim_month: str  # YYYY-MM the MWh are matched to
    line: int

    @property
    def project(self) -> str:
        return self.serial_first[:17]

    @property
    def serial_span(self) -> tuple[int, int]:
        return int(self.serial_first[17:]), int(self.serial_last[17:])


def _row_entry(row: dict[str, str], line: int) -> LedgerEntry:
    try:
        instrument = Instrument(row["instrument"].strip())
    except ValueError:
        raise ValueError(f"instrument {row['instrument']!r} is not one of "
                         f"{', '.join(i.value for i in Instrument)}") from None
    entry = LedgerEntry(
        entry_id=row["entry_id"].strip(), site=row["site"].strip(), instrument=instrument,
        mwh=float(row["mwh"]), serial_first=row["serial_first"].strip(), serial_last=row["serial_last"].strip(),
        generation_start=date.fromisoformat(row["generation_start"].strip()),
        generation_end=date.fromisoformat(row["generation_end"].strip()), technology=row["technology"].strip(),
        location=row["location"].strip(), retired=date.fromisoformat(row["retired"].strip()),
        claim_month=row["claim_month"].strip(), line=line)
    _check_entry(entry)
    return entry


def _check_entry(entry: LedgerEntry) -> None:
    if entry.mwh <= 0:
        raise ValueError(f"mwh {entry.mwh} must be positive")
    if entry.generation_end < entry.generation_start:
        raise ValueError("generation_end is before generation_start")
    if entry.retired < entry.generation_start:
        raise ValueError(f"retired {entry.retired} is before generation started ({entry.generation_start})")
    expiry = entry.generation_end.replace(year=entry.generation_end.year + _GEC_VALIDITY_YEARS)
    if entry.instrument.has_certificates and entry.retired > expiry:
        raise ValueError(f"retired {entry.retired}: certificates generated until {entry.generation_end} "
                         f"expired on {expiry} (valid {_GEC_VALIDITY_YEARS} years)")
    date.fromisoformat(entry.claim_month + "-01")
    if not entry.instrument.has_certificates:
        return
    for serial in (entry.serial_first, entry.serial_last):
        if len(serial) != 32 or not serial.isdigit():
            raise ValueError(f"serial {serial!r} is not a 32-digit GEC code")
    if entry.serial_first[:17] != entry.serial_last[:17]:
        raise ValueError("serial_first and serial_last belong to different projects (first 17 digits differ)")
    first, last = entry.serial_span
    count = last - first + 1
    if count != entry.mwh:
        raise ValueError(f"claims {entry.mwh:g} MWh but serials {first}..{last} are {count} certificates "
                         "(1 GEC = 1 MWh)")


def _check_overlaps(entries: list[LedgerEntry], path: Path) -> list[str]:
    problems = []
    by_project: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        if entry.instrument.has_certificates:
            by_project.setdefault(entry.project, []).append(entry)
    for group in by_project.values():
        group.sort(key=lambda e: e.serial_span)
        for a, b in itertools.pairwise(group):
            if b.serial_span[0] <= a.serial_span[1]:
                problems.append(f"{path}:{b.line} entry {b.entry_id!r}: serials {b.serial_first}..{b.serial_last} "
                                f"overlap entry {a.entry_id!r} (line {a.line}): a certificate is claimed twice")
    return problems


def load_ledger(path: Path) -> list[LedgerEntry]:
    """Every ledger row; ConfigError lists each refused row as ``file:line entry 'id': rule``."""
    entries, problems = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError([f"{path}:1: missing columns {missing}; expected {list(_COLUMNS)}"])
        seen: dict[str, int] = {}
        for line, row in enumerate(reader, start=2):
            entry_id = (row.get("entry_id") or "").strip()
            try:
                entry = _row_entry(row, line)
            except (ValueError, TypeError) as exc:
                problems.append(f"{path}:{line} entry {entry_id!r}: {exc}")
                continue
            if entry.entry_id in seen:
                problems.append(f"{path}:{line} entry {entry_id!r}: duplicate entry_id "
                                f"(first on line {seen[entry_id]})")
                continue
            seen[entry.entry_id] = line
            entries.append(entry)
    problems += _check_overlaps(entries, path)
    if problems:
        raise ConfigError(problems)
    return entries
