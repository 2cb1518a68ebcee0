"""Secrets never reach a log: the redaction filter on the root handlers, at DEBUG, with urllib3
talking to a real local receiver (DingTalk and WeCom robots carry their keys in the URL)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from plantems import redact
from plantems.analytics.notify import Alert, deliver
from plantems.analytics.notify.http import DingTalk, WeCom
from plantems.secret import Secret
from tests.receivers import SECRET

ALERT = Alert(site="cs", rule="demand", level="warning", title="Demand 9,100 kW", text="Shiftable now: mill-2",
              value=9100.0, threshold=10000.0, time_ns=1_795_000_000 * 10**9)


@pytest.mark.parametrize(("line", "expected"), [
    ('http://127.0.0.1:80 "POST /robot/send?access_token=abc123&timestamp=1700000000000&sign=xY%2B%3D HTTP/1.1" 200',
     'http://127.0.0.1:80 "POST /robot/send?access_token=***&timestamp=***&sign=*** HTTP/1.1" 200'),
    ("POST /cgi-bin/webhook/send?key=693a91f6-7xxx HTTP/1.1", "POST /cgi-bin/webhook/send?key=*** HTTP/1.1"),
    ("connecting to http://plantems:pw@influx:8086/write?db=raw&u=plantems&p=pw2",
     "connecting to http://***@influx:8086/write?db=raw&u=plantems&p=***"),
    ("https://user@example.cn/x", "https://***@example.cn/x"),
    ("mill-2 p_kw=2400 at 10:45, ?q=SELECT 1 from e-mail lead@plant", "mill-2 p_kw=2400 at 10:45, ?q=SELECT 1 from "
     "e-mail lead@plant"),
], ids=["dingtalk", "wecom", "influx-login", "user-only", "ordinary-text"])
def test_credentials_in_urls_are_masked(line, expected):
    assert redact.redact(line) == expected


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """The root logger at DEBUG into a buffer, with the filter installed as ``plantems`` does."""
    root, buffer = logging.getLogger(), io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = root.level
    # influxdb-client, once used in this process, sets urllib3's logger to WARNING (its `debug` setting):
    # let urllib3 log at DEBUG again here, or there would be nothing to check
    urllib3_log = logging.getLogger("urllib3")
    urllib3_level = urllib3_log.level
    urllib3_log.setLevel(logging.NOTSET)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    redact.install(root)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        urllib3_log.setLevel(urllib3_level)


def test_robot_keys_and_signatures_never_reach_a_debug_log(receiver, monkeypatch, debug_log):
    url, received = receiver
    token, wecom_key = "ding-token-0f3c9a", "wecom-key-77d1e2"
    monkeypatch.setenv("T_DING_URL", f"{url}/ding?access_token={token}")
    monkeypatch.setenv("T_DING_SECRET", SECRET)
    monkeypatch.setenv("T_WECOM_URL", f"{url}/wecom?key={wecom_key}")
    ding_url, ding_secret, wecom_url = (Secret(env=name).resolve().get_secret_value()
                                        for name in ("T_DING_URL", "T_DING_SECRET", "T_WECOM_URL"))
    results = deliver(ALERT, [DingTalk(ding_url, ding_secret), WeCom(wecom_url)], attempts=1)
    assert [r.ok for r in results] == [True, True]
    logging.getLogger("plantems.test").error("robot %s failed", ding_url, exc_info=ValueError(f"bad {wecom_url}"))
    logging.getLogger("plantems.test").debug("signing with %s", ding_secret)
    text = debug_log.getvalue()
    sign = next(r for r in received if r["path"] == "/ding")["query"]["sign"]
    assert '"POST /ding?access_token=***&timestamp=***&sign=*** HTTP/1.1" 200' in text  # urllib3 logged, masked
    assert '"POST /wecom?key=*** HTTP/1.1" 200' in text
    assert "robot *** failed" in text and "ValueError: bad ***" in text and "signing with ***" in text
    for secret in (token, wecom_key, SECRET, sign, quote(sign, safe="")):  # as sent, the signature is URL-encoded
        assert secret not in text
