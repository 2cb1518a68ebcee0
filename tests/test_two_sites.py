"""Two sites sharing one raw and one derived database: recomputing one never changes the other's points.

Real InfluxDB. Site alpha's jobs run (energy_15m with the daily load-shift opportunities, the monthly
rollup with its scope2 points and monthly opportunities, the live demand monitor with its alerts, a job's
analytics_status); every derived point of alpha is snapshot. Then site beta, with the SAME device and
group ids (only the site tag tells them apart) and other loads, runs the same jobs in the same
databases. Alpha's points are compared with the snapshot point by point, and alpha's recompute, now
with beta's data beside its own, must give the same points again.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path

import pytest

from plantems.analytics.demand_job import DemandMonitor
from plantems.analytics.jobstatus import RetryingJob
from plantems.analytics.notify.roster import Roster
from plantems.analytics.service import run_rollup
from plantems.config import PlantConfig, load_plant
from plantems.influx import InfluxClient, V1Writer, init_databases
from plantems.lineproto import Point, format_line
from plantems.schema import (
    ALERT,
    ANALYTICS_STATUS,
    DEMAND,
    DERIVED_MEASUREMENTS,
    ELECTRICAL,
    ENERGY_15M,
    OPPORTUNITY,
    SCOPE2,
    Field,
    Granularity,
    Job,
    Tag,
)
from tests.support import copy_reference_data, rows

MONTH = "2026-02"
POLL_S = 300
# constant loads (kW) per site; beta has one device more, on the same ids otherwise
LOADS_KW = {"alpha": {"inc": 500.0, "mill": 300.0}, "beta": {"inc": 900.0, "mill": 650.0, "pump": 120.0}}
PUMP = ("  - {id: pump, area: roll, kind: pump, meter: eastron_sdm630, host: 127.0.0.1, port: 1, rated_kw: 200,\n"
        "     poll_interval_s: 300}\n")


def _plant(tmp: Path, influx_url: str, db: str, site: str) -> tuple[PlantConfig, Path]:
    folder = tmp / site
    folder.mkdir()
    copy_reference_data(folder)
    path = folder / "plant.yaml"
    path.write_text(f"""\
site: {{id: {site}, timezone: Asia/Shanghai}}
influxdb: {{url: "{influx_url}", api: v1, raw_database: {db}, derived_database: {db}_derived}}
spool: {{path: "{folder}/spool.sqlite", max_bytes: 50000000}}
devices:
  - {{id: inc, area: sub, kind: incomer, meter: janitza_umg604, host: 127.0.0.1, port: 1, feeds: [roll],
     max_kw: 5000, poll_interval_s: {POLL_S}}}
  - {{id: mill, area: roll, kind: cold_mill, meter: chint_dtsu666_ct, host: 127.0.0.1, port: 1, rated_kw: 1000,
     shiftable: true, poll_interval_s: {POLL_S}}}
{PUMP if "pump" in LOADS_KW[site] else ""}demand:
  groups: [{{id: grid, meters: [inc], limit_kw: 200}}]
