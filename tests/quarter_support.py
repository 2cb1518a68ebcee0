"""Shared by the end-to-end quarter tests: the simulated plant's history through the real pipeline
(back-fill -> analyze -> production import -> the quarter), and the model's own energy to check against."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from click.testing import CliRunner

from plantems.cli import main
from plantems.config import PlantConfig
from plantems.influx import InfluxClient, V1Writer
from plantems.simulator.economy import Economy, line_output_t
from plantems.simulator.plant import SimulatedPlant
from plantems.simulator.run import backfill

TZ = ZoneInfo("Asia/Shanghai")


def local_s(day: date) -> float:
    """Epoch seconds of the local midnight starting ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=TZ).timestamp()


def model_kwh(model: SimulatedPlant, device: str, first: date, last: date, quantity: str = "p_kw") -> float:
    """The device's energy (or gas, quantity gas_m3h) over the local days first..last from the model's
    rate (60-s trapezoid)."""
    grid = np.arange(local_s(first), local_s(last + timedelta(days=1)) + 1, 60.0)
    power = model.instantaneous(grid)[device][quantity]
    return float(((power[1:] + power[:-1]) * 0.5 * 60.0 / 3600.0).sum())


def simulated_quarter(plant: PlantConfig, path: Path, economy: Economy, first: date, last: date,
                      quarter: str = "2026Q4") -> dict[str, Any]:
    """The plant's simulated history first..last (and an hour past) through analyze and the production
    import of the simulator's tonnage (line roll-1), then the quarter's report as of the day after."""
    from plantems.analytics.quarter_job import run_quarter

    tmp = path.parent
    end = local_s(last + timedelta(days=1)) + 3600
    backfill(plant, V1Writer(plant.influxdb), days=(end - local_s(first)) / 86400 + 1 / 24, end_s=end,
             progress=False, economy=economy)
    runner = CliRunner()
    result = runner.invoke(main, ["analyze", "--config", str(path), "--backfill", str(first), str(last)])
    assert result.exit_code == 0, result.output
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    (tmp / "production.csv").write_text("date,line,output_t\n" + "".join(
        f"{d},roll-1,{line_output_t(0, d):.3f}\n" for d in days))
    result = runner.invoke(main, ["production", "import", "--config", str(path), str(tmp / "production.csv")])
    assert result.exit_code == 0, result.output
    run_quarter(plant, quarter, config_dir=tmp, client=InfluxClient(plant.influxdb), out_root=tmp / "reports",
                as_of=last + timedelta(days=1))
    report: dict[str, Any] = json.loads((tmp / "reports" / quarter / "quarter.json").read_text())
    return report
