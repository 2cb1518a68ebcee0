"""The group's `plan` points for the Grafana tests (tests/test_grafana.py's fixture): the group rollup's plan step
over the sites' monthly rollups already written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from plantems.analytics.group import consolidate
from plantems.analytics.plan_job import run_group_plan
from plantems.config import PlantConfig
from plantems.group import load_group
from tests.support import REPO

GROUP = "hunan-al"


def load_group_plan(plants: Mapping[str, PlantConfig], tmp: Path, months: list[str], as_of: date) -> None:
    """The group rollup's plan step for ``months``, from the sites' rollup.json under ``tmp/SITE/MONTH``: a group
    file beside the sites' plant files, the shipped metal ledger, then ``run_group_plan`` as the group rollup
    runs it."""
    shutil.copy(REPO / "config" / "metal_purchases.csv", tmp / "metal_purchases.csv")
    sites = "\n".join(f"  - plant: {Path(p.source_path or '').name}" for p in plants.values())
    (tmp / "group.yaml").write_text(f"group: {{id: {GROUP}, name: Group, name_zh: 集团}}\nsites:\n{sites}\n")
    group = load_group(tmp / "group.yaml")
    for month in months:
        docs = [json.loads((tmp / site / month / "rollup.json").read_text()) for site in plants]
        rollup = consolidate(group=GROUP, name="Group", name_zh="集团", month=month, as_of=as_of, docs=docs,
                             output_lines=group.output_lines, targets=group.targets)
        run_group_plan(group, rollup)
