"""Who gets an alert: the shift on duty (site timezone) and its channels, built once at start.

Secrets are resolved here, when ``plantems analyze`` starts, so a missing variable or
file refuses to start instead of failing at the first peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from plantems.analytics.notify.base import Channel
from plantems.analytics.notify.email import Email
from plantems.analytics.notify.http import DingTalk, Webhook, WeCom
from plantems.analytics.notify.mqtt import MqttTopic
from plantems.config import PlantConfig
from plantems.demandconfig import AlertsConfig, ChannelConfig
from plantems.secret import Secret
from plantems.yamlconf import ConfigError

__all__ = ["Roster", "build_channel"]


def _reveal(secret: Secret | None, where: str) -> str | None:
    if secret is None:
        return None
    try:
        return secret.resolve().get_secret_value()
    except ConfigError as exc:
        raise ConfigError([f"{where}: {problem}" for problem in exc.problems]) from None


def build_channel(config: ChannelConfig, plant: PlantConfig, recipients: Sequence[str]) -> Channel:
    """One configured channel, with its secrets read and the shift's recipients."""
    where = f"alerts.channels {config.id}"
    if config.type == "webhook":
        url = config.url if isinstance(config.url, str) else _reveal(config.url, where)
        return Webhook(url or "", name=config.id, recipients=recipients)
    if config.type == "wecom":
        return WeCom(_reveal(config.url, where) or "", name=config.id, recipients=recipients)
    if config.type == "dingtalk":
        return DingTalk(_reveal(config.url, where) or "", _reveal(config.secret, where) or "", name=config.id,
                        recipients=recipients)
    if config.type == "email":
        return Email(config.host, config.port, sender=config.sender, recipients=list(recipients),
                     starttls=config.starttls, username=config.username,
                     password=_reveal(config.password, where), name=config.id)
    broker = plant.mqtt
    host = config.host or (broker.host if broker else "127.0.0.1")
    port = config.port or (broker.port if broker and config.host is None else 1883)
    username = config.username if config.host else (config.username or (broker.username if broker else None))
    password = config.password if config.host else (config.password or (broker.password if broker else None))
    tls = broker.tls if broker and config.host is None else None
    return MqttTopic(host, port, config.topic, username=username, password=_reveal(password, where),
                     name=config.id, recipients=recipients, tls_ca_file=tls.ca_file if tls else None)


class Roster:
    def __init__(self, plant: PlantConfig) -> None:
        self.tz = plant.site.tz
        self.config: AlertsConfig | None = plant.alerts
        self._channels: dict[str, list[Channel]] = {}
        if self.config is None:
            return
        by_id = {c.id: c for c in self.config.channels}
        for shift in self.config.shifts:
            self._channels[shift.id] = [build_channel(by_id[cid], plant, recipients)
                                        for cid, recipients in shift.notify.items()]

    def on_duty(self, time_ns: int) -> tuple[str, list[Channel]]:
        """The shift on duty at ``time_ns`` and its channels (none without an ``alerts:`` section)."""
        if self.config is None:
            return "", []
        shift = self.config.shift_at(datetime.fromtimestamp(time_ns / 1e9, self.tz).time())
        return shift.id, self._channels[shift.id]
