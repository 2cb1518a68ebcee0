"""InfluxDB's write answers, classified as Telegraf's InfluxDB v2 output does, and what the spool writer
does with each: every status against a local recording HTTP server (tests/receivers.py) that answers as
InfluxDB 2.x does, through both write APIs (v2: influxdb-client; v1: plain HTTP), plus a real
InfluxDB 1.6 for a missing database. Expected outcomes are written out by hand from the issue's table."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from plantems.collector.spool import Batch, Spool, SpoolError
from plantems.collector.writer import SpoolWriter
from plantems.config import InfluxApi, InfluxConfig
from plantems.influx import (
    InfluxBadRequest,
    InfluxError,
    InfluxNeedsFix,
    InfluxThrottled,
    InfluxTooLarge,
    InfluxUnavailable,
    V1Writer,
    init_databases,
    make_writer,
    parse_retry_after,
)
from plantems.secret import Secret
from tests.receivers import Request, json_http_server
from tests.support import rows, wait_for

TOKEN = "tok-0123-secret"
LINES = [f"electrical,site=s,device=m{i} p_kw={i}.5,e_imp_kwh={1000 + i}.0 {1_700_000_000_000_000_000 + i}"
         for i in range(6)]


def _cfg(url: str, api: InfluxApi, **extra: Any) -> InfluxConfig:
    return InfluxConfig(url=url, api=api, org="plant", raw_database="site", token=Secret(env="TEST_INFLUX_TOKEN"),
                        **extra)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_INFLUX_TOKEN", TOKEN)


@contextmanager
def influx_like(answer: Callable[[Request], tuple]) -> Iterator[tuple[str, list[Request], list[Request]]]:
    """A recording server: every request is kept (``seen``), those answered 204 also in ``landed``;
    ``answer`` gives status, JSON body and headers."""
    seen: list[Request] = []
    landed: list[Request] = []
    lock = threading.Lock()

    def route(request: Request) -> tuple:
        with lock:
            seen.append(request)
            answered = answer(request)
            if answered[0] == 204:
                landed.append(request)
            return answered

    with json_http_server(route, headers={"X-Influxdb-Version": "v2.7.11"}) as url:
        yield url, seen, landed


def _lines(requests: list[Request]) -> list[str]:
    return [line for r in requests for line in r.text.split("\n")]


def _accept_unless(refuse: Callable[[Request], tuple | None]) -> Callable[[Request], tuple]:
    """An answer function: ``refuse``'s answer when it has one, else 204."""
    return lambda request: refuse(request) or (204, None)


# status -> (exception class, text the message must carry); written from the issue, not the code
EXPECTED = {
    400: (InfluxBadRequest, "HTTP 400: why"),
    422: (InfluxBadRequest, "HTTP 422: why"),
    413: (InfluxTooLarge, "HTTP 413 (request too large): why"),
    429: (InfluxThrottled, "HTTP 429: why"),
    503: (InfluxThrottled, "HTTP 503: why"),
    401: (InfluxNeedsFix, "HTTP 401 (check influxdb.username/password or influxdb.token): why"),
    403: (InfluxNeedsFix, "HTTP 403 (the login may not write here: check its grants or the token's permissions)"),
    404: (InfluxNeedsFix, "HTTP 404 (database, bucket or organisation missing: run `plantems influx init`"),
    500: (InfluxUnavailable, "HTTP 500: why"),
    502: (InfluxUnavailable, "HTTP 502: why"),
}


@pytest.mark.parametrize("api", [InfluxApi.V2, InfluxApi.V1])
@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_every_status_is_classified(api, status):
    answer = {"code": "x", "message": "why"}
    with influx_like(lambda r: (status, answer, {"Retry-After": "7"})) as (url, seen, _):
        writer = make_writer(_cfg(url, api), api)
        with pytest.raises(InfluxError) as caught:
            writer.write("site", LINES)
        writer.close()
    kind, text = EXPECTED[status]
    assert type(caught.value) is kind
    assert caught.value.status == status and text in str(caught.value)
    # Retry-After is honoured where the server is overloaded (and kept for plain 5xx too)
    assert caught.value.retry_after_s == (7.0 if status in (429, 500, 502, 503) else None)
    assert TOKEN not in str(caught.value)
    assert [r.path for r in seen] == ["/api/v2/write" if api is InfluxApi.V2 else "/write"]


