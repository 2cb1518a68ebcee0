"""The demo's measures (issue 13): enough back-filled history for their baselines, and the quarterly report.

Kept apart from plantems/demo.py: the demo calls these two functions and nothing else of the measures."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from plantems.config import PlantConfig
from plantems.measures import PlantNames, site_register
from plantems.simulator.economy import Economy

__all__ = ["demo_quarter", "measures_history_days", "quarter_args"]


def measures_history_days(plant: PlantConfig, config_path: Path) -> float:
    """Days of history from the earliest baseline start of the measures that the simulator builds in
    (``measures.yaml`` beside the plant file); 0 without a register that fits this plant."""
    register = site_register(config_path.parent, plant.site.id, PlantNames.of(plant))
    if register is None:
        return 0.0  # none, or another site's (the simulator leaves it out too: simulator/economy.py)
    measures = register.measures
    simulated = {m.measure_id for m in Economy(plant, measures).measures}
    starts = [m.in_force.start for m in measures if m.id in simulated]  # the others' history is not simulated
    if not starts:
        return 0.0
    first = min(starts)
    now = datetime.now(plant.site.tz)
    return float(max((now.date() - first).days + 1, 0))


def demo_quarter(today: date) -> str:
    """The quarter that yesterday is in: the running one, up to yesterday (the previous one on its first day)."""
    day = today - timedelta(days=1)
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def quarter_args(plant: PlantConfig, config_path: Path, reports_dir: Path) -> tuple[str, list[str]]:
    """What the first run prints and the ``plantems quarter`` arguments for the demo's quarterly report."""
    quarter = demo_quarter(datetime.now(plant.site.tz).date())
    return (f"quarterly report {quarter} (reports/quarter/{quarter}/)",
            ["quarter", "--config", str(config_path), "--quarter", quarter, "--reports", str(reports_dir)])
