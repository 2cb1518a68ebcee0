"""MQTT part of the plant configuration: broker, and how topics and payloads map to devices.

A mapping binds a topic template (``plant/{site}/{device}/telemetry``) and a
payload format to canonical fields. Tag values (site, area, device, kind) come
from the device's configuration, never from a payload.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydField

from plantems.schema import Field
from plantems.secret import Secret
from plantems.yamlconf import LocatedError

__all__ = ["FieldMapping", "MqttBinding", "MqttConfig", "MqttMapping", "PayloadFormat", "TimestampMapping"]

Id = Annotated[str, PydField(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
PLACEHOLDERS = ("{site}", "{device}", "{field}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PayloadFormat(StrEnum):
    JSON = "json"  # {"power": {"total_kw": 12.5}, "ts": 1700000000}: fields by path
    VALUE = "value"  # a single number; the field is the topic's {field} level
    JSON_ARRAY = "json_array"  # [{...}, {...}]: several readings, each like JSON


class FieldMapping(_Frozen):
    """Where a canonical field is in the payload, its scale to canonical units, and its sane range."""

    path: str | None = None  # dot-separated JSON path; default: the field's own name
    scale: float = 1.0  # e.g. 0.001 for W -> kW
    min: float | None = None  # outside [min, max] the payload is rejected as absurd
    max: float | None = None

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class TimestampMapping(_Frozen):
    path: str = "ts"
    unit: Literal["auto", "s", "ms", "us", "ns", "iso"] = "auto"
    timezone: str | None = None  # for ISO 8601 without an offset; default: the site's


class MqttMapping(_Frozen):
    id: Id
    topic: str
    format: PayloadFormat = PayloadFormat.JSON
    fields: dict[Field, FieldMapping] = PydField(min_length=1)
    timestamp: TimestampMapping | None = TimestampMapping()  # None: always the receive time
    max_future_s: float = PydField(default=300.0, ge=0)  # clock skew tolerated on payload timestamps

    @field_validator("topic")
    @classmethod
    def _template(cls, value: str) -> str:
        levels = value.split("/")
        if "+" in levels or "#" in levels:
            raise ValueError("a topic template has no wildcards; write {device} (and {site}, {field}) instead")
        for level in levels:
            if "{" in level and level not in PLACEHOLDERS:
                raise ValueError(f"topic level {level!r}: a placeholder must be a whole level, one of "
                                 f"{', '.join(PLACEHOLDERS)}")
        if "{device}" not in levels:
            raise ValueError("the topic template must contain the level {device}")
        return value

    @model_validator(mode="after")
    def _field_level(self) -> Self:
        has_field = "{field}" in self.topic.split("/")
        if has_field != (self.format is PayloadFormat.VALUE):
            raise LocatedError(("topic",), "format value takes the field from a {field} topic level; "
                                           "json formats must not have one")
        return self

    def subscription(self, *, site: str, device: str | None = None) -> str:
        """The topic filter: placeholders become ``+`` (or the given site/device)."""
        topic = self.topic.replace("{site}", site).replace("{field}", "+")
        return topic.replace("{device}", device if device is not None else "+")

    def match(self, topic: str, *, site: str) -> tuple[str, str | None] | None:
        """``(device topic id, field level)`` if ``topic`` fits this template, else None."""
        levels = topic.split("/")
        template = self.topic.split("/")
        if len(levels) != len(template):
            return None
        device, field = None, None
        for want, got in zip(template, levels, strict=True):
            if want == "{device}":
                device = got
            elif want == "{field}":
                field = got
            elif want == "{site}":
                if got != site:
                    return None
            elif want != got:
                return None
        return (device, field) if device else None


class TlsConfig(_Frozen):
    ca_file: Path
    cert_file: Path | None = None  # client certificate, if the broker asks for one
    key_file: Path | None = None


class MqttConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = PydField(default=1883, ge=1, le=65535)
    # v311: persistent session via clean_session false (expiry set on the broker:
    # persistent_client_expiration). v5: session expiry sent by the client, but paho parses
    # MQTT 5 properties on every message, which costs about half the collector's throughput.
    protocol: Literal["v311", "v5"] = "v311"
    tls: TlsConfig | None = None
    username: str | None = None
    password: Secret | None = None
    client_id: str | None = PydField(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    session_expiry_s: int = PydField(default=7 * 86400, ge=0)  # how long the broker keeps our queue
    keepalive_s: int = PydField(default=30, ge=5)
    reconnect_max_s: float = PydField(default=30.0, gt=0)
    mappings: tuple[MqttMapping, ...] = PydField(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for index, mapping in enumerate(self.mappings):
            if mapping.id in seen:
                raise LocatedError(("mappings", index, "id"), f"duplicate mapping id {mapping.id!r}")
            seen.add(mapping.id)
        return self


class MqttBinding(_Frozen):
    """How a device arrives over MQTT: its mapping and its {device} value in topics."""

    mapping: Id
    topic_id: str | None = None  # default: the device id

    @field_validator("topic_id")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^/+#]+", value):
            raise ValueError("a topic id is one topic level: no '/', '+' or '#'")
        return value
