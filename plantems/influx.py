"""InfluxDB I/O: line-protocol writes (v1 or v2 API) and InfluxQL queries.

One portable dialect (shared/design.md): writes are line protocol over HTTP,
reads are InfluxQL over ``/query``, which every InfluxDB speaks. ``api: auto``
reads ``X-Influxdb-Version`` from ``/ping``: 1.x gets the v1 API (plain HTTP),
2.x and later the v2 API (influxdb-client's synchronous write API). Both raise
the same exceptions, classified by HTTP status as Telegraf's InfluxDB v2 output
does (:func:`classify`), so the spool writer treats them alike.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

import requests
import urllib3

from plantems.config import InfluxApi, InfluxConfig
from plantems.lineproto import Point
from plantems.schema import Tag

if TYPE_CHECKING:  # imported lazily: influxdb-client is only needed on the v2 path
    from influxdb_client import InfluxDBClient
    from influxdb_client.rest import ApiException

__all__ = [
    "CHUNK_ROWS",
    "RETRY_AFTER_MAX_S",
    "ROLE_GRANTS",
    "InfluxBadRequest",
    "InfluxClient",
    "InfluxError",
    "InfluxNeedsFix",
    "InfluxRejected",
    "InfluxThrottled",
    "InfluxTooLarge",
    "InfluxUnavailable",
    "LineWriter",
    "classify",
    "detect_api",
    "init_buckets_v2",
    "init_databases",
    "init_users",
    "make_writer",
    "merge_chunks",
    "parse_retry_after",
    "replace_window",
    "tag_in",
]

log = logging.getLogger(__name__)

# A server's Retry-After is honoured up to this (Telegraf caps it too); an unreadable one counts as 10 s.
RETRY_AFTER_MAX_S: Final = 600.0
RETRY_AFTER_UNREADABLE_S: Final = 10.0


class InfluxError(Exception):
    """Base of InfluxDB failures; the message names the URL and the server's reason."""

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, None when no answer came
        self.retry_after_s = retry_after_s  # the server's Retry-After, parsed and capped


class InfluxUnavailable(InfluxError):
    """Try again later: connection refused, timeout, 5xx, or a problem a person must fix (InfluxNeedsFix)."""


class InfluxThrottled(InfluxUnavailable):
    """HTTP 429 or 503: the server is overloaded; wait at least its Retry-After before the next request."""


class InfluxNeedsFix(InfluxUnavailable):
    """HTTP 401, 403 or 404: credentials, grants or a missing database/bucket. Retrying alone will not help,
    but nothing is lost: the lines wait in the spool until someone fixes it."""


class InfluxRejected(InfluxError):
    """The server refused this body: retrying the same request can never succeed."""


class InfluxBadRequest(InfluxRejected):
    """HTTP 400 or 422: some line in the body is malformed, conflicts with a field type, or lies outside
    the retention period. The good lines of the body may have been written (a partial write)."""


class InfluxTooLarge(InfluxRejected):
    """HTTP 413: the request body is larger than the server accepts; smaller batches will go through."""


class LineWriter(Protocol):
    def write(self, database: str, lines: Sequence[str]) -> None: ...
    def close(self) -> None: ...


