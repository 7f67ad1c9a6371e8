"""Collector rounds: poll every feed, publish what is new, report each poll's outcome.

Only this module talks to Kafka; fetching and parsing live beside it and
know nothing of the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import aiohttp
from aiokafka import AIOKafkaProducer

from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import CacheValidators, FetchLimits
from monitor.collect.poll import PollOutcome, poll_feed
from monitor.kafka import publish
from monitor.records import Clock, Outgoing
from monitor.topics import FEEDS_HEALTH, NEWS_ITEMS
from schemas import FeedPolled, ItemCollected

log = logging.getLogger(__name__)


@dataclass
class CollectorMemory:
    """What a collector remembers between rounds: revisions published, cache validators.

    In memory for now: a restarted collector republishes what it sees once,
    which downstream tolerates (same id and revision → no second count).
    """

    published: dict[str, str] = field(default_factory=dict)  # item_id → revision
    validators: dict[str, CacheValidators] = field(default_factory=dict)


@dataclass(frozen=True)
class RoundReport:
    polls: tuple[FeedPolled, ...]
    published: tuple[ItemCollected, ...]

    @property
    def feeds_ok(self) -> int:
        return sum(1 for p in self.polls if p.status != "error")

    @property
    def feeds_failed(self) -> int:
        return sum(1 for p in self.polls if p.status == "error")


def select_new(
    items: Iterable[ItemCollected], published: dict[str, str]
) -> tuple[list[ItemCollected], int]:
    """Items whose id or revision has not been published yet, and how many were seen before."""
    fresh: dict[str, ItemCollected] = {}
    seen = 0
    for item in items:
        if published.get(item.item_id) == item.revision or item.item_id in fresh:
            seen += 1
        else:
            fresh[item.item_id] = item
    return list(fresh.values()), seen


def plan_round(
    outcomes: Sequence[PollOutcome], memory: CollectorMemory
) -> tuple[list[ItemCollected], list[FeedPolled]]:
    """Decide what a round publishes; pure apart from reading `memory`."""
    to_publish: dict[str, ItemCollected] = {}
    polls: list[FeedPolled] = []
    for outcome in outcomes:
        fresh, seen = select_new(outcome.items, memory.published)
        # The same story syndicated by two feeds under one link is one item.
        fresh = [item for item in fresh if item.item_id not in to_publish]
        to_publish.update((item.item_id, item) for item in fresh)
        polls.append(
            outcome.polled.model_copy(update={"items_new": len(fresh), "items_seen": seen})
        )
    # Oldest first: downstream sees a round's history in the order it happened.
    ordered = sorted(to_publish.values(), key=lambda item: (item.event_time, item.item_id))
    return ordered, polls


async def collect_round(
    feeds: Sequence[FeedSpec],
    session: aiohttp.ClientSession,
    producer: AIOKafkaProducer,
    memory: CollectorMemory,
    limits: FetchLimits,
    clock: Clock,
    on_poll: Callable[[FeedPolled], None] | None = None,
) -> RoundReport:
    outcomes = await asyncio.gather(
        *(
            poll_feed(session, feed, limits, clock, memory.validators.get(feed.url))
            for feed in feeds
        )
    )
    for feed, outcome in zip(feeds, outcomes, strict=True):
        if outcome.validators is not None:
            memory.validators[feed.url] = outcome.validators
    items, polls = plan_round(outcomes, memory)
    outgoing = [Outgoing.of(NEWS_ITEMS, item.item_id, item) for item in items]
    outgoing += [Outgoing.of(FEEDS_HEALTH, poll.feed_url, poll) for poll in polls]
    await publish(producer, outgoing)
    # Remember only after the broker acknowledged, so a failed send is retried next round.
    for item in items:
        memory.published[item.item_id] = item.revision
    for poll in polls:
        if on_poll is not None:
            on_poll(poll)
        if poll.status == "error":
            log.warning("feed %s: %s", poll.feed_url, poll.error)
    return RoundReport(tuple(polls), tuple(items))
