"""Secrets in configuration: where they live, never what they are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from plantems.yamlconf import ConfigError

__all__ = ["Secret"]


class Secret(BaseModel):
    """Where a secret lives: an environment variable or a file (e.g. a Docker/systemd credential)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str | None = None
    file: Path | None = None

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

    def resolve(self) -> SecretStr:
        """Read the secret now; the error names where it was looked for, never its value."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError([f"secret: environment variable {self.env} is not set"])
            return SecretStr(value)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError([f"secret: cannot read file {self.file}: {exc.strerror}"]) from exc
