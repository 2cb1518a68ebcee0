"""Site-scoped InfluxQL: every SELECT and DELETE plantems runs on its data is built here.

Names come from ``plantems.schema``; tag values are quoted and escaped here, once. A query is made
from a :class:`SiteScope`, so it always carries its site's condition: two sites sharing a database
never read or delete each other's points (issue 12). Only InfluxDB administration (databases,
retention policies, users in ``plantems.influx``) speaks InfluxQL elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from plantems.schema import Tag

__all__ = ["COUNT_ALIAS", "SiteScope", "agg", "col", "ident", "literal"]

# Alias of the sample count some reads add beside their aggregates.
COUNT_ALIAS: Final = "n"


def ident(name: str) -> str:
    """A quoted identifier (measurement, tag or field key)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """A quoted string literal (a tag value)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def col(field: str, *, alias: str | None = None) -> str:
    """A raw field column, optionally renamed."""
    return ident(field) + (f" AS {ident(alias)}" if alias else "")


def agg(function: str, field: str, *, alias: str | None = None) -> str:
    """An aggregate of one field (``sum``, ``last``, ``mean``, ``max``, ``count``), optionally renamed."""
    if not function.isidentifier():
        raise ValueError(f"aggregate {function!r} of {field!r}: not an InfluxQL function name")
    return f"{function}({ident(field)})" + (f" AS {ident(alias)}" if alias else "")


def _time(start_ns: int | None, end_ns: int | None, *, end_inclusive: bool) -> list[str]:
    out = [] if start_ns is None else [f"time >= {int(start_ns)}"]
    if end_ns is not None:
        out.append(f"time {'<=' if end_inclusive else '<'} {int(end_ns)}")
    return out


@dataclass(frozen=True, slots=True)
class SiteScope:
    """The queries of one site: every statement it builds is limited to ``site``."""

    site: str

    def __post_init__(self) -> None:
        if not self.site:
            raise ValueError("SiteScope: site is empty; every query must name its site")

    def where(self, *, tags: Mapping[str, str] | None = None, any_of: Mapping[str, Sequence[str]] | None = None,
              start_ns: int | None = None, end_ns: int | None = None, end_inclusive: bool = False) -> str:
        """The WHERE condition: this site, each of ``tags`` equal (``''``: the series lacks the tag),
        each key of ``any_of`` one of its values, and the time range [start_ns, end_ns) (or ]."""
        own = dict(tags or {})
        if own.get(Tag.SITE.value, self.site) != self.site:
            raise ValueError(f"site {self.site!r}: a query may not name another site ({own[Tag.SITE.value]!r})")
        own[Tag.SITE.value] = self.site
        parts = [f"{ident(key)} = {literal(value)}" for key, value in sorted(own.items())]
        for key, values in sorted((any_of or {}).items()):
            if not values:
                raise ValueError(f"site {self.site!r}: tag {key!r} must be one of an empty list; nothing to query")
            alternatives = " OR ".join(f"{ident(key)} = {literal(v)}" for v in sorted(set(values)))
            parts.append(f"({alternatives})" if len(set(values)) > 1 else alternatives)
        return " AND ".join(parts + _time(start_ns, end_ns, end_inclusive=end_inclusive))

    def select(self, measurement: str, columns: Sequence[str], *, tags: Mapping[str, str] | None = None,
               any_of: Mapping[str, Sequence[str]] | None = None, start_ns: int | None = None,
               end_ns: int | None = None, end_inclusive: bool = False, every: str | None = None,
               group_by: Sequence[str] = (), group_by_all: bool = False, fill_none: bool = False,
               newest_first: bool = False, limit: int | None = None) -> str:
        """``SELECT columns FROM measurement WHERE <site, tags, time>`` grouped by ``time(every)``
        and the tag keys ``group_by`` (or ``*``). ``columns`` come from :func:`col` / :func:`agg`."""
        if not columns:
            raise ValueError(f"site {self.site!r}: a SELECT from {measurement!r} needs at least one column")
        where = self.where(tags=tags, any_of=any_of, start_ns=start_ns, end_ns=end_ns, end_inclusive=end_inclusive)
        groups = ([f"time({every})"] if every else []) + (["*"] if group_by_all else [ident(t) for t in group_by])
        return (f"SELECT {', '.join(columns)} FROM {ident(measurement)} WHERE {where}"
                + (f" GROUP BY {', '.join(groups)}" if groups else "")
                + (" fill(none)" if fill_none else "")
                + (" ORDER BY time DESC" if newest_first else "")
                + (f" LIMIT {int(limit)}" if limit is not None else ""))

    def delete_point(self, measurement: str, *, tags: Mapping[str, str], time_ns: int) -> str:
        """``DELETE`` the one point of this site's series ``tags`` at ``time_ns`` (a tag given as ``''``
        spares the series that carry it)."""
        where = self.where(tags=tags, start_ns=time_ns, end_ns=time_ns, end_inclusive=True)
        return f"DELETE FROM {ident(measurement)} WHERE {where}"
