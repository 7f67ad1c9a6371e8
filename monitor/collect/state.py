"""What a collector remembers about each feed, and the pure decisions a poll leads to.

The memory is durable: one record per feed on the compacted topic
`collector.state` (see docs/collectors.md for why there and not in a file).
A poll's decision (which items to publish, the FeedPolled fact, the next
poll, a FeedStale notice) is a pure function of the feed, its remembered
state, the poll's outcome and the time.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, Field

from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import CacheValidators
from monitor.collect.identity import former_ids, normalise_url
from monitor.collect.poll import PollOutcome
from monitor.collect.schedule import NextPoll, SchedulePolicy, next_poll
from schemas import Event, FeedPolled, FeedStale, ItemCollected

# Item ids remembered per feed. Ids still in the feed are never forgotten; ids
# beyond this that left the feed are, oldest first. A feed that re-serves an id
# it dropped longer ago than this many newer items would have it published again.
DEFAULT_REMEMBERED_ITEMS = 2_000


def state_key(feed_url: str) -> str:
    """The record key: cosmetic URL differences do not make a new feed."""
    return normalise_url(feed_url)


class FeedState(Event):
    """One feed's memory. Topic `collector.state`, key: the feed's normalised URL.

    Internal to the collector (no exported contract): frozen, unknown fields
    ignored, so that a newer collector's records still read.
    """

    schema_version: Literal[1] = 1
    feed_url: str
    # item id → revision published, oldest first.
    published: dict[str, str] = Field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    watching_since: AwareDatetime | None = None
    last_polled_at: AwareDatetime | None = None
    last_status: Literal["ok", "not_modified", "error"] | None = None
    last_error: str | None = None
    last_new_at: AwareDatetime | None = None
    failures: int = 0
    not_before: AwareDatetime | None = None
    next_poll_at: AwareDatetime | None = None
    stale_reported_at: AwareDatetime | None = None

    @property
    def validators(self) -> CacheValidators | None:
        validators = CacheValidators(self.etag, self.last_modified)
        return validators if validators else None

    def durable_part(self) -> tuple[object, ...]:
        """What must survive a restart; a poll that changes none of it is not written."""
        return (
            self.published,
            self.etag,
            self.last_modified,
            self.watching_since,
            self.last_status,
            self.last_new_at,
            self.failures,
            self.not_before,
            self.stale_reported_at,
        )


@dataclass(frozen=True)
class PollDecision:
    """What one poll leads to: publish these items, then these health facts and this state."""

    feed: FeedSpec
    items: tuple[ItemCollected, ...]
    polled: FeedPolled
    state: FeedState
    stale: FeedStale | None = None


def classify(
    items: Iterable[ItemCollected], remembered: Mapping[str, str], elsewhere: Mapping[str, str]
) -> tuple[list[ItemCollected], int, int, int]:
    """(to publish, new, updated, seen) for one feed's items.

    An id never published is new, a known id with another revision is updated,
    the same id and revision is seen. Seen too: the same item under an id it had
    before (`former_ids`), and a guid-less item another feed published with the
    same link in the same words (`elsewhere`: revision → key of the feed that
    published it; a revision covers title, summary and link), which is one
    article syndicated twice. The same link in other words is this feed's own
    item, never an update of the other feed's.
    """
    fresh: dict[str, ItemCollected] = {}
    new = updated = seen = 0
    for item in items:
        if item.item_id in fresh:
            seen += 1  # the same item twice in one document
            continue
        known = remembered.get(item.item_id)
        if known == item.revision or _seen_before(item, remembered, elsewhere):
            seen += 1
        elif known is None:
            new += 1
            fresh[item.item_id] = item
        else:
            updated += 1
            # Said on the item, so that the escalator can take back an edit that
            # made a counted item irrelevant.
            fresh[item.item_id] = item.model_copy(update={"revises": known})
    return list(fresh.values()), new, updated, seen


def _seen_before(
    item: ItemCollected, remembered: Mapping[str, str], elsewhere: Mapping[str, str]
) -> bool:
    if any(remembered.get(former) == item.revision for former in former_ids(item)):
        return True
    if (item.guid or "").strip() or not item.link:
        # A guid is the feed's own name for its item: two outlets carrying one wire
        # story are two sources. Without a link, the same words are two items too.
        return False
    published_by = elsewhere.get(item.revision)
    return published_by is not None and published_by != state_key(item.feed_url)


def remember(
    published: Mapping[str, str],
    items: Iterable[ItemCollected],
    in_document: set[str],
    cap: int = DEFAULT_REMEMBERED_ITEMS,
) -> dict[str, str]:
    """`published` with `items` added; beyond `cap`, forget the oldest ids no longer served."""
    merged = dict(published)
    for item in items:
        merged.pop(item.item_id, None)  # an update moves to the end: it is recent again
        merged[item.item_id] = item.revision
    excess = len(merged) - cap
    if excess > 0:
        for item_id in [key for key in merged if key not in in_document][:excess]:
            del merged[item_id]
    return merged


def stale_notice(
    feed: FeedSpec, state: FeedState, now: datetime, expected: timedelta
) -> FeedStale | None:
    """A FeedStale when nothing new came from `feed` for longer than `expected`.

    Raised once per `expected` of silence, not on every poll; new items end the silence.
    """
    since = state.last_new_at or state.watching_since
    if since is None:
        return None
    silent = now - since
    if silent <= expected:
        return None
    reported = state.stale_reported_at
    if reported is not None and reported >= since and now - reported < expected:
        return None
    return FeedStale(
        feed_url=feed.url,
        source=feed.name,
        source_lang=feed.lang,
        source_country=feed.country,
        source_kind=feed.kind,
        silent_since=since,
        silent_for_s=silent.total_seconds(),
        expected_within_s=expected.total_seconds(),
        last_status=state.last_status,
        last_error=state.last_error,
        consecutive_failures=state.failures,
        detected_at=now,
    )


def decide(
    feed: FeedSpec,
    state: FeedState,
    outcome: PollOutcome,
    elsewhere: Mapping[str, str],
    *,
    now: datetime,
    schedule: SchedulePolicy,
    stale_after: timedelta,
    rng: random.Random,
    remembered_items: int = DEFAULT_REMEMBERED_ITEMS,
) -> PollDecision:
    """Everything a poll leads to, from what was known before it; pure."""
    polled = outcome.polled
    to_publish, new, updated, seen = classify(outcome.items, state.published, elsewhere)
    following: NextPoll = next_poll(
        schedule,
        now,
        polled.status,
        failures_before=state.failures,
        rng=rng,
        retry_after=outcome.retry_after_s,
        max_age=outcome.max_age_s,
        ttl=outcome.ttl_s,
    )
    validators = outcome.validators
    published = state.published
    if to_publish or polled.status == "ok":
        in_document = {item.item_id for item in outcome.items}
        # An item remembered under a former id still uses it: never forgotten either.
        in_document.update(
            former
            for item in outcome.items
            if item.item_id not in state.published
            for former in former_ids(item)
        )
        published = remember(state.published, to_publish, in_document, remembered_items)
    after = state.model_copy(
        update={
            "published": published,
            "etag": validators.etag if validators else None,
            "last_modified": validators.last_modified if validators else None,
            "watching_since": state.watching_since or polled.polled_at,
            "last_polled_at": polled.polled_at,
            "last_status": polled.status,
            "last_error": polled.error,
            "last_new_at": polled.polled_at if to_publish else state.last_new_at,
            "failures": following.failures,
            "not_before": following.not_before,
            "next_poll_at": following.at,
        }
    )
    stale = stale_notice(feed, after, now, stale_after)
    if stale is not None:
        after = after.model_copy(update={"stale_reported_at": now})
    report = polled.model_copy(
        update={
            "items_new": new,
            "items_updated": updated,
            "items_seen": seen,
            "next_poll_at": following.at,
        }
    )
    return PollDecision(feed, tuple(to_publish), report, after, stale)


def published_revisions(states: Iterable[FeedState]) -> dict[str, str]:
    """revision → the key of a feed that published it: what `classify` calls `elsewhere`."""
    index: dict[str, str] = {}
    for state in states:
        key = state_key(state.feed_url)
        for revision in state.published.values():
            index.setdefault(revision, key)
    return index


def reserve(
    index: MutableMapping[str, str], items: Iterable[ItemCollected]
) -> dict[str, str | None]:
    """Mark `items` as published in `index` now (so a concurrent poll of another feed
    does not publish them too); returns what to restore if publishing fails."""
    previous: dict[str, str | None] = {}
    for item in items:
        previous.setdefault(item.revision, index.get(item.revision))
        index.setdefault(item.revision, state_key(item.feed_url))
    return previous


def release(index: MutableMapping[str, str], previous: Mapping[str, str | None]) -> None:
    for revision, feed in previous.items():
        if feed is None:
            index.pop(revision, None)
        else:
            index[revision] = feed


def latest_states(records: Iterable[tuple[bytes | None, bytes]]) -> dict[str, FeedState]:
    """The last readable record per key, as compaction would leave it (Tansu does not compact)."""
    states: dict[str, FeedState] = {}
    for key, value in records:
        if key is None:
            continue
        if not value:
            states.pop(key.decode("utf-8", "replace"), None)  # a tombstone: forget the feed
            continue
        try:
            state = FeedState.model_validate_json(value)
        except ValueError:
            continue  # a record this version cannot read is skipped, not fatal
        states[key.decode("utf-8", "replace")] = state
    return states
