"""Modbus connection (the collector's only pymodbus import).

One ``ModbusBus`` per gateway or TCP meter: one connection, one request at a
time. Only read function codes exist here (1-4): there is no write method to
call by mistake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from plantems.collector.modbus.planner import ReadRequest
from plantems.config import Gateway, Transport
from plantems.meters import RegisterType

__all__ = ["READ_FUNCTION_CODES", "ModbusBus", "ModbusReadError"]

log = logging.getLogger(__name__)
# pymodbus logs every timeout at ERROR; health transitions are logged once by the poller instead.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

READ_FUNCTION_CODES: Final[Mapping[RegisterType, int]] = {
    RegisterType.COIL: 1, RegisterType.DISCRETE: 2, RegisterType.HOLDING: 3, RegisterType.INPUT: 4,
}
# A dead unit behind a gateway must not make pymodbus close the shared connection; the
# poller decides when a connection is dead (every unit silent).
_NEVER_DISCONNECT: Final = 1_000_000_000


class ModbusReadError(Exception):
    """A read that returned no usable registers; ``str()`` says why."""


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
        try:
            response = await self._dispatch(unit_id, request)
        except ModbusException as exc:
            raise ModbusReadError(f"unit {unit_id} {request.register_type}@{request.address}"
                                  f"+{request.count}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise ModbusReadError(f"unit {unit_id} {request.register_type}@{request.address}"
                                  f"+{request.count}: exception code {code}")
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
