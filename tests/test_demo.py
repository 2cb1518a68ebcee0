"""`plantems demo` as the README runs it: servers, back-fill, simulator, collector, clean stop."""

import re
import signal
import subprocess
import sys
import time

from plantems.localservers import free_port
from tests.support import REPO, copy_reference_data, rows, wait_for


def test_demo_runs_and_stops_cleanly(tmp_path):
    text = (REPO / "config" / "plant.demo.yaml").read_text()
    influx_port = free_port()
    text = text.replace("http://127.0.0.1:18086", f"http://127.0.0.1:{influx_port}")
    for port in sorted(set(re.findall(r"port: (150\d\d)", text))):
        text = text.replace(f"port: {port}", f"port: {free_port()}")
    text = text.replace("path: var/spool/collector.sqlite", f"path: {tmp_path}/spool.sqlite")
    text = text.replace("port: 11883", f"port: {free_port()}")
    config = tmp_path / "plant.yaml"
    config.write_text(text)
    copy_reference_data(tmp_path)
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen([sys.executable, "-m", "plantems.cli", "demo", "--config", str(config), "--var",
                             str(tmp_path / "var"), "--backfill-days", "0.2"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{influx_port}"
    try:
        wait_for(lambda: "plantems demo is running" in (tmp_path / "demo.log").read_text(), timeout_s=90,
                 what="the demo to start")
        wait_for(lambda: len(rows(url, "plantems", "SELECT last(p_kw) FROM electrical WHERE time > now() - 10s "
                                                   "GROUP BY device")) == 13, timeout_s=30,
                 what="live data from all 13 devices (11 Modbus, 2 MQTT)")
        history = rows(url, "plantems", "SELECT count(p_kw) FROM electrical WHERE time < now() - 1h")
        assert history and history[0]["count"] >= 13 * 60  # the back-fill is there
        energy = rows(url, "plantems_derived", "SELECT count(energy_kwh) FROM energy_15m GROUP BY device")
        assert len(energy) == 13 and all(r["count"] >= 4 for r in energy)  # and its 15-minute energy
        reports = list((tmp_path / "reports").glob("*/report.html"))
        assert len(reports) == 1 and "Poor data coverage" in reports[0].read_text()  # 0.2 days of last month
        produced = rows(url, "plantems", "SELECT count(output_t) FROM production GROUP BY line")
        assert sorted(r["line"] for r in produced) == ["cast-1", "roll-1"]
        wait_for(lambda: rows(url, "plantems_derived", "SELECT count(demand_kw) FROM demand"), timeout_s=30,
                 what="the live demand monitor's points")
        shifts = rows(url, "plantems_derived", "SELECT count(saving_cny) FROM opportunity WHERE granularity = 'day' "
                                               "GROUP BY device")
        assert sorted(r["device"] for r in shifts) == ["comp-1", "comp-2", "comp-3", "mill-2"]  # the shiftable ones
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(60)
    output = (tmp_path / "demo.log").read_text()
    assert "stopping..." in output and demo.returncode == 0, output[-2000:]
    assert "plantems grafana publish" in output and "grafana/grafana-oss" in output  # how to see the dashboards
    time.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True,
                               check=False).stdout.split()
    assert leftovers == []  # influxd, mosquitto, simulator and collector all stopped
