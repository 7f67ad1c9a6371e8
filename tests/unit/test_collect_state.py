"""What a poll leads to, given what the collector remembers: publish once, revise, go stale."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import CacheValidators
from monitor.collect.identity import legacy_link_id
from monitor.collect.parse import parse_feed
from monitor.collect.poll import PollOutcome
from monitor.collect.schedule import SchedulePolicy
from monitor.collect.state import (
    FeedState,
    PollDecision,
    classify,
    decide,
    latest_states,
    published_revisions,
    release,
    remember,
    reserve,
    stale_notice,
)
from schemas import ItemCollected, encode
from tests.factories import feed_polled, item_collected, rss

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FEED = FeedSpec(
    url="https://news.example/rss", name="Example", lang="ru", country="RU", kind="state"
)
DAY = timedelta(hours=24)


OTHER_FEED = "https://other.example/rss"
LINK = "https://news.example/2024/05/01/talks"


def item(item_id: str, revision: str = "r-1", **fields: object) -> ItemCollected:
    return item_collected(
        item_id, revision=revision, feed_url=FEED.url, source=FEED.name, at=NOW, **fields
    )


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


def test_the_same_article_in_the_same_words_from_another_feed_is_not_published_again() -> None:
    # A revision covers title, summary and link: the same revision is the same article.
    fresh, new, _, seen = classify([item("i-mine", link=LINK)], {}, {"r-1": OTHER_FEED})

    assert (fresh, new, seen) == ([], 0, 1)


def test_the_same_link_in_other_words_from_another_feed_is_an_item_of_its_own() -> None:
    # A station whose every item links to its home page: not an edit of another feed's item.
    fresh, new, updated, _ = classify([item("i-mine", "r-2", link=LINK)], {}, {"r-1": OTHER_FEED})

    assert [(i.item_id, i.revises) for i in fresh] == [("i-mine", None)]
    assert (new, updated) == (1, 0)


def test_two_feeds_naming_the_same_article_by_their_own_guids_publish_it_twice() -> None:
    # Two outlets carrying one wire story are two sources; the escalation counts both.
    fresh, _, _, _ = classify([item("i-mine", guid="mine-1", link=LINK)], {}, {"r-1": OTHER_FEED})

    assert [i.item_id for i in fresh] == ["i-mine"]


def test_without_a_link_the_same_words_in_two_feeds_are_two_items() -> None:
    # "Live updates" from two outlets are two items.
    fresh, new, _, _ = classify([item("i-mine")], {}, {"r-1": OTHER_FEED})

    assert [i.item_id for i in fresh] == ["i-mine"]
    assert new == 1


def decide_document(state: FeedState, document: bytes) -> PollDecision:
    parsed = parse_feed(document, FEED, NOW)
    polled = feed_polled(
        FEED.name, "ok", NOW, feed_url=FEED.url, items_total=len(parsed.items),
        parse_warning=parsed.warning,
    )  # fmt: skip
    return decided(state, PollOutcome(polled, parsed.items, None))


def test_entries_sharing_a_guid_are_each_published_once_with_a_warning() -> None:
    episodes = [("ep", f"Episode {n}", f"Show notes {n}") for n in (1, 2, 3)]
    state = FeedState(feed_url=FEED.url)

    first = decide_document(state, rss(*episodes))
    again = decide_document(first.state, rss(*episodes[::-1]))
    more = decide_document(again.state, rss(("ep", "Episode 4", "Show notes 4"), *episodes))

    assert sorted(i.title for i in first.items) == ["Episode 1", "Episode 2", "Episode 3"]
    assert len({i.item_id for i in first.items}) == 3
    assert first.polled.parse_warning is not None
    assert "3 entries share a guid or link" in first.polled.parse_warning
    assert (again.items, again.polled.items_seen) == ((), 3)
    assert [i.title for i in more.items] == ["Episode 4"]
    assert (more.polled.items_new, more.polled.items_seen) == (1, 3)


def test_an_item_whose_guid_another_entry_starts_sharing_is_not_published_again() -> None:
    before = decide_document(FeedState(feed_url=FEED.url), rss(("g", "First story", "a")))

    after = decide_document(
        before.state, rss(("g", "Second story", "b"), ("g", "First story", "a"))
    )

    assert [i.title for i in after.items] == ["Second story"]
    assert after.items[0].revises is None
    assert after.polled.items_seen == 1


def test_an_entry_re_served_unchanged_is_seen_and_an_edited_one_is_an_update() -> None:
    first = decide_document(FeedState(feed_url=FEED.url), rss(("g", "Title", "first")))
    (published,) = first.items

    unchanged = decide_document(first.state, rss(("g", "Title", "first")))
    edited = decide_document(first.state, rss(("g", "Title", "corrected")))

    assert (unchanged.items, unchanged.polled.items_seen) == ((), 1)
    (revised,) = edited.items
    assert (revised.item_id, revised.summary) == (published.item_id, "corrected")
    assert revised.revises == published.revision
    assert edited.polled.items_updated == 1


def test_an_item_remembered_under_its_id_from_before_feed_scoping_is_not_republished() -> None:
    current = item("i-scoped", link=LINK)
    remembered = {legacy_link_id(LINK): current.revision}

    fresh, new, _, seen = classify([current], remembered, {})
    decision = decided(FeedState(feed_url=FEED.url, published=remembered), outcome(current))

    assert (fresh, new, seen) == ([], 0, 1)
    # Still in use: kept however full the memory gets.
    assert legacy_link_id(LINK) in decision.state.published


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
    index = {"r-1": OTHER_FEED}

    previous = reserve(index, [item("i-a", "r-2"), item("i-b")])
    assert index == {"r-1": OTHER_FEED, "r-2": FEED.url}

    release(index, previous)
    assert index == {"r-1": OTHER_FEED}


def test_the_index_says_which_feed_published_each_revision() -> None:
    states = [
        FeedState(feed_url=FEED.url, published={"i-a": "r-1"}),
        FeedState(feed_url="https://OTHER.example:443/rss", published={"i-b": "r-2"}),
    ]

    assert published_revisions(states) == {"r-1": FEED.url, "r-2": OTHER_FEED}


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
