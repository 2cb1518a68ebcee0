"""Poll loop for one Modbus connection (gateway or TCP meter).

Devices behind one connection are polled one request at a time (RS-485
semantics); each connection has its own task, so separate TCP meters are
polled concurrently and a slow gateway never holds up another. Polls are
aligned to multiples of the device's interval plus a stable per-connection
phase (regular timestamps, no plant-wide burst at each second); a poll
that starts a whole interval late counts the skipped slots as missed. A
failing device backs off (jittered, capped) so it does not eat the shared
bus time of the healthy ones. Health is logged once on down and once on up;
a flapping device's changes are summarised once a minute (``ratelog``).

Polls are scheduled on the monotonic clock and stamped with the wall clock:
a wall-clock step (NTP correction, VM resume) moves the timestamps, never
the polling, and is logged once.
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
from plantems.ratelog import ConditionLog

__all__ = ["DeviceRuntime", "HealthLog", "PollClock", "poll_bus"]

log = logging.getLogger(__name__)

_DEVICE_BACKOFF_MAX_S = 60.0
# Consecutive failed polls of every device on a connection before it is re-opened.
_FAILED_ROUNDS_BEFORE_RECONNECT = 3

# A change of (wall - monotonic) larger than this between two looks is a step, not NTP slewing
# (at most 0.5 ms/s).
_CLOCK_STEP_S = 1.0
# How often held-back health summaries are flushed (a flapping device that settled shows its state).
_HEALTH_FLUSH_S = 5.0

Emit = Callable[["DeviceRuntime", int, dict[str, float]], None]


class PollClock:
    """The wall clock for timestamps and the monotonic clock for scheduling; notices wall-clock steps.

    One instance is shared by every poll loop of a process, so a step is logged once, not once
    per connection. Tests inject a wall clock they can step.
    """

    def __init__(self, *, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self.steps = 0
        self._offset_s: float | None = None

    def check_step(self) -> None:
        """Log (WARNING) if the wall clock jumped relative to the monotonic clock since the last look."""
        offset = self.wall() - self.monotonic()
        previous, self._offset_s = self._offset_s, offset
        if previous is not None and abs(offset - previous) >= _CLOCK_STEP_S:
            self.steps += 1
            log.warning("wall clock stepped %s by %.1f s (NTP correction or VM resume?); polling goes on, "
                        "readings are stamped with the new time", "back" if offset < previous else "forward",
                        abs(offset - previous))


class HealthLog:
    """Device down/up lines: once per change, a flapping device summarised once a minute.

    One condition per device. A down line goes out at once, and so does the recovery that
    ends it; while the device flaps, further changes are counted and the next line (at most
    one a minute, or the periodic flush) gives the count and the latest state, so the last
    line logged for a device always tells its current state.
    """

    def __init__(self, *, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._conditions = ConditionLog(log, interval_s, clock)
        self._clock = clock
        self._next_flush_s = 0.0
        self._down_logged: set[str] = set()

    def down(self, dev: DeviceRuntime, reason: str) -> None:
        key = dev.device.id
        where = dev.device.gateway or dev.device.host
        if self._conditions.log(logging.WARNING, key, "device %s (%s unit %s) is down: %s",
                                key, where, dev.device.unit_id, reason):
            self._down_logged.add(key)

    def up(self, dev: DeviceRuntime) -> None:
        key = dev.device.id
        message, args = "device %s recovered after %d failed polls", (key, dev.failures)
        if key in self._down_logged:
            self._down_logged.discard(key)
            log.info(message, *args)  # the recovery that ends a logged outage: at once
        else:
            self._conditions.log(logging.INFO, key, message, *args)

    def maybe_flush(self) -> None:
        now = self._clock()
        if now >= self._next_flush_s:
            self._next_flush_s = now + _HEALTH_FLUSH_S
            self._conditions.flush()


_SYSTEM_CLOCK = PollClock()
_HEALTH_LOG = HealthLog()


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

    def mark_down(self, reason: str, health: HealthLog) -> None:
        self.errors += 1
        self.failures += 1
        if self.up is not False:
            health.down(self, reason)
        self.up = False
        self.multipliers = None  # re-read ratios after recovery: the meter may have been swapped

    def mark_up(self, health: HealthLog) -> None:
        if self.up is False:
            health.up(self)
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


def slot_due_s(wall_s: float, monotonic_s: float, interval_s: float, phase: float) -> float:
    """The monotonic time of the next wall-clock slot: polls run on the monotonic clock, yet their
    timestamps stay on regular wall-clock slots (recomputed each poll, so slewing is absorbed)."""
    return monotonic_s + next_slot_s(wall_s, interval_s, phase) - wall_s


def _schedule_after_poll(dev: DeviceRuntime, clock: PollClock, phase: float) -> None:
    interval = dev.device.poll_interval_s
    now_s = clock.monotonic()
    due = slot_due_s(clock.wall(), now_s, interval, phase)
    if dev.failures:
        backoff = min(interval * 2 ** min(dev.failures - 1, 10), _DEVICE_BACKOFF_MAX_S)
        due = max(due, now_s + backoff * random.uniform(0.5, 1.0))
    dev.next_due_s = due


async def _poll_device(bus: ModbusBus, dev: DeviceRuntime, emit: Emit, *, clock: PollClock,
                       health: HealthLog) -> bool:
    """Read and decode one poll; return True on success."""
    unit = dev.device.unit_id
    started_wall_s, started_s = clock.wall(), clock.monotonic()
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
        dev.mark_down(str(exc), health)
        return False
    dev.latency_ms = (clock.monotonic() - started_s) * 1000.0
    dev.polls += 1
    dev.mark_up(health)
    if invalid:
        dev.invalid_values += len(invalid)
        log.debug("device %s reported non-finite %s; left out", dev.device.id, invalid)
    if values:
        emit(dev, int(started_wall_s * 1000) * 1_000_000, values)  # ms precision: what a poll can resolve
    return True


class _Reconnect:
    """When a connection may be tried again (monotonic time): jittered exponential backoff, capped."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s, self.max_s = first_s, max_s
        self.backoff_s = first_s
        self.not_before_s = 0.0

    def failed(self, now_s: float) -> None:
        self.not_before_s = now_s + self.backoff_s * random.uniform(0.5, 1.0)
        self.backoff_s = min(self.backoff_s * 2, self.max_s)

    def succeeded(self) -> None:
        self.backoff_s = self.first_s


