"""Secrets in configuration: where they live, never what they are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, model_validator

from plantems.redact import register_secret
from plantems.yamlconf import ConfigError

__all__ = ["Secret"]


class Secret(BaseModel):
    """Where a secret lives: an environment variable or a file (e.g. a Docker/systemd credential)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str | None = None
    file: Path | None = None
    # "config/plant.yaml:7 influxdb: password", set by yamlconf.validate once the file is loaded
    _where: str = PrivateAttr(default="secret")

    @model_validator(mode="before")
    @classmethod
    def _not_a_value(cls, data: Any) -> Any:
        if isinstance(data, str | int | float):
            raise ValueError("a secret is never written in the config: give {env: VARIABLE} or {file: PATH}")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: VARIABLE or file: PATH")
        return self

    def locate(self, where: str) -> None:
        """Remember where the reference was written (``file:line object: key``), for resolve's errors."""
        self._where = where

    def resolve(self) -> SecretStr:
        """Read the secret now and mask it in every log from then on; the error names where the
        reference was written and where it looked, never a value."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                state = "is not set" if value is None else "is empty"
                raise ConfigError([f"{self._where} = {{env: {self.env}}}: environment variable {self.env} {state}"])
        else:
            assert self.file is not None
            try:
                value = self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError([f"{self._where} = {{file: {self.file}}}: cannot read file {self.file}: "
                                   f"{exc.strerror}"]) from exc
            if not value:
                raise ConfigError([f"{self._where} = {{file: {self.file}}}: file {self.file} is empty"])
        register_secret(value)
        return SecretStr(value)
