"""The site-scoped query layer: every statement names its site, escapes values, and no module
outside plantems/store builds InfluxQL SELECT/DELETE by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plantems.store.query import SiteScope, agg, col, ident, literal

ROOT = Path(__file__).resolve().parent.parent


def test_select_is_scoped_to_its_site_with_tags_devices_time_and_grouping():
    q = SiteScope("plant-a").select("energy_15m", [agg("sum", "energy_kwh", alias="energy_kwh"), col("tou")],
                                    tags={"granularity": "day"}, any_of={"device": ["m2", "m1", "m1"]},
                                    start_ns=10, end_ns=20, every="1h", group_by=["device", "tou"], fill_none=True)
    assert q == ('SELECT sum("energy_kwh") AS "energy_kwh", "tou" FROM "energy_15m" WHERE "granularity" = \'day\' '
                 'AND "site" = \'plant-a\' AND ("device" = \'m1\' OR "device" = \'m2\') AND time >= 10 AND time < 20 '
                 'GROUP BY time(1h), "device", "tou" fill(none)')


def test_edge_select_orders_newest_first_with_a_limit_and_inclusive_end():
    q = SiteScope("s").select("electrical", [col("e_imp_kwh")], end_ns=5, end_inclusive=True,
                              group_by=["device"], newest_first=True, limit=3)
    assert q == ('SELECT "e_imp_kwh" FROM "electrical" WHERE "site" = \'s\' AND time <= 5 GROUP BY "device" '
                 "ORDER BY time DESC LIMIT 3")


def test_delete_removes_one_point_of_one_series_of_the_site():
    q = SiteScope("s").delete_point("opportunity", tags={"type": "t1", "device": ""}, time_ns=7)
    assert q == ('DELETE FROM "opportunity" WHERE "device" = \'\' AND "site" = \'s\' AND "type" = \'t1\' '
                 "AND time >= 7 AND time <= 7")


@pytest.mark.parametrize(("value", "quoted"), [("it's", r"'it\'s'"), ("a\\b", r"'a\\b'"), ("x.y/z", "'x.y/z'")],
                         ids=["quote", "backslash", "regex-chars-need-nothing"])
def test_tag_values_are_escaped(value, quoted):
    assert literal(value) == quoted
    assert f'"site" = {quoted}' in SiteScope(value).where()


def test_identifiers_are_escaped():
    assert ident('we"ird') == r'"we\"ird"'


@pytest.mark.parametrize(("call", "rule"), [
    (lambda: SiteScope(""), "site is empty"),
    (lambda: SiteScope("a").where(tags={"site": "b"}), "may not name another site"),
    (lambda: SiteScope("a").where(any_of={"device": []}), "empty list"),
    (lambda: SiteScope("a").select("energy_15m", []), "at least one column"),
    (lambda: agg("sum(x); DROP", "f"), "not an InfluxQL function"),
], ids=["no-site", "other-site", "empty-any-of", "no-column", "bad-function"])
def test_what_could_escape_the_site_is_refused(call, rule):
    with pytest.raises(ValueError, match=rule):
        call()


# Modules allowed to hold InfluxQL text: the layer itself, influx.py's administration (databases,
# retention policies, users), Grafana's panel queries (run by Grafana, with its macros; legacy.py: the old
# raw panels the bench compares against), the demo's curl hints (printed for a person) and the dashboard
# bench's copying of its own generated tier rows (benchmark data, not a figure anyone reads).
_ALLOWED = {"plantems/influx.py", "grafana/dashboards.py", "grafana/plan_dashboards.py", "grafana/legacy.py",
            "plantems/demo.py", "bench/bench_dashboards.py"}
_SQLITE = {"collector/spool.py", "collector/spoolfile.py"}  # SQLite statements, not InfluxQL


def _sources():
    for folder in ("plantems", "analytics", "collector", "simulator", "grafana", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith("plantems/store/") and rel not in _ALLOWED | _SQLITE:
                yield rel, path.read_text(encoding="utf-8")


def _statements(text: str) -> list[int]:
    """Line numbers where ``text`` holds a SELECT or DELETE keyword (in code, strings or comments)."""
    return [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"\b(SELECT|DELETE)\b", text)]


def test_the_guard_sees_a_hand_built_query():
    sample = "x = 1\nq = f'SELECT last(\"{Field.P_KW.value}\") FROM \"{ELECTRICAL}\" WHERE {site}'\n"
    assert _statements(sample) == [2]
    assert _statements("q = site.select(ELECTRICAL, [col(Field.P_KW.value)])") == []


def test_no_module_outside_the_store_builds_influxql_select_or_delete():
    offenders = [f"{rel}:{line}" for rel, text in _sources() for line in _statements(text)]
    assert offenders == [], "InfluxQL outside plantems/store (build it with SiteScope): " + ", ".join(offenders)
