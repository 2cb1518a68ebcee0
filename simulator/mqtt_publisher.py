"""Simulated PLC gateways publishing the plant's MQTT devices (QoS 1, every second).

Payloads are laid out by each device's mapping, the inverse of the collector's
decoding: JSON objects with fields at their paths (divided by their scale), a
number per topic for ``value`` mappings, a one-element array for
``json_array`` ones; timestamps as epoch seconds (or ISO 8601 for ``iso``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from plantems.config import Device, PlantConfig
from plantems.mqttconfig import MqttMapping, PayloadFormat

__all__ = ["MqttPublisher", "payloads_for"]

log = logging.getLogger(__name__)


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _reading(mapping: MqttMapping, values: Mapping[str, float], t_s: float) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for field, spec in mapping.fields.items():
        if field.value in values:
            _put(document, spec.path or field.value, round(values[field.value] / spec.scale, 6))
    if mapping.timestamp is not None:
        stamp: Any = round(t_s, 3)
        if mapping.timestamp.unit == "iso":
            stamp = datetime.fromtimestamp(t_s, UTC).isoformat()
        elif mapping.timestamp.unit in ("ms", "us", "ns"):
            stamp = int(t_s * {"ms": 1e3, "us": 1e6, "ns": 1e9}[mapping.timestamp.unit])
        _put(document, mapping.timestamp.path, stamp)
    return document


def payloads_for(plant: PlantConfig, device: Device, values: Mapping[str, float], t_s: float
                 ) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` pairs that carry ``values`` of ``device`` at ``t_s`` (pure)."""
    mapping = plant.mapping_of(device)
    topic_id = (device.mqtt.topic_id if device.mqtt else None) or device.id
    topic = mapping.topic.replace("{site}", plant.site.id).replace("{device}", topic_id)
    if mapping.format is PayloadFormat.VALUE:
        return [(topic.replace("{field}", field.value), json.dumps(round(values[field.value] / spec.scale, 6)).encode())
                for field, spec in mapping.fields.items() if field.value in values]
    document: Any = _reading(mapping, values, t_s)
    if mapping.format is PayloadFormat.JSON_ARRAY:
        document = [document]
    return [(topic, json.dumps(document).encode())]


class MqttPublisher:
    """One paho client publishing every MQTT device of the plant."""

    def __init__(self, plant: PlantConfig) -> None:
        assert plant.mqtt is not None
        self.plant = plant
        cfg = plant.mqtt
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"plantems-sim-{plant.site.id}")
        if cfg.tls is not None:
            self.client.tls_set(ca_certs=str(cfg.tls.ca_file))
        if cfg.username is not None:
            self.client.username_pw_set(cfg.username, cfg.password.resolve().get_secret_value() if cfg.password
                                        else None)
        self.client.max_queued_messages_set(0)  # a PLC buffers while the broker is away
        self.client.reconnect_delay_set(1, 10)
        self.client.connect_async(cfg.host, cfg.port)
        self.client.loop_start()

    def publish(self, values: Mapping[str, Mapping[str, float]], t_s: float) -> None:
        for device in self.plant.mqtt_devices:
            for topic, payload in payloads_for(self.plant, device, values[device.id], t_s):
                self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
