"""Dashboards at plant scale (issue 15): no panel's response exceeds the size budget at 1 h, 24 h, 7 d or
30 d on a plant whose old raw per-device panels exceed it (so the budget check could fail), the worst-N
tables name the truly worst devices, and every drill-down link opens an existing dashboard and variable
with a column the panel returns.

The plant is synthetic and sparse: 62 meters with a known profile, one point per 30 minutes for 30 days
(at 30 d Grafana asks for 30-minute buckets, so every bucket has a value, as with 1-s data), written
raw and as tiers. Queries are the committed dashboards' as Grafana sends them (1,600-px panels).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from plantems.grafana import macros
from plantems.grafana.dashboards import DASHBOARDS, WORST_N
from plantems.grafana.legacy import legacy_panels
from plantems.schema import ALL_DEVICES_SOURCE, TIER_FIELDS, Stat, tier_field
from tests.support import REPO

BUDGET_BYTES = 1_000_000  # "no panel returns more than about 1 MB at any range" (issue 15)
RAW_DB, DERIVED_DB = "budgetraw", "budgetderived"
SITE, LOADS, INCOMERS, AREAS = "big", 60, 2, 10
STEP_S, DAYS = 1800, 30
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
NS = 1_000_000_000


def _committed() -> dict[str, dict[str, Any]]:
    return {name: json.loads((REPO / "grafana" / "dashboards" / f"{name}.json").read_text()) for name in DASHBOARDS}


def _kvar(i: int) -> float:
    return 4.0 * i  # load i: 100 kW and 4i kvar, so PF falls as i rises


def _latency_ms(i: int) -> float:
    return 10.0 + 0.5 * i + 0.123456789


def _errors_per_step(i: int) -> int:
    return i % 7  # errors added per 30 minutes


_SPREAD = {Stat.MIN: 0.9, Stat.MEAN: 1.0, Stat.MAX: 1.1}  # a minute's min and max around its mean


def _lines(end_s: int) -> tuple[list[str], list[str]]:
    """Raw and tier lines of the synthetic plant over DAYS to ``end_s``."""
    devices = [(f"inc{i}", "incomer", "sub") for i in range(INCOMERS)]
    devices += [(f"d{i}", "pump", f"a{i % AREAS}") for i in range(LOADS)]
    raw: list[str] = []
    tiers: list[str] = []
    for k, t in enumerate(range(end_s - DAYS * 86400, end_s, STEP_S)):
        t_ns = t * NS
        for area in range(AREAS):
            tiers.append(f"power_1m,area=a{area},site={SITE} p_kw={100.0 * (LOADS // AREAS) + area + 0.123456789} "
                         f"{t_ns}")
        tiers.append(f"power_1m,meter_group=grid,site={SITE} p_kw=9999.5 {t_ns}")  # a billing group row, not an area
        tiers.append(f"collector_1m,site={SITE},source={ALL_DEVICES_SOURCE} latency_ms_mean=20.5,latency_ms_max=45.0,"
                     f"errors=180.0,missed_polls=0.0,samples=372.0 {t_ns}")  # every device together
        for n, (device, kind, area) in enumerate(devices):
            i = n - INCOMERS
            p, q = 100.0, _kvar(max(i, 0))
            pf = p / math.hypot(p, q)
            tags = f"area={area},device={device},kind={kind},site={SITE}"
            raw.append(f"electrical,{tags} p_kw={p!r},q_kvar={q!r},pf={pf!r} {t_ns}")
            errors, latency = float(_errors_per_step(max(i, 0)) * k), _latency_ms(max(i, 0)) + 0.001 * (k % 3)
            raw.append(f"collector_status,site={SITE},source={device} up=1.0,latency_ms={latency!r},errors={errors!r},"
                       f"missed_polls=0.0 {t_ns}")
            step_errors = float(_errors_per_step(max(i, 0)))
            tiers.append(f"collector_1m,site={SITE},source={device} latency_ms_mean={latency!r},"
                         f"latency_ms_max={latency + 5!r},errors={step_errors!r},missed_polls=0.0,samples=6.0 {t_ns}")
            if t % 3600 == 0:  # the hour's two steps
                tiers.append(f"collector_1h,site={SITE},source={device} latency_ms_mean={latency!r},"
                             f"latency_ms_max={latency + 5!r},errors={2 * step_errors!r},missed_polls=0.0,"
                             f"samples=360.0 {t_ns}")
            if device in ("inc0", "inc1", "d0"):  # the minute tier, for the incomer and equipment panels
                values = {"p_kw": p, "q_kvar": q, "pf": pf}
                fields = ",".join(f"{tier_field(f, stat)}={values.get(f.value, 230.0) * factor!r}"
                                  for f in TIER_FIELDS for stat, factor in _SPREAD.items())
                tiers.append(f"device_1m,{tags} {fields} {t_ns}")
            if t % 3600 == 0:
                tiers.append(f"device_1h,{tags} p_kw_mean={p!r},q_kvar_mean={q!r},pf_mean={pf!r} {t_ns}")
    return raw, tiers


def _write(url: str, db: str, lines: list[str]) -> None:
    requests.post(f"{url}/query", data={"q": f'CREATE DATABASE "{db}"'}, timeout=10).raise_for_status()
    for i in range(0, len(lines), 20_000):
        response = requests.post(f"{url}/write", params={"db": db}, data="\n".join(lines[i:i + 20_000]).encode(),
                                 timeout=60)
        assert response.status_code == 204, response.text


@pytest.fixture(scope="module")
def big(influx_url: str) -> datetime:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    raw, tiers = _lines(int(end.timestamp()))
    _write(influx_url, RAW_DB, raw)
    _write(influx_url, DERIVED_DB, tiers)
    return end


def _query(url: str, uid: str, query: str) -> requests.Response:
    """As Grafana's InfluxDB datasource sends it (POST, epoch in ms); the response is what crosses the wire."""
    db = RAW_DB if uid == "plantems-raw" else DERIVED_DB
    response = requests.post(f"{url}/query", data={"db": db, "q": query, "epoch": "ms"}, timeout=60)
    response.raise_for_status()
    assert "error" not in response.json()["results"][0], (query, response.text[:300])
    return response


