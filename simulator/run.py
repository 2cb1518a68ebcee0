"""``plantems simulate``: serve the plant's meters over Modbus TCP, or back-fill history.

Live: one Modbus TCP server per configured endpoint (a gateway serves all its
unit ids), registers laid out by each device's real meter model and refreshed
every ``tick_s`` from the plant model. Back-fill: the same model written
straight into InfluxDB on a 60-s grid, with a progress bar.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import numpy as np
from tqdm import tqdm

from plantems.config import PlantConfig
from plantems.influx import LineWriter
from plantems.lineproto import Point, format_line
from plantems.schema import Tag, measurement_of
from plantems.simulator.economy import Economy
from plantems.simulator.mqtt_publisher import MqttPublisher
from plantems.simulator.plant import COUNTERS, GRID_S, SimulatedPlant, integrate_step
from plantems.simulator.scenarios import Scenario, check_devices, glitching
from plantems.simulator.server import MeterRegisters, ModbusEndpoint, encode_reading

__all__ = ["Simulator", "backfill", "multipliers_for"]

log = logging.getLogger(__name__)

_BACKFILL_CHUNK_S: Final = 6 * 3600.0
_OTHER_TARIFF_KWH: Final = 4_321.5  # what a wrapping meter's other tariff registers hold (constant)


def multipliers_for(model_multipliers: list[str], rated_kw: float) -> dict[str, float]:
    """CT/PT ratios a simulated secondary-side meter reports: a CT sized for the load, no PT."""
    ratios = {"ct": 600.0 if rated_kw > 1000 else 40.0, "pt": 1.0}
    return {name: ratios.get(name, 1.0) for name in model_multipliers}


class Simulator:
    """The live Modbus side of the demo plant."""

    def __init__(self, plant: PlantConfig, *, tick_s: float = 0.25, scenarios: Sequence[Scenario] = (),
                 economy: Economy | None = None) -> None:
        self.plant = plant
        self.model = SimulatedPlant(plant, scenarios, economy)
        self.tick_s = tick_s
        self.units: dict[str, MeterRegisters] = {}
        endpoints: dict[tuple[str, int], dict[int, MeterRegisters]] = {}
        for device in plant.modbus_devices:
            gateway = plant.gateway_of(device)
            unit = MeterRegisters()
            self.units[device.id] = unit
            endpoints.setdefault((gateway.host or "127.0.0.1", gateway.port or 502), {})[device.unit_id] = unit
        self.endpoints = [ModbusEndpoint(host, port, units) for (host, port), units in endpoints.items()]
        rated = {d.device_id: d.profile.rated_kw for d in self.model.devices}
        self.multipliers = {d.id: multipliers_for([m.name for m in plant.meter_of(d).multipliers], rated[d.id])
                            for d in plant.modbus_devices}
        self.counters: dict[str, dict[str, float]] = {}
        self._last: tuple[float, dict[str, dict[str, float]]] | None = None
        self.scenarios = tuple(scenarios)
        check_devices(self.scenarios, [d.id for d in plant.modbus_devices])
        # counter-wrap: per device and summed counter, the shift of its first register (set at the first update)
        self.wrap_shift: dict[str, dict[str, float]] = {}

    def _instant(self, t_s: float) -> dict[str, dict[str, float]]:
        values = self.model.instantaneous(np.array([t_s]))
        return {dev: {k: float(v[0]) for k, v in fields.items()} for dev, fields in values.items()}

    def update(self, t_s: float) -> None:
        """Advance the plant to ``t_s`` and write every device's registers."""
        inst = self._instant(t_s)
        if self._last is None:
            # from the last history grid point to now, at the tick's resolution: a single
            # trapezoid over up to a minute of rolling-mill power would be off by kWh
            grid_t = float(np.floor(t_s / GRID_S) * GRID_S)
            fine = np.append(np.arange(grid_t, t_s, self.tick_s), t_s)
            integrated = self.model.integrate(fine, self.model.counters_at(grid_t))
            self.counters = {dev: {k: float(v[-1]) for k, v in c.items()} for dev, c in integrated.items()}
            self._preset_wraps(t_s)
        else:
            last_t, last_inst = self._last
            self.counters = {dev: integrate_step(self.counters[dev], last_inst[dev], inst[dev], t_s - last_t)
                             for dev in inst}
        self._last = (t_s, inst)
        for device in self.plant.modbus_devices:  # a meter the model has no values for (gas) reads zeros
            values = {**inst.get(device.id, {}), **self.counters.get(device.id, {})}
            if glitching(self.scenarios, device.id, t_s):
                values.update({name: 0.0 for name in COUNTERS})
            encode_reading(self.plant.meter_of(device), values, self.multipliers[device.id], self.units[device.id],
                           split=self._split(device.id, values))

    def _preset_wraps(self, t_s: float) -> None:
        """For each counter-wrap: shift the first register of each summed counter so that it reaches its
        rollover when the scenario starts (counters there from the model, on this tick grid)."""
        for scenario in self.scenarios:
            if scenario.name != "counter-wrap" or scenario.device is None or scenario.once_start_s is None:
                continue
            device = next(d for d in self.plant.modbus_devices if d.id == scenario.device)
            wrap_t = max(scenario.once_start_s, t_s)
            fine = np.append(np.arange(t_s, wrap_t, self.tick_s), wrap_t)
            at_wrap = self.model.integrate(fine, self.counters)[device.id] if wrap_t > t_s else {}
            shifts = {}
            for name in self.counters.get(device.id, {}):
                registers = [r for r in self.plant.meter_of(device).registers if r.quantity.value == name]
                if len(registers) > 1 and registers[0].rollover is not None:
                    target = float(at_wrap[name][-1]) if name in at_wrap else self.counters[device.id][name]
                    shifts[name] = registers[0].rollover - target
            self.wrap_shift[device.id] = shifts

    def _split(self, device_id: str, values: Mapping[str, float]) -> dict[str, list[float]] | None:
        """Register values of the shifted summed counters: the first wraps, the others hold a constant
        (what the other tariffs counted before), so the sum moves exactly as the counter does."""
        shifts = self.wrap_shift.get(device_id)
        if not shifts:
            return None
        device = next(d for d in self.plant.modbus_devices if d.id == device_id)
        out = {}
        for name, shift in shifts.items():
            registers = [r for r in self.plant.meter_of(device).registers if r.quantity.value == name]
            rollover = registers[0].rollover or 0.0
            value = values.get(name, 0.0)
            first = (value + shift) % rollover if value else 0.0  # a glitch reads 0 in every register
            out[name] = [first] + [_OTHER_TARIFF_KWH if value else 0.0] * (len(registers) - 1)
        return out

    def values(self, device_id: str) -> dict[str, float]:
        """The device's quantities at the last update."""
        assert self._last is not None
        return {**self._last[1][device_id], **self.counters[device_id]}

    def _tick_time(self) -> float:
        """Now, on the tick grid: served values are the model at exact tick times (reproducible)."""
        return round(time.time() / self.tick_s) * self.tick_s

    async def run(self, stop: asyncio.Event) -> None:
        self.update(self._tick_time())
        for endpoint in self.endpoints:
            await endpoint.start()
            log.info("simulated Modbus endpoint %s:%d with units %s", endpoint.host, endpoint.port,
                     sorted(endpoint.units))
        publisher = MqttPublisher(self.plant) if self.plant.mqtt_devices else None
        if publisher is not None:
            log.info("simulated PLC gateway publishing %d MQTT devices every second",
                     len(self.plant.mqtt_devices))
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.tick_s - time.time() % self.tick_s)
                except TimeoutError:
                    t_s = self._tick_time()
                    self.update(t_s)
                    if publisher is not None and t_s % 1.0 == 0:  # PLC gateways publish once a second
                        publisher.publish({d.id: self.values(d.id) for d in self.plant.mqtt_devices}, t_s)
        finally:
            if publisher is not None:
                publisher.close()
            for endpoint in self.endpoints:
                await endpoint.stop()


