import pytest

from plantems.meters import ByteOrder, DataType, RawLayout, WordOrder
from plantems.registers import decode_words, encode_value

B, L = WordOrder.BIG, WordOrder.LITTLE


@pytest.mark.parametrize(("word_order", "byte_order", "words"), [
    (B, ByteOrder.BIG, [0x3F80, 0x0000]),      # ABCD
    (L, ByteOrder.BIG, [0x0000, 0x3F80]),      # CDAB
    (B, ByteOrder.LITTLE, [0x803F, 0x0000]),   # BADC
    (L, ByteOrder.LITTLE, [0x0000, 0x803F]),   # DCBA
], ids=["ABCD", "CDAB", "BADC", "DCBA"])
def test_float32_orders(word_order, byte_order, words):
    layout = RawLayout(address=0, data_type=DataType.FLOAT32, word_order=word_order, byte_order=byte_order)
    assert decode_words(layout, words) == 1.0
    assert encode_value(layout, 1.0) == words


@pytest.mark.parametrize(("data_type", "words", "value"), [
    (DataType.INT16, [0xFFFE], -2), (DataType.UINT16, [0xFFFE], 65534),
    (DataType.INT32, [0xFFFF, 0xFFFE], -2), (DataType.UINT32, [0x0001, 0x0000], 65536),
    (DataType.INT64, [0, 0, 0x0001, 0x0000], 65536), (DataType.UINT64, [0, 0x0100, 0, 0], 2**40),
    (DataType.FLOAT64, [0x4059, 0, 0, 0], 100.0),
], ids=lambda v: str(v))
def test_data_types(data_type, words, value):
    layout = RawLayout(address=0, data_type=data_type)
    assert decode_words(layout, words) == float(value)
    assert encode_value(layout, float(value)) == words
