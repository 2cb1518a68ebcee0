"""Local InfluxDB, Mosquitto and VictoriaMetrics from Debian packages, run as child processes.

Used by ``plantems demo`` (under ``./var/``) and by the test fixtures (on free
loopback ports in temporary folders). No systemd, no containers: each server
gets its own config file and data folder, listens on 127.0.0.1 only, and is
stopped with SIGTERM (SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests

__all__ = ["ManagedProcess", "free_port", "start_influxd", "start_mosquitto", "start_victoria_metrics"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()),
                                       None)
    if not found:
        raise RuntimeError(f"{name} not found: install the Debian package {package!r} "
                           f"(apt-get install {package}, or run `make setup`)")
    return found


class ManagedProcess:
    """A server child process with its log file; ``stop()`` is idempotent."""

    def __init__(self, name: str, argv: list[str], log_path: Path, *, port: int) -> None:
        self.name, self.argv, self.log_path, self.port = name, argv, log_path, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[], bool], *, timeout_s: float = 30.0) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            if ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready on port {self.port} after {timeout_s} s; see {self.log_path}")

    def stop(self, *, grace_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: for crash tests."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=0.5).status_code < 500
        except requests.RequestException:
            return False
    return check


def _tcp_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        return False
    return check


_INFLUXD_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  auth-enabled = {auth}
[monitor]
  store-enabled = false
[logging]
  level = "warn"
"""


def start_influxd(data_dir: Path, port: int, *, auth: bool = False) -> ManagedProcess:
    """InfluxDB 1.x (Debian ``influxdb``) with data in ``data_dir``, HTTP on 127.0.0.1:``port``
    (``auth``: logins required; the first user created must be an admin)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "influxdb.conf"
    conf.write_text(_INFLUXD_CONF.format(dir=data_dir, port=port, rpc_port=free_port(),
                                         auth="true" if auth else "false"))
    argv = [_binary("influxd", "influxdb"), "-config", str(conf)]
    return ManagedProcess("influxd", argv, data_dir / "influxd.log", port=port).start(
        _http_ok(f"http://127.0.0.1:{port}/ping"))


def start_mosquitto(data_dir: Path, port: int, *, extra_conf: str = "", listener: bool = True) -> ManagedProcess:
    """Mosquitto on 127.0.0.1:``port`` with persistence in ``data_dir``.

    By default an anonymous plain listener (loopback only: the demo and tests); with
    ``listener=False`` ``extra_conf`` defines the listener (TLS, password file).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "mosquitto.conf"
    plain = f"listener {port} 127.0.0.1\nallow_anonymous true\n" if listener else ""
    # Started as root, Mosquitto switches to the user "mosquitto", which cannot write its
    # persistence file into our folder: the sessions would silently not survive a restart.
    if os.geteuid() == 0:
        plain += "user root\n"
    conf.write_text(f"{plain}persistence true\npersistence_location {data_dir}/\nlog_dest stderr\n"
                    f"max_queued_messages 100000\n{extra_conf}")
    argv = [_binary("mosquitto", "mosquitto"), "-c", str(conf)]
    return ManagedProcess("mosquitto", argv, data_dir / "mosquitto.log", port=port).start(_tcp_open(port))


def start_victoria_metrics(data_dir: Path, port: int) -> ManagedProcess:
    """VictoriaMetrics (accepts ``/api/v2/write`` line protocol): the v2 write-API peer in tests."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [_binary("victoria-metrics", "victoria-metrics"), f"-storageDataPath={data_dir}",
            f"-httpListenAddr=127.0.0.1:{port}", "-loggerLevel=ERROR"]
    return ManagedProcess("victoria-metrics", argv, data_dir / "vm.log", port=port).start(
        _http_ok(f"http://127.0.0.1:{port}/health"))
