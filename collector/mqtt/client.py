"""MQTT subscription (the collector's only paho import).

QoS 1 with a persistent session (fixed client id, clean start off, session
expiry), subscribed in ``on_connect`` so a reconnect restores the
subscriptions. paho's network thread only hands messages over; a worker thread
decodes them, commits the lines to the spool and only then acknowledges them
(manual ack): a crash between receipt and spool leaves the message
unacknowledged, and the broker delivers it again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantems.collector.mqtt.decode import MqttDecoder, PayloadError, UnknownDevice
from plantems.collector.points import ReadingFormatter
from plantems.collector.spool import Spool
from plantems.config import PlantConfig
from plantems.mqttconfig import MqttConfig
from plantems.schema import Tag

__all__ = ["MqttCounters", "MqttSource"]

log = logging.getLogger(__name__)

_BATCH_MESSAGES = 2000  # decoded and committed in one spool transaction
_BATCH_WAIT_S = 0.02
_LOG_EVERY_S = 60.0  # per topic: one log line for rejected payloads, then a count


@dataclass
class MqttCounters:
    messages: int = 0
    rejected: int = 0
    unknown: int = 0
    connected: bool = False


class MqttSource:
    """Subscribes to the configured mappings and spools their readings."""

    def __init__(self, plant: PlantConfig, spool: Spool, *, topic_filters: list[str], client_id: str) -> None:
        assert plant.mqtt is not None
        self.cfg: MqttConfig = plant.mqtt
        self.database = plant.influxdb.raw_database
        self.spool = spool
        self.decoder = MqttDecoder(plant)
        self.topic_filters = topic_filters
        self.client_id = client_id
        self.counters = MqttCounters()
        self._formatters = {d.id: ReadingFormatter({
            Tag.SITE.value: plant.site.id, Tag.AREA.value: d.area, Tag.DEVICE.value: d.id,
            Tag.KIND.value: d.kind.value}) for d in plant.mqtt_devices}
        self._inbox: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="mqtt-spool", daemon=True)
        self._warned: dict[str, tuple[float, int]] = {}
        self._refused_logged = False
        self._stopping = False
        self.client = self._make_client()

    def _make_client(self) -> paho.Client:
        v5 = self.cfg.protocol == "v5"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
                             clean_session=None if v5 else False, manual_ack=True)
        if self.cfg.tls is not None:
            tls = self.cfg.tls
            client.tls_set(ca_certs=str(tls.ca_file), certfile=str(tls.cert_file) if tls.cert_file else None,
                           keyfile=str(tls.key_file) if tls.key_file else None)
        if self.cfg.username is not None:
            password = self.cfg.password.resolve().get_secret_value() if self.cfg.password else None
            client.username_pw_set(self.cfg.username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=int(max(1, self.cfg.reconnect_max_s)))
        client.max_inflight_messages_set(20)  # perf.md: larger windows halve paho's throughput
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    @property
    def endpoint(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def start(self) -> None:
        self._worker.start()
        if self.cfg.protocol == "v5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                                      clean_start=False, properties=props)
        else:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        log.info("MQTT: connecting to %s as %s, topics %s", self.endpoint, self.client_id, self.topic_filters)

    def stop(self) -> None:
        """Disconnect (the session stays on the broker), then spool what was received."""
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self._stop.set()
        self._worker.join(10)

    # -- paho's network thread: hand over, nothing slow ------------------------------
    def _on_connect(self, client: paho.Client, userdata: object, flags: paho.ConnectFlags,
                    reason: paho.ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            if not self._refused_logged:
                # 134/135 (MQTT 5), 4/5 (3.1.1): bad user name or password / not authorised
                hint = " (check mqtt.username and the password secret)" if reason.value in (4, 5, 134, 135) else ""
                log.error("MQTT broker %s refused the connection: %s%s", self.endpoint, reason, hint)
                self._refused_logged = True
            return
        self._refused_logged = False
        self.counters.connected = True
        log.info("MQTT connected to %s (session present: %s)", self.endpoint, flags.session_present)
        client.subscribe([(topic, 1) for topic in self.topic_filters])

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: paho.DisconnectFlags,
                       reason: paho.ReasonCode, properties: Properties | None) -> None:
        if self._stopping:
            log.info("MQTT disconnected from %s; the broker keeps the session", self.endpoint)
        elif self.counters.connected:
            log.warning("MQTT disconnected from %s: %s; reconnecting", self.endpoint, reason)
        self.counters.connected = False

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        self._inbox.put(message)

    # -- worker thread -----------------------------------------------------------------
    def _work(self) -> None:
        while not (self._stop.is_set() and self._inbox.empty()):
            batch = self._take_batch()
            if not batch:
                continue
            for message in batch:
                self._spool_message(message)
            self.spool.flush()  # committed: now the broker may forget them
            for message in batch:
                self.client.ack(message.mid, message.qos)

    def _take_batch(self) -> list[paho.MQTTMessage]:
        try:
            batch = [self._inbox.get(timeout=_BATCH_WAIT_S * 5)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + _BATCH_WAIT_S
        while len(batch) < _BATCH_MESSAGES and time.monotonic() < deadline:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                time.sleep(0.001)
        return batch

    def _spool_message(self, message: paho.MQTTMessage) -> None:
        self.counters.messages += 1
        try:
            readings = self.decoder.decode(message.topic, message.payload, received_ns=time.time_ns())
        except UnknownDevice as exc:
            self.counters.unknown += 1
            self._warn(message.topic, f"ignored: {exc}")
            return
        except PayloadError as exc:
            self.counters.rejected += 1
            self._warn(message.topic, f"rejected: {exc}")
            self.spool.reject(f"mqtt:{message.topic}", message.payload.decode("utf-8", "replace")[:10_000], str(exc))
            return
        for reading in readings:
            self.spool.append(self.database, self._formatters[reading.device.id].lines(reading.time_ns,
                                                                                     reading.values))

    def _warn(self, topic: str, text: str) -> None:
        """One log line per topic per minute, with the count of those not logged."""
        now = time.monotonic()
        if len(self._warned) > 10_000:  # a flood of distinct topics must not grow memory
            self._warned.clear()
        last, suppressed = self._warned.get(topic, (-_LOG_EVERY_S, 0))
        if now - last >= _LOG_EVERY_S:
            more = f" (+{suppressed} more since the last report)" if suppressed else ""
            log.warning("MQTT %s %s%s", topic, text, more)
            self._warned[topic] = (now, 0)
        else:
            self._warned[topic] = (last, suppressed + 1)