VARIABLES = {"site": SITE, "area": ".*", "kind": ".*", "device": "d0"}


def _panel_range(panel: dict[str, Any], span: timedelta, end: datetime) -> datetime:
    override = panel.get("timeFrom")
    if override in ("now/d", "now/M"):
        return end.replace(hour=0) if override == "now/d" else end.replace(day=1, hour=0)
    return end - (timedelta(seconds=macros.parse_duration_s(override)) if override else span)


@pytest.mark.parametrize("span", RANGES, ids=list(RANGES))
def test_no_panel_exceeds_the_budget_where_the_old_raw_panels_did(big, influx_url, span):
    end = big
    sizes = {}
    for name, model in _committed().items():
        for panel in model["panels"]:
            start = _panel_range(panel, RANGES[span], end)
            for target in panel["targets"]:
                query = macros.expand_target(panel, target["query"], start, end, VARIABLES)
                sizes[f"{name}: {panel['title']}"] = len(_query(influx_url, target["datasource"]["uid"],
                                                                query).content)
    assert max(sizes.values()) <= BUDGET_BYTES, sorted(sizes.items(), key=lambda item: -item[1])[:3]
    assert sizes["overview: Power by area 分区功率"] > 1000  # the panels did read the plant
    if span == "30d":  # the same data through the old queries: the per-device ones were past the budget
        for old in legacy_panels_for_demo():
            query = macros.expand(old.query, end - RANGES[span], end, VARIABLES)
            size = len(_query(influx_url, old.datasource_uid, query).content)
            assert (size > BUDGET_BYTES) == old.per_device, (old.title, size)


def legacy_panels_for_demo() -> list[Any]:
    from plantems.config import load_plant

    return legacy_panels([load_plant(REPO / "config" / "plant.demo.yaml"),
                          load_plant(REPO / "config" / "plant.changde.yaml")])


