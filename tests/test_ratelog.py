"""ConditionLog: first occurrence at once, then one summary per interval with the held-back count."""

import logging

from plantems.ratelog import ConditionLog


class _Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_flood_logs_once_then_a_summary(caplog):
    clock = _Clock()
    limiter = ConditionLog(logging.getLogger("t.ratelog"), interval_s=60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="t.ratelog"):
        for i in range(240):  # 4 a second for a minute
            limiter.log(logging.WARNING, "spool-full", "spool is full (%d lines)", i)
            clock.now_s += 0.25
        assert len(caplog.records) == 1
        assert caplog.records[0].getMessage() == "spool is full (0 lines)"
        limiter.log(logging.WARNING, "spool-full", "spool is full (%d lines)", 240)
    assert len(caplog.records) == 2
    assert caplog.records[1].getMessage() == "spool is full (240 lines) (+239 more in the last 60 s, not logged)"


def test_flush_reports_held_counts_and_keys_are_independent(caplog):
    clock = _Clock()
    limiter = ConditionLog(logging.getLogger("t.ratelog2"), interval_s=60.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="t.ratelog2"):
        for topic in ("a", "b", "c"):
            limiter.log(logging.WARNING, "unknown-topic", "unknown topic %s", topic)
        limiter.log(logging.ERROR, "other", "other condition")
        assert limiter.flush() == 0  # nothing due yet
        clock.now_s += 61
        assert limiter.flush() == 1
        assert limiter.flush() == 0
        limiter.clear("other")
        limiter.log(logging.ERROR, "other", "other condition")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["unknown topic a", "other condition",
                        "unknown topic c (+2 more in the last 60 s, the latest shown)", "other condition"]
