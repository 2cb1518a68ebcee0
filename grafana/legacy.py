"""The raw-reading panel queries the dashboards had before the tiers (issue 15), kept for the
comparison: ``bench/bench_dashboards.py`` times them beside the tier queries, and the size test
shows that its data would push them past the response budget (so the test could fail).

Each query is the committed text of its panel before the change, with the same ``site`` filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plantems.config import PlantConfig
from plantems.grafana.dashboards import _Ctx
from plantems.grafana.model import RAW
from plantems.schema import COLLECTOR_STATUS, ELECTRICAL, MQTT_SOURCE, SPOOL_SOURCE, Field, Tag
from plantems.store.query import ident as _q

__all__ = ["LegacyPanel", "legacy_panels"]


@dataclass(frozen=True)
class LegacyPanel:
    """One replaced panel: its dashboard, title, datasource uid, InfluxQL, and whether it drew one
    series per device (the panels whose responses grew with the plant)."""

    dashboard: str
    title: str
    datasource_uid: str
    query: str
    per_device: bool


def legacy_panels(plants: Sequence[PlantConfig]) -> list[LegacyPanel]:
    ctx = _Ctx(plants)
    p, q, pf = _q(Field.P_KW), _q(Field.Q_KVAR), _q(Field.PF)
    status, source = _q(COLLECTOR_STATUS), _q(Tag.SOURCE)
    devices = f"{ctx.site} AND {source} !~ /^({SPOOL_SOURCE}|{MQTT_SOURCE})/ AND $timeFilter"
    device = f"{ctx.site} AND {_q(Tag.DEVICE)} =~ /^$device$/ AND $timeFilter"
    by_device = f"GROUP BY time($__interval), {_q(Tag.DEVICE)} fill(null)"
    raw = RAW.uid
    return [
        LegacyPanel("overview", "Site power by incomer 进线功率", raw, f"SELECT mean({p}) FROM {_q(ELECTRICAL)} WHERE "
                    f"{ctx.site} AND {ctx.incomers} AND $timeFilter {by_device}", False),
        LegacyPanel("overview", "Power by area 分区功率", raw,
                    f"SELECT sum({_q('p')}) FROM (SELECT mean({p}) AS {_q('p')} FROM {_q(ELECTRICAL)} WHERE "
                    f"{ctx.site} AND {ctx.loads} AND $timeFilter GROUP BY time($__interval), {_q(Tag.DEVICE)}, "
                    f"{_q(Tag.AREA)}) WHERE $timeFilter GROUP BY time($__interval), {_q(Tag.AREA)} fill(null)", False),
        LegacyPanel("overview", "Power factor per incomer 进线功率因数", raw,
                    f"SELECT mean({p}) / SQRT(POW(mean({p}), 2) + POW(mean({q}), 2)) FROM {_q(ELECTRICAL)} WHERE "
                    f"{ctx.site} AND {ctx.incomers} AND $timeFilter {by_device}", False),
        LegacyPanel("equipment", "Active power $device 有功功率", raw, f"SELECT mean({p}) AS {p} FROM "
                    f"{_q(ELECTRICAL)} WHERE {device} GROUP BY time($__interval) fill(null)", False),
        LegacyPanel("equipment", "Power factor $device 功率因数 (from P and Q)", raw,
                    f"SELECT mean({p}) / SQRT(POW(mean({p}), 2) + POW(mean({q}), 2)) AS {_q('pf')} FROM "
                    f"{_q(ELECTRICAL)} WHERE {device} GROUP BY time($__interval) fill(null)", False),
        LegacyPanel("power-factor", "Reactive power per incomer 进线无功", raw, f"SELECT mean({q}) FROM "
                    f"{_q(ELECTRICAL)} WHERE {ctx.site} AND {ctx.incomers} AND $timeFilter {by_device}", False),
        LegacyPanel("power-factor", "Device power factor 设备功率因数", raw, f"SELECT mean({pf}) FROM "
                    f"{_q(ELECTRICAL)} WHERE {ctx.site} AND {ctx.loads} AND $timeFilter {by_device}", True),
        LegacyPanel("collector", "Devices up 设备在线", raw, f"SELECT last({_q(Field.UP)}) FROM {status} WHERE "
                    f"{devices} GROUP BY {source}", False),
        LegacyPanel("collector", "Poll latency 采集延迟", raw, f"SELECT mean({_q(Field.LATENCY_MS)}) FROM {status} "
                    f"WHERE {devices} GROUP BY time($__interval), {source} fill(null)", True),
        LegacyPanel("collector", "Errors and missed polls per interval 错误与漏采", raw,
                    f"SELECT non_negative_difference(last({_q(Field.ERRORS)})) AS {_q('errors')}, "
                    f"non_negative_difference(last({_q(Field.MISSED_POLLS)})) AS {_q('missed')} FROM {status} "
                    f"WHERE {devices} GROUP BY time($__interval), {source} fill(null)", True),
    ]
