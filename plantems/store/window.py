"""Recomputing a window of derived points without a hole, inside one site.

Reads and deletes the stored points through :class:`plantems.store.query.SiteScope`, so a
recompute can only ever touch its own site's series.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from plantems.lineproto import Point, format_line
from plantems.schema import Tag
from plantems.store.query import SiteScope

__all__ = ["Querier", "SeriesLike", "Writer", "replace_window", "stale_points"]

log = logging.getLogger(__name__)


# What this module needs of plantems.influx's client, series and writers (structural: the store stays
# free of the HTTP layer and its untyped dependencies).
class SeriesLike(Protocol):
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def columns(self) -> Sequence[str]: ...
    @property
    def values(self) -> Sequence[Sequence[Any]]: ...


class Querier(Protocol):
    def query(self, q: str, *, database: str | None = None, epoch: str = "ns") -> Sequence[SeriesLike]: ...


class Writer(Protocol):
    def write(self, database: str, lines: Sequence[str]) -> None: ...

_STATEMENTS_PER_REQUEST = 200


def stale_points(existing: Sequence[SeriesLike], new: Sequence[Point]) -> list[tuple[dict[str, str], int]]:
    """(tags, time) of stored points the new set does not fully overwrite (pure): series or times
    absent from ``new``, or a stored point with a field the new one lacks (a write would merge
    the old field into the new point)."""
    fields_of = {(tuple(sorted(p.tags.items())), p.time_ns): set(p.fields) for p in new}
    out = []
    for series in existing:
        # GROUP BY * lists the tags a series lacks as "": not part of its key, but kept for the DELETE,
        # where ``"tag" = ''`` spares the series that do have the tag
        key = tuple(sorted((k, v) for k, v in series.tags.items() if v))
        for row in series.values:
            stored = {c for c, v in zip(series.columns[1:], row[1:], strict=True) if v is not None}
            kept = fields_of.get((key, int(row[0])))
            if kept is None or not stored <= kept:
                out.append((dict(series.tags), int(row[0])))
    return out


def replace_window(client: Querier, writer: Writer, *, site: SiteScope, database: str, measurement: str,
                   tags: Mapping[str, str], start_ns: int, end_ns: int, points: Sequence[Point],
                   batch_lines: int = 5000) -> int:
    """Make ``points`` the whole content of ``measurement`` in [start_ns, end_ns) within ``site`` and
    ``tags`` (e.g. a granularity), without ever leaving the window empty.

    The new points are written first: the same series and time overwrite the stored point. Only
    then are the stored points the new set does not overwrite deleted (e.g. a ``tou`` tag that
    changed after a tariff change), each by its own tags and time. A failed write raises before
    anything is deleted, so the previous result stays in place until a run succeeds. Returns the
    number of stale points deleted.
    """
    scope = {**tags, Tag.SITE.value: site.site}
    outside = [p for p in points if any(p.tags.get(key) != value for key, value in scope.items())]
    if outside:
        raise ValueError(f"replace_window {measurement} of site {site.site!r} {dict(tags)}: {len(outside)} point(s) "
                         f"outside that scope (e.g. tags {dict(outside[0].tags)}); a recompute must stay inside it")
    lines = [format_line(p) for p in points]
    for i in range(0, len(lines), batch_lines):
        writer.write(database, lines[i:i + batch_lines])
    existing = client.query(site.select(measurement, ["*"], tags=tags, start_ns=start_ns, end_ns=end_ns,
                                        group_by_all=True), database=database)
    stale = stale_points(existing, points)
    stale_keys = {(tuple(sorted((k, v) for k, v in stored.items() if v)), t) for stored, t in stale}
    rewrite = [p for p in points if (tuple(sorted(p.tags.items())), p.time_ns) in stale_keys]
    statements = [site.delete_point(measurement, tags={**stored, **tags}, time_ns=t) for stored, t in stale]
    for i in range(0, len(statements), _STATEMENTS_PER_REQUEST):  # many statements per request
        client.query("; ".join(statements[i:i + _STATEMENTS_PER_REQUEST]), database=database)
    if rewrite:  # points whose dropped field had to go: deleted above, written again now
        writer.write(database, [format_line(p) for p in rewrite])
    if stale:
        log.info("%s: %d stale point(s) of site %s %s in [%d, %d) deleted after the rewrite", measurement,
                 len(stale), site.site, dict(tags), start_ns, end_ns)
    return len(stale)
