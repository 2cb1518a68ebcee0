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
from plantems.collector.spool import Spool
from plantems.collector.writer import SpoolWriter
from plantems.config import Device, PlantConfig
from plantems.influx import LineWriter, detect_api, make_writer
from plantems.schema import COLLECTOR_STATUS, MQTT_SOURCE, SPOOL_SOURCE, Field, Tag

__all__ = ["Shard", "in_shard", "run_collector"]

log = logging.getLogger(__name__)

_FLUSH_INTERVAL_S = 0.05  # readings are durable at most this long after they arrive


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
        self.spool = Spool(spool_path, max_bytes=plant.spool.max_bytes)
        cfg = plant.influxdb
        self.writer = SpoolWriter(self.spool, writer_factory or (lambda: make_writer(cfg, detect_api(cfg))),
                                  batch_lines=cfg.batch_lines, flush_interval_s=cfg.flush_interval_s)
        self.mqtt: MqttSource | None = None
        filters = mqtt_topic_filters(plant, shard)
        if filters:
            client_id = (plant.mqtt.client_id if plant.mqtt and plant.mqtt.client_id
                         else f"plantems-{plant.site.id}-collector") + self.shard_suffix
            self.mqtt = MqttSource(plant, self.spool, topic_filters=filters, client_id=client_id)
        self.stop_event = asyncio.Event()
        self._pollers = Stopper()
        self._spool_lock = asyncio.Lock()

    def _emit(self, dev: DeviceRuntime, time_ns: int, values: dict[str, float]) -> None:
        self.spool.append(self.plant.influxdb.raw_database, dev.formatter.lines(time_ns, values))

    async def _flush_loop(self) -> None:
        while not self.stop_event.is_set():
            async with self._spool_lock:
                # Inline, not in a worker thread: a commit of 50 ms of readings takes about 1 ms,
                # and handing it to a thread cost more CPU (GIL hand-offs) than it saved.
                self.spool.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=_FLUSH_INTERVAL_S)

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
        stats = self.spool.stats()
        lines.append(status_line(COLLECTOR_STATUS, site=site, source=SPOOL_SOURCE + self.shard_suffix,
                                 time_ns=time_ns, fields={
            Field.SPOOL_BYTES.value: float(stats.used_bytes), Field.SPOOL_LINES.value: float(stats.pending_lines),
            Field.DROPPED_LINES.value: float(stats.dropped_lines), Field.SHED_LINES.value: float(stats.shed_lines),
            Field.DEAD_LETTERED_LINES.value: float(stats.dead_lettered_lines),
            Field.ERRORS.value: float(self.writer.counters.failed_requests)}))
        return lines

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
            self.spool.flush()
            self.writer.stop()
            stats = self.spool.stats()
            self.spool.close()
            log.info("collector stopped; %d lines left in the spool for the next start", stats.pending_lines)


async def run_collector(plant: PlantConfig, *, shard: Shard | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    collector = Collector(plant, shard=shard)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, collector.stop_event.set)
    await collector.run()
