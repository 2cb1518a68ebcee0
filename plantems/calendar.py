"""Calendar helpers in the site's local time (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["previous_month"]


def previous_month(now: datetime) -> str:
    """``YYYY-MM`` of the month before ``now``'s (in ``now``'s timezone)."""
    last = now.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"
