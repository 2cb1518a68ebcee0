"""Request planner (pure): merge a device's registers into the fewest reads.

Like Telegraf's modbus ``optimization = "max_insert"``: adjacent registers are
read together, gaps of up to ``max_gap_fill`` registers are bridged, a read
never exceeds the device's register limit and never spans a hole (addresses
the device answers with an exception).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from plantems.meters import Hole, MeterModel, RegisterType

__all__ = ["ReadRequest", "Span", "plan_device", "plan_reads"]


@dataclass(frozen=True, slots=True, order=True)
class ReadRequest:
    """One read: ``count`` registers of ``register_type`` from ``address``."""

    register_type: RegisterType
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


Span = ReadRequest  # the planner's input: the registers one value occupies


def _crosses_hole(register_type: RegisterType, start: int, end: int, holes: Sequence[Hole]) -> bool:
    return any(h.register_type == register_type and h.start < end and start <= h.end for h in holes)


def _make_even(read: ReadRequest, *, holes: Sequence[Hole], limit: int) -> ReadRequest:
    """Pad an odd count by one register (after, else before) without touching a hole."""
    if read.count % 2 == 0:
        return read
    after = ReadRequest(read.register_type, read.address, read.count + 1)
    if after.count <= limit and after.end <= 0x10000 and not _crosses_hole(
            read.register_type, read.end, after.end, holes):
        return after
    before = ReadRequest(read.register_type, read.address - 1, read.count + 1)
    if before.address >= 0 and before.count <= limit and not _crosses_hole(
            read.register_type, before.address, read.address, holes):
        return before
    return read  # nothing safe to pad with; the device answers as it will


def plan_reads(spans: Iterable[Span], *, max_count: int = 125, max_gap_fill: int = 0,
               holes: Sequence[Hole] = (), even_count: bool = False) -> list[ReadRequest]:
    """Return the fewest reads covering ``spans``, in address order per register type."""
    reads: list[ReadRequest] = []
    current: ReadRequest | None = None
    for span in sorted(set(spans)):
        if current is not None and span.register_type == current.register_type:
            gap = span.address - current.end
            new_end = max(current.end, span.end)
            if (gap <= max_gap_fill and new_end - current.address <= max_count
                    and not (gap > 0 and _crosses_hole(span.register_type, current.end, span.address, holes))):
                current = ReadRequest(current.register_type, current.address, new_end - current.address)
                continue
        if current is not None:
            reads.append(current)
        current = ReadRequest(span.register_type, span.address, span.count)
    if current is not None:
        reads.append(current)
    if even_count:
        reads = [_make_even(r, holes=holes, limit=max_count) for r in reads]
    return reads


def plan_device(model: MeterModel, *, max_gap_fill: int) -> list[ReadRequest]:
    """The reads for one poll of a device with ``model`` (multipliers are read separately)."""
    spans = [Span(r.register_type, r.address, r.words) for r in model.registers]
    return plan_reads(spans, max_count=model.max_read_registers, max_gap_fill=max_gap_fill,
                      holes=model.holes, even_count=model.even_read_count)


def plan_multipliers(model: MeterModel) -> list[ReadRequest]:
    """The reads that fetch a model's multiplier registers (on connect, not every poll)."""
    spans = [Span(m.register_type, m.address, m.words) for m in model.multipliers]
    return plan_reads(spans, max_count=model.max_read_registers, max_gap_fill=0,
                      holes=model.holes, even_count=model.even_read_count)