async def _connected(bus: ModbusBus, devices: Sequence[DeviceRuntime], reconnect: _Reconnect, now_s: float,
                     health: HealthLog) -> bool:
    """Open the connection if needed; on failure mark every device behind it down."""
    if bus.connected:
        return True
    if now_s < reconnect.not_before_s:
        return False
    try:
        await bus.connect()
    except ModbusReadError as exc:
        for dev in devices:
            dev.mark_down(str(exc), health)
        reconnect.failed(now_s)
        return False
    reconnect.succeeded()
    return True


def _count_lateness(dev: DeviceRuntime, due_s: float, now_s: float) -> None:
    dev.lateness_ms.append((now_s - due_s) * 1000.0)
    late_slots = int((now_s - due_s) // dev.device.poll_interval_s)
    if late_slots > 0 and dev.up is not False:
        dev.missed_polls += late_slots


async def poll_bus(bus: ModbusBus, devices: Sequence[DeviceRuntime], emit: Emit, *, stop: Stopper,
                   clock: PollClock = _SYSTEM_CLOCK, health: HealthLog = _HEALTH_LOG) -> None:
    """Poll ``devices`` through ``bus`` until ``stop.stop()`` is called.

    ``clock`` and ``health`` are shared by the loops of a process (the defaults are); tests
    inject their own.
    """
    phase = connection_phase(bus.gateway.id)
    queue: list[tuple[float, int]] = []
    wall_s, now_s = clock.wall(), clock.monotonic()
    for index, dev in enumerate(devices):
        heapq.heappush(queue, (slot_due_s(wall_s, now_s, dev.device.poll_interval_s, phase), index))
    reconnect = _Reconnect(bus.gateway.timeout_s, bus.gateway.reconnect_max_s)
    failed_in_a_row = 0
    try:
        while not stop.stopping:
            due, index = heapq.heappop(queue)
            dev = devices[index]
            delay = due - clock.monotonic()
            if delay > 0 and not await stop.sleep(delay):
                return
            clock.check_step()
            health.maybe_flush()
            now_s = clock.monotonic()
            _count_lateness(dev, due, now_s)
            if not await _connected(bus, devices, reconnect, now_s, health):
                due = max(slot_due_s(clock.wall(), now_s, dev.device.poll_interval_s, phase), reconnect.not_before_s)
                heapq.heappush(queue, (due, index))
                continue
            ok = await _poll_device(bus, dev, emit, clock=clock, health=health)
            failed_in_a_row = 0 if ok else failed_in_a_row + 1
            if failed_in_a_row >= _FAILED_ROUNDS_BEFORE_RECONNECT * len(devices):
                log.debug("connection %s: every device silent, re-opening", bus.gateway.endpoint)
                bus.close()
                failed_in_a_row = 0
            _schedule_after_poll(dev, clock, phase)
            heapq.heappush(queue, (dev.next_due_s, index))
    finally:
        bus.close()
