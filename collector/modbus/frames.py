"""Response validation (pure): does a received frame answer the request in flight?

pymodbus 3.11.4 checks the transaction id and the unit id, but it accepts a
non-zero MBAP protocol id, a read response with another function code (a
gateway answering FC4 to FC3 stored 150 garbage points) and a byte count that
disagrees with the count asked for (an odd one even decodes). Every field is
checked here; a frame with any mismatch is an error for that poll, never a point.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ExpectedResponse", "response_problem"]

_BIT_FUNCTION_CODES = frozenset({1, 2})
_EXCEPTION_FLAG = 0x80


class ExpectedResponse(NamedTuple):
    """What the answer to one read request must look like (a tuple: built per request, cheaply)."""

    unit_id: int
    function_code: int  # 1-4
    asked: int  # registers or bits asked for (not `count`: that is a tuple method)
    transaction_id: int | None  # None on RTU framing (no MBAP header)

    @property
    def byte_count(self) -> int:
        if self.function_code in _BIT_FUNCTION_CODES:
            return (self.asked + 7) // 8
        return 2 * self.asked


def response_problem(expected: ExpectedResponse, *, transaction_id: int | None, protocol_id: int | None,
                     unit_id: int, pdu: bytes) -> str | None:
    """Why a received frame is not a valid answer to ``expected``, or None if it is.

    ``pdu`` is function code + data (MBAP header or RTU address and CRC removed). A well-formed
    exception response (function code | 0x80, one exception code byte) is valid: the caller
    reports its code.
    """
    return (_header_problem(expected, transaction_id=transaction_id, protocol_id=protocol_id, unit_id=unit_id)
            or _pdu_problem(expected, pdu))


def _header_problem(expected: ExpectedResponse, *, transaction_id: int | None, protocol_id: int | None,
                    unit_id: int) -> str | None:
    if expected.transaction_id is not None and transaction_id != expected.transaction_id:
        return f"transaction id {transaction_id} in the response, expected {expected.transaction_id}"
    if protocol_id not in (None, 0):
        return f"protocol id {protocol_id} in the response, expected 0"
    if unit_id != expected.unit_id:
        return f"unit id {unit_id} in the response, expected {expected.unit_id}"
    return None


def _pdu_problem(expected: ExpectedResponse, pdu: bytes) -> str | None:
    if not pdu:
        return "empty response (no function code)"
    function_code = pdu[0]
    if function_code == expected.function_code | _EXCEPTION_FLAG:
        return None if len(pdu) == 2 else f"exception response of {len(pdu)} bytes, expected 2"
    if function_code != expected.function_code:
        return f"function code {function_code} in the response, expected {expected.function_code}"
    if len(pdu) < 2 or pdu[1] != expected.byte_count:
        got = pdu[1] if len(pdu) >= 2 else "missing"
        return f"byte count {got} in the response, expected {expected.byte_count} for {expected.asked} asked for"
    if len(pdu) != 2 + expected.byte_count:
        return f"response carries {len(pdu) - 2} data bytes, its byte count says {expected.byte_count}"
    return None
