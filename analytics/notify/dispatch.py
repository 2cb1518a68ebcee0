"""Deliver alerts to their channels so that one channel never holds up another.

- Every channel (by name) has its own workers and queue.
- Every attempt has an overall deadline: a peer that trickles one byte a second never trips a
  per-read timeout, so the attempt runs in a thread of its own and is abandoned at the deadline
  (that thread ends when the peer lets go, or with the process); the worker goes on. While
  ``max_stuck`` abandoned attempts of a channel are still held by its peer, further attempts on
  it fail at once, which bounds the threads and connections a bad peer can hold.
- Failed attempts are retried with exponential backoff.
- ``close`` lets deliveries in progress finish for a short grace, then stops: what was not
  delivered is reported as failed, with the reason, and nothing waits for a stuck peer.

Each alert's results (in channel order) go to its ``on_done`` once every channel is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from plantems.analytics.notify.base import Alert, Channel, ChannelError, Delivery
from plantems.analytics.notify.email import Email
from plantems.analytics.notify.http import DingTalk, Webhook, WeCom
from plantems.analytics.notify.mqtt import MqttTopic

__all__ = ["CHANNELS", "DEADLINE_S", "Dispatcher", "OnDone", "deliver"]

log = logging.getLogger(__name__)

CHANNELS: Final[Mapping[str, type]] = {"webhook": Webhook, "wecom": WeCom, "dingtalk": DingTalk, "email": Email,
                                       "mqtt": MqttTopic}
DEADLINE_S: Final = 15.0  # per attempt, connect to answer
WORKERS_PER_CHANNEL: Final = 2  # a second alert need not wait for the first one's slow attempt
MAX_STUCK: Final = 8  # abandoned attempts per channel still held by the peer, before new ones fail at once
CLOSE_GRACE_S: Final = 3.0  # at shutdown, for deliveries in progress
_POLL_S: Final = 0.1  # how often a waiting worker looks at the stop flag

OnDone = Callable[[Alert, list[Delivery]], None]


class _Stopped(Exception):
    """Delivery was stopped (shutdown) while an attempt was under way."""


class _Pending:
    """One alert's results, channel by channel; the last channel to finish reports them."""

    def __init__(self, alert: Alert, count: int, on_done: OnDone) -> None:
        self.alert, self.on_done = alert, on_done
        self._results: list[Delivery | None] = [None] * count
        self._lock = threading.Lock()

    def set(self, index: int, delivery: Delivery) -> list[Delivery] | None:
        """Record one channel's result; all results once the last one is in, else None."""
        with self._lock:
            self._results[index] = delivery
            if any(r is None for r in self._results):
                return None
            return [r for r in self._results if r is not None]


