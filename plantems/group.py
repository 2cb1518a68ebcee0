"""The group file (e.g. ``config/group.demo.yaml``): the sites a group consolidates, and the group's targets.

Each site keeps its own plant file: timezone, tariff, factor regions, InfluxDB and ledger rows.
The group file names those plant files, the group's targets (pathway and renewable goal cover
every site) and which production lines make each site's output in the group total (default: the
site's own ``site.output_lines``). Loaded once and validated with ``file:line object: key = value:
rule`` errors, like the plant file; every site's plant file and ledger is validated with it, and a
ledger serial range claimed by two sites refuses the whole group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydField

from plantems.config import PlantConfig, load_plant
from plantems.ledger import LedgerEntry, check_claims, load_ledger
from plantems.reference import reference_path
from plantems.targets import Targets, load_targets
from plantems.yamlconf import ConfigError, LocatedError, load_yaml, validate

__all__ = ["Group", "GroupConfig", "GroupSite", "is_group_file", "load_group"]

Id = Annotated[str, PydField(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
LEDGER_FILE = "green_power.csv"  # beside each plant file (analytics/service.py run_rollup reads it there)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GroupInfo(_Frozen):
    id: Id
    name: str = ""
    name_zh: str = ""
    # the schedule's clock (`plantems group analyze`); each site's month stays its own calendar month
    timezone: str = "Asia/Shanghai"


class GroupSite(_Frozen):
    plant: Path  # relative to the group file
    # the lines whose output counts in the group total; default: the site's own site.output_lines
    output_lines: tuple[Id, ...] | None = None


class GroupConfig(_Frozen):
    group: GroupInfo
    sites: tuple[GroupSite, ...]
    targets: Path = Path("targets.yaml")  # relative to the group file; the shipped one if absent there

    @field_validator("sites")
    @classmethod
    def _some_sites(cls, value: tuple[GroupSite, ...]) -> tuple[GroupSite, ...]:
        if not value:
            raise ValueError("sites: a group lists at least one plant file (- plant: FILE)")
        return value

    @model_validator(mode="after")
    def _distinct_plants(self) -> GroupConfig:
        seen: dict[Path, int] = {}
        for index, site in enumerate(self.sites):
            if site.plant in seen:
                raise LocatedError(("sites", index, "plant"), f"already listed as site {seen[site.plant] + 1}")
            seen[site.plant] = index
        return self


class Group:
    """A validated group: its config, each site's plant and output lines, targets and ledger rows."""

    def __init__(self, config: GroupConfig, path: Path, plants: tuple[PlantConfig, ...],
                 output_lines: tuple[tuple[str, ...], ...], targets: Targets, ledger: tuple[LedgerEntry, ...]) -> None:
        self.config, self.path, self.plants, self.targets, self.ledger = config, path, plants, targets, ledger
        self.output_lines = dict(zip((p.site.id for p in plants), output_lines, strict=True))

    @property
    def id(self) -> str:
        return self.config.group.id

    def with_plants(self, plants: tuple[PlantConfig, ...]) -> Group:
        """The same group with its plants replaced (e.g. logged in as another InfluxDB role)."""
        outputs = tuple(self.output_lines[p.site.id] for p in plants)
        return Group(self.config, self.path, plants, outputs, self.targets, self.ledger)

    def plant_dir(self, plant: PlantConfig) -> Path:
        assert plant.source_path is not None
        return plant.source_path.parent


def is_group_file(path: Path) -> bool:
    """A YAML file with top-level ``group:`` and ``sites:`` (check-config tells the two kinds apart)."""
    try:
        data, _ = load_yaml(path)
    except ConfigError:
        return False
    return isinstance(data, dict) and "group" in data and "sites" in data


def load_group(path: Path) -> Group:
    """Load and validate the group file, every site's plant file, its targets and the sites' ledgers.

    Raises ConfigError listing every problem found (a bad site does not hide the next one).
    """
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping with group:, sites:, targets:"])
    config = validate(GroupConfig, data, path, lines)
    base = path.resolve().parent
    problems: list[str] = []
    plants: list[PlantConfig] = []
    outputs: list[tuple[str, ...]] = []
    site_of: dict[str, int] = {}
    for index, site in enumerate(config.sites):
        where = f"{path}:{lines.get(('sites', index), '?')} site {index + 1}"
        plant_path = base / site.plant
        if not plant_path.is_file():
            problems.append(f"{where}: plant = {str(site.plant)!r}: no such file ({plant_path})")
            continue
        try:
            plant = load_plant(plant_path)
        except ConfigError as exc:
            problems += [f"{where} ({site.plant}): {p}" for p in exc.problems]
            continue
        sid = plant.site.id
        if sid == config.group.id:
            problems.append(f"{where}: site id {sid!r} equals the group id: the group's reports would overwrite it")
        if sid in site_of:
            problems.append(f"{where}: plant = {str(site.plant)!r}: site id {sid!r} is already site "
                            f"{site_of[sid] + 1}: each site counts once")
            continue
        lines_of = _output_lines(plant, site, where)
        if isinstance(lines_of, str):
            problems.append(lines_of)
            continue
        site_of[sid] = index
        plants.append(plant)
        outputs.append(lines_of)
    targets_path = base / config.targets
    targets = load_targets(targets_path if targets_path.exists() else reference_path(base, str(config.targets)))
    ledger = _group_ledger(plants, problems)
    if problems:
        raise ConfigError(problems)
    return Group(config, path, tuple(plants), tuple(outputs), targets, ledger)


def _output_lines(plant: PlantConfig, site: GroupSite, where: str) -> tuple[str, ...] | str:
    """The site's lines counted in the group output, or the problem with them."""
    known = [line.id for line in plant.production_lines]
    chosen = site.output_lines if site.output_lines is not None else plant.site_output_lines
    unknown = [line for line in chosen if line not in known]
    if unknown:
        return (f"{where}: output_lines = {list(chosen)!r}: {unknown} not under the production_lines of "
                f"{plant.source_path} ({known or 'none'})")
    return tuple(chosen)


def _group_ledger(plants: list[PlantConfig], problems: list[str]) -> tuple[LedgerEntry, ...]:
    """Every site's ledger (one file when sites share a folder), checked together: a serial range or
    entry id claimed twice, by one site or two, is refused with both files and lines."""
    files: dict[Path, list[LedgerEntry]] = {}
    for plant in plants:
        assert plant.source_path is not None
        ledger_path = (plant.source_path.parent / LEDGER_FILE).resolve()
        if ledger_path in files or not ledger_path.exists():
            continue
        try:
            files[ledger_path] = load_ledger(ledger_path)
        except ConfigError as exc:
            problems += exc.problems
    problems += check_claims(files)
    return tuple(entry for entries in files.values() for entry in entries)
