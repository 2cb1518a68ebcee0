"""End to end: Modbus servers -> ``plantems collect`` (a real child process) -> real InfluxDB.

Sequence meters number the polls they serve (e_imp_kwh = 1, 2, 3, ...; p_kw = 1.5 x that), so
"nothing lost" is checked exactly: the stored sequence must be what the servers served.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantems.localservers import ManagedProcess, free_port, start_influxd
from tests.rawmodbus import Fault, RawModbusServer, float_words
from tests.support import CollectorProcess, SequenceMeter, rows, start_endpoint, wait_for, write_plant

INTERVAL_S = 0.5


def stored(url: str, db: str, device: str) -> list[dict]:
    return rows(url, db, f"SELECT e_imp_kwh, p_kw, site, area, kind FROM electrical WHERE device = '{device}'")


def sequence_of(points: list[dict]) -> list[int]:
    return sorted(int(p["e_imp_kwh"]) for p in points if p["e_imp_kwh"] is not None)


def device_line(dev_id: str, where: str, *, area: str = "rolling", kind: str = "cold_mill",
                interval_s: float = INTERVAL_S) -> str:
    return (f"  - {{id: {dev_id}, area: {area}, kind: {kind}, meter: generic_float32, max_kw: 5000, {where}, "
            f"poll_interval_s: {interval_s}}}\n")


@pytest.fixture
def collector_factory(tmp_path: Path) -> Iterator:
    started: list[CollectorProcess] = []

    def make(config: Path) -> CollectorProcess:
        proc = CollectorProcess(config, tmp_path / "collector.log").start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


def test_every_served_reading_is_stored_and_only_reads_are_sent(influx_url, db, tmp_path, meters, loop_thread,
                                                                collector_factory):
    model = meters["generic_float32"]
    gw_port, tcp_port, slow_port = free_port(), free_port(), free_port()
    gw_units = {1: SequenceMeter(model), 2: SequenceMeter(model)}  # unit 3 is configured but dead
    tcp_unit, slow_unit = SequenceMeter(model), SequenceMeter(model)
    slow_unit.faults.delay_s = 0.3  # answers, slowly
    endpoints = [start_endpoint(loop_thread, gw_port, gw_units), start_endpoint(loop_thread, tcp_port, {1: tcp_unit}),
                 start_endpoint(loop_thread, slow_port, {5: slow_unit})]
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=(
        f"gateways:\n  - {{id: gw-a, host: 127.0.0.1, port: {gw_port}, timeout_s: 0.3}}\n"
        "devices:\n"
        + device_line("m1", "gateway: gw-a, unit_id: 1")
        + device_line("m2", "gateway: gw-a, unit_id: 2", area="utilities", kind="compressor")
        + device_line("dead", "gateway: gw-a, unit_id: 3")
        + device_line("tcp", f"host: 127.0.0.1, port: {tcp_port}")
        + device_line("slow", f"host: 127.0.0.1, port: {slow_port}, unit_id: 5, timeout_s: 0.45")))
    collector = collector_factory(config)
    run_s = 8.0
    time.sleep(run_s)
    collector.stop()  # SIGTERM: polls in flight finish, the spool drains

    for dev_id, unit, area, kind in [("m1", gw_units[1], "rolling", "cold_mill"),
                                     ("m2", gw_units[2], "utilities", "compressor"),
                                     ("tcp", tcp_unit, "rolling", "cold_mill"),
                                     ("slow", slow_unit, "rolling", "cold_mill")]:
        points = stored(influx_url, db, dev_id)
        assert sequence_of(points) == list(range(1, unit.seq + 1)), dev_id
        served_at = dict(unit.served)
        for point in points:
            seq = int(point["e_imp_kwh"])
            assert point["p_kw"] == 1.5 * seq
            assert (point["site"], point["area"], point["kind"]) == ("testsite", area, kind)
            # stamped when the poll started: before the server answered, and not long before
            assert served_at[seq] - 0.5 <= point["time"] / 1e9 <= served_at[seq] + 0.002
    # a dead unit and a slow device cost the healthy ones nothing: they kept their interval
    for unit in (gw_units[1], gw_units[2], tcp_unit):
        assert unit.seq >= (run_s - 2.5) / INTERVAL_S
    status = rows(influx_url, db, "SELECT last(up) AS up, last(errors) AS errors FROM collector_status GROUP BY source")
    by_source = {r["source"]: r for r in status}
    assert by_source["dead"]["up"] == 0.0 and by_source["dead"]["errors"] >= 1
    assert by_source["m1"]["up"] == 1.0 and by_source["m1"]["errors"] == 0.0
    assert "spool" in by_source
    assert collector.output().count("device dead (gw-a unit 3) is down") == 1
    for endpoint in endpoints:
        assert set(endpoint.function_codes()) <= {1, 2, 3, 4}, endpoint.function_codes()
        assert sum(endpoint.function_codes().values()) > 0


def test_sigkill_and_restart_lose_at_most_the_unflushed_instant(influx_url, db, tmp_path, meters, loop_thread,
                                                                collector_factory):
    port = free_port()
    unit = SequenceMeter(meters["generic_float32"])
    start_endpoint(loop_thread, port, {1: unit})
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=(
        "devices:\n" + device_line("m1", f"host: 127.0.0.1, port: {port}")))
    first = collector_factory(config)
    time.sleep(4.0)
    first.kill()
    killed_at = time.time()
    time.sleep(1.5)
    second = collector_factory(config)
    time.sleep(3.0)
    second.stop()
    served = dict(unit.served)
    missing = set(range(1, unit.seq + 1)) - set(sequence_of(stored(influx_url, db, "m1")))
    # Only the first process's newest readings, answered after its last commit, can be lost: every
    # missing reading was served before the kill, after every reading that was kept from that run.
    before_kill = {seq for seq, at in served.items() if at <= killed_at}
    assert missing <= before_kill, (missing, killed_at)
    assert all(seq > kept for seq in missing for kept in before_kill - missing), missing
    assert len(missing) <= 2  # commits every 50 ms, polls every 0.5 s: one reading, two on a stalled machine
    assert unit.seq >= 10


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[ManagedProcess]:
    server = start_influxd(tmp_path / "influxd", free_port())
    yield server
    server.stop()


@pytest.mark.slow
def test_influxdb_down_for_60_s_loses_nothing(own_influxd, tmp_path, meters, loop_thread, collector_factory):
    url = f"http://127.0.0.1:{own_influxd.port}"
    port = free_port()
    unit = SequenceMeter(meters["generic_float32"])
    start_endpoint(loop_thread, port, {1: unit})
    config = write_plant(tmp_path, influx_url=url, db="plantems", body=(
        "devices:\n" + device_line("m1", f"host: 127.0.0.1, port: {port}", interval_s=1.0)))
    collector = collector_factory(config)
    wait_for(lambda: len(stored(url, "plantems", "m1")) >= 3, timeout_s=15, what="first points")
    own_influxd.stop()
    down_from = unit.seq
    time.sleep(60.0)
    assert unit.seq >= down_from + 55  # polling went on while InfluxDB was down
    own_influxd.start(lambda: _ping(url))
    target = unit.seq
    wait_for(lambda: len(stored(url, "plantems", "m1")) >= target, timeout_s=30, what="the spooled backlog")
    collector.stop()
    assert sequence_of(stored(url, "plantems", "m1")) == list(range(1, unit.seq + 1))
    log = collector.output()
    assert log.count("InfluxDB write failed") == 1 and log.count("InfluxDB writes recovered") == 1


def _ping(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/ping", timeout=0.5).status_code == 204
    except requests.RequestException:
        return False


def test_garbage_and_exception_responses_store_nothing_false(influx_url, db, tmp_path, meters, loop_thread,
                                                             collector_factory):
    model = meters["generic_float32"]
    garbled_port, failing_port = free_port(), free_port()
    garbled, failing = SequenceMeter(model), SequenceMeter(model)
    garbled_ep = start_endpoint(loop_thread, garbled_port, {1: garbled})
    start_endpoint(loop_thread, failing_port, {1: failing})
    garbled_ep.garble = lambda frame: frame[:7] + bytes((b * 7 + 13) & 0xFF for b in frame[7:])
    failing.faults.exception_code = 4  # SLAVE DEVICE FAILURE on every read
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=(
        "devices:\n"
        + device_line("garbled", f"host: 127.0.0.1, port: {garbled_port}, timeout_s: 0.3")
        + device_line("failing", f"host: 127.0.0.1, port: {failing_port}")))
    collector = collector_factory(config)
    time.sleep(3.0)
    assert stored(influx_url, db, "garbled") == [] and stored(influx_url, db, "failing") == []
    garbled_ep.garble = None
    failing.faults.exception_code = None
    wait_for(lambda: len(stored(influx_url, db, "garbled")) >= 3 and len(stored(influx_url, db, "failing")) >= 3,
             timeout_s=45, what="both devices to recover (after their back-off)")
    collector.stop()
    for dev_id in ("garbled", "failing"):
        points = stored(influx_url, db, dev_id)
        assert all(p["p_kw"] == 1.5 * p["e_imp_kwh"] for p in points)  # nothing garbled got through
    log = collector.output()
    assert log.count("device failing (127.0.0.1 unit 1) is down: unit 1 holding@0+30: exception code 4") == 1
    assert log.count("device failing recovered") == 1
    assert log.count("device garbled recovered") == 1


def test_rtu_over_tcp_gateway(influx_url, db, tmp_path, meters, loop_thread, collector_factory):
    port = free_port()
    units = {1: SequenceMeter(meters["generic_float32"]), 9: SequenceMeter(meters["generic_float32"])}
    start_endpoint(loop_thread, port, units, framer="rtu")
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=(
        f"gateways:\n  - {{id: serial-srv, transport: rtu_over_tcp, host: 127.0.0.1, port: {port}}}\n"
        "devices:\n" + device_line("a", "gateway: serial-srv, unit_id: 1")
        + device_line("b", "gateway: serial-srv, unit_id: 9")))
    collector = collector_factory(config)
    time.sleep(3.0)
    collector.stop()
    for dev_id, unit in (("a", units[1]), ("b", units[9])):
        assert unit.seq >= 3
        assert sequence_of(stored(influx_url, db, dev_id)) == list(range(1, unit.seq + 1))


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two connected pseudo-terminals (socat): a virtual RS-485 line between collector and meter."""
    import subprocess

    a, b = str(tmp_path / "ttyA"), str(tmp_path / "ttyB")
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: Path(a).exists() and Path(b).exists(), timeout_s=10, what="socat ptys")
    yield a, b
    proc.terminate()
    proc.wait(5)


