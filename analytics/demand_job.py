"""The live demand monitor: every few seconds, per billing meter group, the 15-minute demand
from the freshest raw samples, its projection, alerts by shift, and `demand` / `alert` points.

Reads raw counters of the last window (plus the running block for fixed blocks), so the
demand equals what the utility meter will show, and present power for the projection. A
group whose meters have gone quiet is not evaluated (no alert and no all-clear on stale
data); that is logged once when it happens and once when data returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from plantems.analytics.alerts import DemandAlerter, DemandReading, Level
from plantems.analytics.demand import WINDOW_MIN, projected_demand_kw, sliding_demand_kw
from plantems.analytics.energy import NO_ROLLOVER, CounterSpec, energy_from_counter, energy_from_power
from plantems.analytics.energy_job import counter_spec
from plantems.analytics.notify import Alert, Delivery, Dispatcher
from plantems.analytics.notify.roster import Roster
from plantems.config import Device, PlantConfig
from plantems.demandconfig import MeterGroup
from plantems.influx import InfluxClient, InfluxError, LineWriter
from plantems.lineproto import Point, format_line
from plantems.schema import ALERT, DEMAND, ELECTRICAL, Field, Tag
from plantems.store.query import SiteScope, agg, col

__all__ = ["DemandMonitor", "GroupDemand", "evaluate_group", "minute_energy_kwh", "shiftable_devices"]

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_MIN_NS = 60 * _NS
_STALE_S = 30.0  # a meter whose newest sample is older than this makes its group stale
_RUNNING_SHARE = 0.05  # a shiftable load counts as running above 5 % of its rating (or 1 kW)
_P_NOW_S = 10  # present power: the mean of the last 10 s smooths a mill's pass ripple


@dataclass(frozen=True)
class GroupDemand:
    demand_kw: float  # the last complete window (sliding) or block (fixed)
    projected_kw: float
    minutes_left: int  # until the window the projection is for ends
    coverage: float  # share of the last window's minutes with data


def evaluate_group(minute_kwh: np.ndarray, p_now_kw: float, *, method: str, projection_min: int,
                   minutes_into_block: int) -> tuple[float, float, int]:
    """(demand, projection, minutes left) from per-minute energy ending with the last complete minute (pure).

    Sliding: demand of the window ending now, and the highest projection of the windows ending
    in the next ``projection_min`` minutes. Fixed: the last complete block, and the running
    block projected to its end (``minutes_into_block`` of it have passed).
    """
    if method == "sliding":
        demand = float(sliding_demand_kw(minute_kwh)[-1])
        projected, ahead = max((projected_demand_kw(minute_kwh, p_now_kw, minutes_ahead=k), k)
                               for k in range(1, projection_min + 1))
        return demand, projected, ahead
    done = minutes_into_block
    energy = np.asarray(minute_kwh, dtype=float)
    last_block = energy[len(energy) - done - WINDOW_MIN:len(energy) - done]
    running = float(energy[len(energy) - done:].sum()) if done else 0.0
    left = WINDOW_MIN - done
    return float(last_block.sum()) * 4.0, (running + p_now_kw * left / 60.0) * 4.0, left


def minute_energy_kwh(frame: pd.DataFrame, edges_ns: np.ndarray, *, max_gap_s: float,
                      spec: CounterSpec = NO_ROLLOVER) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute import energy and coverage of one meter on ``edges_ns`` (pure): from the import
    counter where the meter has one, else from power."""
    times = frame["time"].to_numpy(dtype=np.int64)
    counter = frame[Field.E_IMP_KWH.value].to_numpy(dtype=float) if Field.E_IMP_KWH.value in frame else None
    if counter is not None and np.count_nonzero(np.isfinite(counter)) >= 2:
        result = energy_from_counter(times, counter, edges_ns, spec=spec, max_gap_s=max_gap_s)
    else:
        power = np.clip(frame[Field.P_KW.value].to_numpy(dtype=float), 0.0, None)
        result = energy_from_power(times, power, edges_ns, max_gap_s=max_gap_s)
    return result["energy"].to_numpy(dtype=float), result["coverage"].to_numpy(dtype=float)


def shiftable_devices(plant: PlantConfig, group: MeterGroup) -> list[Device]:
    """Shiftable loads behind the group's meters (their ``feeds``), or on the whole site."""
    meters = [d for d in plant.devices if d.id in group.meters]
    areas = {area for meter in meters for area in meter.feeds}
    return [d for d in plant.devices if d.shiftable and (not areas or d.area in areas)]


