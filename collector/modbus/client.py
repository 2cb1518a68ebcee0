"""Modbus connection (the collector's only pymodbus import).

One ``ModbusBus`` per gateway or TCP meter: one connection, one request at a
time. Only read function codes exist here (1-4): there is no write method to
call by mistake. Every received frame is checked against the request in
flight (``frames.response_problem``) before pymodbus decodes it; pymodbus
3.11.4 itself checks only the transaction and unit ids.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerBase, FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU

from plantems.collector.modbus.frames import ExpectedResponse, response_problem
from plantems.collector.modbus.planner import ReadRequest
from plantems.config import Gateway, Transport
from plantems.meters import RegisterType

__all__ = ["READ_FUNCTION_CODES", "ModbusBus", "ModbusReadError"]

log = logging.getLogger(__name__)
# pymodbus logs every timeout and garbage frame at ERROR; health transitions are logged once by the
# poller instead.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

READ_FUNCTION_CODES: Final[Mapping[RegisterType, int]] = {
    RegisterType.COIL: 1, RegisterType.DISCRETE: 2, RegisterType.HOLDING: 3, RegisterType.INPUT: 4,
}
# A dead unit behind a gateway must not make pymodbus close the shared connection; the
# poller decides when a connection is dead (every unit silent).
_NEVER_DISCONNECT: Final = 1_000_000_000


class ModbusReadError(Exception):
    """A read that returned no usable registers; ``str()`` says why."""


class _CheckedFramer(FramerBase):
    """Checks every received frame against the request in flight (``frames.response_problem``).

    Replaces pymodbus' ``handleFrame``, which raises inside ``data_received`` on an undecodable
    frame (an asyncio ERROR traceback and a closed connection) and accepts a wrong function code,
    protocol id or byte count. A bad frame resolves the request at once with a placeholder
    exception PDU and ``problem`` set: the read fails with the reason instead of timing out.
    """

    has_mbap = False

    def __init__(self, decoder: DecodePDU) -> None:
        super().__init__(decoder)
        self.expected: ExpectedResponse | None = None
        self.problem: str | None = None

    def handleFrame(self, data: bytes, exp_devid: int, exp_tid: int) -> tuple[int, ModbusPDU | None]:  # noqa: N802 (pymodbus)
        used, unit_id, tid, pdu_bytes = self.decode(data)
        if not used:
            return 0, None  # an incomplete frame: wait for more bytes (or the request's timeout)
        expected, self.expected = self.expected, None
        if expected is None:
            log.debug("%s: a frame with no request in flight (late answer?), dropped", type(self).__name__)
            return used, None
        if self.has_mbap:
            expected = ExpectedResponse(expected.unit_id, expected.function_code, expected.asked, exp_tid)
        problem = response_problem(expected, transaction_id=tid if self.has_mbap else None,
                                   protocol_id=int.from_bytes(data[2:4], "big") if self.has_mbap else None,
                                   unit_id=unit_id, pdu=pdu_bytes)
        pdu = self._decode_pdu(pdu_bytes) if problem is None else None
        if pdu is None:
            self.problem = problem or f"undecodable response {pdu_bytes[:16].hex()}"
            pdu = ExceptionResponse(expected.function_code)
        pdu.dev_id, pdu.transaction_id = exp_devid, exp_tid
        return used, pdu

    def _decode_pdu(self, pdu_bytes: bytes) -> ModbusPDU | None:
        try:
            return self.decoder.decode(pdu_bytes)
        except (ModbusException, ValueError, IndexError, struct.error):
            return None


class _CheckedSocketFramer(_CheckedFramer, FramerSocket):
    has_mbap = True


class _CheckedRtuFramer(_CheckedFramer, FramerRTU):
    pass


class ModbusBus:
    """One Modbus connection shared by the devices behind it."""

    def __init__(self, gateway: Gateway, *, trace_packet: Callable[[bool, bytes], bytes] | None = None) -> None:
        self.gateway = gateway
        common: dict[str, Any] = {"timeout": gateway.timeout_s, "retries": 0, "reconnect_delay": 0}
        if trace_packet is not None:
            common["trace_packet"] = trace_packet
        if gateway.transport is Transport.RTU:
            assert gateway.serial_port is not None
            self._client: AsyncModbusTcpClient | AsyncModbusSerialClient = AsyncModbusSerialClient(
                gateway.serial_port, framer=FramerType.RTU, baudrate=gateway.baudrate,
                parity=gateway.parity, stopbits=gateway.stopbits, **common)
        else:
            framer = FramerType.SOCKET if gateway.transport is Transport.TCP else FramerType.RTU
            assert gateway.host is not None
            self._client = AsyncModbusTcpClient(gateway.host, port=gateway.port or 502, framer=framer, **common)
        self._client.set_max_no_responses(_NEVER_DISCONNECT)
        checked = _CheckedSocketFramer if gateway.transport is Transport.TCP else _CheckedRtuFramer
        self._framer = checked(DecodePDU(False))
        self._client.ctx.framer = self._framer

    @property
    def connected(self) -> bool:
        return bool(self._client.connected)

    async def connect(self) -> None:
        """Open the connection; raise ModbusReadError if the endpoint does not answer."""
        try:
            ok = await asyncio.wait_for(self._client.connect(), timeout=self.gateway.timeout_s + 1.0)
        except (TimeoutError, OSError, ModbusException) as exc:
            raise ModbusReadError(f"cannot connect to {self.gateway.endpoint}: {exc or type(exc).__name__}") from exc
        if not ok:
            raise ModbusReadError(f"cannot connect to {self.gateway.endpoint}")

    def close(self) -> None:
        self._client.close()

    async def read(self, unit_id: int, request: ReadRequest) -> list[int]:
        """Read one planned request; return its register words (bits as 0/1).

        One request in flight per connection (RS-485 semantics) holds because exactly one
        poll task owns each bus; pymodbus serialises requests on a client as well.
        """
        what = f"unit {unit_id} {request.register_type}@{request.address}+{request.count}"
        self._framer.problem = None
        self._framer.expected = ExpectedResponse(unit_id, READ_FUNCTION_CODES[request.register_type],
                                                 request.count, None)
        try:
            response = await self._dispatch(unit_id, request)
        except ModbusException as exc:
            raise ModbusReadError(f"{what}: {exc}") from exc
        finally:
            self._framer.expected = None
        if self._framer.problem is not None:
            raise ModbusReadError(f"{what}: malformed response: {self._framer.problem}")
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise ModbusReadError(f"{what}: exception code {code}")
        if request.register_type in (RegisterType.COIL, RegisterType.DISCRETE):
            return [int(bit) for bit in response.bits[:request.count]]
        words = list(response.registers)
        if len(words) != request.count:
            raise ModbusReadError(f"unit {unit_id} {request.register_type}@{request.address}: "
                                  f"asked for {request.count} registers, got {len(words)}")
        return words

    async def _dispatch(self, unit_id: int, request: ReadRequest) -> Any:
        client = self._client
        kind = request.register_type
        if kind is RegisterType.HOLDING:
            return await client.read_holding_registers(request.address, count=request.count, device_id=unit_id)
        if kind is RegisterType.INPUT:
            return await client.read_input_registers(request.address, count=request.count, device_id=unit_id)
        if kind is RegisterType.COIL:
            return await client.read_coils(request.address, count=request.count, device_id=unit_id)
        return await client.read_discrete_inputs(request.address, count=request.count, device_id=unit_id)
