"""InfluxDB I/O: line-protocol writes (v1 or v2 API) and InfluxQL queries.

One portable dialect (shared/design.md): writes are line protocol over HTTP,
reads are InfluxQL over ``/query``, which every InfluxDB speaks. ``api: auto``
reads ``X-Influxdb-Version`` from ``/ping``: 1.x gets the v1 API, 2.x and
later the v2 API.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import requests

from plantems.config import InfluxApi, InfluxConfig
from plantems.lineproto import Point, format_line
from plantems.schema import Tag

__all__ = [
    "ROLE_GRANTS",
    "InfluxBadRequest",
    "InfluxClient",
    "InfluxError",
    "InfluxUnavailable",
    "LineWriter",
    "detect_api",
    "init_buckets_v2",
    "init_databases",
    "init_users",
    "make_writer",
    "replace_window",
    "tag_in",
]

log = logging.getLogger(__name__)


class InfluxError(Exception):
    """Base of InfluxDB failures; the message names the URL and the server's reason."""


class InfluxUnavailable(InfluxError):
    """Try again later: connection refused, timeout, 5xx, or auth/database problems a person must fix."""


class InfluxBadRequest(InfluxError):
    """The server rejected the body (HTTP 400): some line in it is malformed or conflicts."""


class LineWriter(Protocol):
    def write(self, database: str, lines: Sequence[str]) -> None: ...
    def close(self) -> None: ...


def _reason(response: requests.Response) -> str:
    try:
        return str(response.json().get("error") or response.json().get("message") or response.text)
    except ValueError:
        return response.text.strip()[:500]


def _raise_for(response: requests.Response, url: str) -> None:
    status = response.status_code
    if status < 300:
        return
    reason = _reason(response)
    if status == 400:
        raise InfluxBadRequest(f"{url}: HTTP 400: {reason}")
    hint = {401: " (check the InfluxDB username/password or token)",
            403: " (the user may not write to this database)",
            404: " (database missing? run `plantems influx init`)"}.get(status, "")
    raise InfluxUnavailable(f"{url}: HTTP {status}{hint}: {reason}")


def tag_in(tag: str, values: Sequence[str]) -> str:
    """InfluxQL condition: ``tag`` is one of ``values`` (configured ids: only '.' needs escaping)."""
    return f'"{tag}" =~ /^(' + "|".join(v.replace(".", "\\.") for v in values) + ")$/"


class _HttpBase:
    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        self.session = requests.Session()
        self.session.verify = cfg.verify_tls
        if cfg.token is not None:
            self.session.headers["Authorization"] = f"Token {cfg.token.resolve().get_secret_value()}"
        elif cfg.username and cfg.password is not None:
            self.session.auth = (cfg.username, cfg.password.resolve().get_secret_value())

    def _post(self, path: str, *, params: dict[str, str], body: bytes) -> None:
        url = self.cfg.url.rstrip("/") + path
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.cfg.gzip:
            body = gzip.compress(body, compresslevel=1)  # level 1: most of the size win, little CPU
            headers["Content-Encoding"] = "gzip"
        try:
            response = self.session.post(url, params=params, data=body, headers=headers,
                                         timeout=self.cfg.timeout_s)
        except requests.RequestException as exc:
            raise InfluxUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        _raise_for(response, url)

    def close(self) -> None:
        self.session.close()


class V1Writer(_HttpBase):
    """``POST /write?db=&precision=ns`` (InfluxDB 1.x; the 1.x compatibility API of 2.x/3.x)."""

    def write(self, database: str, lines: Sequence[str]) -> None:
        self._post("/write", params={"db": database, "precision": "ns"}, body="\n".join(lines).encode())


class V2Writer(_HttpBase):
    """``POST /api/v2/write?org=&bucket=&precision=ns`` with a token (InfluxDB 2.x, 3.x, Cloud, 1.8+).

    The bucket is the database name (on 1.8 and 3.x, ``db/rp`` or the database).
    Plain HTTP rather than influxdb-client keeps gzip and the 400-splitting logic
    identical for both APIs, with the same small formatter feeding both.
    """

    def write(self, database: str, lines: Sequence[str]) -> None:
        self._post("/api/v2/write", params={"org": self.cfg.org, "bucket": database, "precision": "ns"},
                   body="\n".join(lines).encode())


def detect_api(cfg: InfluxConfig) -> InfluxApi:
    """The write API to use: the configured one, or for ``auto`` the one ``/ping`` suggests."""
    if cfg.api is not InfluxApi.AUTO:
        return cfg.api
    url = cfg.url.rstrip("/") + "/ping"
    try:
        response = requests.get(url, timeout=cfg.timeout_s, verify=cfg.verify_tls)
    except requests.RequestException as exc:
        raise InfluxUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
    version = response.headers.get("X-Influxdb-Version", "").lstrip("v")
    api = InfluxApi.V2 if version[:1].isdigit() and int(version.split(".")[0]) >= 2 else InfluxApi.V1
    log.info("InfluxDB at %s reports version %r: using the %s write API", cfg.url, version or "unknown", api)
    return api


