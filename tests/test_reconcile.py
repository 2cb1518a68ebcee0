"""The monthly reconciliation: interval sums vs counter differences (pure cases, then the CLI
against a real InfluxDB). Expected energies are worked out by hand from constant-power counters."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantems.analytics.energy import CounterSpec, judge_counter
from plantems.analytics.reconcile import (
    MeterReconciliation,
    Reconciliation,
    counter_difference,
    first_page_lines,
    reconciliation_html,
)
from plantems.analytics.service import backfill_energy
from plantems.cli import main
from plantems.config import load_plant
from plantems.influx import InfluxClient, V1Writer
from plantems.tariffs import load_tariffs
from tests.support import REPO, rows, write_plant

H_NS = 3600 * 10**9


def _readings(kw: float, *, first: float = 1000.0, every_s: int = 600, offset_s: int = -300, hours: int = 10):
    """Readings of a counter at constant ``kw`` from ``offset_s`` before 0 to after ``hours``."""
    times = np.arange(offset_s, hours * 3600 + every_s, every_s, dtype=np.int64) * 10**9
    return times, first + kw * times / H_NS


@pytest.mark.parametrize("case", ["plain", "glitch", "wrap"])
def test_counter_difference_is_the_energy_between_the_edges(case):
    # 60 kW for 10 h = 600 kWh, the edges falling half-way between readings (prorated)
    times, values = _readings(60.0, first=9_900.0 if case == "wrap" else 1000.0)
    spec = CounterSpec(rollovers=(10_000.0,) if case == "wrap" else (), max_per_h=90.0)
    if case == "wrap":
        values = values % 10_000.0
    if case == "glitch":
        values[20] = 0.0  # one reading of 0: rejected, never energy
    kwh, steps = counter_difference(times, values, spec, 0, 10 * H_NS, judge_counter)
    assert kwh == pytest.approx(600.0, rel=1e-12)
    assert (len(steps.rejected_ns), steps.wraps) == {"plain": (0, 0), "glitch": (1, 0), "wrap": (0, 1)}[case]


def test_a_missing_interval_is_a_difference_on_the_first_page():
    ok = MeterReconciliation("inc", counter_kwh=600.0, intervals_kwh=600.0 + 1e-7)
    short = MeterReconciliation("mill-1", counter_kwh=600.0, intervals_kwh=585.0)
    result = Reconciliation("s", "2026-02", (ok, short, MeterReconciliation("fan", None, 12.0)))
    assert (ok.reconciled, short.reconciled, result.meters[2].reconciled) == (True, False, None)
    assert not result.ok and [m.device for m in result.differing] == ["mill-1"]
    (line,) = first_page_lines(result)
    assert "mill-1" in line and "-15.000 kWh" in line
    assert result.to_json()["differing"] == ["mill-1"] and result.to_json()["meters"][1]["difference_kwh"] == -15.0
    assert "DIFFERS" in reconciliation_html(result) and "no counter" in reconciliation_html(result)


def test_verify_a_month_against_influxdb(influx_url, db, tmp_path):
    body = ("devices:\n  - {id: m1, area: a, kind: pump, meter: generic_float32, host: 127.0.0.1, port: 1502, "
            "rated_kw: 200}\n  - {id: m2, area: a, kind: pump, meter: generic_float32, host: 127.0.0.1, "
            "port: 1503, rated_kw: 100}\n")
    config = write_plant(tmp_path, influx_url=influx_url, db=db, body=body)
    plant = load_plant(config)
    start = pd.Timestamp("2026-02-01", tz=plant.site.tz).value
    end = pd.Timestamp("2026-03-01", tz=plant.site.tz).value
    # readings every 10 minutes, 5 minutes off the month's edges; m1 at 120 kW, m2 at 30 kW
    times = np.arange(start - 300 * 10**9, end + 600 * 10**9, 600 * 10**9, dtype=np.int64)
    lines = [f"electrical,site=testsite,area=a,device={d},kind=pump e_imp_kwh={5000 + kw * int(t - start) / H_NS!r} {t}"
             for d, kw in (("m1", 120.0), ("m2", 30.0)) for t in times]
    writer = V1Writer(plant.influxdb)
    for i in range(0, len(lines), 5000):
        writer.write(db, lines[i:i + 5000])
    client = InfluxClient(plant.influxdb)
    backfill_energy(plant, load_tariffs(REPO / "config" / "tariffs"), client, writer,
                    datetime(2026, 2, 1).date(), datetime(2026, 2, 28).date(), progress=False)

    def verify() -> tuple[int, str]:
        result = CliRunner().invoke(main, ["rollup", "--config", str(config), "--month", "2026-02", "--verify"])
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        return result.exit_code, result.output + (repr(result.exception) if crashed else "")

    empty = CliRunner().invoke(main, ["rollup", "--config", str(config), "--month", "2028-01", "--verify"])
    assert empty.exit_code == 1 and "nothing to reconcile" in empty.output
    code, output = verify()
    assert code == 0, output
    assert "every meter reconciles" in output
    m1 = next(line for line in output.splitlines() if line.startswith("m1"))
    assert "80,640.000" in m1 and "reconciled" in m1  # 120 kW x 24 h x 28 days, both ways
    # an interval lost (a failed write the old way): m2 no longer adds up, by exactly that interval
    lost = start + 40 * 900 * 10**9
    (point,) = rows(influx_url, f"{db}_derived", f"SELECT energy_kwh FROM energy_15m WHERE device = 'm2' "
                                                 f"AND time = {lost}")
    assert point["energy_kwh"] == pytest.approx(7.5)  # 30 kW x 0.25 h
    client.query(f"DELETE FROM energy_15m WHERE device = 'm2' AND time >= {lost} AND time <= {lost}",
                 database=f"{db}_derived")
    code, output = verify()
    assert code == 1
    m2 = next(line for line in output.splitlines() if line.startswith("m2"))
    assert "20,160.000" in m2 and "-7.500" in m2 and "DIFFERS" in m2
    assert "do not reconcile: m2" in output
