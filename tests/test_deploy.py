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


def test_compose_file_passes_compose_validation(tmp_path: Path) -> None:
    """docker-compose (Debian's, 1.29: no engine needed for `config`) checks the file against the
    Compose schema, merges the anchors and interpolates deploy/env.example as the docs say to use it.
    It predates the top-level `name:`, so that line is left out of its copy."""
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose (Debian package) is needed to validate deploy/compose.yaml"
    text = (DEPLOY / "compose.yaml").read_text()
    assert re.search(r"^name: plantems$", text, re.M)
    copy = tmp_path / "compose.yaml"
    copy.write_text(re.sub(r"^name: plantems\n", "", text, flags=re.M))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTEMS_")}
    result = subprocess.run([docker_compose, "--project-directory", str(DEPLOY), "--env-file",
                             str(DEPLOY / "env.example"), "-f", str(copy), "config"],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    resolved = yaml.safe_load(result.stdout)
    secrets_dir = re.search(r"^PLANTEMS_SECRETS_DIR=(\S+)$", (DEPLOY / "env.example").read_text(), re.M)[1]
    assert {s["file"] for s in resolved["secrets"].values()} == {f"{secrets_dir}/{n}" for n in resolved["secrets"]}
    assert all(s["read_only"] and s["cap_drop"] == ["ALL"] for s in resolved["services"].values())


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
    # the long-running plantems processes get the memory ceiling of their systemd units
    for name, unit in (("collector", "plantems-collector.service"), ("analytics", "plantems-analytics.service")):
        memory_max = _unit_settings((DEPLOY / "systemd" / unit).read_text())["MemoryMax"][-1]
        assert compose["services"][name]["mem_limit"].upper() == memory_max, name


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


# ---------------------------------------------------------------------------------------------- mosquitto

MOSQUITTO = DEPLOY / "mosquitto"
# who may publish what, written out by hand from deploy/plant.compose.yaml's comments
PLC_DEVICES = {"plc-compressors": {"comp-3", "comp-4"}, "plc-fans": {"fan-1"}}
USERS = ["collector", "analytics", "display", *PLC_DEVICES]
NOT_AUTHORIZED = 0x87           # MQTT v5 PUBACK reason code


def _telemetry(site: str, device: str) -> str:
    return f"plant/{site}/{device}/telemetry"


def _swap(text: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        assert old in text, f"{old!r} is no longer in the file: update the test"
        text = text.replace(old, new)
    return text


def _start_broker(folder: Path, main_conf: str, port: int, tls: dict[str, Path]) -> ManagedProcess:
    """Mosquitto with the deploy configuration: `main_conf` includes folder/conf.d, which holds
    deploy/mosquitto/plantems.conf with the certificate, password and ACL paths of this test."""
    (folder / "conf.d").mkdir(parents=True)
    passwd = folder / "plantems.passwd"
    passwd.write_text("")
    for user in USERS:
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, f"{user}-pw"], check=True)
    (folder / "conf.d" / "plantems.conf").write_text(_swap((MOSQUITTO / "plantems.conf").read_text(), [
        ("/etc/mosquitto/plantems.passwd", str(passwd)),
        ("/etc/mosquitto/plantems.acl", str(MOSQUITTO / "plantems.acl")),
        ("/etc/mosquitto/certs/ca.crt", str(tls["ca.crt"])),
        ("/etc/mosquitto/certs/server.crt", str(tls["server.crt"])),
        ("/etc/mosquitto/certs/server.key", str(tls["server.key"])),
        ("listener 8883", f"listener {port} 127.0.0.1")]))
    # as root, Mosquitto would switch to the user "mosquitto", who cannot read this test's key
    root = "user root\n" if os.geteuid() == 0 else ""
    (folder / "mosquitto.conf").write_text(root + main_conf)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    return ManagedProcess("mosquitto", [mosquitto, "-c", str(folder / "mosquitto.conf")], folder / "log",
                          port=port).start(listening)


@pytest.fixture
def compose_broker(tmp_path: Path, tls_files: dict[str, Path]) -> Iterator[ManagedProcess]:  # noqa: F811
    """deploy/mosquitto as the compose service runs it: compose.conf, then conf.d/plantems.conf."""
    folder, port = tmp_path / "mosquitto", free_port()
    main = _swap((MOSQUITTO / "compose.conf").read_text(), [
        ("persistence_location /mosquitto/data/", f"persistence_location {folder}/"),
        ("include_dir /mosquitto/config/conf.d", f"include_dir {folder}/conf.d")])
    broker = _start_broker(folder, main, port, tls_files)
    yield broker
    broker.stop()


