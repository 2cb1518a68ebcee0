"""A reference month: raw counters generated from known power profiles, written into a real
InfluxDB, computed day by day by the energy_15m job as the scheduler does, and checked interval by
interval, day by day and for the month against the profiles' analytic energy.

The month holds what an audit finds: a counter rollover, a meter replacement, a glitch sample,
duplicates, late samples (written after their day was first computed), gaps across local midnight
and the month end (90 minutes, and 66 hours with two whole days without a sample), an exporting
PV with a daylight gap, and (Europe/Berlin) the 25-hour day.

Expected values come from the profiles: E(t) is each profile's integral in closed form. Between
two samples the job takes the counter as linear, so inside a data gap the expected cumulative is
the straight line between the gap's two samples (the gap's total is still the profile's); the step
onto the replaced meter adds nothing, so its 5 minutes are missing from the expected energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantems.analytics.energy_job import run_energy_15m
from plantems.config import load_plant
from plantems.influx import InfluxClient, V1Writer
from plantems.lineproto import Point, format_line
from plantems.schema import ELECTRICAL, ENERGY_15M, Field, Tag
from plantems.tariffs import load_tariffs
from tests.support import REPO, rows, write_plant

NS = 10**9
POLL_NS = 300 * NS  # every 5 minutes: a sample on every interval edge; holes are gaps over 15 minutes
R32 = 2**32 * 0.01  # the reference meter's uint32 x 0.01 kWh registers wrap here
DAY_S = 86_400.0

METER = """\
vendor: test
model: uint32 energy block
datasheet: "tests/test_reference_month.py"
defaults: {register_type: holding, data_type: uint32, scale: 0.01}
registers:
  - {quantity: e_imp_kwh, address: 0}
  - {quantity: e_exp_kwh, address: 2}
  - {quantity: p_kw, address: 4, data_type: float32, scale: 1}
"""

BODY = """\
meters_dirs: [meters]
devices:
  - {id: inc, area: sub, kind: incomer, meter: ref_u32, host: 127.0.0.1, poll_interval_s: 300, max_kw: 3000}
  - {id: mill, area: roll, kind: cold_mill, meter: ref_u32, host: 127.0.0.1, port: 503, poll_interval_s: 300,
     rated_kw: 600}
  - {id: pv, area: roof, kind: pv, meter: ref_u32, host: 127.0.0.1, port: 504, poll_interval_s: 300, rated_kw: 400}
"""


@dataclass(frozen=True)
class Profile:
    """Power (kW) = base + swing x sin(2 pi t / day), or a daylight arch for the PV."""

    base_kw: float
    swing_kw: float
    solar_kw: float = 0.0
    clock_offset_s: float = 0.0  # the sun follows the zone's standard time

    def energy_kwh(self, t_s: np.ndarray) -> np.ndarray:
        """Energy since the epoch, in closed form."""
        t = np.asarray(t_s, dtype=float) + self.clock_offset_s
        w = 2 * np.pi / DAY_S
        steady = (self.base_kw * t + self.swing_kw / w * (1 - np.cos(w * t))) / 3600
        if not self.solar_kw:
            return steady
        # by day only: p = solar x sin(w (t - 6 h)) from 06:00 to 18:00, 0 at night
        days, into = np.divmod(t, DAY_S)
        phase = np.clip(into - 6 * 3600, 0, DAY_S / 2)
        arch = self.solar_kw / w * (1 - np.cos(w * phase)) / 3600
        return steady + days * (2 * self.solar_kw / w / 3600) + arch


@dataclass
class Meter:
    device: str
    profile: Profile
    counter: Field
    start_kwh: float  # counter reading at the month's start
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (last sample, next sample) in ns
    replaced_at_ns: int | None = None  # first reading of the new meter (5.0 kWh)
    glitch_at_ns: int | None = None  # one sample reads 0
    late: tuple[int, int] | None = None  # samples in [a, b) are written after the first computation


def reading(meter: Meter, t_ns: np.ndarray, origin_ns: int) -> np.ndarray:
    """The meter's register value at ``t_ns`` (ns): rollover, replacement and glitch included."""
    e = meter.profile.energy_kwh(t_ns / NS) - meter.profile.energy_kwh(np.array([origin_ns / NS]))[0]
    values = np.mod(meter.start_kwh + e, R32)
    if meter.replaced_at_ns is not None:
        at = meter.profile.energy_kwh(np.array([meter.replaced_at_ns / NS]))[0]
        new = 5.0 + meter.profile.energy_kwh(t_ns / NS) - at
        values = np.where(t_ns >= meter.replaced_at_ns, new, values)
    if meter.glitch_at_ns is not None:
        values = np.where(t_ns == meter.glitch_at_ns, 0.0, values)
    return values


