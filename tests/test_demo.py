"""`plantems demo` as the README runs it: two parks on one InfluxDB and Mosquitto, back-fill, simulator,
collector, analytics, the site reports and the group report, clean stop."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plantems.localservers import free_port
from tests.support import REPO, copy_reference_data, rows, wait_for

SITES = {"changsha": "plant.demo.yaml", "changde": "plant.changde.yaml"}
LIVE_DEVICES = {"changsha": 14, "changde": 7}  # with p_kw, counted in the plant files: 12 + 2 MQTT, 5 + 2 MQTT
SHIFTABLE = {"changsha": ["comp-1", "comp-2", "comp-3", "mill-2"], "changde": ["comp-1", "mill-1"]}


def _localise(text: str, *, influx_port: int, mqtt_port: int, tmp_path: Path, site: str) -> str:
    """The demo plant file on free loopback ports, its spool under tmp_path."""
    text = text.replace("http://127.0.0.1:18086", f"http://127.0.0.1:{influx_port}")
    for port in sorted(set(re.findall(r"port: (150\d\d)", text))):
        text = text.replace(f"port: {port}", f"port: {free_port()}")
    text = re.sub(r"path: var/spool/\S+", f"path: {tmp_path}/{site}-spool.sqlite", text)
    return text.replace("port: 11883", f"port: {mqtt_port}")


def test_demo_runs_both_parks_and_stops_cleanly(tmp_path):
    influx_port, mqtt_port = free_port(), free_port()
    configs = []
    for site, name in SITES.items():
        config = tmp_path / name
        config.write_text(_localise((REPO / "config" / name).read_text(), influx_port=influx_port,
                                    mqtt_port=mqtt_port, tmp_path=tmp_path, site=site))
        configs += ["--config", str(config)]
    copy_reference_data(tmp_path)
    shutil.copy(REPO / "config" / "metal_purchases.csv", tmp_path)  # the example ledger beside the plant files
    shutil.copy(REPO / "config" / "group.demo.yaml", tmp_path / "group.yaml")  # names the plant files beside it
    configs += ["--group", str(tmp_path / "group.yaml")]
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen([sys.executable, "-m", "plantems.cli", "demo", *configs, "--var", str(tmp_path / "var"),
                             "--backfill-days", "0.2"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{influx_port}"
    try:
        wait_for(lambda: "plantems demo is running" in (tmp_path / "demo.log").read_text(), timeout_s=150,
                 what="the demo to start")
        for site, count in LIVE_DEVICES.items():
            wait_for(lambda site=site, count=count: len(rows(
                url, "plantems", f"SELECT last(p_kw) FROM electrical WHERE time > now() - 10s AND site = '{site}' "
                                 "GROUP BY device")) == count, timeout_s=30, what=f"live data from {site}'s devices")
            history = rows(url, "plantems", f"SELECT count(p_kw) FROM electrical WHERE time < now() - 1h "
                                            f"AND site = '{site}'")
            assert history and history[0]["count"] >= count * 60  # the back-fill is there
            energy = rows(url, "plantems_derived", f"SELECT count(energy_kwh) FROM energy_15m WHERE site = '{site}' "
                                                   "GROUP BY device")
            assert len(energy) == count and all(r["count"] >= 4 for r in energy)  # and its 15-minute energy
            reports = list((tmp_path / "reports" / site).glob("*/report.html"))
            assert len(reports) == 1 and "Poor data coverage" in reports[0].read_text()  # 0.2 days of last month
            _assert_plan_sections(reports[0])
        # the group's month report, beside them (inventory-YYYY/ holds the annual one)
        (group_report,) = (tmp_path / "reports" / "hunan-al").glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]/report.html")
        _assert_group_sums_the_sites(tmp_path / "reports", group_report.parent.name)
        _assert_plan_sections(group_report)
        _assert_plan_pages(tmp_path / "reports", group_report.parent.name)
        _assert_inventory(tmp_path / "reports", group_report.parent.name)
        produced = rows(url, "plantems", "SELECT count(output_t) FROM production GROUP BY site, line")
        assert sorted((r["site"], r["line"]) for r in produced) == [
            ("changde", "cast-1"), ("changde", "roll-1"), ("changsha", "cast-1"), ("changsha", "roll-1")]
        wait_for(lambda: len(rows(url, "plantems_derived", "SELECT count(demand_kw) FROM demand GROUP BY site")) == 2,
                 timeout_s=30, what="both sites' live demand monitor points")
        for site, shiftable in SHIFTABLE.items():
            shifts = rows(url, "plantems_derived", f"SELECT count(saving_cny) FROM opportunity WHERE site = '{site}' "
                                                   "AND granularity = 'day' GROUP BY device")
            assert sorted(r["device"] for r in shifts) == shiftable  # the shiftable ones
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(60)
    output = (tmp_path / "demo.log").read_text()
    assert "stopping..." in output and demo.returncode == 0, output[-2000:]
    assert "plantems grafana publish" in output and "grafana/grafana-oss" in output  # how to see the dashboards
    assert "site changsha" in output and "site changde" in output
    time.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True,
                               check=False).stdout.split()
    assert leftovers == []  # influxd, mosquitto, simulators, collectors and analytics all stopped


def _assert_plan_sections(report: Path) -> None:
    """The EnPI, metering and purchased-metal sections (issues 13, 14) in both languages, from the example ledger."""
    en, zh = report.read_text(), report.with_name("report.zh.html").read_text()
    for section in ('<h2 id="enpi">', '<h2 id="metering">', '<h2 id="metal">', 'id="chart-metering"'):
        assert section in en and section in zh, section
    assert "Intensity denominator (ASI)" in en and "强度分母（ASI）" in zh  # the ledger was read, not "no ledger"
    assert "能源绩效参数（EnPI）" in zh and "能源计量器具配备（GB 17167）" in zh


def _assert_inventory(reports: Path, month: str) -> None:
    """The group's annual inventory so far, in both languages, with the months before the history missing."""
    folder = reports / "hunan-al" / f"inventory-{month[:4]}"
    data = json.loads((folder / "inventory.json").read_text())
    assert sorted(data["sites"]) == sorted(SITES)
    completeness = data["completeness"]
    assert completeness["months_found"] == 2  # last month's rollup of each park, the only month with history
    assert {"site": "changsha", "month": month} not in completeness["missing"]
    assert {"site": "changde", "month": f"{month[:4]}-01"} in completeness["missing"] or month.endswith("-01")
    assert "<html" in (folder / "report.html").read_text() and "<html" in (folder / "report.zh.html").read_text()


