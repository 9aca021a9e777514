"""The one way fedscan writes and reads a time: ISO 8601 in UTC, to the second, with ``Z``.

Every report (JSON, history, metrics, readiness) carries times in this form, and anything that
reads one back uses :func:`parse_iso`, so a format change is made here once.
"""

from __future__ import annotations

import datetime as dt


def iso(t: dt.datetime) -> str:
    """``2030-01-01T00:00:00Z``; a naive time is taken as UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """An ISO 8601 time (``Z`` or an offset; none means UTC) as an aware datetime.

    Raises ``ValueError`` for anything else: callers reading their own reports treat that as
    damage, callers reading user input turn it into a one-line error.
    """
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