def test_rtu_over_serial_line(influx_url, db, tmp_path, meters, loop_thread, collector_factory, serial_pair):
    from plantems.simulator.server import ModbusEndpoint

    meter_side, collector_side = serial_pair
    units = {3: SequenceMeter(meters["generic_float32"]), 4: SequenceMeter(meters["generic_float32"])}
    endpoint = ModbusEndpoint("", 0, units, serial_port=meter_side, baudrate=19200)
    loop_thread.run(endpoint.start())
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=(
        f"gateways:\n  - {{id: rs485-1, transport: rtu, serial_port: {collector_side}, baudrate: 19200, "
        "timeout_s: 0.4}\n"
        "devices:\n" + device_line("s3", "gateway: rs485-1, unit_id: 3", interval_s=1.0)
        + device_line("s4", "gateway: rs485-1, unit_id: 4", interval_s=1.0)))
    collector = collector_factory(config)
    wait_for(lambda: len(stored(influx_url, db, "s4")) >= 3, timeout_s=20, what="readings over the serial line")
    collector.stop()
    loop_thread.run(endpoint.stop())
    for dev_id, unit in (("s3", units[3]), ("s4", units[4])):
        assert sequence_of(stored(influx_url, db, dev_id)) == list(range(1, unit.seq + 1))
    assert set(endpoint.function_codes()) == {3}