def make_writer(cfg: InfluxConfig, api: InfluxApi) -> LineWriter:
    return V2Writer(cfg) if api is InfluxApi.V2 else V1Writer(cfg)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]


class InfluxClient(_HttpBase):
    """InfluxQL over ``/query`` (reads and administration)."""

    def query(self, q: str, *, database: str | None = None, epoch: str = "ns") -> list[Series]:
        """Run one InfluxQL statement; return its series. Raises InfluxError with the server's reason."""
        url = self.cfg.url.rstrip("/") + "/query"
        params = {"q": q, "epoch": epoch}
        if database:
            params["db"] = database
        try:
            response = self.session.post(url, data=params, timeout=self.cfg.timeout_s)
        except requests.RequestException as exc:
            raise InfluxUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        _raise_for(response, url)
        series: list[Series] = []
        for result in response.json().get("results", []):
            if "error" in result:
                raise InfluxError(f"{url}: query {q!r} failed: {result['error']}")
            for s in result.get("series", []):
                series.append(Series(s.get("name", ""), s.get("tags", {}), s["columns"], s["values"]))
        return series


def init_databases(cfg: InfluxConfig) -> list[str]:
    """Create the raw and derived databases and their retention policies; idempotent.

    Raw data keeps ``raw_retention_days`` (policy ``raw``, default); derived data
    is kept forever (policy ``forever``, default). Returns what was done.
    """
    client = InfluxClient(cfg)
    done = []
    try:
        for database, policy, duration in ((cfg.raw_database, "raw", f"{cfg.raw_retention_days}d"),
                                           (cfg.derived_database, "forever", "INF")):
            client.query(f'CREATE DATABASE "{database}"')
            existing = {row[0] for s in client.query(f'SHOW RETENTION POLICIES ON "{database}"') for row in s.values}
            verb = "ALTER" if policy in existing else "CREATE"
            client.query(f'{verb} RETENTION POLICY "{policy}" ON "{database}" DURATION {duration} '
                         f'REPLICATION 1 DEFAULT')
            done.append(f"database {database}: retention policy {policy} ({duration}) default")
    finally:
        client.close()
    return done


# What each role may do (InfluxDB 1.x privileges): the collector only writes raw points;
# analytics reads them and writes (and deletes, to recompute windows) derived ones; Grafana reads.
ROLE_GRANTS: Final = {"collector": (("WRITE", "raw"),),
                      "analytics": (("READ", "raw"), ("ALL", "derived")),
                      "grafana": (("READ", "raw"), ("READ", "derived"))}


