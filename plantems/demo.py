"""``plantems demo``: local servers, back-filled history, simulator and collector.

Everything runs as child processes under ``var/`` (no systemd): InfluxDB and
Mosquitto from Debian's packages, then ``plantems simulate`` and ``plantems
collect``. A second run reuses the servers' data (and running servers).
Ctrl-C stops the children in reverse order.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
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

__all__ = ["run_demo"]

def _influx_up(url: str) -> bool:
    try:
        return requests.get(url.rstrip("/") + "/ping", timeout=1).status_code == 204
    except requests.RequestException:
        return False


def _child(name: str, args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
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


def _step(what: str, args: list[str]) -> bool:
    """One ``plantems`` command of the first run; False (with a message) if it failed."""
    print(f"{what}...")
    if subprocess.run([sys.executable, "-m", "plantems.cli", *args], check=False).returncode != 0:
        print(f"{what} failed; see the message above", file=sys.stderr)
        return False
    return True


def _first_run(plant: PlantConfig, *, config_path: Path, var_dir: Path, backfill_days: float) -> bool:
    """History, its 15-minute energy, production and last month's report: once per ./var."""
    config = ["--config", str(config_path)]
    today = datetime.now(plant.site.tz).date()
    first = (datetime.now(plant.site.tz) - timedelta(days=backfill_days)).date()
    production_csv = var_dir / "demo" / "production.csv"
    write_demo_production(plant, production_csv, first, today)
    month = previous_month(datetime.now(plant.site.tz))
    return (_step(f"back-filling {backfill_days:g} days of simulated history",
                  ["simulate", *config, "--backfill", str(backfill_days)])
            and _step("importing simulated production", ["production", "import", *config, str(production_csv)])
            and _step(f"computing 15-minute energy and EnPIs for the history ({first} .. {today})",
                      ["analyze", *config, "--backfill", first.isoformat(), today.isoformat()])
            and _step(f"monthly rollup for {month} (reports/{month}/)",
                      ["rollup", *config, "--month", month, "--reports", str(var_dir.parent / "reports")])
            and _step(*quarter_args(plant, config_path, var_dir.parent / "reports")))


def run_demo(plant: PlantConfig, *, config_path: Path, var_dir: Path, backfill_days: float | None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # ordered with the children's output
    if backfill_days is None:
        backfill_days = max(default_backfill_days(plant), measures_history_days(plant, config_path))
    var_dir = var_dir.resolve()
    servers: list[ManagedProcess] = []
    children: list[subprocess.Popen[bytes]] = []
    url = plant.influxdb.url
    port = urlparse(url).port or 8086
    try:
        if _influx_up(url):
            print(f"InfluxDB already answers at {url}: reusing it")
        else:
            print(f"starting InfluxDB on {url} (data in {var_dir / 'influxdb'})")
            servers.append(start_influxd(var_dir / "influxdb", port))
        mqtt_port = plant.mqtt.port if plant.mqtt else 11883
        servers.append(start_mosquitto(var_dir / "mosquitto", mqtt_port))
        print(f"started Mosquitto on 127.0.0.1:{mqtt_port}")
        for line in init_databases(plant.influxdb):
            print(line)
        marker = var_dir / "demo" / "backfill.done"
        if not marker.exists():
            if not _first_run(plant, config_path=config_path, var_dir=var_dir, backfill_days=backfill_days):
                return 1
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))
        logs = var_dir / "log"
        children.append(_child("simulator", ["simulate", "--config", str(config_path)], logs / "simulator.log"))
        time.sleep(1.0)  # servers listening before the first poll; the collector copes either way
        children.append(_child("collector", ["collect", "--config", str(config_path)], logs / "collector.log"))
        children.append(_child("analytics", ["analyze", "--config", str(config_path)], logs / "analytics.log"))
        _print_summary(plant, var_dir, mqtt_port, config_path)
        signal.signal(signal.SIGTERM, _interrupt)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a demo process exited; see the logs in", logs, file=sys.stderr)
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


def _print_summary(plant: PlantConfig, var_dir: Path, mqtt_port: int, config_path: Path) -> None:
    db = plant.influxdb.raw_database
    url = plant.influxdb.url
    port = urlparse(url).port or 8086
    print(f"""
plantems demo is running (Ctrl-C stops everything):
  InfluxDB       {url}  databases {db} (raw), {plant.influxdb.derived_database} (derived)
  Mosquitto      127.0.0.1:{mqtt_port}  (watch: mosquitto_sub -p {mqtt_port} -t 'plant/#' -v)
  simulator      {len(plant.modbus_devices)} Modbus meters on 127.0.0.1, {len(plant.mqtt_devices)} MQTT devices
                 published by a simulated PLC (log {var_dir / 'log/simulator.log'})
  collector      spool {plant.spool.path} (log {var_dir / 'log/collector.log'})
  analytics      energy_15m every 15 minutes, monthly rollup on the 1st (log {var_dir / 'log/analytics.log'})
  demand alerts  {_demand_summary(plant)}
                 watch: mosquitto_sub -p {mqtt_port} -t 'plantems/#' -v
  reports        {var_dir.parent / 'reports'}/YYYY-MM/report.html (also scope2.csv, scope2.xlsx, rollup.json)
  dashboards     grafana/dashboards/*.json, generated from the plant file (.venv/bin/plantems grafana build)
                 an existing Grafana (token of a service account with the Admin role):
                   PLANTEMS_GRAFANA_TOKEN=... .venv/bin/plantems grafana publish --config {config_path} \\
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
    --data-urlencode "q=SELECT last(p_kw) FROM electrical WHERE time > now() - 1m GROUP BY device"
  curl -sG {url}/query --data-urlencode db={db} \\
    --data-urlencode "q=SELECT mean(p_kw) FROM electrical WHERE time > now() - 1d GROUP BY time(1h), area"
  curl -sG {url}/query --data-urlencode db={plant.influxdb.derived_database} \\
    --data-urlencode "q=SELECT sum(energy_kwh) FROM energy_15m WHERE time > now() - 7d GROUP BY tou, area"
""", flush=True)
