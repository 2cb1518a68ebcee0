"""Alert channels, each one module behind one interface: webhook, WeCom, DingTalk, e-mail, MQTT."""

from plantems.analytics.notify.base import Alert, Channel, ChannelError, Delivery
from plantems.analytics.notify.dispatch import CHANNELS, Dispatcher, deliver

__all__ = ["CHANNELS", "Alert", "Channel", "ChannelError", "Delivery", "Dispatcher", "deliver"]
