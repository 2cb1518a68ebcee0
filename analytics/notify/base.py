"""What every channel gets (an Alert) and what it promises (send or raise ChannelError)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Alert", "Channel", "ChannelError", "Delivery"]


@dataclass(frozen=True)
class Alert:
    site: str
    rule: str  # e.g. "demand"
    level: str  # "warning", "critical", "clear"
    title: str
    text: str  # what the supervisor should do, plain text with line breaks
    value: float
    threshold: float
    time_ns: int
    group: str = ""  # the billing meter group
    shift: str = ""  # the shift on duty, which decided the recipients


class ChannelError(Exception):
    """A delivery that failed; ``str()`` names the channel and the reason (never a secret)."""


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


@dataclass(frozen=True)
class Delivery:
    channel: str
    ok: bool
    attempts: int
    error: str = ""

    def summary(self) -> str:
        """For the alert record: ``hook: ok``, ``broken: failed after 3 (broken: ...: HTTP 500)``."""
        if self.ok:
            return f"{self.channel}: ok"
        tried = f"failed after {self.attempts}" if self.attempts else "failed, not attempted"
        return f"{self.channel}: {tried} ({self.error})"
