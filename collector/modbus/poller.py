"""Poll loop for one Modbus connection (gateway or TCP meter).

Devices behind one connection are polled one request at a time (RS-485
semantics); each connection has its own task, so separate TCP meters are
polled concurrently and a slow gateway never holds up another. Polls are
aligned to multiples of the device's interval plus a stable per-connection
phase (regular timestamps, no plant-wide burst at each second); a poll
that starts a whole interval late counts the skipped slots as missed. A
failing device backs off (jittered, capped) so it does not eat the shared
bus time of the healthy ones. Health is logged once on down and once on up.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from plantems.collector.modbus.client import ModbusBus, ModbusReadError
from plantems.collector.modbus.decode import DecodeError, DevicePlan, decode_multipliers
from plantems.collector.points import ReadingFormatter
from plantems.config import Device
from plantems.meters import MeterModel

__all__ = ["DeviceRuntime", "poll_bus"]

log = logging.getLogger(__name__)

_DEVICE_BACKOFF_MAX_S = 60.0
# Consecutive failed polls of every device on a connection before it is re-opened.
_FAILED_ROUNDS_BEFORE_RECONNECT = 3

Emit = Callable[["DeviceRuntime", int, dict[str, float]], None]


class Stopper:
    """Stops poll loops without a per-poll cost.

    Poll loops sleep with a plain ``asyncio.sleep`` (``wait_for(event.wait())`` costs a
    task and a timer per poll: a third of the collector's CPU at 5,000 meters). ``stop()``
    cancels only loops that are asleep; a poll in flight finishes and emits its reading.
    """

    def __init__(self) -> None:
        self.stopping = False
        self._sleeping: set[asyncio.Task[None]] = set()

    async def sleep(self, delay_s: float) -> bool:
        """Sleep; return False if stopped meanwhile."""
        if self.stopping:
            return False
        task = asyncio.current_task()
        assert task is not None
        self._sleeping.add(task)  # type: ignore[arg-type]
        try:
            await asyncio.sleep(delay_s)
        except asyncio.CancelledError:
            if self.stopping:
                return False
            raise
        finally:
            self._sleeping.discard(task)  # type: ignore[arg-type]
        return not self.stopping

    def stop(self) -> None:
        self.stopping = True
        for task in list(self._sleeping):
            task.cancel()


@dataclass
class DeviceRuntime:
    """A device's plan and its health counters (read by the status reporter)."""

    device: Device
    model: MeterModel
    plan: DevicePlan
    tags: dict[str, str]
    formatter: ReadingFormatter
    multipliers: dict[str, float] | None = None
    up: bool | None = None
    polls: int = 0
    requests: int = 0
    errors: int = 0
    missed_polls: int = 0
    invalid_values: int = 0
    latency_ms: float = 0.0
    failures: int = 0
    next_due_s: float = field(default=0.0)
    # start lateness of the recent polls (ms): benchmarks read percentiles from it
    lateness_ms: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def mark_down(self, reason: str) -> None:
        self.errors += 1
        self.failures += 1
        if self.up is not False:
            log.warning("device %s (%s unit %s) is down: %s", self.device.id, self.device.gateway or
                        self.device.host, self.device.unit_id, reason)
        self.up = False
        self.multipliers = None  # re-read ratios after recovery: the meter may have been swapped

    def mark_up(self) -> None:
        if self.up is False:
            log.info("device %s recovered after %d failed polls", self.device.id, self.failures)
        self.up = True
        self.failures = 0


def next_slot_s(now_s: float, interval_s: float, phase: float = 0.0) -> float:
    """The next ``k * interval_s + phase * interval_s`` strictly after ``now_s`` (0 <= phase < 1)."""
    offset = phase * interval_s
    return (math.floor((now_s - offset) / interval_s) + 1) * interval_s + offset


def connection_phase(connection_id: str) -> float:
    """A stable fraction of the interval by which a connection's polls are offset.

    Spreads the connections' polls over the interval instead of every meter in the plant
    being asked at the same instant (a burst that queues at gateways and servers).
    """
    return zlib.crc32(connection_id.encode()) / 2**32


def _schedule_after_poll(dev: DeviceRuntime, now_s: float, phase: float) -> None:
    interval = dev.device.poll_interval_s
    due = next_slot_s(now_s, interval, phase)
    if dev.failures:
        backoff = min(interval * 2 ** min(dev.failures - 1, 10), _DEVICE_BACKOFF_MAX_S)
        due = max(due, now_s + backoff * random.uniform(0.5, 1.0))
    dev.next_due_s = due


async def _poll_device(bus: ModbusBus, dev: DeviceRuntime, emit: Emit, clock: Callable[[], float]) -> bool:
    """Read and decode one poll; return True on success."""
    unit = dev.device.unit_id
    started = clock()
    try:
        if dev.multipliers is None:
            reads = dev.plan.multiplier_reads
            results = []
            for request in reads:
                dev.requests += 1
                results.append(await bus.read(unit, request))
            dev.multipliers = decode_multipliers(dev.model, reads, results)
        results = []
        for request in dev.plan.reads:
            dev.requests += 1
            results.append(await bus.read(unit, request))
        values, invalid = dev.plan.decode(results, dev.multipliers)
    except (ModbusReadError, DecodeError) as exc:
        dev.mark_down(str(exc))
        return False
    dev.latency_ms = (clock() - started) * 1000.0
    dev.polls += 1
    dev.mark_up()
    if invalid:
        dev.invalid_values += len(invalid)
        log.debug("device %s reported non-finite %s; left out", dev.device.id, invalid)
    if values:
        emit(dev, int(started * 1000) * 1_000_000, values)  # ms precision: what a poll can resolve
    return True


class _Reconnect:
    """When a connection may be tried again: jittered exponential backoff, capped."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s, self.max_s = first_s, max_s
        self.backoff_s = first_s
        self.not_before_s = 0.0

    def failed(self, now_s: float) -> None:
        self.not_before_s = now_s + self.backoff_s * random.uniform(0.5, 1.0)
        self.backoff_s = min(self.backoff_s * 2, self.max_s)

    def succeeded(self) -> None:
        self.backoff_s = self.first_s


async def _connected(bus: ModbusBus, devices: Sequence[DeviceRuntime], reconnect: _Reconnect, now_s: float) -> bool:
    """Open the connection if needed; on failure mark every device behind it down."""
    if bus.connected:
        return True
    if now_s < reconnect.not_before_s:
        return False
    try:
        await bus.connect()
    except ModbusReadError as exc:
        for dev in devices:
            dev.mark_down(str(exc))
        reconnect.failed(now_s)
        return False
    reconnect.succeeded()
    return True


def _count_lateness(dev: DeviceRuntime, due_s: float, now_s: float) -> None:
    dev.lateness_ms.append((now_s - due_s) * 1000.0)
    late_slots = int((now_s - due_s) // dev.device.poll_interval_s)
    if late_slots > 0 and dev.up is not False:
        dev.missed_polls += late_slots


async def poll_bus(bus: ModbusBus, devices: Sequence[DeviceRuntime], emit: Emit, *,
                   stop: Stopper, clock: Callable[[], float] = time.time) -> None:
    """Poll ``devices`` through ``bus`` until ``stop.stop()`` is called."""
    phase = connection_phase(bus.gateway.id)
    queue: list[tuple[float, int]] = []
    for index, dev in enumerate(devices):
        heapq.heappush(queue, (next_slot_s(clock(), dev.device.poll_interval_s, phase), index))
    reconnect = _Reconnect(bus.gateway.timeout_s, bus.gateway.reconnect_max_s)
    failed_in_a_row = 0
    try:
        while not stop.stopping:
            due, index = heapq.heappop(queue)
            dev = devices[index]
            delay = due - clock()
            if delay > 0 and not await stop.sleep(delay):
                return
            now = clock()
            _count_lateness(dev, due, now)
            if not await _connected(bus, devices, reconnect, now):
                due = max(next_slot_s(now, dev.device.poll_interval_s, phase), reconnect.not_before_s)
                heapq.heappush(queue, (due, index))
                continue
            ok = await _poll_device(bus, dev, emit, clock)
            failed_in_a_row = 0 if ok else failed_in_a_row + 1
            if failed_in_a_row >= _FAILED_ROUNDS_BEFORE_RECONNECT * len(devices):
                log.debug("connection %s: every device silent, re-opening", bus.gateway.endpoint)
                bus.close()
                failed_in_a_row = 0
            _schedule_after_poll(dev, clock(), phase)
            heapq.heappush(queue, (dev.next_due_s, index))
    finally:
        bus.close()