""")
    plant = load_plant(path)
    init_databases(plant.influxdb)
    return plant, folder


def _write_raw(plant: PlantConfig, start_s: float, end_s: float, step_s: float) -> None:
    """Counter and power samples of constant loads: e_imp_kwh = kW x hours since 2026-01-01 (exact)."""
    epoch = datetime(2026, 1, 1, tzinfo=plant.site.tz).timestamp()
    devices = {d.id: d for d in plant.devices}
    lines = []
    for device, kw in LOADS_KW[plant.site.id].items():
        d = devices[device]
        tags = f"{Tag.AREA.value}={d.area},{Tag.DEVICE.value}={device},{Tag.KIND.value}={d.kind.value}," \
               f"{Tag.SITE.value}={plant.site.id}"
        for k in range(math.ceil((end_s - start_s) / step_s)):
            t = start_s + k * step_s
            lines.append(f"{ELECTRICAL},{tags} {Field.E_IMP_KWH.value}={kw * (t - epoch) / 3600.0!r},"
                         f"{Field.P_KW.value}={kw!r} {int(t) * 10**9}")
    writer = V1Writer(plant.influxdb)
    for i in range(0, len(lines), 20_000):
        writer.write(plant.influxdb.raw_database, lines[i:i + 20_000])


def _run_jobs(plant: PlantConfig, folder: Path, now_s: float) -> int:
    """Every job of the site; the number of alerts its demand monitor restores afterwards."""
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    run_rollup(plant, MONTH, config_dir=folder, client=client, writer=writer, out_root=folder / "reports",
               as_of=date(2026, 3, 5), progress=False)  # energy_15m + daily and monthly opportunities, scope2
    monitor = DemandMonitor(plant, client, writer, Roster(plant))
    assert monitor.restore(now_s) == 0  # nothing of its own yet, and the other site's alerts are not its own
    assert monitor.evaluate(now_s), "the 200 kW limit is exceeded: alerts expected"
    monitor.close()  # delivery done: the alert points are final
    assert RetryingJob(Job.ENERGY_15M, lambda: None, plant=plant, writer=writer, clock=lambda: now_s).attempt() is None
    return DemandMonitor(plant, client, writer, Roster(plant)).restore(now_s)


def _snapshot(influx_url: str, db: str, site: str) -> dict[str, list[tuple]]:
    """Every derived point of ``site``: measurement -> sorted (time, tags and fields) tuples."""
    out = {}
    for measurement in sorted(DERIVED_MEASUREMENTS):
        found = rows(influx_url, f"{db}_derived",
                     f"SELECT * FROM \"{measurement}\" WHERE \"{Tag.SITE.value}\" = '{site}' GROUP BY *")
        out[measurement] = sorted(tuple(sorted((k, v) for k, v in r.items() if v not in (None, ""))) for r in found)
    return out


def _seed_stale(plant: PlantConfig, points: dict[str, list[tuple]]) -> int:
    """Give ``plant``'s site a stale copy of every recomputed point of ``points`` (same tags but the site,
    same time, only a field no job writes): its recompute must delete each, by tags and time."""
    tag_keys = {t.value for t in Tag}
    lines = [format_line(Point(measurement, {**{k: v for k, v in p if k in tag_keys}, Tag.SITE.value: plant.site.id},
                               {"legacy_kwh": 1.0}, dict(p)["time"]))
             for measurement in (ENERGY_15M, OPPORTUNITY, SCOPE2) for p in points[measurement]]
    V1Writer(plant.influxdb).write(plant.influxdb.derived_database, lines)
    return len(lines)


def test_recomputing_one_site_never_changes_the_other_sites_points(tmp_path, influx_url, db):
    alpha, alpha_dir = _plant(tmp_path, influx_url, db, "alpha")
    beta, beta_dir = _plant(tmp_path, influx_url, db, "beta")
    tz = alpha.site.tz
    start_s = datetime(2026, 1, 30, tzinfo=tz).timestamp()
    end_s = datetime(2026, 3, 2, tzinfo=tz).timestamp()
    now_s = datetime(2026, 2, 10, 14, 7, tzinfo=tz).timestamp()  # demand evaluated here: 10 s samples before it

    _write_raw(alpha, start_s, end_s, POLL_S)
    _write_raw(alpha, now_s - 1200, now_s + 1, 10)
    alpha_alerts = _run_jobs(alpha, alpha_dir, now_s)
    before = _snapshot(influx_url, db, "alpha")
    for measurement in (ENERGY_15M, SCOPE2, OPPORTUNITY, DEMAND, ALERT, ANALYTICS_STATUS):
        assert before[measurement], f"alpha wrote no {measurement} points"
    assert {dict(p)[Tag.GRANULARITY.value] for p in before[OPPORTUNITY]} == {Granularity.DAY, Granularity.MONTH}
    assert alpha_alerts == len(before[ALERT]) > 0

    assert _seed_stale(beta, before) > 0  # beta's recompute has stale points to delete, on alpha's tags and times
    _write_raw(beta, start_s, end_s, POLL_S)
    _write_raw(beta, now_s - 1200, now_s + 1, 10)
    beta_alerts = _run_jobs(beta, beta_dir, now_s)
    after = _snapshot(influx_url, db, "alpha")
    for measurement in sorted(before):
        assert after[measurement] == before[measurement], f"beta's run changed alpha's {measurement} points"

    # beta really wrote beside alpha, with its own loads: 15-minute energy of the shared ids differs by site
    beta_points = _snapshot(influx_url, db, "beta")
    assert beta_alerts == len(beta_points[ALERT]) > 0
    assert len(beta_points[ENERGY_15M]) > len(before[ENERGY_15M])  # the pump's intervals too
    assert not any("legacy_kwh" in dict(p) for points in beta_points.values() for p in points)  # stale: deleted
    energy = {site: sum(dict(p).get(Field.ENERGY_KWH.value, 0.0) for p in points[ENERGY_15M])
              for site, points in (("alpha", after), ("beta", beta_points))}
    hours = 28 * 24  # February 2026, every interval of the month
    assert energy["alpha"] == pytest.approx(sum(LOADS_KW["alpha"].values()) * hours, rel=1e-9)
    assert energy["beta"] == pytest.approx(sum(LOADS_KW["beta"].values()) * hours, rel=1e-9)

    # alpha recomputed with beta's series (same device and group ids) in the same databases: the same points
    client, writer = InfluxClient(alpha.influxdb), V1Writer(alpha.influxdb)
    run_rollup(alpha, MONTH, config_dir=alpha_dir, client=client, writer=writer, out_root=alpha_dir / "again",
               as_of=date(2026, 3, 5), progress=False)
    again = _snapshot(influx_url, db, "alpha")
    for measurement in sorted(before):
        assert again[measurement] == before[measurement], f"alpha's recompute read beta's {measurement} data"
