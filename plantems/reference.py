"""Reference data shipped with plantems (package data ``plantems.refdata``, the repo's ``config/``).

Meter models, tariffs, emission factors and targets: a site may keep its own copy beside its plant
file (which wins), and an installed wheel works outside the source tree with the shipped ones.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["builtin", "reference_path"]


def builtin(name: str) -> Path:
    """The shipped copy of ``name`` (a file or folder of the package data)."""
    return Path(str(files("plantems.refdata"))) / name


def reference_path(config_dir: Path, name: str) -> Path:
    """``name`` beside the plant file if the site has its own, else the shipped one."""
    local = config_dir / name
    return local if local.exists() else builtin(name)