# What to fix, for the statuses a person must act on.
_HINTS: Final = {401: "check influxdb.username/password or influxdb.token",
                 403: "the login may not write here: check its grants or the token's permissions",
                 404: "database, bucket or organisation missing: run `plantems influx init`, check influxdb.org"}


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), capped; None if absent."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            seconds = (when - (now or datetime.now(UTC))).total_seconds()
        except (TypeError, ValueError):
            seconds = RETRY_AFTER_UNREADABLE_S
    if math.isnan(seconds):
        seconds = RETRY_AFTER_UNREADABLE_S
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def classify(status: int, reason: str, where: str, *, retry_after: str | None = None) -> InfluxError | None:
    """The exception for an HTTP answer to a write or query (None for 2xx), classified as Telegraf's
    InfluxDB v2 output does: 400/422 rejected lines, 413 too large, 429/503 throttled, 401/403/404 need a
    person, anything else retried."""
    if status < 300:
        return None
    text = f"{where}: HTTP {status}: {reason}"
    if status in (400, 422):
        return InfluxBadRequest(text, status=status)
    if status == 413:
        return InfluxTooLarge(f"{where}: HTTP 413 (request too large): {reason}", status=status)
    if status in (429, 503):
        return InfluxThrottled(text, status=status, retry_after_s=parse_retry_after(retry_after))
    if status in _HINTS:
        return InfluxNeedsFix(f"{where}: HTTP {status} ({_HINTS[status]}): {reason}", status=status)
    return InfluxUnavailable(text, status=status, retry_after_s=parse_retry_after(retry_after))


