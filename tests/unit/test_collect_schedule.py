"""When a feed is polled next: the interval with jitter, and what servers and failures ask."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.collect.schedule import (
    SchedulePolicy,
    feed_ttl_s,
    max_age_s,
    next_poll,
    retry_after_s,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLICY = SchedulePolicy(interval_s=900.0, jitter=0.2)
# Each delay is stretched or shrunk by at most this factor, either way.
LOW, HIGH = 1 - POLICY.jitter / 2, 1 + POLICY.jitter / 2


def seconds_until(when: datetime) -> float:
    return (when - NOW).total_seconds()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("Wed, 01 May 2024 12:05:00 GMT", 300.0),
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # already past: no wait
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value: str, expected: float | None) -> None:
    assert retry_after_s({"retry-after": value}, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("public, max-age=3600", 3600.0),
        ('max-age="60"', 60.0),
        ("no-cache, max-age=3600", None),
        ("no-store", None),
        ("private", None),
    ],
)
def test_cache_control_max_age(value: str, expected: float | None) -> None:
    assert max_age_s({"cache-control": value}) == expected


def test_a_feed_says_how_long_it_stays_unchanged() -> None:
    assert feed_ttl_s("60", None, None) == 3600.0
    assert feed_ttl_s(None, "hourly", "2") == 1800.0
    assert feed_ttl_s(None, "daily", None) == 86400.0
    assert feed_ttl_s("-5", "fortnightly", "x") is None


def test_polls_come_every_interval_spread_by_jitter() -> None:
    rng = random.Random(1)
    delays = [
        seconds_until(next_poll(POLICY, NOW, "ok", failures_before=0, rng=rng).at)
        for _ in range(500)
    ]

    assert min(delays) >= POLICY.interval_s * LOW
    assert max(delays) <= POLICY.interval_s * HIGH
    # Spread over the jitter's range, not all at one instant: most of it is used.
    assert max(delays) - min(delays) > 0.9 * POLICY.interval_s * (HIGH - LOW)


def test_a_new_feed_is_first_polled_somewhere_in_the_first_interval() -> None:
    rng = random.Random(2)
    firsts = [seconds_until(POLICY.first_poll(NOW, rng)) for _ in range(500)]

    # Anywhere in it: the earliest near its start, the latest near its end.
    assert 0 <= min(firsts) < 0.1 * POLICY.interval_s
    assert 0.9 * POLICY.interval_s < max(firsts) <= POLICY.interval_s


def test_max_age_and_ttl_lengthen_the_interval_up_to_a_cap() -> None:
    rng = random.Random(3)

    by_max_age = next_poll(POLICY, NOW, "not_modified", failures_before=0, rng=rng, max_age=7200)
    by_ttl = next_poll(POLICY, NOW, "ok", failures_before=0, rng=rng, ttl=3600)
    a_year = next_poll(POLICY, NOW, "ok", failures_before=0, rng=rng, max_age=365 * 86400)

    assert seconds_until(by_max_age.at) == 7200
    assert seconds_until(by_ttl.at) == 3600
    assert seconds_until(a_year.at) == POLICY.max_hint_s


def test_failures_back_off_exponentially_up_to_a_cap_and_success_resets() -> None:
    rng = random.Random(4)
    failures, delays = 0, []
    for _ in range(8):
        following = next_poll(POLICY, NOW, "error", failures_before=failures, rng=rng)
        failures = following.failures
        delays.append(seconds_until(following.at))

    assert failures == len(delays)
    for n, delay in enumerate(delays):
        backoff = min(POLICY.interval_s * 2**n, POLICY.backoff_cap_s)
        assert backoff * LOW <= delay <= backoff * HIGH, n
    assert delays[-1] <= POLICY.backoff_cap_s * HIGH
    assert next_poll(POLICY, NOW, "ok", failures_before=failures, rng=rng).failures == 0


def test_retry_after_is_honoured_and_remembered_as_a_not_before() -> None:
    rng = random.Random(5)

    following = next_poll(POLICY, NOW, "error", failures_before=0, rng=rng, retry_after=7200)
    hostile = next_poll(POLICY, NOW, "error", failures_before=0, rng=rng, retry_after=10**9)

    assert following.not_before == NOW + timedelta(seconds=7200)
    assert seconds_until(following.at) >= 7200
    assert hostile.not_before == NOW + timedelta(seconds=POLICY.retry_after_cap_s)
