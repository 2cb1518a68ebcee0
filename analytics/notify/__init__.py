"""Alert channels, each one module behind one interface: webhook, WeCom, DingTalk, e-mail, MQTT."""

from plantems.analytics.notify.base import Alert, Channel, ChannelError, Delivery
from plantems.analytics.notify.dispatch import CHANNELS, deliver

__all__ = ["CHANNELS", "Alert", "Channel", "ChannelError", "Delivery", "deliver"]
