"""MQTT source: payload mapping (pure) and the paho client (the collector's only paho import)."""

from plantems.collector.mqtt.decode import MqttDecoder, PayloadError, Reading, UnknownDevice

__all__ = ["MqttDecoder", "PayloadError", "Reading", "UnknownDevice"]