def _reason_from(body: bytes | str | None, error_header: str | None = None) -> str:
    """The server's explanation: the JSON ``error``/``message`` of the body, else its text; plus X-Influx-Error."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        parsed = json.loads(text)
        reason = str(parsed.get("error") or parsed.get("message") or text) if isinstance(parsed, dict) else text
    except ValueError:
        reason = text
    reason = reason.strip()[:500]
    return f"{reason}; {error_header}" if error_header else reason


def _raise_for(response: requests.Response, url: str) -> None:
    error = classify(response.status_code, _reason_from(response.content, response.headers.get("X-Influx-Error")),
                     url, retry_after=response.headers.get("Retry-After"))
    if error is not None:
        raise error


def _gzip(body: bytes) -> bytes:
    # Level 1: most of the size win for a tenth of the CPU of level 9 (3 ms against 47 ms for 5,000 lines).
    return gzip.compress(body, compresslevel=1)


def tag_in(tag: str, values: Sequence[str]) -> str:
    """InfluxQL condition: ``tag`` is one of ``values`` (configured ids: only '.' needs escaping).

    Kept for callers not yet moved to the query layer: build new queries with
    ``plantems.store.query.SiteScope.select(..., any_of={tag: values})``."""
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
            body = _gzip(body)
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


def _v2_client(cfg: InfluxConfig, *, gzip: bool = False) -> InfluxDBClient:
    """influxdb-client for ``cfg``: its token (or ``username:password``, which InfluxDB 1.8+ accepts as a
    token), the configured timeout and TLS verification, and no retries of its own (the spool retries).
    ``gzip``: the client's own compression (level 9), for calls other than the writer's."""
    from influxdb_client import InfluxDBClient

    if cfg.token is not None:
        token = cfg.token.resolve().get_secret_value()
    elif cfg.username and cfg.password is not None:
        token = f"{cfg.username}:{cfg.password.resolve().get_secret_value()}"
    else:
        token = ""
    return InfluxDBClient(url=cfg.url, token=token, org=cfg.org, timeout=round(cfg.timeout_s * 1000),
                          enable_gzip=gzip, verify_ssl=cfg.verify_tls, retries=False)


def _from_api_exception(exc: ApiException, where: str) -> InfluxError:
    """An influxdb-client ApiException classified like any other answer (status 0: no answer at all)."""
    headers = exc.headers or {}
    if not exc.status:
        return InfluxUnavailable(f"{where}: {exc.reason}")
    error = classify(exc.status, _reason_from(exc.body, headers.get("X-Influx-Error")) or str(exc.reason or ""),
                     where, retry_after=headers.get("Retry-After"))
    return error or InfluxUnavailable(f"{where}: unexpected HTTP {exc.status}", status=exc.status)


class V2Writer:
    """influxdb-client's synchronous write API with line-protocol records (InfluxDB 2.x, 3.x, Cloud, 1.8+).

    The bucket is the database name (on 1.8 and 3.x, ``db/rp`` or the database). Errors come back as the
    same classified exceptions as the v1 path, so the spool writer treats both APIs alike.
    """

    def __init__(self, cfg: InfluxConfig) -> None:
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.cfg = cfg
        # The body is compressed here, at level 1 like the v1 path, and handed over as one line-protocol
        # record; the client's own gzip would use level 9. This client only writes, so the header is safe.
        self._client = _v2_client(cfg)
        if cfg.gzip:
            self._client.api_client.set_default_header("Content-Encoding", "gzip")
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, database: str, lines: Sequence[str]) -> None:
        from influxdb_client.rest import ApiException

        where = f"{self.cfg.url.rstrip('/')}/api/v2/write bucket {database}"
        try:
            body = "\n".join(lines).encode()
            self._api.write(bucket=database, org=self.cfg.org, record=_gzip(body) if self.cfg.gzip else body,
                            write_precision="ns")
        except ApiException as exc:
            raise _from_api_exception(exc, where) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise InfluxUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


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


# Rows per streamed chunk of a query answer (InfluxQL ``chunked=true``): the server sends each chunk as soon as it
# has it, so a large answer keeps the connection busy instead of running silent into the timeout.
CHUNK_ROWS: Final = 10_000


def merge_chunks(lines: Iterable[bytes | str], *, where: str, q: str) -> list[Series]:
    """The series of a chunked InfluxQL answer (one JSON object per line, pure): a series cut across chunks
    (``partial``) is joined again, so the result equals the unchunked answer. Raises on an error in it."""
    series: list[Series] = []
    open_key: tuple[object, ...] | None = None  # the series the last chunk left partial
    for line in lines:
        if not line:
            continue
        body = json.loads(line)
        if "error" in body:
            raise InfluxError(f"{where}: query {q!r} failed: {body['error']}")
        for result in body.get("results", []):
            if "error" in result:
                raise InfluxError(f"{where}: query {q!r} failed: {result['error']}")
            for s in result.get("series", []):
                key = (result.get("statement_id"), s.get("name", ""), tuple(sorted((s.get("tags") or {}).items())))
                if key == open_key and series:
                    series[-1].values.extend(s.get("values", []))
                else:
                    series.append(Series(s.get("name", ""), s.get("tags", {}), s["columns"], list(s.get("values", []))))
                open_key = key if s.get("partial") else None
    return series


class InfluxClient(_HttpBase):
    """InfluxQL over ``/query`` (reads and administration), answers streamed in chunks."""

    def query(self, q: str, *, database: str | None = None, epoch: str = "ns",
              chunk_rows: int | None = CHUNK_ROWS) -> list[Series]:
        """Run InfluxQL; return its series. Raises InfluxError with the server's reason.

        The answer is streamed (``chunked=true``, ``chunk_rows`` rows a chunk; None: one answer): the
        timeout then bounds the silence between chunks, not the whole answer, and a long read never
        holds a whole JSON document in memory twice."""
        url = self.cfg.url.rstrip("/") + "/query"
        params = {"q": q, "epoch": epoch}
        if database:
            params["db"] = database
        if chunk_rows:
            params.update(chunked="true", chunk_size=str(int(chunk_rows)))
        try:
            with self.session.post(url, data=params, timeout=self.cfg.timeout_s, stream=bool(chunk_rows)) as response:
                _raise_for(response, url)
                if chunk_rows:
                    return merge_chunks(response.iter_lines(), where=url, q=q)
                return merge_chunks([response.content], where=url, q=q)
        except requests.RequestException as exc:
            raise InfluxUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # an answer cut off mid-chunk
            raise InfluxUnavailable(f"{url}: unreadable answer to {q!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Policy:
    name: str
    duration: str
    default: bool


def _policies(client: InfluxClient, database: str) -> dict[str, _Policy]:
    found = {}
    for series in client.query(f'SHOW RETENTION POLICIES ON "{database}"'):
        for row in series.values:
            record = dict(zip(series.columns, row, strict=True))
            found[record["name"]] = _Policy(record["name"], record["duration"], bool(record["default"]))
    return found


def _policies_with_data(client: InfluxClient, database: str) -> set[str]:
    """Retention policies of ``database`` that hold shards, i.e. that points were ever written into.

    Shards are the cheap, exact signal (no scan of the data); a shard emptied by DELETE still counts,
    which errs on the side of keeping data visible.
    """
    held = set()
    for series in client.query("SHOW SHARDS"):
        for row in series.values:
            record = dict(zip(series.columns, row, strict=True))
            if record["database"] == database:
                held.add(record["retention_policy"])
    return held


def _init_database(client: InfluxClient, database: str, policy: str, duration: str) -> list[str]:
    """One database and its policy, made the default only where that hides no data."""
    client.query(f'CREATE DATABASE "{database}"')
    before = _policies(client, database)
    verb = "ALTER" if policy in before else "CREATE"
    client.query(f'{verb} RETENTION POLICY "{policy}" ON "{database}" DURATION {duration} REPLICATION 1')
    after = _policies(client, database)[policy]
    change = (f"created ({after.duration})" if verb == "CREATE" else f"kept ({after.duration})"
              if before[policy].duration == after.duration else f"{before[policy].duration} -> {after.duration}")
    done = [f"database {database}: retention policy {policy} {change}"]
    current = next((p.name for p in before.values() if p.default), None)
    with_data = _policies_with_data(client, database)
    if current == policy:
        done[0] += ", default"
    elif current is not None and current in with_data:
        # Queries without a policy read only the default one: switching it would hide these points
        # (an energy back-fill over them would find nothing). Keep it; new points go there too.
        done.append(f"WARNING database {database}: retention policy {current} stays the default because it "
                    f"holds data that a new default would hide from every query; new points go there as well, "
                    f"kept {before[current].duration} (not {duration}). To switch, copy the data into {policy} "
                    f"(SELECT * INTO \"{database}\".\"{policy}\".:MEASUREMENT FROM \"{database}\".\"{current}\"."
                    f"/.*/ GROUP BY *) and then ALTER RETENTION POLICY \"{policy}\" ON \"{database}\" DEFAULT")
    else:
        client.query(f'ALTER RETENTION POLICY "{policy}" ON "{database}" DEFAULT')
        done[0] += ", default"
        current = policy
    hidden = sorted(with_data - {current})
    if hidden:
        done.append(f"WARNING database {database}: retention policies {', '.join(hidden)} hold data that queries "
                    f"without a policy do not see (the default is {current})")
    return done


def init_databases(cfg: InfluxConfig) -> list[str]:
    """Create the raw and derived databases and their retention policies; idempotent; never hides data.

    Raw data keeps ``raw_retention_days`` (policy ``raw``), derived data is kept forever (policy
    ``forever``). Each becomes its database's default unless the current default already holds points:
    then the current default stays, so that nothing vanishes from queries, and a WARNING line says how
    to switch. Returns what was done, one line per fact.
    """
    client = InfluxClient(cfg)
    done = []
    try:
        for database, policy, duration in ((cfg.raw_database, "raw", f"{cfg.raw_retention_days}d"),
                                           (cfg.derived_database, "forever", "INF")):
            done += _init_database(client, database, policy, duration)
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


def _org_id_v2(client: InfluxDBClient, cfg: InfluxConfig) -> str:
    from influxdb_client.rest import ApiException

    try:
        orgs = client.organizations_api().find_organizations(org=cfg.org)
    except ApiException as exc:
        if exc.status != 404:  # InfluxDB 2.x answers 404 for an unknown name, others an empty list
            raise
        orgs = []
    if not orgs:
        raise InfluxError(f"{cfg.url}: organisation {cfg.org!r} not found (influxdb.org)")
    return str(orgs[0].id)


def _init_bucket_v2(client: InfluxDBClient, org_id: str, name: str, policy: str, seconds: int) -> str:
    """One bucket and its DBRP mapping; refuses to take over a database another bucket serves by default."""
    from influxdb_client import BucketRetentionRules
    from influxdb_client.domain.dbrp_create import DBRPCreate
    from influxdb_client.service.dbr_ps_service import DBRPsService

    buckets = client.buckets_api()
    found = buckets.find_buckets(org_id=org_id, name=name).buckets or []
    dbrps = DBRPsService(client.api_client)
    mapped = dbrps.get_dbr_ps(org_id=org_id, db=name).content or []
    if found:
        bucket_id = str(found[0].id)
    else:
        # InfluxQL reads a database through its default mapping: pointing that at a new, empty bucket
        # would hide what the mapped bucket holds. Stop before creating anything.
        other = next((m for m in mapped if m.default), None)
        if other is not None:
            raise InfluxError(f"InfluxQL database {name} is mapped by default to bucket id {other.bucket_id} "
                              f"(retention policy {other.retention_policy}); a bucket {name} mapped in its place "
                              f"would hide that data. Rename the bucket to {name} or remove the mapping, "
                              "then run init again")
        rules = [BucketRetentionRules(type="expire", every_seconds=seconds)] if seconds else []
        bucket_id = str(buckets.create_bucket(bucket_name=name, org=org_id, retention_rules=rules).id)
    if not any(m.bucket_id == bucket_id for m in mapped):
        default = not any(m.default for m in mapped)
        dbrps.post_dbrp(DBRPCreate(org_id=org_id, bucket_id=bucket_id, database=name, retention_policy=policy,
                                   default=default))
        mapping = f"InfluxQL database {name} (retention policy {policy}) mapped to it" + (
            "" if default else " (not as the default: another mapping is)")
    else:
        mapping = f"InfluxQL database {name} already mapped to it"
    return f"bucket {name}: {'kept' if found else 'created'}, {mapping}"


def init_buckets_v2(cfg: InfluxConfig) -> list[str]:
    """InfluxDB 2.x/3.x through influxdb-client: the raw and derived buckets and their DBRP mappings (so
    InfluxQL, which the analytics and Grafana speak, finds them by database name); idempotent; never
    remaps a database whose default mapping serves another bucket. Needs a token that may create
    buckets in ``cfg.org``."""
    from influxdb_client.client.exceptions import InfluxDBError
    from influxdb_client.rest import ApiException

    done = []
    with _v2_client(cfg) as client:
        try:
            org_id = _org_id_v2(client, cfg)
            for name, policy, seconds in ((cfg.raw_database, "raw", cfg.raw_retention_days * 86400),
                                          (cfg.derived_database, "forever", 0)):
                done.append(_init_bucket_v2(client, org_id, name, policy, seconds))
        except ApiException as exc:
            raise _from_api_exception(exc, f"{cfg.url} (influx init)") from None
        except InfluxDBError as exc:
            raise InfluxError(f"{cfg.url} (influx init): {exc.message}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise InfluxUnavailable(f"{cfg.url} (influx init): {type(exc).__name__}: {exc}") from exc
    return done


# --- Recomputing a window without a hole -------------------------------------------------------------

def replace_window(client: InfluxClient, writer: LineWriter, *, database: str, measurement: str,
                   scope: Mapping[str, str], start_ns: int, end_ns: int, points: Sequence[Point],
                   batch_lines: int = 5000) -> int:
    """Compatibility shim for :func:`plantems.store.window.replace_window`: ``scope`` (tag -> value)
    must name the site; the other tags narrow the window."""
    from plantems.store.query import SiteScope
    from plantems.store.window import replace_window as replace

    if not scope.get(Tag.SITE.value):
        raise ValueError(f"replace_window {measurement}: scope {dict(scope)} names no site; every "
                         f"recompute must stay inside one site")
    tags = {k: v for k, v in scope.items() if k != Tag.SITE.value}
    return replace(client, writer, site=SiteScope(scope[Tag.SITE.value]), database=database,
                   measurement=measurement, tags=tags, start_ns=start_ns, end_ns=end_ns, points=points,
                   batch_lines=batch_lines)
