"""Poll loops under faults: a wall-clock step (issue 11 item 4) and a flapping device's log (item 9)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from plantems.collector.modbus.client import ModbusBus
from plantems.collector.modbus.poller import DeviceRuntime, HealthLog, PollClock, Stopper, poll_bus
from plantems.collector.service import Shard, build_runtimes
from plantems.config import load_plant
from plantems.localservers import free_port
from plantems.simulator.server import ModbusEndpoint
from tests.support import SequenceMeter, write_plant

INTERVAL_S = 0.2
STEP_S = -90.0


class SteppableWall:
    """time.time() plus an offset the test can step (an NTP correction, a VM resume)."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


def _plant(tmp_path: Path, gw_port: int, tcp_ports: list[int]):
    devices = "".join(
        f"  - {{id: gw{unit}, area: rolling, kind: cold_mill, meter: generic_float32, gateway: gw-a, unit_id: {unit},"
        f" poll_interval_s: {INTERVAL_S}, rated_kw: 500}}\n" for unit in (1, 2, 3))
    devices += "".join(
        f"  - {{id: tcp{i}, area: rolling, kind: pump, meter: generic_float32, host: 127.0.0.1, port: {port},"
        f" poll_interval_s: {INTERVAL_S}, rated_kw: 90}}\n" for i, port in enumerate(tcp_ports))
    path = write_plant(tmp_path, influx_url="http://127.0.0.1:9", db="unused", init=False, body=(
        f"gateways:\n  - {{id: gw-a, host: 127.0.0.1, port: {gw_port}, timeout_s: 0.15}}\n"
        f"devices:\n{devices}"))
    return load_plant(path)


async def _until(predicate, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        await asyncio.sleep(0.05)


def test_a_backward_wall_clock_step_keeps_every_meter_polled_and_is_logged_once(tmp_path, meters, caplog):
    caplog.set_level(logging.INFO, logger="collector")
    model = meters["generic_float32"]
    gw_port, tcp_ports = free_port(), [free_port(), free_port()]
    plant = _plant(tmp_path, gw_port, tcp_ports)
    wall = SteppableWall()
    clock = PollClock(wall=wall)
    points: dict[str, list[tuple[int, float]]] = {}

    def emit(dev: DeviceRuntime, time_ns: int, values: dict[str, float]) -> None:
        points.setdefault(dev.device.id, []).append((time_ns, values["e_imp_kwh"]))

    async def scenario() -> dict[str, int]:
        endpoints = [ModbusEndpoint("127.0.0.1", gw_port, {u: SequenceMeter(model) for u in (1, 2, 3)})]
        endpoints += [ModbusEndpoint("127.0.0.1", p, {1: SequenceMeter(model)}) for p in tcp_ports]
        for endpoint in endpoints:
            await endpoint.start()
        stop = Stopper()
        groups = build_runtimes(plant, Shard())
        tasks = [asyncio.create_task(poll_bus(ModbusBus(plant.gateway_of(devs[0].device)), devs, emit, stop=stop,
                                              clock=clock, health=HealthLog())) for devs in groups.values()]
        ids = [d.device.id for devs in groups.values() for d in devs]
        try:
            await _until(lambda: all(len(points.get(i, [])) >= 2 for i in ids), timeout_s=10, what="first polls")
            before = {i: len(points[i]) for i in ids}
            wall.offset_s = STEP_S
            # the old scheduler slept 90 s here; 3 more polls each are due within about 0.6 s
            await _until(lambda: all(len(points[i]) >= before[i] + 3 for i in ids), timeout_s=10,
                         what="polls after the step")
        finally:
            stop.stop()
            await asyncio.gather(*tasks)
            for endpoint in endpoints:
                await endpoint.stop()
        return before

    before = asyncio.run(scenario())
    assert len(before) == 5
    for dev_id, count in before.items():
        stamps = [t for t, _ in points[dev_id]]
        sequence = [seq for _, seq in points[dev_id]]
        assert sequence == [float(n) for n in range(1, len(sequence) + 1)], dev_id  # no poll lost or repeated
        # readings after the step carry the stepped wall clock: about 90 s before the ones before it
        gap_s = (stamps[count] - stamps[count - 1]) / 1e9
        assert STEP_S - 1.0 < gap_s < STEP_S + 1.0, (dev_id, gap_s)
        assert all(b - a > 0 for a, b in zip(stamps[count:], stamps[count + 1:], strict=False)), dev_id
    steps = [r for r in caplog.records if "wall clock stepped back by 90.0 s" in r.getMessage()]
    assert len(steps) == 1 and steps[0].levelno == logging.WARNING
    assert clock.steps == 1


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_flapping_device_logs_its_first_change_then_one_summary_a_minute(tmp_path, meters, caplog):
    caplog.set_level(logging.INFO, logger="plantems.collector.modbus.poller")
    plant = _plant(tmp_path, free_port(), [])
    flapper, steady = build_runtimes(plant, Shard())["gw-a"][:2]
    clock = FakeClock()
    health = HealthLog(clock=clock)

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "plantems.collector.modbus.poller"]

    for _ in range(50):  # down and up on every poll for 50 s
        flapper.mark_down("unit 1 holding@0+30: exception code 4", health)
        flapper.mark_up(health)
        clock.now_s += 1.0
    assert lines() == ["device gw1 (gw-a unit 1) is down: unit 1 holding@0+30: exception code 4",
                       "device gw1 recovered after 1 failed polls"]
    steady.mark_down("timed out", health)  # another device's first outage is not held back by the flapper
    assert lines()[-1] == "device gw2 (gw-a unit 2) is down: timed out"
    flapper.mark_down("unit 1 holding@0+30: exception code 4", health)  # it settles down
    clock.now_s += 15.0
    health.maybe_flush()
    # 49 downs and 49 recoveries held back, then the last down: the summary shows the current state
    assert lines()[-1] == ("device gw1 (gw-a unit 1) is down: unit 1 holding@0+30: exception code 4 "
                           "(+99 more in the last 60 s, the latest shown)")
    assert len(lines()) == 4
    assert flapper.errors == 51 and flapper.up is False
