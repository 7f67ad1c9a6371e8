"""When to poll a feed next: the interval, spread with jitter, moved by what the server asked.

Pure: the time and the random source are arguments. What a server may ask for
(Retry-After, Cache-Control max-age, a feed's <ttl>) is honoured up to a cap,
so a hostile or mistaken "come back in a year" cannot silence a feed.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

from monitor.collect.fetch import FetchStatus

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-cache|no-store)\b", re.IGNORECASE)
_SY_PERIODS = {
    "hourly": 3_600.0,
    "daily": 86_400.0,
    "weekly": 7 * 86_400.0,
    "monthly": 30 * 86_400.0,
    "yearly": 365 * 86_400.0,
}


@dataclass(frozen=True)
class SchedulePolicy:
    """How often feeds are polled, and how far servers and failures may push that."""

    interval_s: float = 900.0
    # Each poll lands at interval × (1 ± jitter/2): feeds stay spread over the interval.
    jitter: float = 0.2
    # max-age and <ttl> may lengthen the interval up to this much, never beyond.
    max_hint_s: float = 6 * 3_600.0
    # Consecutive failures double the delay, up to this.
    backoff_cap_s: float = 6 * 3_600.0
    # A Retry-After longer than this is read as this.
    retry_after_cap_s: float = 24 * 3_600.0

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def first_poll(self, now: datetime, rng: random.Random) -> datetime:
        """A new feed's first poll: anywhere in the first interval, so feeds do not burst."""
        return now + timedelta(seconds=rng.uniform(0.0, self.interval_s))


def retry_after_s(headers: Mapping[str, str], now: datetime) -> float | None:
    """Retry-After in seconds (delay-seconds or an HTTP date); None if absent or unreadable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; a naive one is read as such
        return None
    return max(0.0, (when - now).total_seconds())


def max_age_s(headers: Mapping[str, str]) -> float | None:
    """Cache-Control max-age in seconds; None when absent or when caching is refused."""
    value = headers.get("cache-control", "")
    if not value or _NO_CACHE.search(value):
        return None
    match = _MAX_AGE.search(value)
    return float(match.group(1)) if match else None


def feed_ttl_s(ttl: str | None, sy_period: str | None, sy_frequency: str | None) -> float | None:
    """How long the feed says it stays unchanged: RSS <ttl> (minutes) or sy:updatePeriod."""
    if ttl:
        try:
            minutes = float(ttl.strip())
        except ValueError:
            minutes = math.nan
        if math.isfinite(minutes) and minutes > 0:
            return minutes * 60.0
    if sy_period:
        period = _SY_PERIODS.get(sy_period.strip().lower())
        if period is not None:
            try:
                frequency = float((sy_frequency or "1").strip())
            except ValueError:
                frequency = 1.0
            if math.isfinite(frequency) and frequency > 0:
                return period / frequency
    return None


Verdict = Literal["ok", "failed"]


@dataclass(frozen=True)
class NextPoll:
    at: datetime
    # The server asked not to be polled before this (Retry-After); also a --once run honours it.
    not_before: datetime | None
    failures: int


def next_poll(
    policy: SchedulePolicy,
    now: datetime,
    status: FetchStatus,
    *,
    failures_before: int,
    rng: random.Random,
    retry_after: float | None = None,
    max_age: float | None = None,
    ttl: float | None = None,
) -> NextPoll:
    """The next poll after one that ended with `status` at `now`."""
    spread = rng.uniform(1.0 - policy.jitter / 2, 1.0 + policy.jitter / 2)
    not_before: datetime | None = None
    if status == "error":
        failures = failures_before + 1
        backoff = min(policy.backoff_cap_s, policy.interval_s * 2.0 ** (failures - 1))
        delay = backoff * spread
        if retry_after is not None:
            wait = min(retry_after, policy.retry_after_cap_s)
            not_before = now + timedelta(seconds=wait)
            delay = max(delay, wait)
        return NextPoll(now + timedelta(seconds=delay), not_before, failures)
    hints = [hint for hint in (max_age, ttl) if hint is not None]
    hint = min(max(hints), policy.max_hint_s) if hints else 0.0
    delay = max(policy.interval_s * spread, hint)
    return NextPoll(now + timedelta(seconds=delay), None, 0)
