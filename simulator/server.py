"""Simulated meters as real Modbus servers (the simulator's only pymodbus import).

``MeterRegisters`` is a read-only device context: it answers read function
codes from its register tables and refuses everything else with ILLEGAL
FUNCTION, recording every function code it was sent, so a test can prove from
the server side that the collector only reads. It can also play dead, slow or
broken for fault tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseDeviceContext
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from plantems.meters import MeterModel, PfSign, RawLayout, RegisterType
from plantems.registers import encode_value

__all__ = ["MeterRegisters", "ModbusEndpoint", "encode_reading"]

log = logging.getLogger(__name__)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_TABLE_OF_FC = {1: RegisterType.COIL, 2: RegisterType.DISCRETE, 3: RegisterType.HOLDING, 4: RegisterType.INPUT}


@dataclass
class Faults:
    """What a simulated device does wrong: for fault-injection tests."""

    delay_s: float = 0.0
    exception_code: int | None = None  # answer every read with this Modbus exception


@dataclass(eq=False)
class MeterRegisters(ModbusBaseDeviceContext):
    """Register tables of one unit; missing addresses answer ILLEGAL ADDRESS."""

    tables: dict[RegisterType, dict[int, int]] = field(
        default_factory=lambda: {t: {} for t in RegisterType})
    function_codes: Counter[int] = field(default_factory=Counter)
    reads: int = 0
    faults: Faults = field(default_factory=Faults)

    def prepare(self, model: MeterModel) -> None:
        """Zero-fill each table from the model's lowest to highest register, as meters answer
        reserved addresses inside their map; the model's holes stay unanswered."""
        layouts = [*model.registers, *model.multipliers]
        for register_type in {r.register_type for r in layouts}:
            mine = [r for r in layouts if r.register_type == register_type]
            for address in range(min(r.address for r in mine), max(r.end for r in mine)):
                if not any(h.register_type == register_type and h.start <= address <= h.end for h in model.holes):
                    self.tables[register_type].setdefault(address, 0)

    def load(self, register_type: RegisterType, address: int, words: list[int]) -> None:
        table = self.tables[register_type]
        for offset, word in enumerate(words):
            table[address + offset] = word

    async def async_getValues(self, func_code: int, address: int, count: int = 1) -> list[int] | ExcCodes:
        self.function_codes[func_code] += 1
        table_type = _TABLE_OF_FC.get(func_code)
        if table_type is None:
            return ExcCodes.ILLEGAL_FUNCTION  # e.g. FC 6/16/23 write attempts: a meter here is read-only
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if self.faults.exception_code is not None:
            return ExcCodes(self.faults.exception_code)
        table = self.tables[table_type]
        try:
            words = [table[a] for a in range(address, address + count)]
        except KeyError:
            return ExcCodes.ILLEGAL_ADDRESS
        self.reads += 1
        if table_type in (RegisterType.COIL, RegisterType.DISCRETE):
            return [bool(w) for w in words]  # type: ignore[return-value]
        return words

    async def async_setValues(self, func_code: int, address: int, values: list[int] | list[bool]) -> ExcCodes:
        self.function_codes[func_code] += 1
        return ExcCodes.ILLEGAL_FUNCTION

    def getValues(self, func_code: int, address: int, count: int = 1) -> ExcCodes:  # sync path unused
        return ExcCodes.ILLEGAL_FUNCTION

    def setValues(self, func_code: int, address: int, values: list[int] | list[bool]) -> ExcCodes:
        return ExcCodes.ILLEGAL_FUNCTION


def encode_reading(model: MeterModel, values: Mapping[str, float], multipliers: Mapping[str, float],
                   unit: MeterRegisters, *, split: Mapping[str, Sequence[float]] | None = None) -> None:
    """Write canonical ``values`` into ``unit`` laid out as ``model`` says (inverse of decoding).

    A quantity spread over several registers (summed on decode) goes into the first one and the
    others read 0, unless ``split[quantity]`` gives each register's own value (e.g. T1 and T2).
    """
    if not unit.tables[model.registers[0].register_type]:
        unit.prepare(model)
    seen: dict[str, int] = {}
    for mult in model.multipliers:
        unit.load(mult.register_type, mult.address,
                  encode_value(mult, multipliers[mult.name] / mult.scale))
    for reg in model.registers:
        quantity = reg.quantity.value
        index = seen.get(quantity, 0)
        seen[quantity] = index + 1
        if split is not None and quantity in split:
            value = split[quantity][index]
        else:
            value = values.get(quantity, 0.0) if index == 0 else 0.0
        value = abs(value) if reg.pf_sign is PfSign.FROM_REACTIVE else value  # the sign is q's on decode
        factor = reg.scale
        for name in reg.multiply_by:
            factor *= multipliers[name]
        unit.load(reg.register_type, reg.address, encode_value(reg, _clamp(reg, value / factor)))


def _clamp(layout: RawLayout, raw: float) -> float:
    """Keep a simulated raw value inside its register type (a real meter saturates too)."""
    if layout.data_type.is_float:
        return raw
    bits = 16 * layout.words
    signed = layout.data_type.value.startswith("int")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    return min(max(raw, low), high)


class ModbusEndpoint:
    """One listening Modbus server (a TCP meter or a gateway) with its units."""

    def __init__(self, host: str, port: int, units: Mapping[int, MeterRegisters], *,
                 framer: str = "socket", serial_port: str | None = None, baudrate: int = 9600) -> None:
        """A TCP server on host:port, or with ``serial_port`` an RTU slave on that serial line."""
        self.host, self.port = host, port
        self.serial_port, self.baudrate = serial_port, baudrate
        self.units = dict(units)
        # Fault injection: replaces every outgoing frame while set (a noisy line, a broken gateway).
        self.garble: Callable[[bytes], bytes] | None = None
        self._framer = FramerType.RTU if framer == "rtu" else FramerType.SOCKET
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        return self.garble(data) if sending and self.garble is not None else data

    async def start(self) -> None:
        """Listen (inside the event loop that will serve the requests)."""
        context = ModbusServerContext(devices=self.units, single=False)
        if self.serial_port is not None:
            self._server = ModbusSerialServer(context, framer=FramerType.RTU, port=self.serial_port,
                                              baudrate=self.baudrate, ignore_missing_devices=True,
                                              trace_packet=self._trace)
        else:
            self._server = ModbusTcpServer(context, address=(self.host, self.port), ignore_missing_devices=True,
                                           framer=self._framer, trace_packet=self._trace)
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()

    def function_codes(self) -> Counter[int]:
        total: Counter[int] = Counter()
        for unit in self.units.values():
            total.update(unit.function_codes)
        return total
