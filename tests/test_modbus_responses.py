"""Malformed Modbus responses are an error for that poll, never registers (issue 11 item 5).

A raw-socket server (tests/rawmodbus.py, frames built byte by byte) answers with one fault at a
time; the collector's client must refuse each with a reason naming the field, stay in step on
the same connection, and log no pymodbus or asyncio noise.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from plantems.collector.modbus.client import ModbusBus, ModbusReadError
from plantems.collector.modbus.frames import ExpectedResponse, response_problem
from plantems.collector.modbus.planner import ReadRequest
from plantems.config import Gateway
from plantems.localservers import free_port
from plantems.meters import RegisterType
from tests.rawmodbus import Fault, RawModbusServer, float_words

READ = ReadRequest(RegisterType.HOLDING, 0, 4)
EXPECTED = ExpectedResponse(unit_id=7, function_code=3, asked=4, transaction_id=9)
GOOD_PDU = bytes((3, 8)) + bytes(range(8))


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({}, None),
    ({"transaction_id": 8}, "transaction id 8 in the response, expected 9"),
    ({"protocol_id": 1}, "protocol id 1 in the response, expected 0"),
    ({"unit_id": 8}, "unit id 8 in the response, expected 7"),
    ({"pdu": bytes((4, 8)) + bytes(8)}, "function code 4 in the response, expected 3"),
    ({"pdu": bytes((3, 6)) + bytes(6)}, "byte count 6 in the response, expected 8 for 4 asked for"),
    ({"pdu": bytes((3, 9)) + bytes(9)}, "byte count 9 in the response, expected 8 for 4 asked for"),
    ({"pdu": bytes((3, 8)) + bytes(7)}, "response carries 7 data bytes, its byte count says 8"),
    ({"pdu": b""}, "empty response (no function code)"),
    ({"pdu": bytes((0x83, 2))}, None),  # a well-formed exception response: the caller reports its code
    ({"pdu": bytes((0x84, 2))}, "function code 132 in the response, expected 3"),
], ids=["ok", "tid", "pid", "unit", "fc", "short", "odd", "truncated", "empty", "exception", "other-exception"])
def test_response_problem_names_the_field(kwargs, reason):
    frame = {"transaction_id": 9, "protocol_id": 0, "unit_id": 7, "pdu": GOOD_PDU} | kwargs
    assert response_problem(EXPECTED, **frame) == reason


def test_bit_reads_expect_one_byte_per_eight_bits():
    assert ExpectedResponse(1, 1, 9, None).byte_count == 2
    assert ExpectedResponse(1, 2, 8, None).byte_count == 1
    assert ExpectedResponse(1, 4, 9, None).byte_count == 18


async def _read_with_fault(fault: Fault) -> tuple[str, list[int]]:
    registers = dict(enumerate(float_words(12.5) + float_words(-3.25)))
    server = RawModbusServer(registers, fault=fault)
    port = free_port()
    await server.start(port)
    bus = ModbusBus(Gateway(id="raw", host="127.0.0.1", port=port, timeout_s=0.5))
    try:
        await bus.connect()
        with pytest.raises(ModbusReadError) as refused:
            await bus.read(7, READ)
        server.fault = None
        return str(refused.value), await bus.read(7, READ)  # the same connection, still in step
    finally:
        bus.close()
        await server.stop()


@pytest.mark.parametrize(("fault", "reason"), [
    (Fault.WRONG_FUNCTION_CODE, "malformed response: function code 4 in the response, expected 3"),
    (Fault.WRONG_PROTOCOL_ID, "malformed response: protocol id 1 in the response, expected 0"),
    (Fault.WRONG_TRANSACTION_ID, "malformed response: transaction id 2 in the response, expected 1"),
    (Fault.WRONG_UNIT_ID, "malformed response: unit id 8 in the response, expected 7"),
    (Fault.SHORT_BYTE_COUNT, "malformed response: byte count 6 in the response, expected 8 for 4 asked for"),
    (Fault.ODD_BYTE_COUNT, "malformed response: byte count 9 in the response, expected 8 for 4 asked for"),
    (Fault.STALL, "No response received"),
], ids=str)
def test_each_fault_is_refused_with_its_reason_and_the_connection_stays_usable(fault, reason, caplog):
    caplog.set_level(logging.DEBUG, logger="asyncio")
    caplog.set_level(logging.DEBUG, logger="collector")
    message, words = asyncio.run(_read_with_fault(fault))
    assert message.startswith("unit 7 holding@0+4: ") and reason in message, message
    assert words == float_words(12.5) + float_words(-3.25)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == [], [r.getMessage() for r in noisy]
