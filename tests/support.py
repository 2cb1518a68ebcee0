"""Test support: real servers on loopback, a Modbus server thread, collector subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import requests

from plantems.meters import MeterModel, RegisterType
from plantems.registers import encode_value
from plantems.simulator.server import MeterRegisters, ModbusEndpoint

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


class LoopThread:
    """An asyncio loop on a thread, for Modbus servers that outlive one test call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class SequenceMeter(MeterRegisters):
    """A generic_float32 meter whose e_imp_kwh counts the polls it served: 1, 2, 3, ...

    p_kw is 1.5 x the sequence number, so every stored point can be matched to the exact
    reading served; ``served`` keeps (sequence, unix time) of every complete poll.
    """

    def __init__(self, model: MeterModel) -> None:
        super().__init__()
        self.model = model
        self.seq = 0
        self.served: list[tuple[int, float]] = []
        regs = {r.quantity.value: r for r in model.registers}
        self._counter = regs["e_imp_kwh"]
        self._power = regs["p_kw"]
        for reg in model.registers:
            self.load(reg.register_type, reg.address, encode_value(reg, 0.0))

    async def async_getValues(self, func_code: int, address: int, count: int = 1) -> Any:  # noqa: N802 (pymodbus)
        covers = func_code == 3 and address <= self._counter.address < address + count
        if covers and self.faults.exception_code is None:
            self.seq += 1
            self.load(RegisterType.HOLDING, self._counter.address, encode_value(self._counter, float(self.seq)))
            self.load(RegisterType.HOLDING, self._power.address, encode_value(self._power, 1.5 * self.seq))
            self.served.append((self.seq, time.time()))
        return await super().async_getValues(func_code, address, count)


def start_endpoint(loop: LoopThread, port: int, units: dict[int, MeterRegisters], *, framer: str = "socket"
                   ) -> ModbusEndpoint:
    endpoint = ModbusEndpoint("127.0.0.1", port, units, framer=framer)
    loop.run(endpoint.start())
    return endpoint


def influx_query(url: str, db: str, q: str) -> list[dict[str, Any]]:
    response = requests.post(f"{url}/query", data={"db": db, "q": q, "epoch": "ns"}, timeout=10)
    response.raise_for_status()
    result = response.json()["results"][0]
    assert "error" not in result, result
    return result.get("series", [])


def drop_simulated(url: str, db: str, measurement: str, device: str) -> None:
    """Drop what the simulator wrote for ``device`` in ``measurement``, before a test writes its own
    hand-made series there (a gas counter with a wrap, say)."""
    influx_query(url, db, f"DROP SERIES FROM \"{measurement}\" WHERE \"device\" = '{device}'")


def rows(url: str, db: str, q: str) -> list[dict[str, Any]]:
    """Query result as dicts (tags included), all series concatenated."""
    out = []
    for series in influx_query(url, db, q):
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            row.update(series.get("tags") or {})
            out.append(row)
    return out


def copy_reference_data(folder: Path) -> None:
    """The files that live beside a plant file (tariffs/, factors, ledger, targets), from config/."""
    import shutil

    shutil.copytree(REPO / "config" / "tariffs", folder / "tariffs", dirs_exist_ok=True)
    for name in ("emission_factors.yaml", "green_power.csv", "targets.yaml"):
        shutil.copy(REPO / "config" / name, folder / name)


def write_plant(tmp: Path, *, influx_url: str, db: str, body: str, status_interval_s: float = 2.0,
                init: bool = True) -> Path:
    """Write a plant file for a test (and create its databases, as `plantems influx init` does)."""
    from plantems.config import load_plant
    from plantems.influx import init_databases

    path = tmp / "plant.yaml"
    path.write_text(f"""\
site: {{id: testsite, timezone: Asia/Shanghai}}
influxdb: {{url: "{influx_url}", api: v1, raw_database: {db}, derived_database: {db}_derived,
            flush_interval_s: 0.2}}
spool: {{path: "{tmp}/spool.sqlite", max_bytes: 50000000}}
status_interval_s: {status_interval_s}
{body}""")
    if init:
        init_databases(load_plant(path).influxdb)
    return path


class CollectorProcess:
    """``plantems collect`` as a child process (so a test can SIGKILL it)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CollectorProcess:
        out = self.log.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "plantems.cli", "collect", "--config", str(self.config)],
                                     stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.config.parent)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Publisher:
    """A paho QoS-1 publisher (a PLC gateway in the tests); queues while the broker is away."""

    def __init__(self, port: int, *, client_id: str = "test-publisher") -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_queued_messages_set(0)  # unlimited: keep everything until the broker is back
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        wait_for(self.client.is_connected, timeout_s=10, what="publisher connected")

    def publish(self, topic: str, payload: object) -> None:
        import json

        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