MALFORMED_REASONS = {
    "wrong_function_code": "function code 4 in the response, expected 3",
    "wrong_protocol_id": "protocol id 1 in the response, expected 0",
    "wrong_transaction_id": "in the response, expected",
    "wrong_unit_id": "unit id 2 in the response, expected 1",
    "short_byte_count": "byte count 58 in the response, expected 60 for 30 asked for",
    "odd_byte_count": "byte count 61 in the response, expected 60 for 30 asked for",
    "stall": "No response received",
}


def test_malformed_responses_become_errors_never_points(influx_url, db, tmp_path, meters, loop_thread,
                                                        collector_factory):
    registers = {0: float_words(12.5)[0], 1: float_words(12.5)[1], 22: float_words(1000.25)[0],
                 23: float_words(1000.25)[1]}  # p_kw and e_imp_kwh of generic_float32
    servers = {fault.value: RawModbusServer(registers, fault=fault) for fault in Fault}
    servers["raw_ok"] = RawModbusServer(registers)  # the same server, answering correctly
    ports = {name: free_port() for name in servers}
    for name, server in servers.items():
        loop_thread.run(server.start(ports[name]))
    healthy_port = free_port()
    healthy = SequenceMeter(meters["generic_float32"])
    start_endpoint(loop_thread, healthy_port, {1: healthy})
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body="devices:\n" + "".join(
        # the faulty ones time out fast; the correct one gets as long as its 0.5-s poll allows (a loaded machine)
        device_line(name, f"host: 127.0.0.1, port: {port}, timeout_s: {0.45 if name == 'raw_ok' else 0.3}, "
                          "rated_kw: 500")
        for name, port in ports.items()) + device_line("healthy", f"host: 127.0.0.1, port: {healthy_port}"))
    collector = collector_factory(config)

    def errored_sources() -> set[str]:
        found = rows(influx_url, db, "SELECT max(errors) FROM collector_status GROUP BY source")
        return {r["source"] for r in found if r["max"] >= 1}

    wait_for(lambda: len(stored(influx_url, db, "raw_ok")) >= 3 and len(stored(influx_url, db, "healthy")) >= 5
             and errored_sources() == set(MALFORMED_REASONS),
             timeout_s=20, what="good readings and a status report")
    collector.stop()

    for name in MALFORMED_REASONS:
        assert stored(influx_url, db, name) == [], name
        assert servers[name].function_codes[3] >= 1, name  # it was asked, and answered badly
    assert all(p["p_kw"] == 12.5 and p["e_imp_kwh"] == 1000.25 for p in stored(influx_url, db, "raw_ok"))
    assert sequence_of(stored(influx_url, db, "healthy")) == list(range(1, healthy.seq + 1))
    assert healthy.seq >= 5
    # the latest state, and the most errors any status report carried (a device backing off may report 0 new ones)
    status = rows(influx_url, db, "SELECT last(up) AS up, max(errors) AS errors FROM collector_status "
                                  "GROUP BY source")
    by_source = {r["source"]: r for r in status}
    for name in MALFORMED_REASONS:
        assert by_source[name]["up"] == 0.0 and by_source[name]["errors"] >= 1, name
    assert by_source["raw_ok"]["errors"] == 0.0 and by_source["healthy"]["errors"] == 0.0
    log = collector.output()
    for name, reason in MALFORMED_REASONS.items():
        down = [line for line in log.splitlines() if f"device {name} (127.0.0.1 unit 1) is down" in line]
        assert len(down) == 1 and " WARNING " in down[0] and reason in down[0], (name, down)
    assert "Traceback" not in log and " ERROR " not in log, log
