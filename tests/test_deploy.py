"""The production deployment files, checked with the tools this machine has: systemd-analyze for the
units (verify, and the security exposure score), the compose file's hardening, secrets and wiring
(no Docker engine runs here), the Dockerfile, the compose plant file against plantems' own
validation, and deploy/mosquitto run by a real Mosquitto (TLS, per-PLC ACLs, message size limit)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from plantems.config import PlantConfig, load_plant
from plantems.localservers import ManagedProcess, free_port
from tests.support import REPO, wait_for
from tests.test_mqtt_e2e import tls_files  # noqa: F401 (fixture: a test CA and a server certificate)

DEPLOY = REPO / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
SECRETS_DIR = PurePosixPath("/run/secrets")
SECRET_NAME = re.compile(r"PASSWORD|SECRET(?!S_DIR\b)|TOKEN", re.I)  # PLANTEMS_SECRETS_DIR is a folder

# ---------------------------------------------------------------------------------------------- systemd


def _unit_settings(text: str) -> dict[str, list[str]]:
    """Key -> values of a unit file (repeated keys accumulate), ignoring sections and comments."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    systemd_analyze = shutil.which("systemd-analyze")
    assert systemd_analyze, "systemd-analyze (Debian systemd) is needed to check the units"
    names = []
    for unit in UNITS:
        text = unit.read_text()
        assert "User=plantems" in text and "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text
        assert "ReadWritePaths=/var/lib/plantems" in text and "EnvironmentFile=/etc/plantems/secrets.env" in text
        # the install paths do not exist here: point them at this checkout so verify can check ExecStart
        local = text.replace("/opt/plantems/.venv", str(REPO / ".venv")).replace(
            "EnvironmentFile=/etc/plantems/secrets.env", f"EnvironmentFile=-{tmp_path}/secrets.env")
        name = unit.name.replace("@.service", "@0-2.service")
        (tmp_path / name).write_text(local)
        names.append(name)
    result = subprocess.run([systemd_analyze, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_unit_exposure_is_ok(unit: Path) -> None:
    """systemd's own rating: "OK" means an overall exposure level of at most 4.0 (of 10)."""
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60, check=False)
    found = re.search(r"Overall exposure level for (\S+): (\d+\.\d) (\w+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found[2]) <= 4.0 and found[3] == "OK", result.stdout


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_unit_has_the_required_settings(unit: Path) -> None:
    settings = _unit_settings(unit.read_text())
    single = {key: values[-1] for key, values in settings.items()}
    assert single["ProtectSystem"] == "strict" and single["NoNewPrivileges"] == "yes"
    assert single["PrivateTmp"] == "yes" and single["CapabilityBoundingSet"] == ""
    assert int(single["UMask"], 8) & 0o007 == 0o007, "files must not be readable by others"
    memory = re.fullmatch(r"(\d+)([MG])", single["MemoryMax"])
    assert memory and 256 <= int(memory[1]) * (1024 if memory[2] == "G" else 1) <= 8192, single["MemoryMax"]
    # the timestamps are the record: start only once the clock is synchronised
    for key in ("Wants", "After"):
        assert "time-sync.target" in " ".join(settings[key]).split(), f"{unit.name}: {key}= lacks time-sync.target"


# ---------------------------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def plant() -> PlantConfig:
    return load_plant(DEPLOY / "plant.compose.yaml")


def _env_names(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)", text))


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


def _mounts(service: dict[str, Any]) -> list[Mount]:
    mounts = []
    for volume in service.get("volumes", []):
        # ${VAR:?message} may hold colons: split on the others
        variables = re.findall(r"\$\{[^}]*\}", volume)
        source, target, *mode = re.sub(r"\$\{[^}]*\}", "\0", volume).split(":")
        for variable in variables:
            source = source.replace("\0", variable, 1)
        mounts.append(Mount(source, target, mode == ["ro"]))
    return mounts


def _tmpfs(service: dict[str, Any]) -> set[str]:
    return {entry.split(":")[0] for entry in service.get("tmpfs", [])}


def _covered(path: str, roots: set[str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(root) for root in roots)


def _dockerfile_workdir() -> str:
    return re.findall(r"^WORKDIR (\S+)$", (DEPLOY / "Dockerfile").read_text(), re.M)[-1]


def test_compose_services_are_wired(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"influxdb", "mosquitto", "init", "collector", "analytics", "grafana"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in _mounts(service):
            if mount.source.startswith((".", "/")) and "${" not in mount.source:
                assert (DEPLOY / mount.source).exists(), f"{name}: {mount.source} does not exist"
    assert services["influxdb"]["environment"]["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert services["collector"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (DEPLOY / "env.example").read_text(), re.M))
    assert _env_names((DEPLOY / "compose.yaml").read_text()) <= documented


def test_every_compose_service_is_hardened(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("read_only") is True, f"{name}: the root filesystem must be read-only"
        assert service.get("cap_drop") == ["ALL"] and "cap_add" not in service, f"{name}: capabilities"
        assert "no-new-privileges:true" in service.get("security_opt", []), f"{name}: no-new-privileges"
        assert not service.get("privileged") and service.get("network_mode") != "host", name
        for mount in _mounts(service):
            # writable storage is a named volume (or tmpfs), never a folder of the host
            assert mount.read_only or mount.source in compose["volumes"], f"{name}: {mount} is a writable bind"
    assert compose["services"]["mosquitto"]["user"].split(":")[0] not in ("0", "root")


def test_each_compose_service_can_write_where_it_must(compose: dict[str, Any], plant: PlantConfig) -> None:
    """The paths each program writes (from its own configuration) are volumes or tmpfs: with a
    read-only root filesystem anything else fails at run time."""
    mosquitto_conf = (DEPLOY / "mosquitto" / "compose.conf").read_text()
    analytics_env = compose["services"]["analytics"]["environment"]
    must_write = {
        "influxdb": {"/var/lib/influxdb"},                                          # the image's data folder
        "mosquitto": {re.search(r"^persistence_location (\S+)$", mosquitto_conf, re.M)[1]},
        "collector": {str(PurePosixPath(plant.spool.path).parent)},
        # `plantems analyze` writes reports/ below its working folder; matplotlib its font cache
        "analytics": {f"{_dockerfile_workdir()}/reports", analytics_env["MPLCONFIGDIR"]},
        "grafana": {"/var/lib/grafana"},                                            # GF_PATHS_DATA
        "init": set(),
    }
    for name, paths in must_write.items():
        service = compose["services"][name]
        writable = {m.target for m in _mounts(service) if not m.read_only} | _tmpfs(service)
        for path in paths:
            assert _covered(path, writable), f"{name} writes {path}, which is on the read-only root filesystem"
    # a new named volume takes the owner of its mount point in the image: the plantems user's
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    prepared = re.search(r"^RUN install -d -o plantems -g plantems -m \d+ (.+)$", dockerfile, re.M)
    assert prepared and {"/var/lib/plantems/spool", f"{_dockerfile_workdir()}/reports"} <= set(prepared[1].split())
    assert compose["services"]["grafana"]["environment"]["GF_LOG_MODE"] == "console"


def _with_secret(service: dict[str, Any]) -> tuple[str, str] | None:
    """(variable, secret file) when the service starts through deploy/with-secret.sh."""
    entrypoint = service.get("entrypoint") or []
    if len(entrypoint) >= 4 and entrypoint[1].endswith("/with-secret.sh"):
        return entrypoint[2], entrypoint[3]
    return None


def test_secrets_are_compose_secret_files_not_environment(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    assert not [n for n in _env_names(text) if SECRET_NAME.search(n)], "a secret is interpolated from deploy/.env"
    env_example = (DEPLOY / "env.example").read_text()
    assert not [n for n in re.findall(r"^([A-Z0-9_]+)=", env_example, re.M) if SECRET_NAME.search(n)]
    declared = compose["secrets"]
    for name, secret in declared.items():
        assert set(secret) == {"file"} and secret["file"].endswith(f"/{name}"), name
    used: set[str] = set()
    for name, service in compose["services"].items():
        granted = {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
        assert granted <= set(declared), f"{name}: undeclared secret"
        used |= granted
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("__FILE"):  # Grafana reads VARIABLE__FILE itself
                assert PurePosixPath(value).parent == SECRETS_DIR and PurePosixPath(value).name in granted, key
            else:
                assert not SECRET_NAME.search(key), f"{name}: {key} is a secret in the environment"
        wrapped = _with_secret(service)
        if wrapped:
            assert PurePosixPath(wrapped[1]).parent == SECRETS_DIR and PurePosixPath(wrapped[1]).name in granted
            assert any(m.target.endswith("/with-secret.sh") and m.read_only for m in _mounts(service))
    assert used == set(declared), "declared but unused secrets"


def test_the_compose_plant_file_is_valid_and_reads_each_secret_where_it_is_given(
        compose: dict[str, Any], plant: PlantConfig) -> None:
    text = (DEPLOY / "plant.compose.yaml").read_text()
    assert "{env:" not in text, "compose passes secrets as files: {file: /run/secrets/NAME}"
    assert plant.influxdb.url == "http://influxdb:8086" and set(plant.influxdb.users) == {"collector", "analytics",
                                                                                           "grafana"}
    assert str(plant.spool.path).startswith("/var/lib/plantems/spool")  # the compose volume

    def names(*secrets: Any) -> set[str]:
        for secret in secrets:
            assert secret.env is None and PurePosixPath(secret.file).parent == SECRETS_DIR, secret
        return {PurePosixPath(s.file).name for s in secrets}

    users = plant.influxdb.users
    channels = [c.password for c in plant.alerts.channels if getattr(c, "password", None)]
    needs = {
        "init": names(*(u.password for u in users.values())),
        "collector": names(users["collector"].password, plant.mqtt.password),
        "analytics": names(users["analytics"].password, *channels),
    }
    for service, secrets in needs.items():
        granted = set(compose["services"][service]["secrets"])
        assert secrets <= granted, f"{service} reads {secrets - granted} but is not given them"
    # Grafana's datasource login: the user in its environment, the password from init's secret
    grafana = compose["services"]["grafana"]
    assert grafana["environment"]["PLANTEMS_GRAFANA_INFLUX_USER"] == users["grafana"].username
    assert _with_secret(grafana)[1] == f"{SECRETS_DIR}/{PurePosixPath(users['grafana'].password.file).name}"


def test_grafana_gets_what_its_provisioning_reads(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    provisioning = (REPO / "grafana" / "provisioning" / "datasources" / "plantems.yaml").read_text()
    assert _env_names(provisioning) <= set(grafana["environment"]) | {_with_secret(grafana)[0]}
    mounts = {m.target for m in _mounts(grafana)}
    assert {"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards",
            "/var/lib/grafana/dashboards/plantems"} <= mounts
    provider = yaml.safe_load((REPO / "grafana" / "provisioning" / "dashboards" / "plantems.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/plantems"


def test_with_secret_passes_the_file_to_the_program_and_stops_loudly_without_it(tmp_path: Path) -> None:
    script = str(DEPLOY / "with-secret.sh")
    (tmp_path / "pw").write_text("s3cr3t 'with' $pecial chars\n")
    shown = subprocess.run(["sh", script, "PLANTEMS_X_PASSWORD", str(tmp_path / "pw"), "sh", "-c",
                            'printf %s "$PLANTEMS_X_PASSWORD"'], capture_output=True, text=True, check=True)
    assert shown.stdout == "s3cr3t 'with' $pecial chars"  # the trailing newline of the file is not part of it
    (tmp_path / "empty").write_text("")
    for path in (tmp_path / "missing", tmp_path / "empty"):
        failed = subprocess.run(["sh", script, "PLANTEMS_X_PASSWORD", str(path), "echo", "started"],
                                capture_output=True, text=True, check=False)
        assert failed.returncode != 0 and "started" not in failed.stdout
        assert str(path) in failed.stderr and "PLANTEMS_X_PASSWORD" in failed.stderr


def test_dockerfile_copies_what_exists_and_runs_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M)[1]
    assert ":" in base and not base.endswith(":latest")
    for source in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for item in source.split():
            assert (REPO / item).exists(), item
    assert re.search(r"^USER plantems$", text, re.M) and 'ENTRYPOINT ["plantems"]' in text