class DemandMonitor:
    """Owns the alert state of every group; ``evaluate()`` is one round (the scheduler calls it)."""

    def __init__(self, plant: PlantConfig, client: InfluxClient, writer: LineWriter, roster: Roster) -> None:
        assert plant.demand is not None
        self.plant, self.client, self.writer, self.roster = plant, client, writer, roster
        self.config = plant.demand
        self.alerters = {
            g.id: DemandAlerter(site=plant.site.id, group=g.name or g.id, limit_kw=g.limit_kw,
                                levels=[Level(lv.name, lv.at) for lv in g.levels], hysteresis=g.hysteresis,
                                escalate_after_min=g.escalate_after_min)
            for g in self.config.groups}
        self.shiftable = {g.id: shiftable_devices(plant, g) for g in self.config.groups}
        self.stale: set[str] = set()
        # per billing meter, fixed for the process: how its counter is read into minute energy, judged by
        # the meter's maximum power like energy_15m, so a glitch sample never becomes a demand peak
        devices = {d.id: d for d in plant.devices}
        self._meter_reading = {m: (max(10.0, 3 * devices[m].poll_interval_s),
                                   counter_spec(plant, devices[m], Field.E_IMP_KWH))
                               for g in self.config.groups for m in g.meters}
        alerts = plant.alerts
        # each channel has its own workers, each attempt a deadline: a stuck channel holds up no other
        self._dispatcher = Dispatcher(attempts=alerts.attempts, backoff_s=alerts.backoff_s,
                                      deadline_s=alerts.attempt_deadline_s) if alerts else Dispatcher()

    def close(self) -> None:
        """Stop delivery (bounded): alerts not delivered by then are recorded as failed, with the reason."""
        self._dispatcher.close()

    def restore(self, now_s: float | None = None) -> int:
        """Re-arm state from the `alert` points of the last window, so a restart during a peak does
        not send the same alert again; the number of alerts restored."""
        now_ns = int((now_s if now_s is not None else time.time()) * _NS)
        query = SiteScope(self.plant.site.id).select(ALERT, [col(Field.VALUE.value)],
                                                     start_ns=now_ns - WINDOW_MIN * _MIN_NS,
                                                     group_by=[Tag.METER_GROUP.value, Tag.LEVEL.value])
        series = self.client.query(query, database=self.plant.influxdb.derived_database)
        restored = 0
        for s in series:
            alerter = self.alerters.get(s.tags.get(Tag.METER_GROUP.value, ""))
            if alerter is not None:
                for row in s.values:
                    alerter.restore(s.tags[Tag.LEVEL.value], int(row[0]))
                    restored += 1
        if restored:
            log.info("demand: %d alert(s) of the last %d minutes restored; they are not repeated", restored,
                     WINDOW_MIN)
        return restored

    def _read(self, now_ns: int) -> dict[str, pd.DataFrame]:
        meters = sorted({m for g in self.config.groups for m in g.meters})
        span_min = 2 * WINDOW_MIN + 3 if any(g.method == "fixed" for g in self.config.groups) else WINDOW_MIN + 3
        if not meters:
            return {}
        query = SiteScope(self.plant.site.id).select(
            ELECTRICAL, [col(Field.E_IMP_KWH.value), col(Field.P_KW.value)], any_of={Tag.DEVICE.value: meters},
            start_ns=now_ns - span_min * _MIN_NS, end_ns=now_ns, end_inclusive=True, group_by=[Tag.DEVICE.value])
        out = {}
        for series in self.client.query(query, database=self.plant.influxdb.raw_database):
            frame = pd.DataFrame(series.values, columns=series.columns).astype({"time": "int64"})
            out[series.tags[Tag.DEVICE.value]] = frame
        return out

    def _running(self, now_ns: int) -> dict[str, float]:
        devices = sorted({d.id for ds in self.shiftable.values() for d in ds})
        if not devices:
            return {}
        query = SiteScope(self.plant.site.id).select(
            ELECTRICAL, [agg("last", Field.P_KW.value)], any_of={Tag.DEVICE.value: devices},
            start_ns=now_ns - int(_STALE_S * _NS), end_ns=now_ns, end_inclusive=True, group_by=[Tag.DEVICE.value])
        return {s.tags[Tag.DEVICE.value]: float(s.values[0][1]) for s in
                self.client.query(query, database=self.plant.influxdb.raw_database) if s.values[0][1] is not None}

    def _group_demand(self, group: MeterGroup, frames: Mapping[str, pd.DataFrame], now_ns: int
                      ) -> tuple[GroupDemand, int] | None:
        """The group's demand at its meters' common freshest minute, or None when a meter is stale."""
        fresh_ns = []
        for meter in group.meters:
            frame = frames.get(meter)
            if frame is None or len(frame) < 2 or now_ns - int(frame["time"].iloc[-1]) > _STALE_S * _NS:
                return None
            fresh_ns.append(int(frame["time"].iloc[-1]))
        last_minute_ns = min(fresh_ns) // _MIN_NS * _MIN_NS  # every meter has samples past this edge
        minutes = 2 * WINDOW_MIN if group.method == "fixed" else WINDOW_MIN
        edges = last_minute_ns - np.arange(minutes, -1, -1, dtype=np.int64) * _MIN_NS
        total_kwh, coverage, p_now_kw = np.zeros(minutes), np.ones(minutes), 0.0
        for meter in group.meters:
            frame = frames[meter]
            max_gap_s, spec = self._meter_reading[meter]
            kwh, cov = minute_energy_kwh(frame, edges, max_gap_s=max_gap_s, spec=spec)
            total_kwh, coverage = total_kwh + kwh, np.minimum(coverage, cov)
            recent = frame[frame["time"] >= int(frame["time"].iloc[-1]) - _P_NOW_S * _NS]
            power = recent[Field.P_KW.value].dropna() if Field.P_KW.value in recent else pd.Series(dtype=float)
            p_now_kw += float(power.mean()) if len(power) else float(kwh[-1]) * 60.0
        local = datetime.fromtimestamp(last_minute_ns / _NS, self.plant.site.tz)
        demand, projected, left = evaluate_group(total_kwh, p_now_kw, method=group.method,
                                                 projection_min=self.config.projection_min,
                                                 minutes_into_block=local.minute % WINDOW_MIN)
        return GroupDemand(demand, projected, left, float(coverage[-WINDOW_MIN:].mean())), last_minute_ns

    def evaluate(self, now_s: float | None = None) -> list[Alert]:
        """One round for every group: write `demand` points, hand alerts to delivery; the alerts raised."""
        now_ns = int((now_s if now_s is not None else time.time()) * _NS)
        frames = self._read(now_ns)
        running = self._running(now_ns)
        lines, raised = [], []
        for group in self.config.groups:
            result = self._group_demand(group, frames, now_ns)
            if result is None:
                if group.id not in self.stale:
                    log.warning("demand %s: no fresh data from meters %s in the last %g s; not evaluated until "
                                "they report", group.id, ", ".join(group.meters), _STALE_S)
                self.stale.add(group.id)
                continue
            if group.id in self.stale:
                log.info("demand %s: meters report again; evaluating", group.id)
                self.stale.discard(group.id)
            demand, _ = result
            lines.append(format_line(Point(DEMAND, {Tag.SITE.value: self.plant.site.id,
                                                    Tag.METER_GROUP.value: group.id},
                                           {Field.DEMAND_KW.value: demand.demand_kw,
                                            Field.PROJECTED_KW.value: demand.projected_kw,
                                            Field.LIMIT_KW.value: group.limit_kw,
                                            Field.MINUTES_LEFT.value: float(demand.minutes_left),
                                            Field.COVERAGE.value: round(demand.coverage, 4)}, now_ns)))
            loads = [(d.id, running[d.id]) for d in self.shiftable[group.id]
                     if running.get(d.id, 0.0) > max(1.0, _RUNNING_SHARE * (d.rated_kw or 0.0))]
            reading = DemandReading(now_ns, demand.demand_kw, demand.projected_kw, demand.minutes_left, loads)
            for alert in self.alerters[group.id].update(reading):
                raised.append(self._dispatch(replace(alert, group=group.id)))
        if lines:
            try:
                self.writer.write(self.plant.influxdb.derived_database, lines)
            except InfluxError as exc:
                log.error("demand points not written: %s", exc)
        return raised

    def _dispatch(self, alert: Alert) -> Alert:
        shift, channels = self.roster.on_duty(alert.time_ns)
        alert = replace(alert, shift=shift)
        log.warning("ALERT %s %s [%s, shift %s]: %s", alert.rule, alert.level, alert.group, shift or "-", alert.title)
        self._write_alert(alert, None)  # at once: a restart before delivery ends must not send it again
        self._dispatcher.submit(alert, channels, self._write_alert)
        return alert

    def _write_alert(self, alert: Alert, results: Sequence[Delivery] | None) -> None:
        """The alert as an `alert` point; written again (same series and time) with the delivery results."""
        summary = "pending" if results is None else "; ".join(d.summary() for d in results) or "no channel configured"
        point = Point(ALERT, {Tag.SITE.value: alert.site, Tag.RULE.value: alert.rule, Tag.LEVEL.value: alert.level,
                              Tag.METER_GROUP.value: alert.group},
                      {Field.VALUE.value: alert.value, Field.THRESHOLD.value: alert.threshold,
                       Field.TITLE.value: alert.title, Field.TEXT.value: alert.text, Field.SHIFT.value: alert.shift,
                       Field.DELIVERED.value: float(sum(d.ok for d in results or ())),
                       Field.FAILED.value: float(sum(not d.ok for d in results or ())),
                       Field.DELIVERIES.value: summary}, alert.time_ns)
        try:
            self.writer.write(self.plant.influxdb.derived_database, [format_line(point)])
        except InfluxError as exc:
            log.error("alert point not written (%s %s): %s", alert.rule, alert.level, exc)
