"""Meter models: what a meter's registers mean, loaded from ``config/meters/*.yaml``.

A model maps canonical quantities (schema ``Field``) to registers: address,
register type, data type, word/byte order, scale, and multipliers read from
other registers (the DTSU666 PT/CT ratios). Adding a meter is writing YAML.
Several registers with the same quantity are summed (CHINT's four-quadrant
kvarh: import = QI + QII).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PydField

from plantems.schema import COUNTER_FIELDS, Field
from plantems.yamlconf import ConfigError, LocatedError, load_yaml, validate

__all__ = [
    "ByteOrder",
    "DataType",
    "MeterModel",
    "Multiplier",
    "Register",
    "RegisterType",
    "WordOrder",
    "load_meter_library",
]

log = logging.getLogger(__name__)


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT64 = "float64"

    @property
    def words(self) -> int:
        return WORDS[self]

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT32, DataType.FLOAT64)


WORDS: Final[Mapping[DataType, int]] = {
    DataType.INT16: 1, DataType.UINT16: 1, DataType.INT32: 2, DataType.UINT32: 2,
    DataType.FLOAT32: 2, DataType.INT64: 4, DataType.UINT64: 4, DataType.FLOAT64: 4,
}


class RegisterType(StrEnum):
    """Modbus tables; each is read by exactly one read function code."""

    COIL = "coil"  # FC 1
    DISCRETE = "discrete"  # FC 2
    HOLDING = "holding"  # FC 3
    INPUT = "input"  # FC 4


class WordOrder(StrEnum):
    BIG = "big"  # ABCD: high word first (the Modbus norm)
    LITTLE = "little"  # CDAB: words swapped


class ByteOrder(StrEnum):
    BIG = "big"  # high byte first within each word (the Modbus norm)
    LITTLE = "little"  # BADC / DCBA


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RawLayout(_Frozen):
    """Where and how a number sits in the register table."""

    address: int = PydField(ge=0, le=0xFFFF)
    register_type: RegisterType = RegisterType.HOLDING
    data_type: DataType = DataType.FLOAT32
    word_order: WordOrder = WordOrder.BIG
    byte_order: ByteOrder = ByteOrder.BIG
    scale: float = 1.0

    @property
    def words(self) -> int:
        return self.data_type.words

    @property
    def end(self) -> int:
        """One past the last register address."""
        return self.address + self.words


class Multiplier(RawLayout):
    """A register whose scaled value multiplies other registers (e.g. CT ratio)."""

    name: str = PydField(pattern=r"^[a-z][a-z0-9_]*$")


class Register(RawLayout):
    """A canonical quantity: value = raw * scale * product(multipliers)."""

    quantity: Field
    multiply_by: tuple[str, ...] = ()
    # Raw value at which a counter wraps to 0. Default for integer counters:
    # 2**bits (register width); float counters have none unless the datasheet says.
    rollover_raw: float | None = None

    @property
    def counter(self) -> bool:
        return self.quantity in COUNTER_FIELDS

    @property
    def rollover(self) -> float | None:
        """Counter rollover in canonical units, or None."""
        if not self.counter:
            return None
        raw = self.rollover_raw
        if raw is None and not self.data_type.is_float:
            raw = float(2 ** (16 * self.words))
        return None if raw is None else raw * self.scale


class Hole(_Frozen):
    """Addresses the device rejects: a read must never span them."""

    start: int = PydField(ge=0, le=0xFFFF)
    end: int = PydField(ge=0, le=0xFFFF)  # inclusive
    register_type: RegisterType = RegisterType.HOLDING


class MeterModel(_Frozen):
    id: str
    vendor: str
    model: str
    datasheet: str = PydField(min_length=1)  # where the register map came from
    notes: str = ""
    max_read_registers: int = PydField(default=125, ge=1, le=125)
    # Registers a read may bridge between two wanted ones; devices override it. Raise it only
    # where the datasheet says reserved registers inside the map answer (with zeros).
    max_gap_fill: int = PydField(default=4, ge=0, le=124)
    even_read_count: bool = False  # SDM630: odd counts answer with an exception
    # The most a meter of this model can measure (kW), for a direct-connected meter whose current is
    # bounded; devices on it without max_kw / rated_kw use it to judge counter steps.
    max_kw: float | None = PydField(default=None, gt=0)
    holes: tuple[Hole, ...] = ()
    multipliers: tuple[Multiplier, ...] = ()
    registers: tuple[Register, ...] = PydField(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = {m.name for m in self.multipliers}
        for index, reg in enumerate(self.registers):
            for name in reg.multiply_by:
                if name not in names:
                    raise LocatedError(("registers", index, "multiply_by"),
                                       f"multiplier {name!r} is not defined; defined: {sorted(names) or 'none'}")
        spans = [("registers", i, r) for i, r in enumerate(self.registers)]
        spans += [("multipliers", i, m) for i, m in enumerate(self.multipliers)]
        spans.sort(key=lambda s: (s[2].register_type, s[2].address))
        for (_, _, a), (kind, index, b) in itertools.pairwise(spans):
            if a.register_type == b.register_type and b.address < a.end:
                what = getattr(a, "quantity", None) or getattr(a, "name", "")
                raise LocatedError((kind, index, "address"),
                                   f"registers overlap: {b.address} lies inside {what} at "
                                   f"{a.address}..{a.end - 1} ({a.register_type})")
        return self


def _apply_defaults(data: Any) -> Any:
    """Merge the file's ``defaults:`` block into each register (keeps the YAML short)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    defaults = data.pop("defaults", None) or {}
    if isinstance(defaults, dict):
        for key in ("registers", "multipliers"):
            items = data.get(key)
            if isinstance(items, list):
                data[key] = [{**defaults, **item} if isinstance(item, dict) else item for item in items]
    return data


def load_meter_model(path: Path) -> MeterModel:
    data, lines = load_yaml(path)
    data = _apply_defaults(data)
    if isinstance(data, dict):
        data.setdefault("id", path.stem)
        if data["id"] != path.stem:
            raise ConfigError([f"{path}:{lines.get(('id',), 1)}: id = {data['id']!r}: "
                               f"must equal the file name {path.stem!r}"])
    return validate(MeterModel, data, path, lines)


def load_meter_library(*directories: Path) -> dict[str, MeterModel]:
    """Load every ``*.yaml`` in ``directories`` (later ones override earlier ones)."""
    library: dict[str, MeterModel] = {}
    problems: list[str] = []
    for directory in directories:
        for path in sorted(directory.glob("*.yaml")):
            try:
                model = load_meter_model(path)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            library[model.id] = model
    if problems:
        raise ConfigError(problems)
    return library
