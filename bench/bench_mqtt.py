"""MQTT benchmark: messages/s from Mosquitto through the collector into InfluxDB.

A separate publisher process sends N JSON payloads (~150 bytes, 6 fields) at QoS 1 to
Mosquitto (Debian). Measured in this process: the collector's MQTT source (decode, spool,
ack after commit, write to InfluxDB 1.6) until every point is acknowledged by InfluxDB, and,
in the same run, a bare paho subscriber that only parses the JSON. Prints messages/s and
CPU per 1,000 messages for both. Target (issue 3): at least 10,000 messages/s end to end.

    .venv/bin/python bench/bench_mqtt.py --messages 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEVICES = 100


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def payload(n: int) -> bytes:
    return json.dumps({"ts": round(time.time(), 3), "power": {"total_kw": 100.0 + n % 50, "pf": 0.93},
                       "voltage": {"l1": 229.8}, "current": {"l1": 152.4},
                       "energy": {"import_kwh": 12345.6 + n, "import_kvarh": 2345.1}}).encode()


def publish(port: int, count: int, prefix: str) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{prefix}")
    client.max_inflight_messages_set(20)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    last = None
    for n in range(count):
        last = client.publish(f"{prefix}/cs/d{n % DEVICES}/telemetry", payload(n), qos=1)
    assert last is not None
    last.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


def plant_yaml(folder: Path, influx_url: str, mqtt_port: int) -> Path:
    devices = "\n".join(f"  - {{id: d{i}, area: a, kind: compressor, mqtt: {{mapping: m}}, max_kw: 5000}}"
                        for i in range(DEVICES))
    path = folder / "plant.yaml"
    path.write_text(f"""site: {{id: cs}}
influxdb: {{url: '{influx_url}', api: v1, raw_database: bench}}
spool: {{path: '{folder}/spool.sqlite'}}
status_interval_s: 60
mqtt:
  port: {mqtt_port}
  client_id: bench-collector
  mappings:
    - id: m
      topic: plant/{{site}}/{{device}}/telemetry
      fields:
        p_kw: {{path: power.total_kw}}
        pf: {{path: power.pf, min: -1, max: 1}}
        v_l1_v: {{path: voltage.l1}}
        i_l1_a: {{path: current.l1}}
        e_imp_kwh: {{path: energy.import_kwh}}
        eq_imp_kvarh: {{path: energy.import_kvarh}}
devices:
{devices}
""")
    return path


async def run_collector(config: Path, port: int, count: int) -> dict[str, float]:
    from plantems.collector.service import Collector
    from plantems.config import load_plant
    from plantems.influx import init_databases

    plant = load_plant(config)
    init_databases(plant.influxdb)
    collector = Collector(plant)
    runner = asyncio.create_task(collector.run())
    assert collector.mqtt is not None
    while not collector.mqtt.counters.connected:
        await asyncio.sleep(0.05)
    cpu0, t0 = cpu_s(), time.monotonic()
    publisher = subprocess.Popen([sys.executable, __file__, "--publish", str(port), str(count), "plant"])
    while collector.writer.counters.written_lines < count:
        await asyncio.sleep(0.01)
    elapsed, cpu = time.monotonic() - t0, cpu_s() - cpu0
    publisher.wait(60)
    collector.stop_event.set()
    await runner
    return {"msgs_per_s": count / elapsed, "cpu_ms_per_1000": 1000 * cpu * 1000 / count, "cores": cpu / elapsed}


def run_bare(port: int, count: int) -> dict[str, float]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    done = threading.Event()
    received = 0

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal received
        json.loads(message.payload)
        received += 1
        if received == count:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("bare/+/+/telemetry", qos=1)
    client.loop_start()
    time.sleep(0.5)
    cpu0, t0 = cpu_s(), time.monotonic()
    subprocess.run([sys.executable, __file__, "--publish", str(port), str(count), "bare"], check=True)
    done.wait(120)
    elapsed, cpu = time.monotonic() - t0, cpu_s() - cpu0
    client.loop_stop()
    return {"msgs_per_s": received / elapsed, "cpu_ms_per_1000": 1000 * cpu * 1000 / max(received, 1),
            "cores": cpu / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--publish", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish(int(args.publish[0]), int(args.publish[1]), args.publish[2])
        return
    from plantems.localservers import free_port, start_influxd, start_mosquitto

    folder = Path(tempfile.mkdtemp(prefix="plantems-bench-mqtt-"))
    influxd = start_influxd(folder / "influxd", free_port())
    mqtt_port = free_port()
    broker = start_mosquitto(folder / "mosquitto", mqtt_port)
    try:
        config = plant_yaml(folder, f"http://127.0.0.1:{influxd.port}", mqtt_port)
        print(f"{args.messages:,} JSON messages (~{len(payload(0))} bytes, 6 fields) at QoS 1, {DEVICES} devices")
        col = asyncio.run(run_collector(config, mqtt_port, args.messages))
        bare = run_bare(mqtt_port, args.messages)
    finally:
        broker.stop()
        influxd.stop()
    print(f"collector, into InfluxDB: {col['msgs_per_s']:,.0f} msgs/s, {col['cpu_ms_per_1000']:.0f} ms CPU "
          f"per 1,000 messages ({col['cores']:.2f} cores)")
    print(f"bare paho subscriber, JSON only: {bare['msgs_per_s']:,.0f} msgs/s, {bare['cpu_ms_per_1000']:.0f} ms CPU "
          f"per 1,000 messages ({bare['cores']:.2f} cores)")
    print(f"collector / bare throughput: {col['msgs_per_s'] / bare['msgs_per_s']:.2f} (target: >= 10,000 msgs/s)")


if __name__ == "__main__":
    main()