def _panel(dashboard: str, title_start: str) -> dict[str, Any]:
    return next(p for p in _committed()[dashboard]["panels"] if p["title"].startswith(title_start))


def _table(url: str, panel: dict[str, Any], end: datetime, span: timedelta) -> list[dict[str, Any]]:
    target = panel["targets"][0]
    query = macros.expand_target(panel, target["query"], end - span, end, VARIABLES)
    series = _query(url, target["datasource"]["uid"], query).json()["results"][0].get("series", [])
    return [dict(zip(s["columns"], row, strict=True)) for s in series for row in s["values"]]


def test_worst_n_tables_name_the_worst_devices(big, influx_url):
    """Expected from the profile: load i has PF 100/hypot(100, 4i), latency 10.5+0.5i ms, i % 7 errors per step."""
    end, span = big, timedelta(days=7)
    lowest = _table(influx_url, _panel("power-factor", "Lowest power factor"), end, span)
    expected = sorted(range(LOADS), key=lambda i: 100 / math.hypot(100, _kvar(i)))[:WORST_N]
    assert sorted(r["device"] for r in lowest) == sorted(f"d{i}" for i in expected)
    assert min(r["pf"] for r in lowest) == pytest.approx(100 / math.hypot(100, _kvar(LOADS - 1)), rel=1e-3)
    slowest = _table(influx_url, _panel("collector", "Slowest devices"), end, span)
    assert sorted(r["source"] for r in slowest) == sorted(f"d{i}" for i in range(LOADS - WORST_N, LOADS))
    faulty = _table(influx_url, _panel("collector", "Most errors"), end, span)
    steps = int(span.total_seconds() // STEP_S)
    by_errors = sorted(range(LOADS), key=lambda i: -_errors_per_step(i))
    assert len(faulty) == WORST_N
    assert {r["errors + missed"] for r in faulty} == {float(_errors_per_step(i) * steps) for i in by_errors[:WORST_N]}
    # the collector's default hour, 5 minutes into an hour whose row is not written yet: the hour before
    # overlaps the range, so the table still names the slowest devices (it read only hours starting in it)
    early = _table(influx_url, _panel("collector", "Slowest devices"), end + timedelta(minutes=5), timedelta(hours=1))
    assert sorted(r["source"] for r in early) == sorted(f"d{i}" for i in range(LOADS - WORST_N, LOADS))


def test_power_by_area_is_one_series_per_area(big, influx_url):
    """Billing-group rows of power_1m share the measurement; the panel shows only the areas."""
    panel = _panel("overview", "Power by area")
    end = big
    query = macros.expand_target(panel, panel["targets"][0]["query"], end - timedelta(days=1), end, VARIABLES)
    series = _query(influx_url, panel["targets"][0]["datasource"]["uid"], query).json()["results"][0]["series"]
    assert sorted(s["tags"]["area"] for s in series) == sorted(f"a{i}" for i in range(AREAS))


def test_drill_down_links_open_an_existing_dashboard_variable_and_column(big, influx_url):
    dashboards = {model["uid"]: model for model in _committed().values()}
    checked = 0
    for model in _committed().values():
        for panel in model["panels"]:
            for link in panel["fieldConfig"]["defaults"].get("links", []):
                url = urlsplit(link["url"])
                uid = re.fullmatch(r"/d/([^/]+)(/[^/]*)?", url.path)
                assert uid and uid.group(1) in dashboards, link["url"]
                target = {v["name"] for v in dashboards[uid.group(1)]["templating"]["list"]}
                names = [key.removeprefix("var-") for key, _ in parse_qsl(url.query) if key.startswith("var-")]
                assert names and set(names) <= target, (link["url"], target)
                columns = set(_table(influx_url, panel, big, timedelta(days=1))[0])
                fields = re.findall(r"\$\{__data\.fields\.([^}]+)\}", link["url"])
                assert fields and set(fields) <= columns, (panel["title"], fields, columns)
                checked += 1
    assert checked >= 3  # the lowest-PF, slowest and most-faulty tables
