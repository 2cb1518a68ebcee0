"""Secrets never reach a log: a filter on the root handlers that rewrites every record.

It replaces, with ``***``:

- every secret value read at start (``Secret.resolve`` registers it here), and the query
  values and password of a secret that is a URL (robot URLs carry their key in the query);
- URL query parameters that carry credentials (``access_token``, ``sign``, ``timestamp``, ``key``,
  ``token``, ``secret``, ``password``, InfluxDB's ``p``...), wherever they are logged, e.g. by
  urllib3 at DEBUG (``"POST /robot/send?access_token=... HTTP/1.1" 200``);
- the user information of a URL (``http://user:password@host`` becomes ``http://***@host``).

Redacting at the logging layer covers third-party libraries too, which no call site can.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, urlsplit

__all__ = ["MASK", "RedactingFilter", "install", "redact", "register_secret"]

MASK = "***"
_MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words and numbers; the patterns still apply
_QUERY_KEYS = ("access_token", "token", "sign", "signature", "timestamp", "key", "secret", "password", "passwd",
               "api_key", "apikey", "p", "auth")
_QUERY = re.compile(r"(?i)([?&;](?:" + "|".join(_QUERY_KEYS) + r")=)[^&#\s\"'<>]*")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s\"'<>]+@")

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Mask ``value`` in every log record from now on; if it is a URL, its query values and password too."""
    candidates = {value}
    if "://" in value:
        parts = urlsplit(value)
        candidates |= {v for _, v in parse_qsl(parts.query)} | {parts.password or ""}
    with _lock:
        _secrets.update(c for c in candidates if len(c) >= _MIN_SECRET_CHARS)


def redact(text: str) -> str:
    """``text`` with every registered secret, credential query value and URL login replaced by ``***``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # longest first: a URL before its query values
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _QUERY.sub(rf"\g<1>{MASK}", text)
    return _USERINFO.sub(rf"\g<1>{MASK}@", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception and stack text; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad %-format: keep the raw text, still redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> RedactingFilter:
    """Put one RedactingFilter on every handler of ``logger`` (the root logger): records of every
    logger, propagated to these handlers, pass through it."""
    target = logger or logging.getLogger()
    found = next((f for h in target.handlers for f in h.filters if isinstance(f, RedactingFilter)), None)
    chosen = found or RedactingFilter()
    for handler in target.handlers:
        if chosen not in handler.filters:
            handler.addFilter(chosen)
    return chosen
