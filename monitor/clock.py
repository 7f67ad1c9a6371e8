"""One clock for the whole service, and the rule that makes a feed's date an event time.

Decisions never read the wall clock: they take a time or a `Clock` as an
argument, so that tests can freeze it and a replay sees the log's time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas import untrusted_time

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FrozenClock:
    """A clock that only moves when told to (tests)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


def event_time_of(published: datetime | None, collected_at: datetime) -> datetime:
    """The item's event time: when it was published, unless that cannot be trusted.

    Missing, in the future, or implausible (before 2000): the collection time.
    A date up to a day ahead is a time-zone slip, not news from tomorrow, so it
    is clamped too rather than believed.
    """
    if published is None or published > collected_at:
        return collected_at
    if untrusted_time(published, collected_at) is not None:
        return collected_at
    return published
