"""``plantems demo``: local servers, back-filled history, simulator, collector and analytics per site.

Everything runs as child processes under ``var/`` (no systemd): InfluxDB and
Mosquitto from Debian's packages, shared by every site (one central InfluxDB,
the ``site`` tag separates the parks), then ``plantems simulate``, ``collect``
and ``analyze`` for each site. The first run back-fills each site's history and
writes its last-month report, then the group report across the sites. A second
run reuses the servers' data (and running servers). Ctrl-C stops the children
in reverse order.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import requests

from plantems.calendar import previous_month
from plantems.config import PlantConfig
from plantems.demo_measures import measures_history_days, quarter_args
from plantems.influx import init_databases
from plantems.localservers import ManagedProcess, start_influxd, start_mosquitto
from plantems.simulator.economy import line_output_t

__all__ = ["DemoGroup", "DemoSite", "check_group", "check_shared_servers", "run_demo"]

DEFAULT_MQTT_PORT = 11883  # the demo's broker when no site configures MQTT


@dataclass(frozen=True)
class DemoSite:
    """One park of the demo: its plant file and the configuration loaded from it."""

    config_path: Path
    plant: PlantConfig

    @property
    def id(self) -> str:
        return self.plant.site.id


def check_shared_servers(sites: list[DemoSite]) -> list[str]:
    """Why these sites cannot share the demo's one InfluxDB and one Mosquitto (empty: they can)."""
    problems = []
    first = sites[0]
    seen: dict[str, Path] = {}
    for site in sites:
        if site.id in seen:
            problems.append(f"{site.config_path}: site.id = {site.id}: also the site of {seen[site.id]}; "
                            "each park needs its own site id")
        seen.setdefault(site.id, site.config_path)
        if site.plant.influxdb.url != first.plant.influxdb.url:
            problems.append(f"{site.config_path}: influxdb.url = {site.plant.influxdb.url}: the demo runs one "
                            f"InfluxDB for every site, {first.plant.influxdb.url} ({first.config_path})")
        if _mqtt_port(site.plant) != _mqtt_port(first.plant):
            problems.append(f"{site.config_path}: mqtt.port = {_mqtt_port(site.plant)}: the demo runs one "
                            f"Mosquitto for every site, port {_mqtt_port(first.plant)} ({first.config_path})")
        if site.plant.spool.path in {s.plant.spool.path for s in sites if s is not site}:
            problems.append(f"{site.config_path}: spool.path = {site.plant.spool.path}: shared with another "
                            "site; each collector needs its own spool")
    return problems


def _mqtt_port(plant: PlantConfig) -> int:
    return plant.mqtt.port if plant.mqtt else DEFAULT_MQTT_PORT

def _influx_up(url: str) -> bool:
    try:
        return requests.get(url.rstrip("/") + "/ping", timeout=1).status_code == 204
    except requests.RequestException:
        return False


