"""Session fixtures: real InfluxDB (Debian influxdb) and VictoriaMetrics on free loopback ports."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from plantems.localservers import ManagedProcess, free_port, start_influxd, start_victoria_metrics
from plantems.meters import MeterModel, load_meter_library
from tests.support import REPO, LoopThread

pytest_plugins = ["tests.receivers"]  # the HTTP and SMTP receivers for alert tests

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    server = start_influxd(tmp_path_factory.mktemp("influxd"), free_port())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influx_url(influxd: ManagedProcess) -> str:
    return f"http://127.0.0.1:{influxd.port}"


@pytest.fixture
def db() -> str:
    """A database name of its own for each test (created by the code under test or the test)."""
    return f"t{next(_db_numbers)}"


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    server = start_victoria_metrics(tmp_path_factory.mktemp("vm"), free_port())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def meters() -> dict[str, MeterModel]:
    return load_meter_library(REPO / "config" / "meters")


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()