def sample_times(meter: Meter, start_ns: int, end_ns: int) -> np.ndarray:
    times = np.arange(start_ns, end_ns, POLL_NS, dtype=np.int64)
    for a, b in meter.gaps:
        times = times[(times <= a) | (times >= b)]
    return times


def expected_cumulative(meter: Meter, t_ns: np.ndarray) -> np.ndarray:
    """What the job must count up to each time: the profile's energy, straight across each gap,
    without the replaced meter's missing step."""
    t_ns = np.asarray(t_ns, dtype=np.int64)
    e = meter.profile.energy_kwh(t_ns / NS)
    for a, b in meter.gaps:
        ea, eb = meter.profile.energy_kwh(np.array([a / NS, b / NS]))
        inside = (t_ns > a) & (t_ns < b)
        e = np.where(inside, ea + (eb - ea) * (t_ns - a) / (b - a), e)
    if meter.replaced_at_ns is not None:
        a, b = meter.replaced_at_ns - POLL_NS, meter.replaced_at_ns
        ea, eb = meter.profile.energy_kwh(np.array([a / NS, b / NS]))
        e = e - (eb - ea) * np.clip((t_ns - a) / (b - a), 0.0, 1.0)
    return e


def expected_coverage(meter: Meter, edges: np.ndarray, first_ns: int, last_ns: int) -> np.ndarray:
    """Share of each interval outside the gaps (samples 5 minutes apart are within the 15-minute threshold)."""
    covered = np.clip(edges, first_ns, last_ns).astype(float)
    for a, b in meter.gaps:
        covered -= np.clip(edges, a, b) - a
    return np.diff(covered) / np.diff(edges)


def local(ts: str, tz: str) -> int:
    return int(pd.Timestamp(ts, tz=tz).value)


def meters_for(tz: str) -> list[Meter]:
    start = local("2026-10-01", tz)
    inc = Meter("inc", Profile(1000.0, 400.0), Field.E_IMP_KWH,
                start_kwh=R32 - 300_000.0,  # about 300 MWh to go: wraps about mid-month
                gaps=[(local("2026-10-31 23:20", tz), local("2026-11-01 00:50", tz)),  # midnight + month end
                      (local("2026-10-12 03:05", tz), local("2026-10-12 03:25", tz))],
                glitch_at_ns=local("2026-10-07 14:05", tz),
                late=(local("2026-10-15 08:00", tz), local("2026-10-15 12:00", tz)))
    mill = Meter("mill", Profile(300.0, 150.0), Field.E_IMP_KWH, start_kwh=30_000_000.0,
                 replaced_at_ns=local("2026-10-20 10:35", tz),
                 gaps=[(local("2026-10-29 12:00", tz), local("2026-11-01 06:00", tz))])  # 66 h across month end
    standard_s = {"Asia/Shanghai": 8 * 3600.0, "Europe/Berlin": 3600.0}[tz]
    pv = Meter("pv", Profile(0.0, 0.0, solar_kw=300.0, clock_offset_s=standard_s), Field.E_EXP_KWH, start_kwh=12_345.0,
               gaps=[(local("2026-10-10 09:00", tz), local("2026-10-10 13:00", tz))])  # a daylight gap
    assert start < inc.gaps[0][0]
    return [inc, mill, pv]


def points_for(meter: Meter, times: np.ndarray, origin_ns: int) -> list[str]:
    values = reading(meter, times, origin_ns)
    other = Field.E_EXP_KWH if meter.counter is Field.E_IMP_KWH else Field.E_IMP_KWH
    still = 77.0  # the other counter stands still
    return [format_line(Point(ELECTRICAL, {Tag.SITE.value: "testsite", Tag.DEVICE.value: meter.device},
                              {meter.counter.value: float(v), other.value: still}, int(t)))
            for t, v in zip(times.tolist(), values.tolist(), strict=True)]


@pytest.fixture(params=["Asia/Shanghai", "Europe/Berlin"])
def month(request, tmp_path: Path, influx_url: str, db: str):
    tz = request.param
    (tmp_path / "meters").mkdir()
    (tmp_path / "meters" / "ref_u32.yaml").write_text(METER)
    path = write_plant(tmp_path, influx_url=influx_url, db=db, body=BODY)
    path.write_text(path.read_text().replace("Asia/Shanghai", tz))
    plant = load_plant(path)
    writer = V1Writer(plant.influxdb)
    origin = local("2026-10-01", tz)
    begin, end = local("2026-09-30 22:00", tz), local("2026-11-02 02:00", tz)
    meters = meters_for(tz)
    for meter in meters:
        times = sample_times(meter, begin, end)
        if meter.late:
            times = times[(times < meter.late[0]) | (times >= meter.late[1])]
        lines = points_for(meter, times, origin)
        lines += lines[1000:1010]  # duplicates: the same samples delivered twice
        for i in range(0, len(lines), 10_000):
            writer.write(db, lines[i:i + 10_000])
    return plant, tz, meters, writer, origin


