"""The production deployment files, checked with the tools this machine has: systemd-analyze for
the units, the compose file's structure and wiring (no Docker engine runs here), the Dockerfile's
sources, and the compose plant file against plantems' own validation."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from plantems.config import load_plant
from tests.support import REPO

DEPLOY = REPO / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def test_systemd_units_verify_cleanly(tmp_path):
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


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _env_names(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)", text))


def test_compose_services_are_wired(compose):
    services = compose["services"]
    assert set(services) == {"influxdb", "mosquitto", "init", "collector", "analytics", "grafana"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")) and "${" not in source:
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|_URL$", key) and key != "PLANTEMS_GRAFANA_INFLUX_URL":
                assert str(value).startswith("${"), f"{name}: {key} must come from deploy/.env, not the file"
    assert services["influxdb"]["environment"]["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert services["collector"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (DEPLOY / "env.example").read_text(), re.M))
    assert _env_names((DEPLOY / "compose.yaml").read_text()) <= documented


def test_grafana_gets_what_its_provisioning_reads(compose):
    grafana = compose["services"]["grafana"]
    provisioning = (REPO / "grafana" / "provisioning" / "datasources" / "plantems.yaml").read_text()
    assert _env_names(provisioning) <= set(grafana["environment"])
    mounts = {v.split(":")[1] for v in grafana["volumes"]}
    assert {"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards",
            "/var/lib/grafana/dashboards/plantems"} <= mounts
    provider = yaml.safe_load((REPO / "grafana" / "provisioning" / "dashboards" / "plantems.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/plantems"


def test_the_compose_plant_file_is_valid_and_its_secrets_are_provided(compose):
    path = DEPLOY / "plant.compose.yaml"
    plant = load_plant(path)
    assert plant.influxdb.url == "http://influxdb:8086" and set(plant.influxdb.users) == {"collector", "analytics",
                                                                                           "grafana"}
    needed = set(re.findall(r"\{env: ([A-Z0-9_]+)\}", path.read_text()))
    services = compose["services"]
    provided = {name: set(s.get("environment") or {}) for name, s in services.items()}
    assert {u.password.env for u in plant.influxdb.users.values()} <= provided["init"]
    assert {"PLANTEMS_INFLUX_COLLECTOR_PASSWORD", "PLANTEMS_MQTT_PASSWORD"} <= provided["collector"]
    assert {"PLANTEMS_INFLUX_ANALYTICS_PASSWORD", "PLANTEMS_SMTP_PASSWORD", "PLANTEMS_MQTT_PASSWORD"} <= \
        provided["analytics"]
    assert needed <= provided["init"] | provided["collector"] | provided["analytics"]
    assert str(plant.spool.path).startswith("/var/lib/plantems/spool")  # the compose volume


def test_dockerfile_copies_what_exists_and_runs_unprivileged():
    text = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M)[1]
    assert ":" in base and not base.endswith(":latest")
    for source in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for item in source.split():
            assert (REPO / item).exists(), item
    assert re.search(r"^USER plantems$", text, re.M) and 'ENTRYPOINT ["plantems"]' in text
