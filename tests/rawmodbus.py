"""A raw-socket Modbus/TCP server (asyncio streams, no pymodbus) that answers as told.

It answers reads (FC 3/4) from one register table, either correctly or with one fault:
a wrong function code, protocol id, transaction id or unit id, a byte count that disagrees
with the count asked for, or no answer at all. Frames are built here byte by byte from the
Modbus Application Protocol spec (MBAP: tid, pid = 0, length, unit; PDU: fc, byte count, data),
independently of pymodbus, so the collector's checks are tested against frames it did not make.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter
from enum import StrEnum


class Fault(StrEnum):
    WRONG_FUNCTION_CODE = "wrong_function_code"  # FC4 answer to an FC3 request (and v.v.)
    WRONG_PROTOCOL_ID = "wrong_protocol_id"
    WRONG_TRANSACTION_ID = "wrong_transaction_id"
    WRONG_UNIT_ID = "wrong_unit_id"
    SHORT_BYTE_COUNT = "short_byte_count"  # one register fewer than asked, consistently framed
    ODD_BYTE_COUNT = "odd_byte_count"  # byte count 2n+1: pymodbus still decodes n registers
    STALL = "stall"  # reads the request, never answers


def float_words(value: float) -> list[int]:
    return list(struct.unpack(">2H", struct.pack(">f", value)))


def response_frame(tid: int, unit: int, fc: int, words: list[int], fault: Fault | None) -> bytes | None:
    """The MBAP frame answering a read of ``words``, with ``fault`` applied; None to stay silent."""
    if fault is Fault.STALL:
        return None
    data = b"".join(w.to_bytes(2, "big") for w in words)
    pid = 1 if fault is Fault.WRONG_PROTOCOL_ID else 0
    if fault is Fault.WRONG_FUNCTION_CODE:
        fc = 4 if fc == 3 else 3
    if fault is Fault.WRONG_TRANSACTION_ID:
        tid = (tid + 1) & 0xFFFF
    if fault is Fault.WRONG_UNIT_ID:
        unit = (unit + 1) & 0xFF
    if fault is Fault.SHORT_BYTE_COUNT:
        data = data[:-2]
    if fault is Fault.ODD_BYTE_COUNT:
        data += b"\x00"
    pdu = bytes((fc, len(data))) + data
    return struct.pack(">HHHB", tid, pid, len(pdu) + 1, unit) + pdu


class RawModbusServer:
    """One TCP endpoint; ``fault`` may be changed while it runs."""

    def __init__(self, registers: dict[int, int], *, fault: Fault | None = None) -> None:
        self.registers = registers
        self.fault = fault
        self.function_codes: Counter[int] = Counter()
        self.answered = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)  # each sees EOF and ends
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)  # type: ignore[arg-type]
        try:
            while True:
                header = await reader.readexactly(7)
                tid, _pid, length, unit = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(length - 1)
                fc, address, count = struct.unpack(">BHH", pdu[:5])
                self.function_codes[fc] += 1
                words = [self.registers.get(a, 0) for a in range(address, address + count)]
                frame = response_frame(tid, unit, fc, words, self.fault)
                if frame is not None:
                    writer.write(frame)
                    await writer.drain()
                    self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(ConnectionError):
                writer.close()