class Dispatcher:
    """Alert delivery with per-channel workers; ``submit`` never blocks, ``close`` is bounded."""

    def __init__(self, *, attempts: int = 3, backoff_s: float = 1.0, deadline_s: float = DEADLINE_S,
                 workers_per_channel: int = WORKERS_PER_CHANNEL, max_stuck: int = MAX_STUCK) -> None:
        self.attempts, self.backoff_s, self.deadline_s = attempts, backoff_s, deadline_s
        self.workers_per_channel, self.max_stuck = workers_per_channel, max_stuck
        self._stuck: dict[str, int] = {}  # per channel: abandoned attempts the peer still holds
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._open = 0  # alerts whose results are not reported yet
        self._closed = False

    def submit(self, alert: Alert, channels: Sequence[Channel], on_done: OnDone) -> None:
        """Queue ``alert`` on every channel; ``on_done(alert, results)`` runs once all are done."""
        with self._lock:
            refused = self._closed
            if not refused and channels:
                self._open += 1
                pending = _Pending(alert, len(channels), on_done)
                for index, channel in enumerate(channels):
                    self._pool(channel.name).submit(self._run, pending, index, channel)
        if refused:
            _report(on_done, alert, [Delivery(c.name, False, 0, "not sent: alert delivery has stopped (shutdown)")
                                     for c in channels])
        elif not channels:
            _report(on_done, alert, [])

    def close(self, *, grace_s: float = CLOSE_GRACE_S) -> None:
        """Refuse new alerts, let deliveries in progress finish for up to ``grace_s``, then stop the
        rest (reported as failed with the reason) and wait for the workers, which stop at once."""
        with self._lock:
            self._closed = True
            finished = self._idle.wait_for(lambda: self._open == 0, timeout=grace_s)
        if not finished:
            log.warning("alert delivery: stopping with %d alert(s) not delivered everywhere; they are recorded as "
                        "failed", self._open)
        self._stop.set()
        for pool in list(self._pools.values()):
            pool.shutdown(wait=True)

    def _pool(self, name: str) -> ThreadPoolExecutor:
        if name not in self._pools:
            self._pools[name] = ThreadPoolExecutor(max_workers=self.workers_per_channel,
                                                   thread_name_prefix=f"alert-{name}")
        return self._pools[name]

    def _run(self, pending: _Pending, index: int, channel: Channel) -> None:
        results = pending.set(index, self._with_retries(channel, pending.alert))
        if results is None:
            return
        try:
            _report(pending.on_done, pending.alert, results)
        finally:
            with self._lock:
                self._open -= 1
                self._idle.notify_all()

    def _with_retries(self, channel: Channel, alert: Alert) -> Delivery:
        error = ""
        for attempt in range(1, self.attempts + 1):
            if self._stop.is_set():
                return _stopped(channel, alert, attempt - 1, "not sent: shutting down before this attempt", error)
            try:
                self._attempt(channel, alert)
                return Delivery(channel.name, True, attempt)
            except _Stopped:
                return _stopped(channel, alert, attempt, f"shutting down during attempt {attempt}, no answer yet",
                                error)
            except ChannelError as exc:
                error = str(exc)
            if attempt < self.attempts and self._stop.wait(self.backoff_s * 2 ** (attempt - 1)):
                return _stopped(channel, alert, attempt, "shutting down before the next attempt", error)
        log.error("alert %s/%s not delivered by %s after %d attempts: %s", alert.rule, alert.level, channel.name,
                  self.attempts, error)
        return Delivery(channel.name, False, self.attempts, error)

    def _attempt(self, channel: Channel, alert: Alert) -> None:
        """One send within the deadline; raises ChannelError (failed or too slow) or _Stopped."""
        with self._lock:
            stuck = self._stuck.get(channel.name, 0)
        if stuck >= self.max_stuck:  # each holds a thread and a connection: bounded, and said so
            raise ChannelError(f"{channel.name}: not sent: {stuck} earlier attempts are still held by the peer")
        done = threading.Event()
        abandoned = False
        outcome: list[BaseException] = []

        def send() -> None:
            try:
                channel.send(alert)
            except BaseException as exc:  # handed to the worker, which reports it
                outcome.append(exc)
            finally:
                with self._lock:
                    done.set()
                    if abandoned:
                        self._stuck[channel.name] -= 1

        threading.Thread(target=send, name=f"alert-{channel.name}-send", daemon=True).start()
        deadline = time.monotonic() + self.deadline_s
        while not done.wait(max(0.0, min(_POLL_S, deadline - time.monotonic()))):
            if self._stop.is_set():
                raise _Stopped
            if time.monotonic() >= deadline:
                with self._lock:
                    if not done.is_set():  # else it finished just now: fall through to its outcome
                        abandoned = True
                        self._stuck[channel.name] = self._stuck.get(channel.name, 0) + 1
                if abandoned:
                    raise ChannelError(f"{channel.name}: no answer within {self.deadline_s:g} s (attempt abandoned)")
        if not outcome:
            return
        if isinstance(outcome[0], ChannelError):
            raise outcome[0]
        # a fault in the channel's code: its text may hold a URL, so the log (redacted) gets it, the record not
        log.error("alert channel %s failed unexpectedly", channel.name, exc_info=outcome[0])
        raise ChannelError(f"{channel.name}: unexpected {type(outcome[0]).__name__}")


def _stopped(channel: Channel, alert: Alert, attempts: int, reason: str, error: str) -> Delivery:
    detail = f"{reason}; last error: {error}" if error else reason
    log.error("alert %s/%s not delivered by %s: %s", alert.rule, alert.level, channel.name, detail)
    return Delivery(channel.name, False, attempts, detail)


def _report(on_done: OnDone, alert: Alert, results: list[Delivery]) -> None:
    try:
        on_done(alert, results)
    except Exception:  # the next alert must still be reported
        log.exception("alert %s/%s: recording the delivery results failed", alert.rule, alert.level)


def deliver(alert: Alert, channels: Sequence[Channel], *, attempts: int = 3, backoff_s: float = 1.0,
            deadline_s: float = DEADLINE_S) -> list[Delivery]:
    """Send one alert through every channel at once and wait; the results in channel order."""
    dispatcher = Dispatcher(attempts=attempts, backoff_s=backoff_s, deadline_s=deadline_s)
    results: list[Delivery] = []
    finished = threading.Event()

    def done(_: Alert, found: list[Delivery]) -> None:
        results.extend(found)
        finished.set()

    dispatcher.submit(alert, channels, done)
    finished.wait()
    dispatcher.close(grace_s=0)
    return results
