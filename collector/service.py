"""``plantems collect``: pollers -> spool -> InfluxDB, plus collector health.

Reads the plant configuration; writes `electrical`/`fuel` points and
`collector_status` into the raw database through the durable spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from plantems.collector.modbus.client import ModbusBus
from plantems.collector.modbus.decode import compile_plan
from plantems.collector.modbus.poller import DeviceRuntime, Stopper, poll_bus
from plantems.collector.mqtt.client import MqttSource
from plantems.collector.points import ReadingFormatter, status_line
from plantems.collector.spool import Spool, SpoolError, SpoolStats
from plantems.collector.writer import SpoolWriter
from plantems.config import Device, PlantConfig
from plantems.influx import InfluxError, LineWriter, detect_api, make_writer
from plantems.ratelog import ConditionLog
from plantems.schema import COLLECTOR_STATUS, MQTT_SOURCE, SPOOL_SOURCE, Field, Tag

__all__ = ["Shard", "in_shard", "run_collector"]

log = logging.getLogger(__name__)

_FLUSH_INTERVAL_S = 0.05  # readings are durable at most this long after they arrive
_FLUSH_BACKOFF_MAX_S = 5.0  # retry a failing spool at least this often (readings wait in memory meanwhile)
EXIT_SPOOL_UNUSABLE = 3  # the spool stayed unwritable for spool.unusable_exit_s, or failed at shutdown
EXIT_SPOOL_UNOPENABLE = 4  # the spool cannot be opened at start (e.g. a read-only directory)


@dataclass(frozen=True)
class Shard:
    """Which part of the plant this process collects: shard ``index`` of ``count``."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/n"`` with 0 <= i < n."""
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ValueError(f"shard {text!r}: expected i/n, e.g. 0/2") from None
        if not 0 <= i < n:
            raise ValueError(f"shard {text!r}: need 0 <= i < n")
        return cls(i, n)


def in_shard(plant: PlantConfig, device: Device, shard: Shard) -> bool:
    """Stable split: Modbus devices by connection (a gateway stays in one process), MQTT ones by id."""
    key = device.id if device.mqtt is not None else plant.gateway_of(device).id
    return zlib.crc32(key.encode()) % shard.count == shard.index


def mqtt_topic_filters(plant: PlantConfig, shard: Shard) -> list[str]:
    """One wildcard filter per mapping for a single process; per-device topics for a shard.

    With a wildcard, unknown devices are seen (counted, logged); with per-device topics each
    shard receives only its own devices' messages (fixed topic partitioning).
    """
    if plant.mqtt is None:
        return []
    if shard.count == 1:
        return sorted({m.subscription(site=plant.site.id) for m in plant.mqtt.mappings
                       if any(d.mqtt and d.mqtt.mapping == m.id for d in plant.mqtt_devices)})
    return sorted(plant.mapping_of(d).subscription(site=plant.site.id, device=d.mqtt.topic_id or d.id)
                  for d in plant.mqtt_devices if d.mqtt and in_shard(plant, d, shard))


def build_runtimes(plant: PlantConfig, shard: Shard) -> dict[str, list[DeviceRuntime]]:
    """Device runtimes grouped by connection id."""
    groups: dict[str, list[DeviceRuntime]] = {}
    for device in plant.modbus_devices:
        if not in_shard(plant, device, shard):
            continue
        model = plant.meter_of(device)
        tags = {Tag.SITE.value: plant.site.id, Tag.AREA.value: device.area, Tag.DEVICE.value: device.id,
                Tag.KIND.value: device.kind.value}
        gap_fill = model.max_gap_fill if device.max_gap_fill is None else device.max_gap_fill
        plan = compile_plan(model, max_gap_fill=gap_fill)
        groups.setdefault(plant.gateway_of(device).id, []).append(
            DeviceRuntime(device, model, plan, tags, ReadingFormatter(tags)))
    return groups


class Collector:
    """Wires pollers, spool, writer and health reporting for one process."""

    def __init__(self, plant: PlantConfig, *, shard: Shard | None = None,
                 writer_factory: Callable[[], LineWriter] | None = None) -> None:
        self.plant = plant
        shard = shard or Shard()
        self.groups = build_runtimes(plant, shard)
        # shards on one host must not share an outbox; their status sources are told apart too
        self.shard_suffix = f"-{shard.index}of{shard.count}" if shard.count > 1 else ""
        spool_path = plant.spool.path.with_name(f"{plant.spool.path.stem}{self.shard_suffix}{plant.spool.path.suffix}")
        sc = plant.spool
        self.spool = Spool(spool_path, max_bytes=sc.max_bytes, max_buffer_lines=sc.memory_buffer_lines,
                           max_dead_letter_rows=sc.max_dead_letter_rows,
                           max_dead_letter_bytes=sc.max_dead_letter_bytes, min_free_disk_bytes=sc.min_free_disk_bytes)
        cfg = plant.influxdb
        self._make_writer = writer_factory or (lambda: make_writer(cfg, detect_api(cfg)))
        self.writer = SpoolWriter(self.spool, self._make_writer, batch_lines=cfg.batch_lines,
                                  flush_interval_s=cfg.flush_interval_s)
        self._status_writer: LineWriter | None = None  # only while the spool fails, see _send_status_directly
        self.mqtt: MqttSource | None = None
        filters = mqtt_topic_filters(plant, shard)
        if filters:
            client_id = (plant.mqtt.client_id if plant.mqtt and plant.mqtt.client_id
                         else f"plantems-{plant.site.id}-collector") + self.shard_suffix
            self.mqtt = MqttSource(plant, self.spool, topic_filters=filters, client_id=client_id)
        self.stop_event = asyncio.Event()
        self._pollers = Stopper()
        self._spool_lock = asyncio.Lock()
        self._conditions = ConditionLog(log)
        self._spool_failing = False
        self.exit_code = 0

    def _emit(self, dev: DeviceRuntime, time_ns: int, values: dict[str, float]) -> None:
        self.spool.append(self.plant.influxdb.raw_database, dev.formatter.lines(time_ns, values))

    async def _flush_loop(self) -> None:
        wait_s = _FLUSH_INTERVAL_S
        while not self.stop_event.is_set():
            async with self._spool_lock:
                # Inline, not in a worker thread: a commit of 50 ms of readings takes about 1 ms,
                # and handing it to a thread cost more CPU (GIL hand-offs) than it saved.
                ok = self._flush_once()
            wait_s = _FLUSH_INTERVAL_S if ok else min(wait_s * 2, _FLUSH_BACKOFF_MAX_S)
            if self._spool_gave_up():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=wait_s)

    def _flush_once(self) -> bool:
        """Commit what the sources produced; a failure is logged (rate-limited) and retried, never fatal here."""
        try:
            self.spool.flush()
        except SpoolError as exc:
            stats = self.spool.last_stats()
            self._conditions.log(logging.ERROR, "spool-write", "%s; keeping %d readings in memory (at most %d, "
                                 "then the oldest are dropped: %d so far) and retrying", exc, stats.buffered_lines,
                                 self.spool.max_buffer_lines, stats.buffer_dropped_lines)
            self._spool_failing = True
            return False
        if self._spool_failing:
            self._spool_failing = False
            self._conditions.clear("spool-write")
            log.info("spool %s writable again; readings held in memory are committed", self.spool.path)
        return True

    def _spool_gave_up(self) -> bool:
        """After spool.unusable_exit_s of failures, stop with a non-zero exit for the supervisor to restart us."""
        limit_s = self.plant.spool.unusable_exit_s
        if (failing_s := self.spool.unusable_for_s()) <= limit_s:
            return False
        stats = self.spool.last_stats()
        log.error("spool %s has been failing for %.0f s (spool.unusable_exit_s = %g): exiting with status %d so "
                  "the supervisor restarts the collector; %d readings held in memory will be lost",
                  self.spool.path, failing_s, limit_s, EXIT_SPOOL_UNUSABLE, stats.buffered_lines)
        self.exit_code = EXIT_SPOOL_UNUSABLE
        self.stop_event.set()
        return True

    def _status_lines(self, time_ns: int) -> list[str]:
        site = self.plant.site.id
        lines = []
        for devices in self.groups.values():
            for dev in devices:
                fields = {Field.UP.value: 1.0 if dev.up else 0.0, Field.REQUESTS.value: float(dev.requests),
                          Field.ERRORS.value: float(dev.errors), Field.MISSED_POLLS.value: float(dev.missed_polls),
                          Field.INVALID_VALUES.value: float(dev.invalid_values)}
                if dev.up:
                    fields[Field.LATENCY_MS.value] = round(dev.latency_ms, 3)
                lines.append(status_line(COLLECTOR_STATUS, site=site, source=dev.device.id, time_ns=time_ns,
                                         fields=fields))
        if self.mqtt is not None:
            c = self.mqtt.counters
            lines.append(status_line(COLLECTOR_STATUS, site=site, source=MQTT_SOURCE + self.shard_suffix,
                                     time_ns=time_ns, fields={
                Field.UP.value: 1.0 if c.connected else 0.0, Field.MESSAGES.value: float(c.messages),
                Field.REJECTED.value: float(c.rejected), Field.UNKNOWN.value: float(c.unknown)}))
        lines.append(status_line(COLLECTOR_STATUS, site=site, source=SPOOL_SOURCE + self.shard_suffix,
                                 time_ns=time_ns, fields=self._spool_fields(self._spool_stats())))
        return lines

    def _spool_stats(self) -> SpoolStats:
        try:
            return self.spool.stats()
        except SpoolError as exc:  # report the last known figures and the fault, not nothing
            self._conditions.log(logging.ERROR, "spool-stats", "%s", exc)
            return self.spool.last_stats()

    def _spool_fields(self, stats: SpoolStats) -> dict[str, float]:
        return {
            Field.UP.value: 1.0 if stats.ok else 0.0,
            Field.SPOOL_BYTES.value: float(stats.used_bytes), Field.SPOOL_LINES.value: float(stats.pending_lines),
            Field.DROPPED_LINES.value: float(stats.dropped_lines), Field.SHED_LINES.value: float(stats.shed_lines),
            Field.DEAD_LETTERED_LINES.value: float(stats.dead_lettered_lines),
            Field.DEAD_LETTERS_DROPPED.value: float(stats.dead_letters_dropped),
            Field.SPOOL_ERRORS.value: float(stats.errors), Field.BUFFERED_LINES.value: float(stats.buffered_lines),
            Field.BUFFER_DROPPED_LINES.value: float(stats.buffer_dropped_lines),
            Field.ERRORS.value: float(self.writer.counters.failed_requests)}

    async def _status_loop(self) -> None:
        interval = self.plant.status_interval_s
        while not self.stop_event.is_set():
            try:
                await asyncio.wait_for(self.stop_event.wait(), timeout=interval - time.time() % interval)
                return
            except TimeoutError:
                pass
            async with self._spool_lock:
                lines = await asyncio.to_thread(self._status_lines, time.time_ns() // 1_000_000 * 1_000_000)
            self.spool.append(self.plant.influxdb.raw_database, lines)
            if not self.spool.last_stats().ok:
                await asyncio.to_thread(self._send_status_directly, lines)
            rate_limited = [self._conditions, self.spool.conditions, self.writer.conditions]
            rate_limited += [self.mqtt.conditions] if self.mqtt else []
            for conditions in rate_limited:
                conditions.flush()  # the held-back counts of rate-limited log lines

    def _send_status_directly(self, lines: list[str]) -> None:
        """While the spool fails, health goes straight to InfluxDB too, so dashboards show the fault now
        and not only once the spool works again (the spooled copy lands later at the same timestamps)."""
        try:
            if self._status_writer is None:
                self._status_writer = self._make_writer()
            self._status_writer.write(self.plant.influxdb.raw_database, lines)
        except InfluxError as exc:
            self._status_writer = None
            self._conditions.log(logging.WARNING, "status-direct", "collector_status could not go straight to "
                                 "InfluxDB while the spool fails: %s", exc)

    async def run(self) -> None:
        self.writer.start()
        if self.mqtt is not None:
            self.mqtt.start()
        tasks = [asyncio.create_task(self._flush_loop(), name="spool-flush"),
                 asyncio.create_task(self._status_loop(), name="status")]
        for connection_id, devices in self.groups.items():
            gateway = self.plant.gateway_of(devices[0].device)
            tasks.append(asyncio.create_task(poll_bus(ModbusBus(gateway), devices, self._emit,
                                                      stop=self._pollers), name=f"poll-{connection_id}"))
        n_devices = sum(len(d) for d in self.groups.values())
        log.info("collecting %d Modbus devices over %d connections%s; spool %s", n_devices, len(self.groups),
                 f" and MQTT topics {self.mqtt.topic_filters}" if self.mqtt else "", self.spool.path)
        gc.freeze()  # long-lived config objects out of the GC's way: p99 lateness (perf.md)
        try:
            await self.stop_event.wait()
        finally:
            self._pollers.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.mqtt is not None:
                self.mqtt.stop()
            self._flush_once()
            self.writer.stop()
            self._close_spool()

    def _close_spool(self) -> None:
        pending: int | None = None
        try:
            self.spool.flush()
            pending = self.spool.stats().pending_lines
        except SpoolError as exc:
            log.error("%s: %d readings held in memory are lost; the lines committed before stay in the spool for "
                      "the next start", exc, self.spool.last_stats().buffered_lines)
            self.exit_code = self.exit_code or EXIT_SPOOL_UNUSABLE
        with contextlib.suppress(SpoolError):  # closes the connections whatever happens
            self.spool.close()
        if pending is not None:
            log.info("collector stopped; %d lines left in the spool for the next start", pending)


async def run_collector(plant: PlantConfig, *, shard: Shard | None = None) -> None:
    """Run until SIGINT/SIGTERM; exits non-zero (SystemExit) when the spool cannot be opened or stays unusable."""
    try:
        collector = Collector(plant, shard=shard)
    except SpoolError as exc:
        log.error("cannot start: %s", exc)  # one line naming the path, no traceback, for journalctl
        raise SystemExit(EXIT_SPOOL_UNOPENABLE) from None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, collector.stop_event.set)
    await collector.run()
    if collector.exit_code:
        raise SystemExit(collector.exit_code)
