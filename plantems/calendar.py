"""Calendar helpers in the site's local time (pure): months, and "HH:MM" clock times and ranges."""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["DAY_MIN", "clock_minutes", "parse_clock", "previous_month"]

DAY_MIN = 24 * 60


def previous_month(now: datetime) -> str:
    """``YYYY-MM`` of the month before ``now``'s (in ``now``'s timezone)."""
    last = now.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def parse_clock(text: str) -> int:
    """Minutes after midnight of "HH:MM" (00:00-24:00)."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"{text!r} is not a clock time HH:MM")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= DAY_MIN or int(minutes) >= 60:
        raise ValueError(f"{text!r} is not a time of day 00:00-24:00")
    return value


def clock_minutes(ranges: tuple[str, ...]) -> list[bool]:
    """Which minutes of the day the "HH:MM-HH:MM" ranges cover; a range may wrap midnight."""
    covered = [False] * DAY_MIN
    for text in ranges:
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError(f"range {text!r}: expected HH:MM-HH:MM")
        lo, hi = parse_clock(start), parse_clock(end)
        if lo == hi:
            raise ValueError(f"range {text!r} is empty")
        for minute in (range(lo, hi) if lo < hi else [*range(lo, DAY_MIN), *range(0, hi)]):
            covered[minute] = True
    return covered
