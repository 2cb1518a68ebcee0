"""Register-word codec (pure): numbers <-> 16-bit Modbus register words.

Shared by the collector's decoder and the simulator's encoder, so both agree
on word order (ABCD / CDAB) and byte order (BADC / DCBA) by construction;
the golden meter tests check both against datasheet layouts built with
``struct`` directly.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from plantems.meters import ByteOrder, DataType, RawLayout, WordOrder

__all__ = ["STRUCT_CODES", "decode_words", "encode_value"]

STRUCT_CODES: Final = {
    DataType.INT16: "h", DataType.UINT16: "H", DataType.INT32: "i", DataType.UINT32: "I",
    DataType.FLOAT32: "f", DataType.INT64: "q", DataType.UINT64: "Q", DataType.FLOAT64: "d",
}


def _normalise(words: Sequence[int], word_order: WordOrder, byte_order: ByteOrder) -> bytes:
    """Return the value's bytes big-endian (ABCD), whatever order the meter sends."""
    ordered = list(words) if word_order is WordOrder.BIG else list(reversed(words))
    raw = struct.pack(f">{len(ordered)}H", *ordered)
    if byte_order is ByteOrder.LITTLE:
        raw = b"".join(raw[i + 1:i + 2] + raw[i:i + 1] for i in range(0, len(raw), 2))
    return raw


def decode_words(layout: RawLayout, words: Sequence[int]) -> float:
    """Decode ``layout.words`` register words to the raw number (scale not applied)."""
    raw = _normalise(words, layout.word_order, layout.byte_order)
    return float(struct.unpack(">" + STRUCT_CODES[layout.data_type], raw)[0])


def encode_value(layout: RawLayout, raw_value: float) -> list[int]:
    """Encode a raw number (already divided by scale) into register words, as the meter sends them."""
    code = STRUCT_CODES[layout.data_type]
    number: float | int = raw_value if layout.data_type.is_float else round(raw_value)
    packed = struct.pack(">" + code, number)
    if layout.byte_order is ByteOrder.LITTLE:
        packed = b"".join(packed[i + 1:i + 2] + packed[i:i + 1] for i in range(0, len(packed), 2))
    words = list(struct.unpack(f">{len(packed) // 2}H", packed))
    return words if layout.word_order is WordOrder.BIG else list(reversed(words))