def _chunks(start_s: float, end_s: float) -> Iterator[tuple[float, float]]:
    """Consecutive windows that share their boundary point (the next chunk's counter base)."""
    t = start_s
    while t < end_s:
        yield t, min(t + _BACKFILL_CHUNK_S, end_s)
        t += _BACKFILL_CHUNK_S


def backfill_lines(plant: PlantConfig, model: SimulatedPlant, grid: Any,
                   counters: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Line protocol for every device at the ``grid`` times (pure given the model)."""
    inst = model.instantaneous(grid)
    lines = []
    for device in plant.devices:
        quantities = plant.quantities_of(device)
        tags = {Tag.SITE.value: plant.site.id, Tag.AREA.value: device.area, Tag.DEVICE.value: device.id,
                Tag.KIND.value: device.kind.value}
        series = {**inst.get(device.id, {}), **counters.get(device.id, {})}
        names = [q for q in series if q in quantities]
        if not names:
            continue  # e.g. a gas meter: the plant model simulates electricity only
        by_measurement: dict[str, list[str]] = {}
        for q in names:  # as the collector stores them: air and fuel fields in their own measurements
            by_measurement.setdefault(measurement_of(q), []).append(q)
        for i, t in enumerate(grid):
            for measurement, fields in by_measurement.items():
                values = {q: float(series[q][i]) for q in fields}
                lines.append(format_line(Point(measurement, tags, values, int(t) * 1_000_000_000)))
    return lines


def backfill(plant: PlantConfig, writer: LineWriter, *, days: float, end_s: float | None = None,
             batch_lines: int = 5000, progress: bool = True, scenarios: Sequence[Scenario] = (),
             economy: Economy | None = None) -> int:
    """Write ``days`` of simulated history ending now (or ``end_s``) into the raw database."""
    model = SimulatedPlant(plant, scenarios, economy)
    end = np.floor((end_s or time.time()) / GRID_S) * GRID_S
    start = end - days * 86_400.0
    written = 0
    chunks = list(_chunks(start, end))
    base = model.counters_at(start)
    with tqdm(total=len(chunks), unit="chunk", desc=f"back-fill {days:g} d", disable=not progress) as bar:
        for index, (chunk_start, chunk_end) in enumerate(chunks):
            grid, counters = model.counters_on_grid(chunk_start, chunk_end, base=base)
            base = {dev: {k: float(v[-1]) for k, v in c.items()} for dev, c in counters.items()}
            if index:  # the boundary point was written by the previous chunk
                grid, counters = grid[1:], {d: {k: v[1:] for k, v in c.items()} for d, c in counters.items()}
            lines = backfill_lines(plant, model, grid, counters)
            for i in range(0, len(lines), batch_lines):
                writer.write(plant.influxdb.raw_database, lines[i:i + batch_lines])
            written += len(lines)
            bar.update(1)
            bar.set_postfix(points=written)
    return written
