"""YAML loading that remembers line numbers, and config errors that cite them.

Every configuration error names the file, the line, the object (``device
'mill-2'``), the value and the rule, e.g.::

    config/plant.yaml:41 device 'mill-2': unit_id = 3: unit_id 3 is already used by 'fan-7' on gateway 'gw-a'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["ConfigError", "LocatedError", "describe", "load_yaml", "validate"]

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
# Keys whose values are never echoed in an error message, nor anything below them. A URL may
# carry a robot key or a login, so it is not echoed either.
SECRET_KEYS = frozenset({"password", "token", "secret", "api_key", "url"})
SECRET_SOURCES = frozenset({"env", "file"})  # a mapping with one of these keys is a secret reference


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


def _duplicate_keys(node: yaml.Node, loc: Loc, path: Path, data: Any) -> list[str]:
    """Every key given twice in one mapping, naming both lines: YAML would keep the last one silently."""
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if key in first_line:
                where = _describe_object(data, (*loc, key)) or ".".join(str(part) for part in loc) or "top level"
                problems.append(f"{path}:{line} {where}: {key}: duplicate key (first on line "
                                f"{first_line[key]}); remove one, YAML would silently keep the last")
            else:
                first_line[key] = line
            problems += _duplicate_keys(value_node, (*loc, key), path, data)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*loc, index), path, data)
    return problems


def load_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse ``path``; return the data and a map from location to 1-based line.

    A key given twice in one mapping is refused (naming both lines).
    """
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
    except ValueError as exc:  # PyYAML builds dates itself: 2028-06-31 raises a bare ValueError
        raise ConfigError([_bad_scalar(path, node, exc)]) from exc
    lines: dict[Loc, int] = {}
    if node is not None:
        duplicates = _duplicate_keys(node, (), path, data)
        if duplicates:
            raise ConfigError(duplicates)
        _line_map(node, (), lines)
    return data, lines


def _bad_scalar(path: Path, node: yaml.Node | None, exc: ValueError) -> str:
    """``file:line: value: rule`` for the first date-like scalar that is not a date."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop(0)
        if isinstance(current, yaml.ScalarNode) and current.tag == "tag:yaml.org,2002:timestamp":
            try:
                yaml.SafeLoader("").construct_yaml_timestamp(current)
            except ValueError:
                return f"{path}:{current.start_mark.line + 1}: {current.value!r}: not a valid date ({exc})"
        elif isinstance(current, yaml.MappingNode):
            stack += [part for pair in current.value for part in pair]
        elif isinstance(current, yaml.SequenceNode):
            stack += current.value
    return f"{path}: not valid YAML: {exc}"


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


def _is_secret(data: Any, loc: Loc) -> bool:
    """Whether ``loc`` lies under a secret key or inside a secret reference ``{env: ..., file: ...}``."""
    if any(isinstance(part, str) and part in SECRET_KEYS for part in loc):
        return True
    found, parent = _value_at(data, loc[:-1])
    return found and isinstance(parent, Mapping) and bool(SECRET_SOURCES & set(parent))


def describe(path: Path, data: Any, lines: Mapping[Loc, int], loc: Loc) -> str:
    """``file:line object: key`` for a location in a loaded file (what error messages start with)."""
    line = _line_for(lines, loc)
    where = f"{path}:{line}" if line else str(path)
    key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    head = " ".join(part for part in (where, _describe_object(data, loc)) if part)
    return f"{head}: {key}" if key else head


def _format_problem(path: Path, data: Any, lines: Mapping[Loc, int], loc: Loc, message: str) -> str:
    line = _line_for(lines, loc)
    where = f"{path}:{line}" if line else str(path)
    obj = _describe_object(data, loc)
    key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    found, value = _value_at(data, loc)
    subject = ""
    if key and found and _is_secret(data, loc):
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
        validated = model.model_validate(data, context=dict(context or {}))
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
    _locate_secrets(validated, (), lambda loc: describe(path, data, lines, loc))
    return validated


def _locate_secrets(node: Any, loc: Loc, where: Callable[[Loc], str]) -> None:
    """Tell every secret reference in the validated tree where it was written (``Secret.locate``), so a
    missing variable or file is reported with the file, line and key."""
    if hasattr(node, "locate") and hasattr(node, "resolve"):
        node.locate(where(loc))
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            _locate_secrets(getattr(node, name), (*loc, name), where)
    elif isinstance(node, tuple | list):
        for index, item in enumerate(node):
            _locate_secrets(item, (*loc, index), where)
    elif isinstance(node, Mapping):
        for key, item in node.items():
            _locate_secrets(item, (*loc, str(key)), where)