def run_days(plant, tz: str, days: pd.DatetimeIndex) -> None:
    tariffs = load_tariffs(REPO / "config" / "tariffs")
    client, writer = InfluxClient(plant.influxdb), V1Writer(plant.influxdb)
    for day in days:
        start, end = pd.Timestamp(day, tz=tz), pd.Timestamp(day + pd.Timedelta(days=1), tz=tz)
        run_energy_15m(plant, tariffs, client, writer, start.value, end.value)


def stored(influx_url: str, db: str, device: str) -> pd.DataFrame:
    found = rows(influx_url, f"{db}_derived", f"SELECT * FROM \"{ENERGY_15M}\" WHERE \"{Tag.DEVICE.value}\" = "
                                               f"'{device}'")
    return pd.DataFrame(found).sort_values("time").reset_index(drop=True)


def test_reference_month(month, influx_url, db):
    plant, tz, meters, writer, origin = month
    days = pd.date_range("2026-10-01", "2026-11-01", freq="D")
    run_days(plant, tz, days)
    inc = meters[0]
    # late samples arrive (a spool backlog); the 00:30 job recomputes their day
    times = sample_times(inc, *inc.late)
    writer.write(db, points_for(inc, times, origin))
    run_days(plant, tz, pd.DatetimeIndex([pd.Timestamp("2026-10-15")]))

    month_start, month_end = local("2026-10-01", tz), local("2026-11-01", tz)
    edges = pd.date_range(pd.Timestamp("2026-10-01", tz=tz), pd.Timestamp("2026-11-02", tz=tz),
                          freq="15min").as_unit("ns").asi8
    in_october = edges[:-1] < month_end
    for meter in meters:
        got = stored(influx_url, db, meter.device)
        target = Field.ENERGY_KWH.value if meter.counter is Field.E_IMP_KWH else Field.ENERGY_EXP_KWH.value
        # every interval of both days is written, gaps and export-only intervals included
        assert got["time"].tolist() == edges[:-1].tolist(), meter.device
        want = np.diff(expected_cumulative(meter, edges))
        assert got[target].to_numpy() == pytest.approx(want, abs=2e-6), meter.device
        # the month and each day add up to the profile's energy (the gap across midnight split by time)
        e_month = np.diff(expected_cumulative(meter, np.array([month_start, month_end])))[0]
        assert got[target].to_numpy()[in_october].sum() == pytest.approx(e_month, rel=1e-9), meter.device
        day_index = pd.DatetimeIndex(pd.to_datetime(edges[:-1], utc=True).tz_convert(tz).date)
        for day, energy in pd.Series(got[target].to_numpy()).groupby(day_index).sum().items():
            a, b = pd.Timestamp(day, tz=tz).value, (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(tz).value
            assert energy == pytest.approx(np.diff(expected_cumulative(meter, np.array([a, b])))[0], rel=1e-9,
                                           abs=1e-6), (meter.device, day)
        coverage = expected_coverage(meter, edges, local("2026-09-30 22:00", tz), local("2026-11-02 01:55", tz))
        assert got[Field.COVERAGE.value].to_numpy() == pytest.approx(coverage, abs=1e-6), meter.device
    inc_rows, mill_rows = stored(influx_url, db, "inc"), stored(influx_url, db, "mill")
    assert inc_rows[Field.REJECTED_SAMPLES.value].sum() == 1  # the glitch, in its interval
    glitch_slot = int(np.searchsorted(edges, inc.glitch_at_ns, side="right")) - 1
    assert inc_rows[Field.REJECTED_SAMPLES.value].iloc[glitch_slot] == 1
    assert mill_rows[Field.REPLACEMENTS.value].sum() == 1 and inc_rows[Field.REPLACEMENTS.value].sum() == 0
    # the interpolated part: exactly the gaps' energy in their intervals
    gap_kwh = sum(float(np.diff(inc.profile.energy_kwh(np.array([a / NS, b / NS])))[0]) for a, b in inc.gaps)
    assert inc_rows[Field.INTERP_KWH.value].sum() == pytest.approx(gap_kwh, rel=1e-9)
    pv_rows = stored(influx_url, db, "pv")
    in_gap = (edges[:-1] >= meters[2].gaps[0][0]) & (edges[1:] <= meters[2].gaps[0][1])
    assert in_gap.sum() == 16  # 09:00-13:00: samples at both ends, none in between
    assert (pv_rows[Field.ENERGY_EXP_KWH.value].to_numpy()[in_gap] > 10).all()  # export in a daylight gap
    assert (pv_rows[Field.ENERGY_KWH.value].to_numpy() == 0).all()
    if tz == "Europe/Berlin":
        october_25 = (pd.DatetimeIndex(pd.to_datetime(edges[:-1], utc=True).tz_convert(tz).date)
                      == pd.Timestamp("2026-10-25"))
        assert october_25.sum() == 100  # the 25-hour day
