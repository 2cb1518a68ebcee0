"""Alerts published to an MQTT topic (QoS 1), e.g. for shift-room displays."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from plantems.analytics.notify.base import Alert, ChannelError

__all__ = ["MqttTopic"]


class MqttTopic:
    def __init__(self, host: str, port: int, topic: str, *, username: str | None = None,
                 password: str | None = None, name: str = "mqtt", timeout_s: float = 5.0,
                 recipients: Sequence[str] = (), tls_ca_file: Path | None = None) -> None:
        self.host, self.port, self.topic, self.name, self.timeout_s = host, port, topic, name, timeout_s
        self.recipients, self.tls_ca_file = list(recipients), tls_ca_file
        self.username, self.password = username, password

    def send(self, alert: Alert) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="")
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        try:
            if self.tls_ca_file is not None:
                client.tls_set(ca_certs=str(self.tls_ca_file))
            client.connect(self.host, self.port)
            client.loop_start()
            info = client.publish(self.topic.replace("{site}", alert.site).replace("{level}", alert.level),
                                  json.dumps({**asdict(alert), "recipients": self.recipients}).encode(), qos=1)
            info.wait_for_publish(self.timeout_s)
            if not info.is_published():
                raise ChannelError(f"{self.name}: {self.host}:{self.port}: not acknowledged in {self.timeout_s} s")
        except OSError as exc:
            raise ChannelError(f"{self.name}: {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc
        finally:
            client.loop_stop()
            client.disconnect()
