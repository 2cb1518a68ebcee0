"""MQTT warnings are rate-limited by condition, not by topic: a flood of new topics logs one line."""

from __future__ import annotations

import logging

import paho.mqtt.client as paho

from plantems.collector.mqtt.client import MqttSource
from plantems.collector.spool import Spool
from plantems.config import load_plant
from tests.mqtt.plant_body import MQTT_BODY
from tests.support import write_plant


def message(topic: str, payload: bytes) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    return msg


def test_unknown_topics_and_bad_payloads_log_once_per_condition(tmp_path, caplog):
    config = write_plant(tmp_path, influx_url="http://127.0.0.1:9", db="x", init=False,
                         body=MQTT_BODY.format(port=1883, client_id="flood"))
    plant = load_plant(config)
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9)
    source = MqttSource(plant, spool, topic_filters=["plant/+/+/telemetry"], client_id="flood")
    with caplog.at_level(logging.WARNING, logger="plantems.collector.mqtt.client"):
        for n in range(20_000):  # each a new topic naming no configured device
            source._spool_message(message(f"plant/testsite/ghost-{n}/telemetry", b'{"power": {"total_kw": 1}}'))
        for n in range(300):  # bad payloads
            source._spool_message(message("plant/testsite/fan-1/telemetry", f"garbage {n}".encode()))
    spool.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["MQTT plant/testsite/ghost-0/telemetry ignored: topic plant/testsite/ghost-0/telemetry: "
                     "no device with topic id 'ghost-0' in mapping 'plc-json'",
                     "MQTT plant/testsite/fan-1/telemetry rejected: payload is not JSON"]
    assert (source.counters.unknown, source.counters.rejected) == (20_000, 300)
    assert len(spool.dead_letters()) == 300  # every bad payload kept, committed by the flush
    spool.close()