@pytest.mark.parametrize("gzip", [True, False])
def test_v2_request_follows_the_config(gzip):
    with influx_like(_accept_unless(lambda r: None)) as (url, seen, _):
        writer = make_writer(_cfg(url, InfluxApi.V2, gzip=gzip), InfluxApi.V2)
        writer.write("site", LINES)
        writer.close()
    (request,) = seen
    assert request.text == "\n".join(LINES)
    assert request.headers.get("Content-Encoding") == ("gzip" if gzip else None)
    assert request.headers["Authorization"] == f"Token {TOKEN}"
    assert request.query == {"org": "plant", "bucket": "site", "precision": "ns"}


@pytest.mark.parametrize("api", [InfluxApi.V2, InfluxApi.V1])
def test_the_timeout_follows_the_config(api):
    release = threading.Event()

    def slow(request: Request) -> tuple:
        release.wait(5)  # answers only after the client gave up (or 5 s)
        return 204, None

    with influx_like(slow) as (url, _, _):
        writer = make_writer(_cfg(url, api, timeout_s=0.3), api)
        try:
            with pytest.raises(InfluxUnavailable) as caught:
                writer.write("site", LINES)
        finally:
            release.set()
            writer.close()
    assert caught.value.status is None and "timed out" in str(caught.value).lower()


def test_retry_after_is_read_as_seconds_or_a_date_and_capped():
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after("soon") == 10.0  # unreadable: Telegraf's 10 s
    assert parse_retry_after("nan") == 10.0
    assert parse_retry_after("86400") == 600.0  # capped
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after(" ") is None


# -- the spool writer ------------------------------------------------------------------------------

def _spool(tmp_path, lines: list[str], cls: type[Spool] = Spool) -> Spool:
    spool = cls(tmp_path / "s.sqlite", max_bytes=10**9)
    spool.append("site", lines)
    spool.flush()
    return spool


def _drain(spool: Spool, url: str, *, batch_lines: int = 5000, api: InfluxApi = InfluxApi.V2) -> SpoolWriter:
    cfg = _cfg(url, api)
    writer = SpoolWriter(spool, lambda: make_writer(cfg, api), batch_lines=batch_lines, flush_interval_s=0.05,
                         backoff_min_s=0.05, backoff_max_s=0.4)
    writer.start()
    wait_for(lambda: spool.peek(1) is None, timeout_s=20, what="the spool to drain")
    writer.stop()
    return writer


@pytest.mark.parametrize("status", [400, 422])
def test_rejected_lines_are_isolated_and_dead_lettered(tmp_path, status):
    good = [f"electrical,site=s,device=m p_kw={i}.5 {1_700_000_000_000_000_000 + i}" for i in range(40)]
    bad = ['electrical,site=s,device=m p_kw="text" 1700000000000000007', "electrical,site=s p_kw=1 1"]
    lines = [*good[:7], bad[0], *good[7:31], bad[1], *good[31:]]

    def refuse(request: Request) -> tuple | None:
        hits = [line for line in request.text.split("\n") if line in bad]
        return (status, {"code": "invalid", "message": f"rejected: {hits[0]}"}) if hits else None

    spool = _spool(tmp_path, lines)
    with influx_like(_accept_unless(refuse)) as (url, _, landed):
        writer = _drain(spool, url)
    assert _lines(landed) == good  # each good line once, in order
    dead = spool.dead_letters()
    assert [line for _, line, _ in dead] == bad
    assert all(f"HTTP {status}: rejected: {line}" in reason for _, line, reason in dead)
    assert writer.counters.dead_lettered_lines == 2 and writer.counters.written_lines == 40


