"""Deliver one alert to every channel: retried with backoff, in parallel, so one failing
channel never delays or blocks the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from plantems.analytics.notify.base import Alert, Channel, ChannelError, Delivery
from plantems.analytics.notify.email import Email
from plantems.analytics.notify.http import DingTalk, Webhook, WeCom
from plantems.analytics.notify.mqtt import MqttTopic

__all__ = ["CHANNELS", "deliver"]

log = logging.getLogger(__name__)

CHANNELS: Final[Mapping[str, type]] = {"webhook": Webhook, "wecom": WeCom, "dingtalk": DingTalk, "email": Email,
                                       "mqtt": MqttTopic}


def _with_retries(channel: Channel, alert: Alert, attempts: int, backoff_s: float) -> Delivery:
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            channel.send(alert)
            return Delivery(channel.name, True, attempt)
        except ChannelError as exc:
            error = str(exc)
            if attempt < attempts:
                time.sleep(backoff_s * 2 ** (attempt - 1))
    log.error("alert %s/%s not delivered by %s after %d attempts: %s", alert.rule, alert.level, channel.name,
              attempts, error)
    return Delivery(channel.name, False, attempts, error)


def deliver(alert: Alert, channels: Sequence[Channel], *, attempts: int = 3, backoff_s: float = 1.0) -> list[Delivery]:
    """Send ``alert`` through every channel at once; the results in channel order."""
    if not channels:
        return []
    with ThreadPoolExecutor(max_workers=len(channels)) as pool:
        futures = [pool.submit(_with_retries, channel, alert, attempts, backoff_s) for channel in channels]
        return [future.result() for future in futures]
