"""HTTP channels: a generic JSON webhook, and the WeCom and DingTalk group robots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import requests

from plantems.analytics.notify.base import Alert, ChannelError

__all__ = ["DingTalk", "WeCom", "Webhook", "dingtalk_signature"]

_TIMEOUT_S = 5.0


def _post(name: str, url: str, payload: dict[str, Any], *, params: dict[str, str] | None = None,
          robot: bool = False) -> None:
    safe_url = url.split("?")[0]  # robot keys live in the query: never log them
    try:
        response = requests.post(url, json=payload, params=params, timeout=_TIMEOUT_S)
    except requests.RequestException as exc:
        raise ChannelError(f"{name}: {safe_url}: {type(exc).__name__}") from exc
    if response.status_code >= 300:
        raise ChannelError(f"{name}: {safe_url}: HTTP {response.status_code}")
    if robot:  # WeCom and DingTalk answer 200 with an error code in the body
        body = response.json()
        if body.get("errcode", 0) != 0:
            raise ChannelError(f"{name}: {safe_url}: errcode {body.get('errcode')} {body.get('errmsg', '')}")


def _markdown(alert: Alert) -> str:
    return f"### {alert.title}\n\n" + alert.text.replace("\n", "\n\n")


class Webhook:
    """POST the alert as JSON (with the shift's recipients) to any receiver."""

    def __init__(self, url: str, *, name: str = "webhook", recipients: Sequence[str] = ()) -> None:
        self.url, self.name, self.recipients = url, name, list(recipients)

    def send(self, alert: Alert) -> None:
        _post(self.name, self.url, {**asdict(alert), "recipients": self.recipients})


class WeCom:
    """WeCom (企业微信) group robot: ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``.

    Recipients are WeCom user ids, mentioned as ``<@userid>`` in the markdown.
    """

    def __init__(self, url: str, *, name: str = "wecom", recipients: Sequence[str] = ()) -> None:
        self.url, self.name, self.recipients = url, name, list(recipients)

    def send(self, alert: Alert) -> None:
        mentions = "".join(f"<@{user}>" for user in self.recipients)
        content = _markdown(alert) + (f"\n\n{mentions}" if mentions else "")
        _post(self.name, self.url, {"msgtype": "markdown", "markdown": {"content": content}}, robot=True)


def dingtalk_signature(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64(HMAC-SHA256(secret, "timestamp\\nsecret"))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalk:
    """DingTalk (钉钉) robot with its signing secret (``加签``)."""

    def __init__(self, url: str, secret: str, *, name: str = "dingtalk", clock: Any = time.time,
                 recipients: Sequence[str] = ()) -> None:
        self.url, self.secret, self.name, self._clock = url, secret, name, clock
        self.recipients = list(recipients)  # mobiles to @mention; DingTalk wants them in the text too

    def send(self, alert: Alert) -> None:
        timestamp_ms = int(self._clock() * 1000)
        params = {"timestamp": str(timestamp_ms), "sign": dingtalk_signature(self.secret, timestamp_ms)}
        mentions = " ".join(f"@{mobile}" for mobile in self.recipients)
        text = _markdown(alert) + (f"\n\n{mentions}" if mentions else "")
        _post(self.name, self.url, {"msgtype": "markdown", "markdown": {"title": alert.title, "text": text},
                                    "at": {"atMobiles": self.recipients, "isAtAll": False}},
              params=params, robot=True)