def test_too_large_requests_are_split_and_a_single_oversized_line_dead_lettered(tmp_path):
    lines = [f"electrical,site=s,device=m p_kw={i}.5 {1_700_000_000_000_000_000 + i}" for i in range(50)]
    huge = "electrical,site=s,device=m note_kw=1.0," + ",".join(f"f{i}=1.0" for i in range(400)) + " 17"
    lines.insert(33, huge)
    max_lines, max_bytes = 8, 2000  # what this "server" accepts per request

    def refuse(request: Request) -> tuple | None:
        if request.text.count("\n") + 1 > max_lines or len(request.raw) > max_bytes:
            return 413, {"code": "request too large", "message": "body exceeds the limit"}
        return None

    spool = _spool(tmp_path, lines)
    with influx_like(_accept_unless(refuse)) as (url, _, landed):
        writer = _drain(spool, url)
    assert _lines(landed) == [line for line in lines if line != huge]
    assert all(r.text.count("\n") + 1 <= max_lines for r in landed)
    assert [(line, "HTTP 413 (request too large)" in reason) for _, line, reason in spool.dead_letters()] == [
        (huge, True)]
    assert writer.counters.split_batches >= 1 and writer.counters.failed_requests == 0


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_writes_wait_for_retry_after(tmp_path, status):
    def refuse(request: Request) -> tuple | None:
        first = len(seen) == 1
        return (status, {"code": "too many requests", "message": "slow down"}, {"Retry-After": "1"}) if first else None

    spool = _spool(tmp_path, LINES)
    with influx_like(_accept_unless(refuse)) as (url, seen, landed):
        writer = _drain(spool, url)
    assert [r.text for r in seen] == ["\n".join(LINES)] * 2  # the same batch, kept in the spool, sent again
    # backoff alone would have retried after at most 0.05 s; the server asked for 1 s
    assert seen[1].time - seen[0].time >= 1.0
    assert _lines(landed) == LINES
    assert (writer.counters.throttled_requests, writer.counters.failed_requests) == (1, 1)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_configuration_errors_are_logged_once_and_nothing_is_lost(tmp_path, caplog, status):
    def refuse(request: Request) -> tuple | None:
        return (status, {"code": "denied", "message": "no"}) if len(seen) <= 4 else None

    spool = _spool(tmp_path, LINES)
    with caplog.at_level(logging.INFO, logger="plantems.collector.writer"), \
            influx_like(_accept_unless(refuse)) as (url, seen, landed):
        writer = _drain(spool, url)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert f"HTTP {status} (" in errors[0].getMessage() and "lines stay in the spool" in errors[0].getMessage()
    assert any(r.getMessage() == "InfluxDB writes recovered" for r in caplog.records)
    assert len(seen) == 5 and _lines(landed) == LINES  # four refusals, then everything, once
    assert writer.counters.failed_requests == 4 and spool.dead_letters() == []
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(("outage_error_s", "errors_expected"), [(60.0, 0), (0.0, 1)])
def test_an_outage_is_a_warning_then_an_error_once_it_lasts(tmp_path, caplog, outage_error_s, errors_expected):
    """A blip (shorter than outage_error_s) is one WARNING; a longer outage adds one rate-limited ERROR,
    because nothing reaches the dashboards or the alerts meanwhile. Nothing is lost either way."""
    def refuse(request: Request) -> tuple | None:
        return (500, {"code": "internal error", "message": "down"}) if len(seen) <= 4 else None

    spool = _spool(tmp_path, LINES)
    with caplog.at_level(logging.INFO, logger="plantems.collector.writer"), \
            influx_like(_accept_unless(refuse)) as (url, seen, landed):
        cfg = _cfg(url, InfluxApi.V2)
        writer = SpoolWriter(spool, lambda: make_writer(cfg, InfluxApi.V2), batch_lines=5000, flush_interval_s=0.05,
                             backoff_min_s=0.05, backoff_max_s=0.2, outage_error_s=outage_error_s)
        writer.start()
        wait_for(lambda: spool.peek(1) is None, timeout_s=20, what="the spool to drain")
        writer.stop()
    by_level = {level: [r.getMessage() for r in caplog.records if r.levelno == level]
                for level in (logging.WARNING, logging.ERROR)}
    assert len(by_level[logging.WARNING]) == 1 and "retrying" in by_level[logging.WARNING][0]
    assert len(by_level[logging.ERROR]) == errors_expected
    assert all("InfluxDB has refused writes for" in m for m in by_level[logging.ERROR])
    assert any(r.getMessage().startswith("InfluxDB writes recovered after") for r in caplog.records)
    assert _lines(landed) == LINES and writer.counters.failed_requests == 4


def test_v1_missing_database_on_a_real_influxdb_needs_a_fix(influx_url):
    with pytest.raises(InfluxNeedsFix, match=r"HTTP 404 \(database, bucket or organisation missing: run "
                                             r"`plantems influx init`.*database not found"):
        V1Writer(InfluxConfig(url=influx_url)).write("no_such_db_writer", LINES)


