"""YAML loading that remembers line numbers, and config errors that cite them.

Every configuration error names the file, the line, the object (``device
'mill-2'``), the value and the rule, e.g.::

    config/plant.yaml:41 device 'mill-2': unit_id = 3: unit_id 3 is already used by 'fan-7' on gateway 'gw-a'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["ConfigError", "LocatedError", "load_yaml", "validate"]

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
# Keys whose values are never echoed in an error message.
SECRET_KEYS = frozenset({"password", "token", "secret", "api_key"})


class ConfigError(Exception):
    """A configuration that must not be used; ``str()`` lists every problem, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class LocatedError(ValueError):
    """Raised by cross-field validators to point at the offending item (``loc`` below the model)."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _line_map(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*loc, str(key_node.value))
            _line_map(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*loc, index), lines)


def load_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse ``path``; return the data and a map from location to 1-based line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    lines: dict[Loc, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return data, lines


def _describe_object(data: Any, loc: Loc) -> str:
    """Name the innermost object on ``loc``: "device 'mill-2'", or the section ("influxdb")."""
    described = ""
    node = data
    for index, part in enumerate(loc[:-1]):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, Mapping) and "id" in node:
            container = str(loc[index - 1]) if isinstance(part, int) and index > 0 else str(part)
            described = f"{container.removesuffix('s')} {node['id']!r}"
        elif isinstance(node, Mapping) and isinstance(part, str) and not described:
            described = ".".join(str(p) for p in loc[:index + 1])
    return described


def _value_at(data: Any, loc: Loc) -> tuple[bool, Any]:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, node


def _line_for(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _format_problem(path: Path, data: Any, lines: Mapping[Loc, int], loc: Loc, message: str) -> str:
    line = _line_for(lines, loc)
    where = f"{path}:{line}" if line else str(path)
    obj = _describe_object(data, loc)
    key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    found, value = _value_at(data, loc)
    subject = ""
    if key and found and key in SECRET_KEYS:
        subject = f"{key} = <hidden>: "  # a secret typed into the file must not reach a log as well
    elif key and found and not isinstance(value, Mapping | list):
        subject = f"{key} = {value!r}: "
    elif key and not found:
        subject = f"{key}: "
    head = " ".join(part for part in (where, obj) if part)
    return f"{head}: {subject}{message}"


def validate(model: type[M], data: Any, path: Path, lines: Mapping[Loc, int],
                           *, context: Mapping[str, Any] | None = None) -> M:
    """Validate ``data`` as ``model``; raise ConfigError whose lines cite ``path``:line."""
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc: Loc = tuple(error["loc"])
            cause = (error.get("ctx") or {}).get("error")
            message = error["msg"]
            if isinstance(cause, LocatedError):
                loc = (*loc, *cause.loc)
                message = str(cause)
            elif message.startswith("Value error, "):
                message = message.removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key (not allowed here; check its spelling against the README)"
            problems.append(_format_problem(path, data, lines, loc, message))
        raise ConfigError(problems) from None