def _child(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = log_path.open("ab")
    return subprocess.Popen([sys.executable, "-m", "plantems.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo like Ctrl-C does


def default_backfill_days(plant: PlantConfig) -> float:
    """From the first day of last month: the demo's first rollup has a whole month."""
    now = datetime.now(plant.site.tz)
    first = datetime(now.year - (now.month == 1), 12 if now.month == 1 else now.month - 1, 1, tzinfo=plant.site.tz)
    return float((now - first).days + 1)


def write_demo_production(plant: PlantConfig, path: Path, first: date, last: date) -> None:
    """Simulated daily output per production line (the demo's stand-in for the MES export)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["date,line,output_t"]
    day = first
    while day <= last:
        for index, line in enumerate(plant.production_lines):
            # the simulator's own daily output (simulator/economy.py): its loads follow the same tonnage
            rows.append(f"{day.isoformat()},{line.id},{line_output_t(index, day):.3f}")
        day += timedelta(days=1)
    path.write_text("\n".join(rows) + "\n")


def _step(what: str, args: list[str], *, ok_codes: tuple[int, ...] = (0,)) -> bool:
    """One ``plantems`` command of the first run; False (with a message) if it failed."""
    print(f"{what}...")
    if subprocess.run([sys.executable, "-m", "plantems.cli", *args], check=False).returncode not in ok_codes:
        print(f"{what} failed; see the message above", file=sys.stderr)
        return False
    return True


def _inventory(args: list[str], reports: Path, year: int, where: str) -> bool:
    """The annual inventory so far: the demo's history covers a few months, so the others are listed as
    missing and the command's "incomplete" status (3) is expected here."""
    return _step(f"annual inventory {year} so far ({where}; months before the history are listed as missing)",
                 ["inventory", "--year", str(year), *args, "--reports", str(reports)], ok_codes=(0, 3))


@dataclass(frozen=True)
class DemoGroup:
    """The group file the demo reports on: its id and the plant file of each of its sites."""

    path: Path
    id: str
    plant_files: dict[str, Path]  # site id -> plant file, as the group file names them


def check_group(group: DemoGroup, sites: list[DemoSite]) -> list[str]:
    """Why the group's rollup would not read the demo's sites (empty: it would)."""
    running = {site.id: site.config_path.resolve() for site in sites}
    problems = []
    for site_id, path in group.plant_files.items():
        if site_id not in running:
            problems.append(f"{group.path}: site {site_id} ({path}) is not one of the demo's sites "
                            f"({', '.join(running)}); give its plant file with --config")
        elif path.resolve() != running[site_id]:
            problems.append(f"{group.path}: site {site_id} is {path}, but the demo runs it from {running[site_id]}")
    return problems


def _site_history(site: DemoSite, *, var_dir: Path, backfill_days: float) -> bool:
    """A site's simulated history, its 15-minute energy and its production."""
    plant = site.plant
    config = ["--config", str(site.config_path)]
    now = datetime.now(plant.site.tz)
    today = now.date()
    first = (now - timedelta(days=backfill_days)).date()
    production_csv = var_dir / "demo" / site.id / "production.csv"
    write_demo_production(plant, production_csv, first, today)
    print(f"== {site.id}: first run ({site.config_path})")
    return (_step(f"back-filling {backfill_days:g} days of simulated history",
                  ["simulate", *config, "--backfill", str(backfill_days)])
            and _step("importing simulated production", ["production", "import", *config, str(production_csv)])
            and _step(f"computing 15-minute energy and EnPIs for the history ({first} .. {today})",
                      ["analyze", *config, "--backfill", first.isoformat(), today.isoformat()]))


def _done(marker: Path) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))


def _site_first_run(site: DemoSite, *, var_dir: Path, backfill_days: float, month: str, reports: Path,
                    own_report: bool) -> bool:
    """A site's history, its own monthly report if the group's rollup does not write it, and its quarterly
    report where the measures register beside its plant file is its own (issue 13)."""
    if not _site_history(site, var_dir=var_dir, backfill_days=backfill_days):
        return False
    if own_report and not _step(f"monthly rollup of {site.id} for {month} ({reports / site.id / month}/)",
                                ["rollup", "--config", str(site.config_path), "--month", month, "--reports",
                                 str(reports / site.id)]):
        return False
    return not measures_history_days(site.plant, site.config_path) or _step(
        *quarter_args(site.plant, site.config_path, reports / site.id))


def _first_runs(sites: list[DemoSite], *, var_dir: Path, group: DemoGroup | None, backfill_days: float) -> bool:
    """Each site's history once per ./var, then last month's reports: the group rollup writes its sites'
    reports and the group's; a site outside the group gets its own. False if a step failed."""
    reports = var_dir.parent / "reports"
    month = previous_month(datetime.now(sites[0].plant.site.tz))
    new = [site for site in sites if not (var_dir / "demo" / site.id / "backfill.done").exists()]
    for site in new:
        own_report = group is None or site.id not in group.plant_files
        if not _site_first_run(site, var_dir=var_dir, backfill_days=backfill_days, month=month, reports=reports,
                               own_report=own_report):
            return False
        _done(var_dir / "demo" / site.id / "backfill.done")
    year = int(month[:4])
    if group is None:
        print("group report skipped: no group file")
        return all(_inventory(["--config", str(site.config_path)], reports / site.id, year,
                              str(reports / site.id / f"inventory-{year}")) for site in new)
    marker = var_dir / "demo" / f"group-{group.id}.done"
    if marker.exists() and not any(site.id in group.plant_files for site in new):
        return True
    if not (_step(f"group rollup for {month}: each site's report and the group's ({reports / group.id / month}/)",
                  ["group", "rollup", "--group", str(group.path), "--month", month, "--reports", str(reports)])
            and _inventory(["--group", str(group.path)], reports, year, str(reports / group.id / f"inventory-{year}"))):
        return False
    _done(marker)
    return True


def site_reports_dir(var_dir: Path, site: DemoSite) -> Path:
    """``reports/SITE``: each park's monthly reports apart (``reports/SITE/YYYY-MM/``)."""
    return var_dir.parent / "reports" / site.id


def _start_site(site: DemoSite, *, var_dir: Path, children: list[subprocess.Popen[bytes]]) -> None:
    """The site's simulator, collector and analytics, each added to ``children`` as it starts (stopped by Ctrl-C)."""
    config = ["--config", str(site.config_path)]
    logs = var_dir / "log"
    children.append(_child(["simulate", *config], logs / f"{site.id}-simulator.log"))
    time.sleep(1.0)  # servers listening before the first poll; the collector copes either way
    children.append(_child(["collect", *config], logs / f"{site.id}-collector.log"))
    children.append(_child(["analyze", *config, "--reports", str(site_reports_dir(var_dir, site))],
                           logs / f"{site.id}-analytics.log"))


def _start_servers(plant: PlantConfig, var_dir: Path, servers: list[ManagedProcess]) -> int:
    """InfluxDB (unless one answers already) and Mosquitto, added to ``servers``; the MQTT port."""
    url = plant.influxdb.url
    if _influx_up(url):
        print(f"InfluxDB already answers at {url}: reusing it")
    else:
        print(f"starting InfluxDB on {url} (data in {var_dir / 'influxdb'})")
        servers.append(start_influxd(var_dir / "influxdb", urlparse(url).port or 8086))
    mqtt_port = _mqtt_port(plant)
    servers.append(start_mosquitto(var_dir / "mosquitto", mqtt_port))
    print(f"started Mosquitto on 127.0.0.1:{mqtt_port}")
    for line in init_databases(plant.influxdb):
        print(line)
    return mqtt_port


def _start_children(sites: list[DemoSite], group: DemoGroup | None, var_dir: Path,
                    children: list[subprocess.Popen[bytes]]) -> None:
    for site in sites:
        _start_site(site, var_dir=var_dir, children=children)
    if group is not None:  # the group rollup on the 1st, after the sites' own
        children.append(_child(["group", "analyze", "--group", str(group.path), "--reports",
                                str(var_dir.parent / "reports")], var_dir / "log" / "group-analytics.log"))


def run_demo(sites: list[DemoSite], *, var_dir: Path, group: DemoGroup | None, backfill_days: float | None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # ordered with the children's output
    problems = check_shared_servers(sites) + (check_group(group, sites) if group else [])
    if problems:
        print("demo refused:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if backfill_days is None:
        backfill_days = max(default_backfill_days(sites[0].plant),
                            *(measures_history_days(site.plant, site.config_path) for site in sites))
    var_dir = var_dir.resolve()
    signal.signal(signal.SIGTERM, _interrupt)  # from here on SIGTERM cleans up like Ctrl-C (first run included)
    servers: list[ManagedProcess] = []
    children: list[subprocess.Popen[bytes]] = []
    try:
        mqtt_port = _start_servers(sites[0].plant, var_dir, servers)
        if not _first_runs(sites, var_dir=var_dir, group=group, backfill_days=backfill_days):
            return 1
        _start_children(sites, group, var_dir, children)
        _print_summary(sites, var_dir, mqtt_port, group)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a demo process exited; see the logs in", var_dir / "log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    finally:
        for child in reversed(children):
            _stop(child)
        for server in reversed(servers):
            server.stop()


def _demand_summary(plant: PlantConfig) -> str:
    if plant.demand is None:
        return "none configured (demand: in the plant file)"
    groups = ", ".join(f"{g.id} limit {g.limit_kw:,.0f} kW" for g in plant.demand.groups)
    return f"{groups}, every {plant.demand.evaluate_every_s:g} s; scenarios {', '.join(plant.simulator.scenarios)}"


def _site_summary(site: DemoSite, var_dir: Path) -> str:
    plant = site.plant
    logs = var_dir / "log"
    return f"""  site {site.id} ({plant.site.name_zh or plant.site.name}, {site.config_path})
    simulator      {len(plant.modbus_devices)} Modbus meters on 127.0.0.1, {len(plant.mqtt_devices)} MQTT devices
                   published by a simulated PLC (log {logs / f'{site.id}-simulator.log'})
    collector      spool {plant.spool.path} (log {logs / f'{site.id}-collector.log'})
    analytics      energy_15m every 15 minutes, monthly rollup on the 1st (log {logs / f'{site.id}-analytics.log'})
    demand alerts  {_demand_summary(plant)}
    reports        {site_reports_dir(var_dir, site)}/YYYY-MM/report.html (also scope2.csv, scope2.xlsx, rollup.json)
"""


def _print_summary(sites: list[DemoSite], var_dir: Path, mqtt_port: int, group: DemoGroup | None) -> None:
    first = sites[0]
    plant = first.plant
    db = plant.influxdb.raw_database
    url = plant.influxdb.url
    port = urlparse(url).port or 8086
    parks = "".join(_site_summary(site, var_dir) for site in sites)
    configs = " ".join(f"--config {site.config_path}" for site in sites)
    reports = var_dir.parent / "reports"
    group_lines = (f"  group {group.id} ({group.path})\n"
                   f"    analytics      group rollup on the 1st, after the sites' own "
                   f"(log {var_dir / 'log/group-analytics.log'})\n"
                   f"    reports        {reports / group.id}/YYYY-MM/report.html (also group.xlsx, group.json)\n"
                   f"                   any month: .venv/bin/plantems group rollup --group {group.path} "
                   "--month YYYY-MM\n" if group is not None else "")
    print(f"""
plantems demo is running (Ctrl-C stops everything):
  InfluxDB       {url}  databases {db} (raw), {plant.influxdb.derived_database} (derived); tag site
  Mosquitto      127.0.0.1:{mqtt_port}  (watch: mosquitto_sub -p {mqtt_port} -t 'plant/#' -v)
                 demand alerts: mosquitto_sub -p {mqtt_port} -t 'plantems/#' -v
{parks}{group_lines}  dashboards     grafana/dashboards/*.json with a site variable, and group.json comparing the sites
                 (.venv/bin/plantems grafana build)
                 an existing Grafana (token of a service account with the Admin role):
                   PLANTEMS_GRAFANA_TOKEN=... .venv/bin/plantems grafana publish {configs} \\
                     --url http://GRAFANA:3000 --influx-url http://THIS-HOST:{port}
                 or Grafana OSS in Docker on this host, provisioned from grafana/ (admin/admin):
                   docker run --rm --network host -e PLANTEMS_GRAFANA_INFLUX_URL={url} \\
                     -e PLANTEMS_GRAFANA_INFLUX_USER= -e PLANTEMS_GRAFANA_INFLUX_PASSWORD= \\
                     -v $PWD/grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro \\
                     -v $PWD/grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro \\
                     -v $PWD/grafana/dashboards:/var/lib/grafana/dashboards/plantems:ro grafana/grafana-oss:11.6.0
                 then open http://localhost:3000 (folder "plantems"); production: deploy/compose.yaml

Try:
  curl -sG {url}/query --data-urlencode db={db} \\
    --data-urlencode "q=SELECT last(p_kw) FROM electrical WHERE time > now() - 1m GROUP BY site, device"
  curl -sG {url}/query --data-urlencode db={db} \\
    --data-urlencode "q=SELECT mean(p_kw) FROM electrical WHERE time > now() - 1d GROUP BY time(1h), site, area"
  curl -sG {url}/query --data-urlencode db={plant.influxdb.derived_database} \\
    --data-urlencode "q=SELECT sum(energy_kwh) FROM energy_15m WHERE time > now() - 7d GROUP BY site, tou"
""", flush=True)
