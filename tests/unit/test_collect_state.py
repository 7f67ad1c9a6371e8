"""What a poll leads to, given what the collector remembers: publish once, revise, go stale."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import CacheValidators
from monitor.collect.poll import PollOutcome
from monitor.collect.schedule import SchedulePolicy
from monitor.collect.state import (
    FeedState,
    PollDecision,
    classify,
    decide,
    latest_states,
    release,
    remember,
    reserve,
    stale_notice,
)
from schemas import ItemCollected, encode
from tests.factories import feed_polled, item_collected

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FEED = FeedSpec(
    url="https://news.example/rss", name="Example", lang="ru", country="RU", kind="state"
)
DAY = timedelta(hours=24)


def item(item_id: str, revision: str = "r-1") -> ItemCollected:
    return item_collected(item_id, revision=revision, feed_url=FEED.url, source=FEED.name, at=NOW)


def outcome(*items: ItemCollected, status: str = "ok", at: datetime = NOW) -> PollOutcome:
    polled = feed_polled(
        FEED.name,
        status,
        at,
        feed_url=FEED.url,
        duration_ms=5.0,
        items_total=len(items),
        error="HTTP 500" if status == "error" else None,
    )
    return PollOutcome(polled, items, CacheValidators(etag='"v1"'))


def decided(state: FeedState, result: PollOutcome) -> PollDecision:
    return decide(
        FEED,
        state,
        result,
        {},
        now=NOW,
        schedule=SchedulePolicy(interval_s=900),
        stale_after=DAY,
        rng=random.Random(0),
    )


def test_items_are_new_updated_or_seen() -> None:
    remembered = {"i-a": "r-1", "i-b": "r-1"}

    fresh, new, updated, seen = classify(
        [item("i-a"), item("i-b", "r-2"), item("i-c"), item("i-c")], remembered, {}
    )

    assert [(i.item_id, i.revision) for i in fresh] == [("i-b", "r-2"), ("i-c", "r-1")]
    assert (new, updated, seen) == (1, 1, 2)


def test_an_item_another_feed_published_is_not_published_again() -> None:
    fresh, new, _, seen = classify([item("i-shared")], {}, {"i-shared": "r-1"})

    assert (fresh, new, seen) == ([], 0, 1)


def test_a_first_poll_publishes_everything_and_remembers_it() -> None:
    state = FeedState(feed_url=FEED.url)

    decision = decided(state, outcome(item("i-a"), item("i-b")))

    assert [i.item_id for i in decision.items] == ["i-a", "i-b"]
    assert (decision.polled.items_new, decision.polled.items_seen) == (2, 0)
    assert decision.state.published == {"i-a": "r-1", "i-b": "r-1"}
    assert decision.state.etag == '"v1"'
    assert decision.state.watching_since == NOW
    assert decision.state.last_new_at == NOW
    assert decision.polled.next_poll_at == decision.state.next_poll_at
    assert decision.stale is None


def test_an_edited_item_is_published_as_a_new_revision_of_the_same_id() -> None:
    state = FeedState(feed_url=FEED.url, published={"i-a": "r-1"}, watching_since=NOW)

    decision = decided(state, outcome(item("i-a", "r-2")))

    assert [(i.item_id, i.revision) for i in decision.items] == [("i-a", "r-2")]
    assert (decision.polled.items_new, decision.polled.items_updated) == (0, 1)
    assert decision.state.published == {"i-a": "r-2"}


def test_memory_is_bounded_but_never_forgets_what_the_feed_still_serves() -> None:
    published = {f"i-{n}": "r-1" for n in range(10)}

    kept = remember(published, [item("i-new")], in_document={"i-0", "i-new"}, cap=5)

    # i-0 is the oldest, but the feed still serves it: the oldest of the others go.
    assert list(kept) == ["i-0", "i-7", "i-8", "i-9", "i-new"]


def test_a_feed_silent_for_longer_than_expected_is_stale_once_per_period() -> None:
    quiet = FeedState(feed_url=FEED.url, watching_since=NOW - 3 * DAY, last_new_at=NOW - 2 * DAY)

    first = stale_notice(FEED, quiet, NOW, DAY)
    assert first is not None
    assert first.silent_since == NOW - 2 * DAY
    assert first.silent_for_s == 2 * DAY.total_seconds()
    assert (first.source_country, first.source_kind) == ("RU", "state")

    reported = quiet.model_copy(update={"stale_reported_at": NOW})
    assert stale_notice(FEED, reported, NOW + timedelta(hours=1), DAY) is None
    assert stale_notice(FEED, reported, NOW + DAY, DAY) is not None  # still silent a day later


def test_a_feed_that_never_produced_anything_is_stale_from_when_watching_began() -> None:
    never = FeedState(feed_url=FEED.url, watching_since=NOW - 2 * DAY, last_status="error")

    notice = stale_notice(FEED, never, NOW, DAY)

    assert notice is not None
    assert notice.silent_since == NOW - 2 * DAY
    assert notice.last_status == "error"
    assert stale_notice(FEED, FeedState(feed_url=FEED.url), NOW, DAY) is None


def test_failures_count_and_a_stale_feed_is_reported_by_its_poll() -> None:
    state = FeedState(feed_url=FEED.url, watching_since=NOW - 2 * DAY, failures=3)

    decision = decided(state, outcome(status="error"))

    assert decision.state.failures == 4
    assert decision.state.last_error == "HTTP 500"
    assert decision.stale is not None
    assert decision.stale.consecutive_failures == 4
    assert decision.state.stale_reported_at == NOW


def test_reserving_items_in_the_index_can_be_undone() -> None:
    index = {"i-a": "r-1"}

    previous = reserve(index, [item("i-a", "r-2"), item("i-b")])
    assert index == {"i-a": "r-2", "i-b": "r-1"}

    release(index, previous)
    assert index == {"i-a": "r-1"}


def test_the_latest_record_per_feed_wins_as_compaction_would_leave_it() -> None:
    old = FeedState(feed_url=FEED.url, published={"i-a": "r-1"})
    new = FeedState(feed_url=FEED.url, published={"i-a": "r-1", "i-b": "r-1"})
    other = FeedState(feed_url="https://other.example/rss")

    states = latest_states(
        [
            (b"https://news.example/rss", encode(old)),
            (b"https://other.example/rss", encode(other)),
            (b"https://news.example/rss", encode(new)),
            (b"https://news.example/rss", b"{not json"),  # unreadable: skipped
            (b"https://other.example/rss", b""),  # tombstone: forgotten
        ]
    )

    assert states == {"https://news.example/rss": new}
