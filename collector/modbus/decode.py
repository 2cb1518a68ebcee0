"""Device decoder (pure): read results -> canonical quantities.

``DevicePlan`` is compiled once per device: the reads of one poll and, for
each register, which read and offset hold its words. Decoding a poll is then
a slice, an unpack and a multiply per register.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from plantems.collector.modbus.planner import ReadRequest, plan_device, plan_multipliers
from plantems.meters import ByteOrder, MeterModel, RawLayout, WordOrder
from plantems.registers import STRUCT_CODES, decode_words

__all__ = ["DecodeError", "DevicePlan", "compile_plan", "decode_multipliers"]


class DecodeError(ValueError):
    """A read result that does not fit the plan (wrong length)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    quantity: str
    read_index: int
    offset_bytes: int
    fmt: str
    fast: bool  # ABCD: unpack straight from the read's bytes
    layout: RawLayout
    scale: float
    multiply_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _ReadUnpacker:
    """One struct call per read: the words as bytes, then every ABCD value (gaps skipped with pad bytes)."""

    words: struct.Struct
    values: struct.Struct
    entry_indices: tuple[int, ...]


def _unpacker(read: ReadRequest, read_index: int, entries: Sequence[_Entry]) -> _ReadUnpacker:
    mine = sorted((e.offset_bytes, i) for i, e in enumerate(entries) if e.fast and e.read_index == read_index)
    fmt, position = ">", 0
    for offset, index in mine:
        fmt += f"{offset - position}x" if offset > position else ""
        fmt += entries[index].fmt[1:]
        position = offset + entries[index].layout.words * 2
    return _ReadUnpacker(struct.Struct(f">{read.count}H"), struct.Struct(fmt), tuple(i for _, i in mine))


@dataclass(frozen=True, slots=True)
class DevicePlan:
    reads: tuple[ReadRequest, ...]
    multiplier_reads: tuple[ReadRequest, ...]
    entries: tuple[_Entry, ...]
    counters: frozenset[str]
    unpackers: tuple[_ReadUnpacker, ...]
    slow: tuple[int, ...]  # entries with swapped words/bytes

    def decode(self, results: Sequence[Sequence[int]],
               multipliers: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
        """Decode one poll; return (quantities, quantities the meter reported as NaN/inf).

        ``results[i]`` are the words of ``reads[i]``. Quantities listed more than once
        in the model are summed. A non-finite value is left out, never substituted.
        """
        if len(results) != len(self.reads):
            raise DecodeError(f"expected {len(self.reads)} read results, got {len(results)}")
        raws = [0.0] * len(self.entries)
        for read, unpacker, words in zip(self.reads, self.unpackers, results, strict=True):
            if len(words) < read.count:
                raise DecodeError(f"read {read.register_type}@{read.address}: expected {read.count} "
                                  f"registers, got {len(words)}")
            blob = unpacker.words.pack(*words[:read.count])
            for index, raw in zip(unpacker.entry_indices, unpacker.values.unpack_from(blob), strict=True):
                raws[index] = raw
        for index in self.slow:
            entry = self.entries[index]
            start = entry.offset_bytes // 2
            raws[index] = decode_words(entry.layout, results[entry.read_index][start:start + entry.layout.words])
        values: dict[str, float] = {}
        invalid: list[str] = []
        for entry, raw in zip(self.entries, raws, strict=True):
            value = raw * entry.scale
            for name in entry.multiply_by:
                value *= multipliers[name]
            if not math.isfinite(value):
                invalid.append(entry.quantity)
                continue
            values[entry.quantity] = values.get(entry.quantity, 0.0) + value
        for quantity in invalid:
            values.pop(quantity, None)  # a sum with a missing part is not the quantity
        return values, invalid


def _locate(reads: Sequence[ReadRequest], layout: RawLayout) -> tuple[int, int]:
    for index, read in enumerate(reads):
        if (read.register_type == layout.register_type and read.address <= layout.address
                and layout.end <= read.end):
            return index, (layout.address - read.address) * 2
    raise AssertionError(f"planner left register {layout.address} uncovered")  # a planner bug


def compile_plan(model: MeterModel, *, max_gap_fill: int) -> DevicePlan:
    reads = tuple(plan_device(model, max_gap_fill=max_gap_fill))
    entries = []
    for reg in model.registers:
        index, offset = _locate(reads, reg)
        fast = reg.word_order is WordOrder.BIG and reg.byte_order is ByteOrder.BIG
        entries.append(_Entry(reg.quantity.value, index, offset, ">" + STRUCT_CODES[reg.data_type], fast,
                              reg, reg.scale, reg.multiply_by))
    counters = frozenset(r.quantity.value for r in model.registers if r.counter)
    unpackers = tuple(_unpacker(read, index, entries) for index, read in enumerate(reads))
    slow = tuple(i for i, e in enumerate(entries) if not e.fast)
    return DevicePlan(reads, tuple(plan_multipliers(model)), tuple(entries), counters, unpackers, slow)


def decode_multipliers(model: MeterModel, reads: Sequence[ReadRequest],
                       results: Sequence[Sequence[int]]) -> dict[str, float]:
    """Decode the multiplier registers read on connect; a zero or non-finite ratio is an error."""
    values = {}
    for mult in model.multipliers:
        index, offset = _locate(reads, mult)
        words = results[index][offset // 2: offset // 2 + mult.words]
        value = decode_words(mult, words) * mult.scale
        if not math.isfinite(value) or value <= 0:
            raise DecodeError(f"multiplier {mult.name} at {mult.address} reads {value!r}; "
                              "a ratio must be a positive number")
        values[mult.name] = value
    return values
