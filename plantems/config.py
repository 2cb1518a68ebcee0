"""Plant configuration: site, InfluxDB, spool, gateways and devices.

Loaded once from YAML, validated by frozen pydantic models with
``extra="forbid"``; run-time code never re-checks it. Secrets are never in
the file: only the name of an environment variable or a file holding them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator
from pydantic import Field as PydField

from plantems.calendar import clock_minutes
from plantems.demandconfig import AlertsConfig, DemandConfig
from plantems.meterregister import MeteringLevel, parse_accuracy_class, parse_ratio
from plantems.meters import MeterModel, load_meter_library
from plantems.mqttconfig import MqttBinding, MqttConfig, MqttMapping
from plantems.reference import builtin
from plantems.secret import Secret
from plantems.yamlconf import ConfigError, LocatedError, load_yaml, validate

__all__ = [
    "Device",
    "DeviceKind",
    "Gateway",
    "InfluxConfig",
    "InfluxUser",
    "MeteringLevel",
    "PlantConfig",
    "Secret",
    "Transport",
    "UnmeteredEquipment",
    "load_plant",
]

Id = Annotated[str, PydField(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Site(_Frozen):
    id: Id
    name: str = ""
    name_zh: str = ""
    timezone: str = "Asia/Shanghai"
    # Grid-factor regions, most specific first (see config/emission_factors.yaml). Put "hunan"
    # first once the provincial factors are confirmed from the MEE annex.
    grid_factor_regions: tuple[str, ...] = ("central_china", "national")
    residual_factor_regions: tuple[str, ...] = ("national",)
    # The production lines whose output is the site's product (the site's intensity per tonne).
    # Metal cast and then rolled would count twice if every line's output were added up.
    # Required with more than one production line; one line is its own site output.
    output_lines: tuple[Id, ...] = ()
    # A device's maximum power for judging counter steps is rated_kw x this when it has no max_kw.
    plausibility_margin: float = PydField(default=1.5, ge=1.0, le=10.0)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class InfluxApi(StrEnum):
    V1 = "v1"  # POST /write?db=&rp=, basic auth (InfluxDB 1.x, 2.x/3.x compatibility API)
    V2 = "v2"  # POST /api/v2/write, org/bucket/token (InfluxDB 2.x, 3.x, Cloud, 1.8+)
    AUTO = "auto"  # read X-Influxdb-Version from /ping and pick


Role = Literal["collector", "analytics", "grafana"]


class InfluxUser(_Frozen):
    """One process's own InfluxDB login (created by ``plantems influx init`` with admin rights)."""

    username: str = PydField(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    password: Secret


class InfluxConfig(_Frozen):
    url: str = "http://127.0.0.1:8086"
    api: InfluxApi = InfluxApi.AUTO
    raw_database: Id = "plantems"
    derived_database: Id = "plantems_derived"
    raw_retention_days: int = PydField(default=400, ge=1)
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None  # v2
    org: str = ""  # v2
    # Separate logins (InfluxDB 1.x): the collector writes raw only, analytics reads raw and
    # writes derived, Grafana reads both. Each command logs in as its role; without a role's
    # entry it uses username/password above.
    users: dict[Role, InfluxUser] = PydField(default_factory=dict)
    timeout_s: float = PydField(default=10.0, gt=0)
    batch_lines: int = PydField(default=5000, ge=1, le=50_000)
    flush_interval_s: float = PydField(default=1.0, gt=0, le=60)
    gzip: bool = True
    verify_tls: bool = True


    @field_validator("url")
    @classmethod
    def _no_login_in_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:
            raise ValueError("a login in the URL is refused (it would be printed and logged): remove 'user:password@' "
                             "and give influxdb.username and influxdb.password: {env: VARIABLE} instead")
        return value

    def as_role(self, role: Role) -> InfluxConfig:
        """This configuration logged in as ``role`` (unchanged when the role has no login of its own)."""
        user = self.users.get(role)
        if user is None:
            return self
        return self.model_copy(update={"username": user.username, "password": user.password, "token": None})


class SpoolConfig(_Frozen):
    path: Path = Path("var/spool/collector.sqlite")
    max_bytes: int = PydField(default=2_000_000_000, ge=1_000_000)
    # Rejected lines and payloads kept for inspection, bounded apart from max_bytes (oldest dropped first).
    max_dead_letter_rows: int = PydField(default=10_000, ge=1)
    max_dead_letter_bytes: int = PydField(default=20_000_000, ge=10_000)
    # Readings held in memory while the spool cannot be written (disk full, I/O error); oldest dropped first.
    memory_buffer_lines: int = PydField(default=200_000, ge=1)
    # A spool that stays unwritable this long makes the collector exit non-zero, for its supervisor to restart it.
    unusable_exit_s: float = PydField(default=600.0, gt=0)
    # New lines wait in memory when less than this is free on the spool's disk (0: off): deleting what
    # InfluxDB acknowledged needs some space too, so a spool must never fill its disk to the last byte.
    min_free_disk_bytes: int = PydField(default=50_000_000, ge=0)


class Transport(StrEnum):
    TCP = "tcp"  # Modbus TCP (MBAP framing)
    RTU_OVER_TCP = "rtu_over_tcp"  # RTU frames through a transparent serial server
    RTU = "rtu"  # RS-485 on a local serial port


class Gateway(_Frozen):
    """One connection: a TCP meter, a Modbus gateway, or a serial line. One request at a time."""

    id: Id
    transport: Transport = Transport.TCP
    host: str | None = None
    port: int | None = PydField(default=None, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    timeout_s: float = PydField(default=1.0, gt=0, le=60)
    reconnect_max_s: float = PydField(default=60.0, gt=0)

    @model_validator(mode="after")
    def _endpoint(self) -> Self:
        if self.transport is Transport.RTU:
            if not self.serial_port:
                raise LocatedError(("serial_port",), "transport rtu needs serial_port (e.g. /dev/ttyUSB0)")
        elif not self.host:
            raise LocatedError(("host",), f"transport {self.transport} needs host")
        return self

    @property
    def endpoint(self) -> str:
        if self.transport is Transport.RTU:
            return f"{self.serial_port}@{self.baudrate}"
        return f"{self.host}:{self.port or 502}"


class DeviceKind(StrEnum):
    INCOMER = "incomer"
    FEEDER = "feeder"
    COLD_MILL = "cold_mill"
    FINISHING_MILL = "finishing_mill"
    FOIL_MILL = "foil_mill"
    CASTER = "caster"
    FURNACE = "furnace"
    COMPRESSOR = "compressor"
    EXHAUST_FAN = "exhaust_fan"
    PUMP = "pump"
    CHILLER = "chiller"
    LIGHTING = "lighting"
    PV = "pv"
    AIR_FLOW = "air_flow"  # compressed-air flow/pressure meter on a compressor station's header
    PRODUCTION = "production"  # a line's output counter (output_t), e.g. a PLC publishing tonnes per coil
    OTHER = "other"


class Device(_Frozen):
    id: Id
    name: str = ""
    name_zh: str = ""
    area: Id
    kind: DeviceKind
    meter: str | None = None  # a model id from the meter library (Modbus devices)
    mqtt: MqttBinding | None = None  # instead of Modbus: the device publishes over MQTT
    gateway: Id | None = None
    host: str | None = None  # shorthand: its own Modbus TCP connection
    port: int = PydField(default=502, ge=1, le=65535)
    unit_id: int = PydField(default=1, ge=0, le=255)
    poll_interval_s: float = PydField(default=1.0, gt=0, le=3600)
    timeout_s: float | None = PydField(default=None, gt=0)
    max_gap_fill: int | None = PydField(default=None, ge=0, le=124)  # default: the meter model's
    shiftable: bool = False  # its runs can be moved to cheaper hours (load shifting, demand alerts)
    # local "HH:MM-HH:MM" ranges a shiftable load may run in; default: any time of day
    shift_windows: tuple[str, ...] = ()
    rated_kw: float | None = PydField(default=None, gt=0)  # nameplate; the simulator's scale
    # The most the device can ever draw or feed (kW, margin included): a counter step implying more
    # over its elapsed time is rejected as implausible. Default: rated_kw x site.plausibility_margin,
    # else the meter model's max_kw.
    max_kw: float | None = PydField(default=None, gt=0)
    # For a gas meter: the most gas it can pass (Nm3/h, margin included); a gas_m3 step implying more
    # is rejected as implausible (a glitch never becomes Scope 1). Without it gas steps are not judged.
    max_flow_m3h: float | None = PydField(default=None, gt=0)
    # For incomers and feeders: the areas they supply. Analytics compare the incomer with the
    # sum of these sub-meters; the difference is losses plus unmetered load.
    feeds: tuple[Id, ...] = ()
    # For an air_flow meter: the compressors whose air it measures (specific power, pressure saving).
    compressors: tuple[Id, ...] = ()
    # The meter register (GB 17167, analytics/metering.py): level, accuracy class, CT/PT ratios as on the
    # nameplate ("2000/5"), and the verification due date (stored, never derived).
    metering_level: MeteringLevel | None = None
    accuracy_class: str | None = None
    ct_ratio: str | None = None
    pt_ratio: str | None = None
    calibration_due: date | None = None

    @field_validator("accuracy_class", mode="before")
    @classmethod
    def _accuracy_class(cls, value: object) -> str | None:
        return None if value is None else parse_accuracy_class(value)

    @field_validator("ct_ratio", "pt_ratio", mode="before")
    @classmethod
    def _ratio(cls, value: object) -> str | None:
        if value is None:
            return None
        parse_ratio(str(value))  # a bare number (400) is refused: the nameplate's primary/secondary is the record
        return str(value)

    @property
    def meter_multiplier(self) -> float:
        """倍率 = CT ratio x PT ratio (1 where none is given)."""
        ct = parse_ratio(self.ct_ratio) if self.ct_ratio else 1.0
        pt = parse_ratio(self.pt_ratio) if self.pt_ratio else 1.0
        return ct * pt

    @model_validator(mode="after")
    def _where(self) -> Self:
        if self.shift_windows:
            if not self.shiftable:
                raise LocatedError(("shift_windows",), "shift_windows needs shiftable: true")
            try:
                clock_minutes(self.shift_windows)
            except ValueError as exc:
                raise LocatedError(("shift_windows",), str(exc)) from None
        if self.mqtt is not None:
            if self.gateway is not None or self.host is not None or self.meter is not None:
                raise LocatedError(("mqtt",), "an MQTT device has no gateway, host or meter")
            return self
        if (self.gateway is None) == (self.host is None):
            raise LocatedError(("gateway",), "give exactly one of gateway: ID, host: ADDRESS or mqtt: {mapping: ID}")
        if self.meter is None:
            raise LocatedError(("meter",), "a Modbus device needs meter: MODEL (see config/meters/)")
        if self.timeout_s is not None and self.timeout_s >= self.poll_interval_s:
            raise LocatedError(("timeout_s",), f"timeout_s {self.timeout_s} must be below "
                               f"poll_interval_s {self.poll_interval_s}, or polls pile up")
        return self

    @field_validator("meter")
    @classmethod
    def _known_meter(cls, value: str | None, info: ValidationInfo) -> str | None:
        library: Mapping[str, MeterModel] = (info.context or {}).get("meters", {})
        if value is not None and library and value not in library:
            raise ValueError(f"unknown meter model {value!r}; known: {', '.join(sorted(library))}")
        return value


class UnmeteredEquipment(_Frozen):
    """High-consumption equipment with no meter in plantems yet (metering coverage, the 2030 goal)."""

    id: Id
    name: str = ""
    name_zh: str = ""
    area: Id
    rated_kw: float = PydField(gt=0)
    metering_level: MeteringLevel = MeteringLevel.MAJOR_EQUIPMENT
    manual_meter: bool = False  # a meter exists but is read by hand: counts for 配备率, not for auto-collection


class ProductionLine(_Frozen):
    """A process step whose output (tonnes, `production` tag line = id) and areas define its intensity."""

    id: Id
    name: str = ""
    name_zh: str = ""
    areas: tuple[Id, ...] = PydField(min_length=1)


class CompressedAirConfig(_Frozen):
    """The pressure-reduction estimate: each bar less saves about 7 % of compressor energy."""

    pressure_reduction_bar: float = PydField(default=0.5, gt=0, le=5)
    saving_per_bar: float = PydField(default=0.07, gt=0, lt=0.2)


class SimulatorConfig(_Frozen):
    """Only for ``plantems simulate`` (the demo and tests): scenarios laid over the load profiles."""

    scenarios: tuple[str, ...] = ()  # e.g. "mills-peak@10:00/20" (see simulator/scenarios.py)


class PlantConfig(_Frozen):
    site: Site
    influxdb: InfluxConfig = InfluxConfig()
    spool: SpoolConfig = SpoolConfig()
    meters_dirs: tuple[Path, ...] = ()  # extra meter folders, after the built-in library
    status_interval_s: float = PydField(default=10.0, gt=0)
    mqtt: MqttConfig | None = None
    production_lines: tuple[ProductionLine, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    devices: tuple[Device, ...] = PydField(min_length=1)
    unmetered_equipment: tuple[UnmeteredEquipment, ...] = ()
    demand: DemandConfig | None = None
    alerts: AlertsConfig | None = None
    compressed_air: CompressedAirConfig = CompressedAirConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    # filled in by load_plant, not by the file:
    meters: Mapping[str, MeterModel] = PydField(default_factory=dict, exclude=True)
    source_path: Path | None = PydField(default=None, exclude=True)
    config_sha256: str = PydField(default="", exclude=True)

    @model_validator(mode="after")
    def _cross(self, info: ValidationInfo) -> Self:
        _unique(self.gateways, "gateways", "gateway")
        _unique(self.devices, "devices", "device")
        _unique(self.unmetered_equipment, "unmetered_equipment", "equipment")
        _check_unmetered(self)
        gateways = {g.id: g for g in self.gateways}
        used: dict[tuple[str, int], str] = {}
        _check_mqtt_bindings(self)
        _check_demand(self, (info.context or {}).get("meters", {}))
        _check_max_kw(self, (info.context or {}).get("meters", {}))
        areas = {d.area for d in self.devices}
        for index, line in enumerate(self.production_lines):
            unknown = sorted(set(line.areas) - areas)
            if unknown:
                raise LocatedError(("production_lines", index, "areas"),
                                   f"areas {unknown} have no device; known areas: {sorted(areas)}")
        _check_output_lines(self)
        for index, device in enumerate(self.devices):
            if device.gateway is not None:
                if device.gateway not in gateways:
                    raise LocatedError(("devices", index, "gateway"),
                                       f"unknown gateway {device.gateway!r}; defined: {sorted(gateways) or 'none'}")
                key = (device.gateway, device.unit_id)
                if key in used:
                    raise LocatedError(("devices", index, "unit_id"),
                                       f"unit_id {device.unit_id} is already used by {used[key]!r} "
                                       f"on gateway {device.gateway!r}")
                used[key] = device.id
        return self

    @property
    def site_output_lines(self) -> tuple[str, ...]:
        """The lines whose output is the site's (``site.output_lines``, or the only line)."""
        if self.site.output_lines:
            return self.site.output_lines
        return tuple(line.id for line in self.production_lines[:1]) if len(self.production_lines) == 1 else ()

    @property
    def modbus_devices(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.mqtt is None)

    @property
    def mqtt_devices(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.mqtt is not None)

    def meter_of(self, device: Device) -> MeterModel:
        """A Modbus device's meter model."""
        if device.meter is None:
            raise ValueError(f"device {device.id!r} is not a Modbus device")
        return self.meters[device.meter]

    def mapping_of(self, device: Device) -> MqttMapping:
        """An MQTT device's mapping."""
        if device.mqtt is None or self.mqtt is None:
            raise ValueError(f"device {device.id!r} is not an MQTT device")
        return next(m for m in self.mqtt.mappings if m.id == device.mqtt.mapping)

    def quantities_of(self, device: Device) -> frozenset[str]:
        """The canonical fields a device delivers."""
        if device.mqtt is not None:
            return frozenset(f.value for f in self.mapping_of(device).fields)
        return frozenset(r.quantity.value for r in self.meter_of(device).registers)

    def max_kw_of(self, device: Device) -> float | None:
        """The device's maximum power for judging its counters: max_kw, else rated_kw x the site's
        plausibility_margin, else its meter model's max_kw."""
        if device.max_kw is not None:
            return device.max_kw
        if device.rated_kw is not None:
            return device.rated_kw * self.site.plausibility_margin
        return self.meter_of(device).max_kw if device.mqtt is None and device.meter in self.meters else None

    def gateway_of(self, device: Device) -> Gateway:
        """The connection a device is read through (a synthetic one for ``host:`` devices)."""
        if device.gateway is not None:
            return next(g for g in self.gateways if g.id == device.gateway)
        return Gateway(id=device.id, transport=Transport.TCP, host=device.host, port=device.port,
                       timeout_s=device.timeout_s or min(1.0, device.poll_interval_s * 0.8))


def _check_output_lines(plant: PlantConfig) -> None:
    """``site.output_lines`` names production lines; with several lines it must say which count."""
    known = [line.id for line in plant.production_lines]
    chosen = plant.site.output_lines
    for name in chosen:
        if name not in known:
            raise LocatedError(("site", "output_lines"), f"{name!r} is not a production line; "
                               f"defined under production_lines: {known or 'none'}")
    if len(set(chosen)) != len(chosen):
        raise LocatedError(("site", "output_lines"), "a line is listed twice: its output would count twice")
    if len(known) > 1 and not chosen:
        raise LocatedError(("site", "output_lines"), f"required with more than one production line ({known}): "
                           "name the lines whose output is the site's product, e.g. the last step only, so "
                           "metal that passes several lines is counted once")


def _check_mqtt_bindings(plant: PlantConfig) -> None:
    mappings = {m.id for m in plant.mqtt.mappings} if plant.mqtt else set()
    seen: dict[tuple[str, str], str] = {}
    for index, device in enumerate(plant.devices):
        if device.mqtt is None:
            continue
        if device.mqtt.mapping not in mappings:
            raise LocatedError(("devices", index, "mqtt", "mapping"),
                               f"unknown MQTT mapping {device.mqtt.mapping!r}; defined under mqtt.mappings: "
                               f"{sorted(mappings) or 'none'}")
        key = (device.mqtt.mapping, device.mqtt.topic_id or device.id)
        if key in seen:
            raise LocatedError(("devices", index, "mqtt"), f"topic id {key[1]!r} of mapping {key[0]!r} is "
                               f"already bound to device {seen[key]!r}")
        seen[key] = device.id


def _delivers(plant: PlantConfig, device: Device, library: Mapping[str, MeterModel]) -> frozenset[str]:
    if device.mqtt is not None:
        return plant.quantities_of(device)
    model = library.get(device.meter or "")
    return frozenset(r.quantity.value for r in model.registers) if model else frozenset({"p_kw"})


def _check_demand(plant: PlantConfig, library: Mapping[str, MeterModel]) -> None:
    devices = {d.id: d for d in plant.devices}
    if plant.demand is not None:
        _unique(plant.demand.groups, "demand.groups", "meter group")  # type: ignore[arg-type]
        for index, group in enumerate(plant.demand.groups):
            for meter in group.meters:
                if meter not in devices:
                    raise LocatedError(("demand", "groups", index, "meters"),
                                       f"unknown device {meter!r}; a billing group sums configured meters")
                if not {"e_imp_kwh", "p_kw"} & _delivers(plant, devices[meter], library):
                    raise LocatedError(("demand", "groups", index, "meters"),
                                       f"device {meter!r} delivers neither e_imp_kwh nor p_kw")
    for index, device in enumerate(plant.devices):
        if device.compressors and device.kind is not DeviceKind.AIR_FLOW:
            raise LocatedError(("devices", index, "compressors"), "compressors: belongs on an air_flow meter")
        for name in device.compressors:
            if name not in devices or devices[name].kind is not DeviceKind.COMPRESSOR:
                raise LocatedError(("devices", index, "compressors"), f"{name!r} is not a compressor device")
    if plant.alerts is not None:
        for index, channel in enumerate(plant.alerts.channels):
            if channel.type == "mqtt" and channel.host is None and plant.mqtt is None:
                raise LocatedError(("alerts", "channels", index, "host"),
                                   f"MQTT channel {channel.id!r} needs host: (there is no plant broker under mqtt:)")


_ENERGY_COUNTERS = frozenset({"e_imp_kwh", "e_exp_kwh", "eq_imp_kvarh", "eq_exp_kvarh"})


def _check_max_kw(plant: PlantConfig, library: Mapping[str, MeterModel]) -> None:
    """Every device with an energy counter needs a maximum power: its counter steps are judged by it."""
    for index, device in enumerate(plant.devices):
        if device.max_kw is not None or device.rated_kw is not None:
            continue
        if not _ENERGY_COUNTERS & _delivers(plant, device, library):
            continue
        model = library.get(device.meter or "") if device.mqtt is None else None
        if model is None or model.max_kw is None:
            raise LocatedError(("devices", index, "max_kw"),
                               "required for a device with an energy counter: give max_kw (the most it can ever "
                               "draw or feed, kW) or rated_kw (x site.plausibility_margin); a counter step implying "
                               "more power is rejected as implausible")


def _check_unmetered(plant: PlantConfig) -> None:
    devices = {d.id for d in plant.devices}
    for index, item in enumerate(plant.unmetered_equipment):
        if item.id in devices:
            raise LocatedError(("unmetered_equipment", index, "id"),
                               f"{item.id!r} is a device under devices: (metered); list it in one place only")


def _unique(items: tuple[Any, ...], key: str, what: str) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.id in seen:
            raise LocatedError((key, index, "id"),
                               f"duplicate {what} id {item.id!r} (first defined as {key}[{seen[item.id]}])")
        seen[item.id] = index


BUILTIN_METERS = builtin("meters")


def load_plant(path: Path) -> PlantConfig:
    """Load and validate a plant file and its meter library; raise ConfigError on any problem."""
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping with site:, devices:, ..."])
    base = path.resolve().parent
    extra_dirs = [base / Path(p) for p in data.get("meters_dirs", []) or [] if isinstance(p, str)]
    meters = load_meter_library(BUILTIN_METERS, *extra_dirs)
    if not meters:  # an install without its package data would otherwise fail at the first poll
        where = " or ".join(str(d) for d in (BUILTIN_METERS, *extra_dirs))
        raise ConfigError([f"{path}: the meter library is empty: no models in {where}; "
                           "reinstall plantems (its package data is missing)"])
    plant = validate(PlantConfig, data, path, lines, context={"meters": meters})
    spool_path = plant.spool.path if plant.spool.path.is_absolute() else Path.cwd() / plant.spool.path
    return plant.model_copy(update={
        "meters": meters,
        "source_path": path,
        "config_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "spool": plant.spool.model_copy(update={"path": spool_path}),
    })
