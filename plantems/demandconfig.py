"""Demand and alerting part of the plant configuration: billing meter groups, alert levels,
channels (secrets by reference only) and the shift roster that routes alerts.

```yaml
demand:
  groups:
    - {id: grid, meters: [incomer-1, incomer-2], limit_kw: 9000}   # levels 90 % / 100 % by default
alerts:
  channels:
    - {id: shift-mail, type: email, host: smtp.example.cn, sender: plantems@example.cn,
       username: plantems, password: {env: PLANTEMS_SMTP_PASSWORD}}
  shifts:
    - {id: day, start: "08:00", end: "20:00", notify: {shift-mail: [day-lead@example.cn]}}
    - {id: night, start: "20:00", end: "08:00", notify: {shift-mail: [night-lead@example.cn]}}
```
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydField

from plantems.calendar import DAY_MIN, clock_minutes, parse_clock
from plantems.secret import Secret
from plantems.yamlconf import LocatedError

PF_STANDARDS = (0.9, 0.85, 0.8)  # the power-factor adjustment tables of 1983

__all__ = ["AlertsConfig", "ChannelConfig", "DemandConfig", "DemandLevel", "MeterGroup", "Shift"]

Id = Annotated[str, PydField(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DemandLevel(_Frozen):
    name: Id  # "warning", "critical"
    at: float = PydField(gt=0, le=2)  # fraction of the limit


class MeterGroup(_Frozen):
    """Meters whose summed import the utility bills as one demand (e.g. a site's incomers)."""

    id: Id
    name: str = ""
    name_zh: str = ""
    meters: tuple[Id, ...] = PydField(min_length=1)
    limit_kw: float = PydField(gt=0)  # contract (declared) demand or the internal limit
    method: Literal["sliding", "fixed"] = "sliding"  # 滑差式 (1-min slide) or 区间式 (fixed blocks)
    levels: tuple[DemandLevel, ...] = (DemandLevel(name="warning", at=0.9), DemandLevel(name="critical", at=1.0))
    hysteresis: float = PydField(default=0.03, ge=0, lt=0.5)  # of the limit, before a level re-arms
    escalate_after_min: float = PydField(default=5.0, gt=0, le=15)
    pf_standard: float = 0.9  # 功率因数考核标准 on the bill: 0.90, 0.85 or 0.80 (the 1983 tables)
    pf_target: float = PydField(default=0.95, gt=0.5, le=1.0)  # what a capacitor bank should reach

    @field_validator("pf_standard")
    @classmethod
    def _one_of_the_tables(cls, value: float) -> float:
        if value not in PF_STANDARDS:
            raise ValueError(f"must be one of {', '.join(f'{s:.2f}' for s in PF_STANDARDS)} (the 1983 tables)")
        return value

    @field_validator("levels")
    @classmethod
    def _distinct(cls, value: tuple[DemandLevel, ...]) -> tuple[DemandLevel, ...]:
        names = [level.name for level in value]
        if not value or len(set(names)) != len(names) or "clear" in names:
            raise ValueError(f"levels need distinct names other than 'clear', got {names}")
        return value


class DemandConfig(_Frozen):
    evaluate_every_s: float = PydField(default=5.0, ge=1, le=60)
    # sliding windows: alert on the highest projection of the windows ending in the next N minutes
    projection_min: int = PydField(default=5, ge=1, le=15)
    groups: tuple[MeterGroup, ...] = PydField(min_length=1)


class _Channel(_Frozen):
    id: Id


class WebhookChannel(_Channel):
    type: Literal["webhook"]
    url: str | Secret  # a receiver URL; give it as a secret when it carries a key

    @field_validator("url")
    @classmethod
    def _no_login_in_url(cls, value: str | Secret) -> str | Secret:
        if isinstance(value, str) and "@" in urlsplit(value).netloc:
            raise ValueError("a login in the URL is refused (it would be printed and logged): give the URL as "
                             "{env: VARIABLE} or {file: PATH}")
        return value


class WeComChannel(_Channel):
    type: Literal["wecom"]
    url: Secret  # https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=... (the key is the secret)


class DingTalkChannel(_Channel):
    type: Literal["dingtalk"]
    url: Secret  # https://oapi.dingtalk.com/robot/send?access_token=...
    secret: Secret  # the robot's signing secret (加签), SEC...


class EmailChannel(_Channel):
    type: Literal["email"]
    host: str
    port: int = PydField(default=587, ge=1, le=65535)
    sender: str
    starttls: bool = True
    username: str | None = None
    password: Secret | None = None


class MqttChannel(_Channel):
    type: Literal["mqtt"]
    topic: str = "plantems/{site}/alerts/{level}"
    host: str | None = None  # default: the plant's broker (mqtt:)
    port: int | None = PydField(default=None, ge=1, le=65535)
    username: str | None = None
    password: Secret | None = None


ChannelConfig = Annotated[WebhookChannel | WeComChannel | DingTalkChannel | EmailChannel | MqttChannel,
                          PydField(discriminator="type")]


class Shift(_Frozen):
    id: Id
    name: str = ""
    name_zh: str = ""
    start: str  # local "HH:MM"; a shift may run over midnight
    end: str
    # channel id -> recipients: e-mail addresses, DingTalk/WeCom mobiles to @mention, or [] for none
    notify: dict[Id, tuple[str, ...]] = PydField(min_length=1)

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value

    def covers(self, clock: time) -> bool:
        start, end, now = parse_clock(self.start), parse_clock(self.end), clock.hour * 60 + clock.minute
        return start <= now < end if start < end else now >= start or now < end


class AlertsConfig(_Frozen):
    channels: tuple[ChannelConfig, ...] = ()
    shifts: tuple[Shift, ...] = PydField(min_length=1)
    attempts: int = PydField(default=3, ge=1, le=10)
    backoff_s: float = PydField(default=1.0, ge=0, le=60)
    # one attempt, connect to answer: a peer that trickles bytes never trips a per-read timeout
    attempt_deadline_s: float = PydField(default=15.0, gt=0, le=300)

    @model_validator(mode="after")
    def _roster(self) -> Self:
        channels = {c.id: c for c in self.channels}
        if len(channels) != len(self.channels):
            raise LocatedError(("channels",), "channel ids must be unique")
        owner: list[str | None] = [None] * DAY_MIN
        for index, shift in enumerate(self.shifts):
            for channel_id, recipients in shift.notify.items():
                if channel_id not in channels:
                    raise LocatedError(("shifts", index, "notify"), f"unknown channel {channel_id!r}; defined: "
                                       f"{sorted(channels) or 'none'}")
                if channels[channel_id].type == "email" and not recipients:
                    raise LocatedError(("shifts", index, "notify"), f"e-mail channel {channel_id!r} needs at least "
                                       "one address")
            try:
                covered = clock_minutes((f"{shift.start}-{shift.end}",))
            except ValueError as exc:
                raise LocatedError(("shifts", index), str(exc)) from None
            for minute, inside in enumerate(covered):
                if inside and owner[minute] is not None:
                    raise LocatedError(("shifts", index), f"shift {shift.id!r} overlaps shift {owner[minute]!r} at "
                                       f"{minute // 60:02d}:{minute % 60:02d}")
                if inside:
                    owner[minute] = shift.id
        if None in owner:
            gap = owner.index(None)
            raise LocatedError(("shifts",), f"no shift is on duty at {gap // 60:02d}:{gap % 60:02d}; the roster must "
                               "cover the whole day")
        return self

    def shift_at(self, clock: time) -> Shift:
        return next(s for s in self.shifts if s.covers(clock))