def _quoted_password(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def init_users(cfg: InfluxConfig, admin_cfg: InfluxConfig) -> list[str]:
    """Create (or re-password) each configured role's user and grant its privileges; idempotent.

    ``admin_cfg`` logs in as an admin. A failing statement is reported without its text: it
    carries a password.
    """
    admin = InfluxClient(admin_cfg)
    databases = {"raw": cfg.raw_database, "derived": cfg.derived_database}
    done = []
    try:
        existing = {row[0] for s in admin.query("SHOW USERS") for row in s.values}
        for role, user in cfg.users.items():
            password = _quoted_password(user.password.resolve().get_secret_value())
            verb = "SET PASSWORD FOR" if user.username in existing else "CREATE USER"
            statement = (f'SET PASSWORD FOR "{user.username}" = {password}' if user.username in existing
                         else f'CREATE USER "{user.username}" WITH PASSWORD {password}')
            try:
                admin.query(statement)
            except InfluxError as exc:
                reason = str(exc).split("failed: ")[-1] if "failed: " in str(exc) else type(exc).__name__
                raise InfluxError(f"{verb} {user.username!r} ({role}) failed: {reason}") from None
            grants = []
            for privilege, which in ROLE_GRANTS[role]:
                admin.query(f'GRANT {privilege} ON "{databases[which]}" TO "{user.username}"')
                grants.append(f"{privilege} on {databases[which]}")
            done.append(f"user {user.username} ({role}): {', '.join(grants)}")
    finally:
        admin.close()
    return done


class _AdminV2(_HttpBase):
    """InfluxDB 2.x/3.x administration over /api/v2 (buckets and DBRP mappings)."""

    def call(self, method: str, path: str, *, params: dict[str, str] | None = None,
             body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.cfg.url.rstrip("/") + path
        try:
            response = self.session.request(method, url, params=params, json=body, timeout=self.cfg.timeout_s)
        except requests.RequestException as exc:
            raise InfluxUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        _raise_for(response, url)
        return response.json() if response.content else {}


def init_buckets_v2(cfg: InfluxConfig) -> list[str]:
    """InfluxDB 2.x/3.x: the raw and derived buckets and their DBRP mappings (so InfluxQL, which the
    analytics and Grafana speak, finds them by database name); idempotent. Needs a token that may
    create buckets in ``cfg.org``."""
    admin = _AdminV2(cfg)
    done = []
    try:
        orgs = admin.call("GET", "/api/v2/orgs", params={"org": cfg.org}).get("orgs", [])
        if not orgs:
            raise InfluxError(f"{cfg.url}: organisation {cfg.org!r} not found (influxdb.org)")
        org_id = orgs[0]["id"]
        for name, policy, seconds in ((cfg.raw_database, "raw", cfg.raw_retention_days * 86400),
                                      (cfg.derived_database, "forever", 0)):
            found = admin.call("GET", "/api/v2/buckets", params={"orgID": org_id, "name": name}).get("buckets", [])
            if found:
                bucket_id = found[0]["id"]
            else:
                rules = [{"type": "expire", "everySeconds": seconds}] if seconds else []
                bucket_id = admin.call("POST", "/api/v2/buckets", body={"orgID": org_id, "name": name,
                                                                        "retentionRules": rules})["id"]
            mapped = admin.call("GET", "/api/v2/dbrps", params={"orgID": org_id, "db": name}).get("content", [])
            if not any(m.get("bucketID") == bucket_id for m in mapped):
                admin.call("POST", "/api/v2/dbrps", body={"orgID": org_id, "bucketID": bucket_id, "database": name,
                                                         "retention_policy": policy, "default": True})
            done.append(f"bucket {name}: {'kept' if found else 'created'}, InfluxQL database {name} "
                        f"(retention policy {policy}) mapped to it")
    finally:
        admin.close()
    return done


# --- Recomputing a window without a hole -------------------------------------------------------------

def _tag_conditions(scope: Mapping[str, str]) -> str:
    """``"k" = 'v' AND ...`` for configured tag values (ids, enum values: no quotes inside)."""
    return " AND ".join(f"\"{key}\" = '{value}'" for key, value in sorted(scope.items()))


def _stale(existing: Sequence[Series], new: Sequence[Point]) -> list[tuple[dict[str, str], int]]:
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


def replace_window(client: InfluxClient, writer: LineWriter, *, database: str, measurement: str,
                   scope: Mapping[str, str], start_ns: int, end_ns: int, points: Sequence[Point],
                   batch_lines: int = 5000) -> int:
    """Make ``points`` the whole content of ``measurement`` in [start_ns, end_ns) within ``scope``
    (tag -> value; always the site), without ever leaving the window empty.

    The new points are written first: the same series and time overwrite the stored point. Only
    then are the stored points the new set does not overwrite deleted (e.g. a ``tou`` tag that
    changed after a tariff change), each by its own tags and time. A failed write raises before
    anything is deleted, so the previous result stays in place until a run succeeds. Returns the
    number of stale points deleted.
    """
    if Tag.SITE.value not in scope:
        raise ValueError(f"replace_window {measurement}: scope {dict(scope)} names no site; every "
                         f"recompute must stay inside one site")
    lines = [format_line(p) for p in points]
    for i in range(0, len(lines), batch_lines):
        writer.write(database, lines[i:i + batch_lines])
    window = f"time >= {start_ns} AND time < {end_ns}"
    where = f"{_tag_conditions(scope)} AND {window}"
    existing = client.query(f'SELECT * FROM "{measurement}" WHERE {where} GROUP BY *', database=database)
    stale = _stale(existing, points)
    stale_keys = {(tuple(sorted((k, v) for k, v in tags.items() if v)), t) for tags, t in stale}
    rewrite = [p for p in points if (tuple(sorted(p.tags.items())), p.time_ns) in stale_keys]
    statements = [f'DELETE FROM "{measurement}" WHERE {_tag_conditions({**tags, **scope})} '
                  f"AND time >= {t} AND time <= {t}" for tags, t in stale]
    for i in range(0, len(statements), 200):  # many statements per request, one request per 200
        client.query("; ".join(statements[i:i + 200]), database=database)
    if rewrite:  # points whose dropped field had to go: deleted above, written again now
        writer.write(database, [format_line(p) for p in rewrite])
    if stale:
        log.info("%s: %d stale point(s) of %s in [%d, %d) deleted after the rewrite", measurement, len(stale),
                 _tag_conditions(scope), start_ns, end_ns)
    return len(stale)
