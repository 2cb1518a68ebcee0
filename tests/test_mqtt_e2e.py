"""MQTT end to end: Mosquitto (Debian) -> plantems collect (child process) -> InfluxDB."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantems.localservers import ManagedProcess, free_port, start_influxd, start_mosquitto
from tests.mqtt.plant_body import MQTT_BODY
from tests.support import CollectorProcess, Publisher, rows, wait_for, write_plant


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[ManagedProcess]:
    broker = start_mosquitto(tmp_path / "mosquitto", free_port())
    yield broker
    broker.stop()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list]:
    things: list = []
    yield things
    for thing in reversed(things):
        (thing.stop if hasattr(thing, "stop") else thing.close)()


def plant(tmp_path: Path, influx_url: str, db: str, port: int, **kw) -> Path:
    return write_plant(tmp_path, influx_url=influx_url, db=db,
                       body=MQTT_BODY.format(port=port, client_id=f"collector-{db}"), **kw)


def series(url: str, db: str, device: str, field: str = "e_imp_kwh") -> list[dict]:
    return rows(url, db, f"SELECT {field}, p_kw, area, kind, site FROM electrical WHERE device = '{device}'")


def counters(url: str, db: str, device: str) -> list[int]:
    """The distinct readings stored: QoS 1 is at least once, and a message redelivered after a broker restart
    is stamped again on arrival (its payload has no time), so a duplicate is allowed; a gap is not."""
    return sorted({int(r["e_imp_kwh"]) for r in series(url, db, device) if r["e_imp_kwh"] is not None})


@pytest.mark.parametrize("protocol", ["v311", "v5"])
def test_payload_formats_map_to_fields_tags_and_times(influx_url, db, tmp_path, mosquitto, started, protocol):
    config = plant(tmp_path, influx_url, db, mosquitto.port)
    config.write_text(config.read_text().replace("  client_id:", f"  protocol: {protocol}\n  client_id:"))
    started.append(CollectorProcess(config, tmp_path / "collector.log").start())
    publisher = Publisher(mosquitto.port)
    started.append(publisher)
    wait_for(lambda: "MQTT connected" in (tmp_path / "collector.log").read_text(), timeout_s=15, what="subscribed")
    now_s = int(time.time())
    publisher.publish("plant/testsite/fan-1/telemetry",
                      {"power": {"total_kw": 55.5}, "energy": {"import_kwh": 1234.5}, "v": {"l1": 2305}, "ts": now_s})
    publisher.publish("meters/C1/p_kw", 150_000)
    publisher.publish("batch/pump-1", [{"t": "2026-01-02T03:04:05Z", "p_kw": 1.0, "e_imp_kwh": 10.0},
                                       {"t": "2026-01-02T03:04:06Z", "p_kw": 2.0, "e_imp_kwh": 11.0}])
    publisher.publish("production/cast-1", {"tonnes": 12.5})  # a coil off the caster
    publisher.publish("plant/testsite/fan-1/telemetry", b"garbage")  # rejected, kept, collector goes on
    publisher.publish("plant/testsite/ghost/telemetry", {"power": {"total_kw": 1}})  # unknown: no series
    wait_for(lambda: len(counters(influx_url, db, "pump-1")) == 2 and series(influx_url, db, "comp-1"),
             timeout_s=15, what="the readings")
    fan = rows(influx_url, db, "SELECT * FROM electrical WHERE device = 'fan-1'")
    assert len(fan) == 1
    assert (fan[0]["time"], fan[0]["p_kw"], fan[0]["e_imp_kwh"], fan[0]["v_l1_v"]) == (now_s * 10**9, 55.5, 1234.5,
                                                                                         230.5)
    assert (fan[0]["site"], fan[0]["area"], fan[0]["kind"]) == ("testsite", "util", "exhaust_fan")
    assert series(influx_url, db, "comp-1")[0]["p_kw"] == 150.0
    produced = rows(influx_url, db, "SELECT output_t FROM production")
    assert [(r.get("line"), r["output_t"]) for r in
            rows(influx_url, db, "SELECT output_t FROM production GROUP BY line")] == [("cast-1", 12.5)]
    assert len(produced) == 1
    pump = series(influx_url, db, "pump-1")
    assert [(r["time"], r["p_kw"]) for r in pump] == [(1767323045 * 10**9, 1.0), (1767323046 * 10**9, 2.0)]
    assert rows(influx_url, db, "SHOW TAG VALUES FROM electrical WITH KEY = device") == [
        {"key": "device", "value": v} for v in ("comp-1", "fan-1", "pump-1")]
    wait_for(lambda: "ghost" in (tmp_path / "collector.log").read_text(), timeout_s=5, what="unknown logged")
    log = (tmp_path / "collector.log").read_text()
    assert "MQTT plant/testsite/fan-1/telemetry rejected: payload is not JSON" in log
    assert "MQTT plant/testsite/ghost/telemetry ignored: topic plant/testsite/ghost/telemetry: no device" in log
    import sqlite3
    with sqlite3.connect(tmp_path / "spool.sqlite") as spool:
        dead = spool.execute("SELECT target, line, error FROM dead_letter").fetchall()
    assert dead == [("mqtt:plant/testsite/fan-1/telemetry", "garbage", "payload is not JSON")]


def publish_sequence(publisher: Publisher, stop: threading.Event, sent: list[int], rate_hz: float = 20.0) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        publisher.publish("plant/testsite/fan-1/telemetry", {"energy": {"import_kwh": n}, "power": {"total_kw": n / 2}})
        sent.append(n)
        time.sleep(1 / rate_hz)


def run_publisher(publisher: Publisher, started: list) -> tuple[list[int], threading.Event]:
    sent: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=publish_sequence, args=(publisher, stop, sent), daemon=True)
    thread.start()

    class Stopper:
        def stop(self) -> None:
            stop.set()
            thread.join(5)

    started.append(Stopper())
    return sent, stop


def streaming(tmp_path: Path, url: str, db: str, port: int, started: list
              ) -> tuple[CollectorProcess, list[int], threading.Event]:
    """A collector subscribed and a PLC publishing numbered readings, the first 10 stored."""
    collector = CollectorProcess(plant(tmp_path, url, db, port), tmp_path / "collector.log").start()
    started.append(collector)
    wait_for(lambda: "MQTT connected" in collector.output(), timeout_s=15, what="subscribed")
    publisher = Publisher(port)
    started.append(publisher)
    sent, stop = run_publisher(publisher, started)
    wait_for(lambda: len(counters(url, db, "fan-1")) >= 10, timeout_s=15, what="first readings")
    return collector, sent, stop


def all_stored(url: str, db: str, sent: list[int], stop: threading.Event) -> list[int]:
    """Stop publishing, wait until InfluxDB has as many readings as were sent, return them."""
    stop.set()
    time.sleep(0.2)  # the publisher finishes its current message (it publishes every 50 ms)
    wait_for(lambda: len(counters(url, db, "fan-1")) >= len(sent), timeout_s=30, what="every reading sent")
    return counters(url, db, "fan-1")


@pytest.mark.slow
def test_collector_killed_for_30_s_loses_nothing(influx_url, db, tmp_path, mosquitto, started):
    collector, sent, stop = streaming(tmp_path, influx_url, db, mosquitto.port, started)
    collector.kill()
    killed_at = len(sent)
    time.sleep(30)
    assert len(sent) - killed_at >= 500  # the plant kept publishing
    collector.start()
    time.sleep(2)
    assert all_stored(influx_url, db, sent, stop) == list(range(1, len(sent) + 1))
    assert all(r["p_kw"] == r["e_imp_kwh"] / 2 for r in series(influx_url, db, "fan-1"))
    assert "session present: True" in collector.output()


def test_broker_restart_mid_stream(influx_url, db, tmp_path, mosquitto, started):
    collector, sent, stop = streaming(tmp_path, influx_url, db, mosquitto.port, started)
    mosquitto.stop()
    time.sleep(3)
    mosquitto.start(lambda: _port_open(mosquitto.port))
    wait_for(lambda: collector.output().count("MQTT connected") >= 2, timeout_s=30, what="reconnect")
    time.sleep(2)
    # the publisher queued while the broker was away, the broker kept the collector's session:
    assert all_stored(influx_url, db, sent, stop) == list(range(1, len(sent) + 1))
    assert collector.output().count("MQTT disconnected") == 1


def _port_open(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_influxdb_down_while_mqtt_arrives(tmp_path, mosquitto, started):
    influxd = start_influxd(tmp_path / "influxd", free_port())
    started.append(influxd)
    url = f"http://127.0.0.1:{influxd.port}"
    _, sent, stop = streaming(tmp_path, url, "plantems", mosquitto.port, started)
    influxd.stop()
    time.sleep(10)
    influxd.start(lambda: _port_open(influxd.port))
    assert all_stored(url, "plantems", sent, stop) == list(range(1, len(sent) + 1))


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    """A test CA, a server certificate for 127.0.0.1, and a Mosquitto password file."""
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, cwd=d)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=plantems test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
        "-out", "server.csr")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
    (d / "passwd").write_text("")
    run("mosquitto_passwd", "-b", str(d / "passwd"), "collector", "right-password")
    return {name: d / name for name in ("ca.crt", "server.crt", "server.key", "passwd")}


@pytest.mark.parametrize("password", ["right-password", "wrong-password"])
def test_tls_with_username_and_password(influx_url, db, tmp_path, tls_files, started, password, monkeypatch):
    port = free_port()
    broker = start_mosquitto(tmp_path / "mosquitto", port, listener=False, extra_conf=(
        f"listener {port} 127.0.0.1\ncafile {tls_files['ca.crt']}\ncertfile {tls_files['server.crt']}\n"
        f"keyfile {tls_files['server.key']}\nallow_anonymous false\npassword_file {tls_files['passwd']}\n"))
    started.append(broker)
    (tmp_path / "mqtt-password").write_text(password)
    body = MQTT_BODY.format(port=port, client_id=f"c-{db}").replace(
        "  client_id:", f"  tls: {{ca_file: {tls_files['ca.crt']}}}\n  username: collector\n"
                       f"  password: {{file: {tmp_path / 'mqtt-password'}}}\n  client_id:")
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=body)
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    started.append(collector)
    if password == "wrong-password":
        wait_for(lambda: "refused the connection" in collector.output(), timeout_s=15, what="the refusal")
        # Mosquitto answers a wrong password with "Not authorized" (reason code 135)
        assert "refused the connection: Not authorized (check mqtt.username and the password secret)" \
            in collector.output()
        assert password not in collector.output()
        return
    wait_for(lambda: "MQTT connected" in collector.output(), timeout_s=15, what="TLS connection")
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-pub")
    pub.tls_set(ca_certs=str(tls_files["ca.crt"]))
    pub.username_pw_set("collector", "right-password")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    pub.publish("meters/C1/e_imp_kwh", b"77.5", qos=1).wait_for_publish(5)
    pub.loop_stop()
    wait_for(lambda: counters(influx_url, db, "comp-1") == [77], timeout_s=10, what="the reading over TLS")
