"""Log a condition once, then a summary with counts at most once a minute (pure, thread-safe).

A condition (``key``) is what went wrong, not every object it hit: "spool is full", "unknown MQTT
topic", "device flapping". Its first occurrence is logged at once; later ones within the interval
are only counted, and the next line that goes out (on a new occurrence after the interval, or from
:meth:`flush`, which a status loop calls) says how many were held back and gives the latest detail.
An outage that repeats a condition four times a second therefore logs about one line a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ConditionLog"]

_MAX_KEYS = 10_000  # a flood of distinct keys must not grow memory without bound


@dataclass
class _State:
    last_emit_s: float
    held: int = 0
    level: int = logging.WARNING
    message: str = ""


class ConditionLog:
    """Rate-limits log lines per condition key: the first at once, then one summary per interval."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def log(self, level: int, key: str, message: str, *args: object) -> bool:
        """Log ``message % args`` under ``key``; returns True if a line went out now."""
        text = message % args if args else message
        now = self._clock()
        with self._lock:
            state = self._states.get(key)
            if state is None:
                if len(self._states) >= _MAX_KEYS:
                    self._states.clear()
                self._states[key] = _State(now, 0, level, text)
                emit, held = True, 0
            elif now - state.last_emit_s >= self._interval_s:
                emit, held = True, state.held
                state.last_emit_s, state.held, state.level, state.message = now, 0, level, text
            else:
                state.held += 1
                state.level, state.message = max(state.level, level), text
                emit = False
        if emit:
            self._logger.log(level, "%s%s", text, self._summary(held))
        return emit

    def flush(self) -> int:
        """Emit the held-back summaries whose interval has passed; returns how many lines went out."""
        now = self._clock()
        due: list[tuple[int, str, int]] = []
        with self._lock:
            for state in self._states.values():
                if state.held and now - state.last_emit_s >= self._interval_s:
                    due.append((state.level, state.message, state.held))
                    state.last_emit_s, state.held = now, 0
        for level, text, held in due:
            self._logger.log(level, "%s%s", text, self._summary(held, latest=True))
        return len(due)

    def clear(self, key: str) -> None:
        """Forget a condition (it ended), so its next occurrence is logged at once."""
        with self._lock:
            self._states.pop(key, None)

    def _summary(self, held: int, latest: bool = False) -> str:
        if not held:
            return ""
        what = "the latest shown" if latest else "not logged"
        return f" (+{held} more in the last {self._interval_s:.0f} s, {what})"
