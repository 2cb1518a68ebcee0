"""The wheel as `pip install .` builds it, outside the source tree: meter models, tariffs and factors come
from its package data, the packages are plantems.* subpackages, and an empty meter library is refused."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support import REPO, rows


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a folder of its own (its dependencies come from this venv's site-packages)."""
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = (base / "dist").glob("plantems-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(base / "site"),
                    str(wheel)], check=True, capture_output=True)
    return base / "site"


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The base interpreter with PYTHONPATH: no .pth files run, so this venv's editable install (the source
    # tree) is invisible and only the wheel provides plantems.
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{sysconfig.get_paths()['purelib']}"}
    return subprocess.run([sys._base_executable, "-m", "plantems.cli", *args], cwd=cwd, env=env,  # type: ignore[attr-defined]
                          capture_output=True, text=True, timeout=300, check=False)


def _demo_plant(folder: Path, influx_url: str, db: str) -> Path:
    text = (REPO / "config" / "plant.demo.yaml").read_text()
    text = text.replace("http://127.0.0.1:18086", influx_url).replace("raw_database: plantems", f"raw_database: {db}")
    text = text.replace("derived_database: plantems_derived", f"derived_database: {db}_derived")
    text = text.replace("path: var/spool/collector.sqlite", f"path: {folder}/spool.sqlite")
    plant = folder / "plant.yaml"
    plant.write_text(text)  # alone: no meters/, tariffs/ or factors beside it
    return plant


def test_the_wheel_ships_its_packages_and_reference_data(installed: Path) -> None:
    top = sorted(p.name for p in installed.iterdir() if p.name != "bin" and not p.name.endswith(".dist-info"))
    assert top == ["plantems"]  # no generic top-level names (collector, analytics, grafana, simulator)
    shipped = installed / "plantems"
    for sub in ("store", "collector/modbus", "collector/mqtt", "analytics/notify", "grafana", "simulator"):
        assert (shipped / sub / "__init__.py").is_file(), sub
    models = {p.stem for p in (shipped / "refdata" / "meters").glob("*.yaml")}
    assert models == {p.stem for p in (REPO / "config" / "meters").glob("*.yaml")}
    assert list((shipped / "refdata" / "tariffs").glob("*.yaml"))
    assert (shipped / "refdata" / "emission_factors.yaml").is_file()


def test_check_config_and_backfill_run_from_outside_the_source_tree(installed: Path, tmp_path: Path,
                                                                     influx_url: str, db: str) -> None:
    plant = _demo_plant(tmp_path, influx_url, db)
    checked = _run(installed, tmp_path, "check-config", str(plant))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"mill-1 .*chint_dtsu666_ct", checked.stdout), checked.stdout  # a model from package data
    where = _run(installed, tmp_path, "--help")
    assert where.returncode == 0
    init = _run(installed, tmp_path, "influx", "init", "--config", str(plant))
    assert init.returncode == 0, init.stdout + init.stderr
    filled = _run(installed, tmp_path, "simulate", "--config", str(plant), "--backfill", "0.05")
    assert filled.returncode == 0, filled.stdout + filled.stderr
    counted = rows(influx_url, db, "SELECT count(e_imp_kwh) FROM electrical GROUP BY device")
    assert len(counted) >= 11 and all(r["count"] > 0 for r in counted)  # every Modbus meter's counter


def test_an_empty_meter_library_is_refused(installed: Path, tmp_path: Path, influx_url: str, db: str) -> None:
    broken = tmp_path / "site"
    shutil.copytree(installed, broken)
    for model in (broken / "plantems" / "refdata" / "meters").glob("*.yaml"):
        model.unlink()
    checked = _run(broken, tmp_path, "check-config", str(_demo_plant(tmp_path, influx_url, db)))
    assert checked.returncode == 2
    assert "the meter library is empty" in checked.stdout + checked.stderr
