"""The green-power ledger (``config/green_power.csv``): "checkable, controllable, traceable".

One row per retirement of renewable electricity for a site: green-power trades
(绿电交易, certificate and energy bundled), stand-alone GECs (绿证), PPAs, and
on-site PV. Certificate rows carry their 32-digit GEC serial range (17-digit
project id + 15-digit sequence part); 1 GEC = 1 MWh.

On-site PV that the site consumes itself (自发自用) also receives GECs, non-tradable
(国能发新能规[2024]67号); an ``onsite_pv`` row records them with their serials once
issued (monthly, in the following month). Without serials the row records metered
self-consumption whose certificates are not issued yet.

Validity (same rules): 2 years counted from the production month, inclusive, so
production month M is valid to the end of month M + 23 (Mar 2025 -> 28 Feb 2027);
output before 2024-01-01 is valid to 2025-12-31. A row's production month is that of
its ``generation_start``: its oldest certificates expire first.

Refused, with the file's line: a serial range used twice (in any month), a
certificate row whose MWh differs from its serial count (claiming more than was
bought), a retirement after the certificates expired or before generation, and an
unknown instrument.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path

from plantems.yamlconf import ConfigError

__all__ = ["Instrument", "LedgerEntry", "check_claims", "gec_expiry", "load_ledger"]

_GEC_VALIDITY_MONTHS = 24  # 国能发新能规[2024]67号: valid 2 years from the production month (inclusive)
_RULES_START = date(2024, 1, 1)  # output before this date ...
_LEGACY_EXPIRY = date(2025, 12, 31)  # ... is valid to the end of 2025
_COLUMNS = ("entry_id", "site", "instrument", "mwh", "serial_first", "serial_last", "generation_start",
            "generation_end", "technology", "location", "retired", "claim_month")


class Instrument(StrEnum):
    GREEN_TRADE = "green_trade"  # 绿电交易: energy + GECs moved to the buyer on settlement
    GEC = "gec"  # stand-alone certificate purchase
    PPA = "ppa"  # direct contract conveying certificates
    ONSITE_PV = "onsite_pv"  # self-generated and consumed; its GECs (once issued) are not tradable

    @property
    def has_certificates(self) -> bool:
        """Bought instruments that always carry GECs and count against grid import (market-based)."""
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

    @property
    def certified(self) -> bool:
        """The row holds GECs: a bought instrument, or on-site PV whose certificates were issued."""
        return self.instrument.has_certificates or bool(self.serial_first or self.serial_last)

    @property
    def tradable(self) -> bool:
        """Self-consumed on-site PV gets non-tradable GECs (67号); bought ones were tradable when issued."""
        return self.instrument is not Instrument.ONSITE_PV

    @property
    def expiry(self) -> date:
        return gec_expiry(self.generation_start)


def gec_expiry(produced: date) -> date:
    """Last valid day of a GEC for output produced on ``produced`` (67号, see the module docstring)."""
    if produced < _RULES_START:
        return _LEGACY_EXPIRY
    month = produced.year * 12 + produced.month - 1 + _GEC_VALIDITY_MONTHS  # first month no longer valid
    return date(month // 12, month % 12 + 1, 1) - timedelta(days=1)


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
    if entry.certified and entry.retired > entry.expiry:
        raise ValueError(f"retired {entry.retired}: certificates produced in {entry.generation_start:%Y-%m} "
                         f"expired after {entry.expiry} ({_validity_rule(entry.generation_start)})")
    date.fromisoformat(entry.claim_month + "-01")
    if not entry.certified:
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


def _validity_rule(produced: date) -> str:
    if produced < _RULES_START:
        return "output before 2024 is valid to the end of 2025"
    return "valid 2 years from the production month, inclusive"


def _check_overlaps(entries: list[LedgerEntry], path: Path) -> list[str]:
    problems = []
    by_project: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        if entry.certified:
            by_project.setdefault(entry.project, []).append(entry)
    for group in by_project.values():
        group.sort(key=lambda e: e.serial_span)
        for a, b in itertools.pairwise(group):
            if b.serial_span[0] <= a.serial_span[1]:
                problems.append(f"{path}:{b.line} entry {b.entry_id!r}: serials {b.serial_first}..{b.serial_last} "
                                f"overlap entry {a.entry_id!r} (line {a.line}{_by_site(a, b)}): a certificate is "
                                "claimed twice")
    return problems


def _by_site(a: LedgerEntry, b: LedgerEntry) -> str:
    return f", site {a.site!r}; this row: site {b.site!r}" if a.site != b.site else ""


def check_claims(ledgers: dict[Path, list[LedgerEntry]]) -> list[str]:
    """Problems across several sites' ledger files (each already loaded): a serial range, or an entry
    id, in two files is claimed twice unless both files hold the very same row (a shared copy, counted
    by its one site only). Each problem is ``file:line entry 'id': ...`` naming the other file and line."""
    problems = []
    seen: list[tuple[Path, LedgerEntry]] = []
    for path, entries in ledgers.items():
        for entry in entries:
            for other_path, other in seen:
                if other_path == path or _same_row(entry, other):
                    continue
                if entry.entry_id == other.entry_id:
                    problems.append(f"{path}:{entry.line} entry {entry.entry_id!r}: entry_id also in {other_path}:"
                                    f"{other.line} with different content (site {other.site!r})")
                elif _overlap(entry, other):
                    problems.append(f"{path}:{entry.line} entry {entry.entry_id!r}: serials {entry.serial_first}.."
                                    f"{entry.serial_last} (site {entry.site!r}) overlap entry {other.entry_id!r} "
                                    f"(site {other.site!r}, {other_path}:{other.line}): a certificate is claimed twice")
        seen += [(path, e) for e in entries]
    return problems


def _same_row(a: LedgerEntry, b: LedgerEntry) -> bool:
    return replace(a, line=0) == replace(b, line=0)


def _overlap(a: LedgerEntry, b: LedgerEntry) -> bool:
    if not (a.certified and b.certified) or a.project != b.project:
        return False
    (a_first, a_last), (b_first, b_last) = a.serial_span, b.serial_span
    return a_first <= b_last and b_first <= a_last


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