def test_writes_to_a_missing_database_wait_in_the_spool_until_init(influx_url, db, tmp_path, caplog):
    """A real InfluxDB 1.6 answers 404 for a database nobody created: ERROR once, nothing lost, and the
    lines land as soon as `influx init` has created it."""
    cfg = InfluxConfig(url=influx_url, raw_database=db, derived_database=f"{db}_d")
    t0 = time.time_ns() - 60 * 10**9
    lines = [f"electrical,site=s,device=m e_imp_kwh={10 + i}.0 {t0 + i * 10**9}" for i in range(5)]
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10**9)
    spool.append(db, lines)
    spool.flush()
    writer = SpoolWriter(spool, lambda: V1Writer(cfg), batch_lines=100, flush_interval_s=0.05,
                         backoff_min_s=0.05, backoff_max_s=0.2)
    with caplog.at_level(logging.INFO, logger="plantems.collector.writer"):
        writer.start()
        wait_for(lambda: writer.counters.failed_requests >= 3, timeout_s=20, what="refused writes")
        assert spool.peek(100).lines == tuple(lines)
        init_databases(cfg)
        wait_for(lambda: spool.peek(1) is None, timeout_s=20, what="the spool to drain")
        writer.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "HTTP 404 (" in errors[0] and "plantems influx init" in errors[0]
    stored = rows(influx_url, db, f"SELECT e_imp_kwh FROM electrical WHERE time >= {t0}")
    assert [r["e_imp_kwh"] for r in stored] == [10.0, 11.0, 12.0, 13.0, 14.0]


# -- spool faults and bugs never kill the writer thread ---------------------------------------------

class FaultySpool(Spool):
    """A real spool whose next calls of a method from the writer thread raise what is queued for it (a
    disk fault, a bug); the test's own look at the spool goes through."""

    faults: dict[str, list[Exception]]

    def _fault(self, method: str) -> None:
        queued = self.faults.get(method)
        if queued and threading.current_thread().name == "spool-writer":
            raise queued.pop(0)

    def peek(self, limit: int) -> Batch | None:
        self._fault("peek")
        return super().peek(limit)

    def ack(self, first_id: int, last_id: int) -> None:
        self._fault("ack")
        super().ack(first_id, last_id)

    def dead_letter(self, spooled_id: int, target: str, line: str, error: str) -> None:
        self._fault("dead_letter")
        super().dead_letter(spooled_id, target, line, error)


def test_spool_errors_and_bugs_are_logged_counted_and_survived(tmp_path, caplog):
    spool = _spool(tmp_path, LINES, FaultySpool)
    assert isinstance(spool, FaultySpool)
    spool.faults = {"peek": [SpoolError("disk I/O error"), SpoolError("disk I/O error"), RuntimeError("a bug")],
                    "ack": [SpoolError("database or disk is full")]}
    with caplog.at_level(logging.INFO, logger="plantems.collector.writer"), \
            influx_like(_accept_unless(lambda r: None)) as (url, _, landed):
        writer = _drain(spool, url)
    assert writer.is_alive() is False  # stopped by stop(), not by a fault
    assert (writer.counters.spool_errors, writer.counters.unexpected_errors) == (3, 1)
    # the batch whose acknowledgement failed stayed spooled and went again: at least once, never lost
    assert _lines(landed) == LINES * 2 and spool.dead_letters() == []
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    spool_errors = [r for r in errors if "spool cannot be read or written" in r.getMessage()]
    # rate-limited per episode: the second peek fault is only counted; the ack fault, after the spool
    # was readable again, starts a new episode and is logged at once
    assert [r.getMessage().rpartition(": ")[2] for r in spool_errors] == ["disk I/O error", "database or disk is full"]
    traced = [r for r in errors if r.exc_info is not None]
    assert len(traced) == 1 and "a bug" in str(traced[0].exc_info[1])
    assert any("spool readable again" in r.getMessage() for r in caplog.records)


def test_a_writer_that_keeps_failing_is_still_alive(tmp_path):
    spool = _spool(tmp_path, LINES, FaultySpool)
    assert isinstance(spool, FaultySpool)
    spool.faults = {"peek": [SpoolError("disk I/O error") for _ in range(1000)]}
    cfg = _cfg("http://127.0.0.1:9", InfluxApi.V2)
    writer = SpoolWriter(spool, lambda: make_writer(cfg, InfluxApi.V2), batch_lines=100, flush_interval_s=0.05,
                         backoff_min_s=0.01, backoff_max_s=0.02)
    writer.start()
    wait_for(lambda: writer.counters.spool_errors >= 20, timeout_s=20, what="twenty spool errors")
    assert writer.is_alive()
    spool.faults["peek"].clear()  # the disk recovers: InfluxDB (port 9) is down, so lines stay spooled
    wait_for(lambda: writer.counters.failed_requests >= 2, timeout_s=20, what="write attempts")
    writer.stop()
    assert spool.peek(100).lines == tuple(LINES)