class Client:
    """A TLS MQTT v5 client that records the PUBACK reason code of each publish and what it receives."""

    def __init__(self, port: int, ca: Path, user: str, *, v5: bool = True) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self.acks: dict[int, int] = {}
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = False
        self.mqtt = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"deploy-{user}{'' if v5 else '-v3'}",
                                protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311)
        self.mqtt.tls_set(ca_certs=str(ca))
        self.mqtt.username_pw_set(user, f"{user}-pw")
        self.mqtt.on_publish = lambda _c, _u, mid, reason, _p: self.acks.__setitem__(mid, reason.value)
        self.mqtt.on_message = lambda _c, _u, msg: self.received.append((msg.topic, msg.payload))
        self.mqtt.on_subscribe = lambda *_: setattr(self, "subscribed", True)
        self.mqtt.connect("127.0.0.1", port)
        self.mqtt.loop_start()
        wait_for(self.mqtt.is_connected, timeout_s=10, what=f"{user} connected over TLS")

    def subscribe(self, topic: str) -> None:
        self.mqtt.subscribe(topic, qos=1)
        wait_for(lambda: self.subscribed, timeout_s=10, what=f"SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1; the broker's PUBACK reason code (MQTT v5; 0: accepted, 16: accepted, no
        subscriber, >= 128: refused; always 0 in MQTT 3.1.1, which has no reason codes)."""
        mid = self.mqtt.publish(topic, payload, qos=1).mid
        wait_for(lambda: mid in self.acks, timeout_s=10, what=f"PUBACK for {topic}")
        return self.acks[mid]

    def close(self) -> None:
        self.mqtt.disconnect()  # first: it wakes the network thread, which then ends at once
        self.mqtt.loop_stop()


@pytest.fixture
def clients(compose_broker: ManagedProcess, tls_files: dict[str, Path]) -> Iterator[dict[str, Client]]:  # noqa: F811
    opened: dict[str, Client] = {}
    try:
        for user in USERS:
            opened[user] = Client(compose_broker.port, tls_files["ca.crt"], user)
        yield opened
    finally:
        for client in opened.values():
            client.close()


def test_the_acl_covers_each_mqtt_device_of_the_compose_plant_for_exactly_one_plc(plant: PlantConfig) -> None:
    writers: dict[str, list[str]] = {}
    user = None
    for line in (MOSQUITTO / "plantems.acl").read_text().splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            user = words[1]
        elif words[:2] == ["topic", "write"] and user in PLC_DEVICES:
            writers.setdefault(words[2], []).append(user)
    assert all("+" not in topic and "#" not in topic for topic in writers), "a PLC's topics are its devices' only"
    for device in plant.mqtt_devices:
        topic = _telemetry(plant.site.id, device.mqtt.topic_id or device.id)
        owners = [plc for plc, devices in PLC_DEVICES.items() if device.id in devices]
        assert len(owners) == 1 and writers.get(topic) == owners, f"{device.id}: {topic} by {writers.get(topic)}"


def test_each_plc_publishes_its_own_devices_only(clients: dict[str, Client], plant: PlantConfig) -> None:
    site = plant.site.id
    collector = clients["collector"]
    collector.subscribe(_telemetry(site, "+"))
    accepted: list[tuple[str, bytes]] = []
    for plc, own in PLC_DEVICES.items():
        for device in sorted(set().union(*PLC_DEVICES.values())):
            topic, payload = _telemetry(site, device), f'{{"from": "{plc}"}}'.encode()
            reason = clients[plc].publish(topic, payload)
            if device in own:
                assert reason == 0, f"{plc} may publish {device}"
                accepted.append((topic, payload))
            else:
                assert reason == NOT_AUTHORIZED, f"{plc} must not publish {device} of another PLC"
    assert collector.publish(_telemetry(site, "comp-3"), b'{"from": "collector"}') == NOT_AUTHORIZED
    assert clients["analytics"].publish(_telemetry(site, "fan-1"), b'{"from": "analytics"}') == NOT_AUTHORIZED
    # The broker queues an accepted message for its subscribers before it acknowledges it, and each
    # publish above waited for its acknowledgement: once the last accepted message has arrived,
    # every earlier one has too, and a refused one never will.
    sentinel = (_telemetry(site, "fan-1"), b'{"last": true}')
    assert clients["plc-fans"].publish(*sentinel) == 0
    wait_for(lambda: sentinel in collector.received, timeout_s=10, what="the last accepted message")
    assert collector.received == [*accepted, sentinel]


def test_alerts_go_from_analytics_to_displays_only(clients: dict[str, Client], plant: PlantConfig) -> None:
    topic = f"plantems/{plant.site.id}/alerts/critical"  # the MQTT alert channel's default topic
    display = clients["display"]
    display.subscribe("plantems/+/alerts/#")
    assert clients["plc-fans"].publish(topic, b"forged") == NOT_AUTHORIZED
    assert display.publish(topic, b"forged") == NOT_AUTHORIZED
    assert clients["analytics"].publish(topic, b"demand 7950 kW") == 0
    wait_for(lambda: display.received, timeout_s=10, what="the alert")
    assert display.received == [(topic, b"demand 7950 kW")]


def test_messages_over_the_size_limit_are_dropped(clients: dict[str, Client], plant: PlantConfig,
                                                  compose_broker: ManagedProcess,
                                                  tls_files: dict[str, Path]) -> None:  # noqa: F811
    limit_bytes = int(re.search(r"^message_size_limit (\d+)$", (MOSQUITTO / "plantems.conf").read_text(), re.M)[1])
    assert 64 * 1024 <= limit_bytes <= 16 * 1024 * 1024  # room for a PLC's batch, not for a flood
    collector = clients["collector"]
    topic = _telemetry(plant.site.id, "comp-3")
    collector.subscribe(topic)
    # an MQTT 3.1.1 PLC: the broker completes the QoS 1 flow and drops the message (to a v5 client it
    # answers PUBACK 0x95 "packet too large", which paho 2.2 cannot parse: it reconnects and resends)
    plc = Client(compose_broker.port, tls_files["ca.crt"], "plc-compressors", v5=False)
    try:
        plc.publish(topic, b"x" * (limit_bytes + 1))
        plc.publish(topic, b"y" * limit_bytes)  # in order after the first: once it is in, the first is not
        wait_for(lambda: collector.received, timeout_s=10, what="the message at the limit")
    finally:
        plc.close()
    assert [(t, len(payload), payload[:1]) for t, payload in collector.received] == [(topic, limit_bytes, b"y")]


def test_the_listener_refuses_clients_without_tls(compose_broker: ManagedProcess) -> None:
    # a plain MQTT CONNECT (protocol 3.1.1, clean session, client id "plain"): no CONNACK may come back
    connect = bytes([0x10, 0x13, 0x00, 0x04]) + b"MQTT" + bytes([0x04, 0x02, 0x00, 0x3C, 0x00, 0x05]) + b"plain"
    answer = b""
    with socket.create_connection(("127.0.0.1", compose_broker.port), timeout=10) as sock:
        sock.sendall(connect)
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    assert not answer.startswith(b"\x20"), "the TLS listener answered a plain CONNECT"


def test_the_plant_settings_load_into_debian_mosquitto_conf(tmp_path: Path,
                                                             tls_files: dict[str, Path]) -> None:  # noqa: F811
    """/etc/mosquitto/conf.d/plantems.conf beside Debian's own mosquitto.conf, which already sets
    persistence: a setting given twice would stop Mosquitto from starting."""
    debian = Path("/etc/mosquitto/mosquitto.conf")
    assert debian.exists(), "the Debian package mosquitto is needed (deploy/setup-debian.sh)"
    folder, port = tmp_path / "mosquitto", free_port()
    main = _swap(debian.read_text(), [
        ("/run/mosquitto/mosquitto.pid", f"{folder}/mosquitto.pid"),
        ("persistence_location /var/lib/mosquitto/", f"persistence_location {folder}/"),
        ("log_dest file /var/log/mosquitto/mosquitto.log", "log_dest stderr"),
        ("include_dir /etc/mosquitto/conf.d", f"include_dir {folder}/conf.d")])
    broker = _start_broker(folder, main, port, tls_files)
    try:
        collector, plc = (Client(port, tls_files["ca.crt"], user) for user in ("collector", "plc-fans"))
        collector.subscribe(_telemetry("changsha", "+"))
        assert plc.publish(_telemetry("changsha", "comp-3"), b"{}") == NOT_AUTHORIZED
        assert plc.publish(_telemetry("changsha", "fan-1"), b'{"p": 1}') == 0
        wait_for(lambda: collector.received, timeout_s=10, what="the PLC's message")
        assert collector.received == [(_telemetry("changsha", "fan-1"), b'{"p": 1}')]
        collector.close()
        plc.close()
    finally:
        broker.stop()