def _assert_group_sums_the_sites(reports: Path, month: str) -> None:
    """The group report consolidates exactly the two site reports beside it (each site's config hash as
    its own rollup.json records it) and its energy is theirs added up."""
    group = json.loads((reports / "hunan-al" / month / "group.json").read_text())
    sites = {site: json.loads((reports / site / month / "rollup.json").read_text()) for site in SITES}
    assert {s["site"]: s["config_sha256"] for s in group["sites"]} == {
        site: doc["provenance"]["config_sha256"] for site, doc in sites.items()}
    assert group["grid_import_kwh"] == pytest.approx(sum(doc["grid_import_kwh"] for doc in sites.values()), abs=1e-9)


def test_demo_refuses_sites_that_do_not_share_the_servers(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text((REPO / "config" / "plant.demo.yaml").read_text())
    second = tmp_path / "b.yaml"
    second.write_text((REPO / "config" / "plant.changde.yaml").read_text().replace("127.0.0.1:18086", "127.0.0.1:1"))
    copy_reference_data(tmp_path)
    done = subprocess.run([sys.executable, "-m", "plantems.cli", "demo", "--config", str(first), "--config",
                           str(second), "--var", str(tmp_path / "var")], capture_output=True, text=True,
                          cwd=tmp_path, check=False, timeout=60)
    assert done.returncode == 2
    assert f"{second}: influxdb.url = http://127.0.0.1:1: the demo runs one InfluxDB for every site" in done.stderr


def test_demo_stopped_during_the_first_run_leaves_nothing_behind(tmp_path):
    influx_port, mqtt_port = free_port(), free_port()
    configs = []
    for site, name in SITES.items():
        config = tmp_path / name
        config.write_text(_localise((REPO / "config" / name).read_text(), influx_port=influx_port,
                                    mqtt_port=mqtt_port, tmp_path=tmp_path, site=site))
        configs += ["--config", str(config)]
    copy_reference_data(tmp_path)
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        demo = subprocess.Popen([sys.executable, "-m", "plantems.cli", "demo", *configs, "--var",
                                 str(tmp_path / "var"), "--backfill-days", "30"], stdout=log,
                                stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            wait_for(lambda: "back-filling 30 days" in log_path.read_text(), timeout_s=60, what="the back-fill")
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(60)
    output = log_path.read_text()
    assert "stopping..." in output and demo.returncode == 0, output[-2000:]
    assert not (tmp_path / "var" / "demo" / "changsha" / "backfill.done").exists()  # the next run starts over
    time.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True,
                               check=False).stdout.split()
    assert leftovers == []  # the back-fill step, influxd and mosquitto all stopped


def test_demo_refuses_a_group_that_names_other_plant_files(tmp_path):
    """The repository's group file lists config/plant.*.yaml; a demo of copies elsewhere would report
    on the wrong sites' data."""
    configs = []
    for name in SITES.values():
        shutil.copy(REPO / "config" / name, tmp_path / name)
        configs += ["--config", str(tmp_path / name)]
    copy_reference_data(tmp_path)
    done = subprocess.run([sys.executable, "-m", "plantems.cli", "demo", *configs, "--group",
                           str(REPO / "config" / "group.demo.yaml"), "--var", str(tmp_path / "var")],
                          capture_output=True, text=True, cwd=tmp_path, check=False, timeout=60)
    assert done.returncode == 2
    assert (f"group.demo.yaml: site changde is {REPO / 'config' / 'plant.changde.yaml'}, but the demo runs it "
            f"from {tmp_path / 'plant.changde.yaml'}") in done.stderr


PLAN_ROWS = {"en": ("ASI casting-rolling, Scope 1+2 intensity", "ASI raw material, Scope 3 category 1 intensity",
                    "Recycled aluminium share", "Renewable electricity share",
                    "High-consumption equipment in the energy-management system"),
             "zh": ("ASI 铸轧：范围一+二碳排放强度", "ASI 原材料：范围三类别1碳排放强度", "再生铝占比",
                    "可再生能源电力占比", "高耗能设备纳入能源管理系统比例")}


def _assert_plan_pages(reports: Path, month: str) -> None:
    """Each site's report and the group's show the plan page in both languages (both ASI rows, recycled,
    renewable, metering coverage); the group's raw-material intensity is the example ledger's, summed by hand."""
    import csv

    for folder in [reports / site / month for site in SITES] + [reports / "hunan-al" / month]:
        for lang, name in (("en", "report.html"), ("zh", "report.zh.html")):
            text = (folder / name).read_text()
            assert '<h2 id="plan">' in text and '<figure id="chart-plan"><svg' in text, folder / name
            assert [label for label in PLAN_ROWS[lang] if f"<td>{label}" not in text] == [], folder / name
    lines = [line for line in (REPO / "config" / "metal_purchases.csv").read_text().splitlines()
             if not line.startswith("#")]
    rows_ = [r for r in csv.DictReader(lines) if r["delivered"][:4] == month[:4] and r["delivered"][:7] <= month
             and r["product"] != "alloying_element" and r["site"] in SITES]
    group = json.loads((reports / "hunan-al" / month / "group.json").read_text())["plan"]
    raw = next(t for t in group["targets"] if t["target"] == "raw_material")
    expected = (sum(float(r["tonnes"]) * float(r["footprint_t_co2e_per_t"]) for r in rows_)
                / sum(float(r["tonnes"]) for r in rows_)) if rows_ else None
    assert raw["actual_ytd"] == pytest.approx(expected)
