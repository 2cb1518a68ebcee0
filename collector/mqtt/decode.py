"""MQTT payload mapping (pure): topic + payload bytes -> device readings, or a reason to reject.

Formats: JSON (fields by dot path, scaled to canonical units), a single number
per topic (the field is the topic's ``{field}`` level), and a JSON array of
readings. Timestamps come from the payload when present (epoch s/ms/us/ns, or
ISO 8601 with the configured timezone for naive ones), else the receive time.
A payload is accepted whole or rejected whole: one bad value rejects the message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from plantems.config import Device, PlantConfig
from plantems.mqttconfig import FieldMapping, MqttMapping, PayloadFormat, TimestampMapping

__all__ = ["MqttDecoder", "PayloadError", "Reading", "UnknownDevice"]

_MAX_PAYLOAD_BYTES = 1_000_000


class PayloadError(ValueError):
    """The payload is not what the mapping describes; ``str()`` is the reason."""


class UnknownDevice(LookupError):
    """A topic that fits a mapping but names no configured device."""


@dataclass(frozen=True, slots=True)
class Reading:
    device: Device
    time_ns: int
    values: dict[str, float]


def _at_path(document: Any, path: str) -> Any:
    node = document
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _number(field: str, raw: Any, spec: FieldMapping) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(f"field {field}: {raw!r} is not a number")
    value = float(raw) * spec.scale
    if not math.isfinite(value):
        raise PayloadError(f"field {field}: {raw!r} is not finite")
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        raise PayloadError(f"field {field}: {value!r} is outside the configured range [{spec.min}, {spec.max}]")
    return value


_EPOCH_UNITS = (("ns", 1e17, 1), ("us", 1e14, 1_000), ("ms", 1e11, 1_000_000), ("s", 0.0, 1_000_000_000))


def _epoch_ns(raw: int | float, unit: str) -> int:
    if unit == "auto":  # by magnitude: seconds ~1.7e9, ms ~1.7e12, us ~1.7e15, ns ~1.7e18
        unit = next(name for name, floor, _ in _EPOCH_UNITS if abs(raw) >= floor)
    factor = {name: f for name, _, f in _EPOCH_UNITS}[unit]
    # integers stay exact (a float holds ns epochs only to ~256 ns)
    return raw * factor if isinstance(raw, int) else round(raw * factor)


def _timestamp_ns(raw: Any, spec: TimestampMapping, default_tz: ZoneInfo) -> int:
    if isinstance(raw, bool):
        raise PayloadError(f"timestamp {raw!r} is not a time")
    if isinstance(raw, int | float) and spec.unit != "iso":
        if not math.isfinite(raw):
            raise PayloadError(f"timestamp {raw!r} is not finite")
        return _epoch_ns(raw, spec.unit)
    if isinstance(raw, str) and spec.unit in ("auto", "iso"):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise PayloadError(f"timestamp {raw!r} is not ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(spec.timezone) if spec.timezone else default_tz)
        return int(moment.timestamp() * 1_000_000) * 1_000
    raise PayloadError(f"timestamp {raw!r} does not match unit {spec.unit}")


class MqttDecoder:
    """Maps messages of the configured mappings to readings of the configured devices."""

    def __init__(self, plant: PlantConfig) -> None:
        self.site = plant.site.id
        # older than the raw retention policy: InfluxDB would refuse it, so refuse it here with a reason
        self.max_age_ns = plant.influxdb.raw_retention_days * 86_400 * 1_000_000_000
        self.tz = plant.site.tz
        self.mappings = plant.mqtt.mappings if plant.mqtt else ()
        self.devices = {(d.mqtt.mapping, d.mqtt.topic_id or d.id): d for d in plant.mqtt_devices if d.mqtt}

    def decode(self, topic: str, payload: bytes, *, received_ns: int) -> list[Reading]:
        """Readings in the message; raises UnknownDevice or PayloadError (never anything else)."""
        for mapping in self.mappings:
            matched = mapping.match(topic, site=self.site)
            if matched is None:
                continue
            device = self.devices.get((mapping.id, matched[0]))
            if device is None:
                raise UnknownDevice(f"topic {topic}: no device with topic id {matched[0]!r} in mapping {mapping.id!r}")
            try:
                readings = self._payload(mapping, device, matched[1], payload, received_ns)
            except OverflowError:
                raise PayloadError("a number in the payload is out of range") from None
            for reading in readings:
                if reading.time_ns < received_ns - self.max_age_ns:
                    raise PayloadError(f"timestamp {reading.time_ns} ns is older than the raw retention policy")
            return readings
        raise UnknownDevice(f"topic {topic}: fits no configured mapping")

    def _payload(self, mapping: MqttMapping, device: Device, field_level: str | None, payload: bytes,
                 received_ns: int) -> list[Reading]:
        if len(payload) > _MAX_PAYLOAD_BYTES:
            raise PayloadError(f"payload of {len(payload)} bytes is over {_MAX_PAYLOAD_BYTES}")
        try:
            document = json.loads(payload)
        except (ValueError, RecursionError):
            raise PayloadError("payload is not JSON" + (" (nor a number)" if field_level else "")) from None
        if mapping.format is PayloadFormat.VALUE:
            return [self._value(mapping, device, field_level or "", document, received_ns)]
        if mapping.format is PayloadFormat.JSON_ARRAY:
            if not isinstance(document, list) or not document:
                raise PayloadError("payload is not a non-empty JSON array")
            return [self._object(mapping, device, item, received_ns) for item in document]
        return [self._object(mapping, device, document, received_ns)]

    def _value(self, mapping: MqttMapping, device: Device, field: str, document: Any, received_ns: int) -> Reading:
        spec = next((s for f, s in mapping.fields.items() if f.value == field), None)
        if spec is None:
            raise PayloadError(f"field {field!r} is not mapped; mapped: {sorted(f.value for f in mapping.fields)}")
        return Reading(device, received_ns, {field: _number(field, document, spec)})

    def _object(self, mapping: MqttMapping, device: Device, document: Any, received_ns: int) -> Reading:
        if not isinstance(document, dict):
            raise PayloadError(f"expected a JSON object, got {type(document).__name__}")
        values = {}
        for field, spec in mapping.fields.items():
            raw = _at_path(document, spec.path or field.value)
            if raw is not None:
                values[field.value] = _number(field.value, raw, spec)
        if not values:
            raise PayloadError(f"none of the mapped fields is present ({', '.join(f.value for f in mapping.fields)})")
        time_ns = received_ns
        if mapping.timestamp is not None:
            raw_time = _at_path(document, mapping.timestamp.path)
            if raw_time is not None:
                time_ns = _timestamp_ns(raw_time, mapping.timestamp, self.tz)
                if time_ns > received_ns + mapping.max_future_s * 1e9:
                    raise PayloadError(f"timestamp {raw_time!r} is {(time_ns - received_ns) / 1e9:.0f} s in the "
                                       f"future (max_future_s {mapping.max_future_s:g})")
        return Reading(device, time_ns, values)
