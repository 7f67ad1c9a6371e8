"""The collector: polls feeds on their schedule, publishes what is new, reports every poll.

Only this module talks to Kafka; fetching, parsing and the decisions (state.py)
live beside it and know nothing of the broker. Per poll, in this order:

1. the new and updated items go to `news.items`, and the broker acknowledges them;
2. then the FeedPolled (and any FeedStale) goes to `feeds.health` and the feed's
   memory to `collector.state`.

A crash between 1 and 2 makes the next collector publish those items again
(downstream absorbs a repeated id and revision); it never loses one, since the
memory never runs ahead of what the broker acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
from aiokafka import AIOKafkaProducer

from monitor.clock import Clock
from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import DEFAULT_USER_AGENT, FetchLimits
from monitor.collect.guard import NetworkPolicy, parse_networks
from monitor.collect.poll import PollOutcome, poll_feed
from monitor.collect.schedule import SchedulePolicy
from monitor.collect.state import (
    DEFAULT_REMEMBERED_ITEMS,
    FeedState,
    PollDecision,
    decide,
    latest_states,
    published_revisions,
    release,
    reserve,
    stale_notice,
    state_key,
)
from monitor.config import Settings
from monitor.kafka import publish, read_topic
from monitor.records import Outgoing
from monitor.topics import COLLECTOR_STATE, FEEDS_HEALTH, NEWS_ITEMS
from schemas import ClockTicked, Event, FeedPolled, FeedStale, ItemCollected, encode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectorOptions:
    """Everything that shapes how the collector polls, from the settings."""

    limits: FetchLimits = field(default_factory=FetchLimits)
    schedule: SchedulePolicy = field(default_factory=SchedulePolicy)
    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    per_host: int = 2
    concurrency: int = 32
    max_items: int = 500
    stale_after: timedelta = timedelta(hours=24)
    remembered_items: int = DEFAULT_REMEMBERED_ITEMS
    tick_every: timedelta = timedelta(minutes=5)

    @classmethod
    def from_settings(cls, settings: Settings) -> CollectorOptions:
        return cls(
            limits=FetchLimits(
                total_timeout_s=settings.fetch_timeout_s,
                connect_timeout_s=min(10.0, settings.fetch_timeout_s),
                max_body_bytes=settings.max_feed_bytes,
                max_redirects=settings.max_redirects,
                user_agent=settings.user_agent or DEFAULT_USER_AGENT,
            ),
            schedule=SchedulePolicy(interval_s=settings.poll_interval_s),
            policy=NetworkPolicy(parse_networks(settings.allow_networks)),
            per_host=settings.per_host_concurrency,
            concurrency=settings.fetch_concurrency,
            max_items=settings.max_items_per_feed,
            stale_after=timedelta(seconds=settings.stale_after_silence_s),
            remembered_items=max(DEFAULT_REMEMBERED_ITEMS, 2 * settings.max_items_per_feed),
            tick_every=timedelta(seconds=settings.tick_interval_s),
        )

    def stale_after_for(self, feed: FeedSpec) -> timedelta:
        if feed.stale_after_hours is not None:
            return timedelta(hours=feed.stale_after_hours)
        return self.stale_after


@dataclass(frozen=True)
class RoundReport:
    """What a `--once` run (or, in the loop, one interval) did."""

    polls: tuple[FeedPolled, ...]
    published: tuple[ItemCollected, ...]
    stale: tuple[FeedStale, ...] = ()
    # Feeds not polled because their server asked to wait longer (Retry-After).
    deferred: tuple[str, ...] = ()

    @property
    def feeds_ok(self) -> int:
        return sum(1 for p in self.polls if p.status != "error")

    @property
    def feeds_failed(self) -> int:
        return sum(1 for p in self.polls if p.status == "error")

    @property
    def items_updated(self) -> int:
        return sum(p.items_updated for p in self.polls)


async def load_states(settings: Settings) -> dict[str, FeedState]:
    """Every feed's memory from `collector.state`: the last record per key."""
    records = [(record.key, record.value) async for record in read_topic(settings, COLLECTOR_STATE)]
    return latest_states(records)


def _host(feed: FeedSpec) -> str:
    return (urlsplit(feed.url).hostname or "").lower()


@dataclass
class _Pending:
    decision: PollDecision
    reserved: dict[str, str | None]


class Collector:
    """Polls `feeds` through `session` and publishes through `producer`.

    `states` is the memory restored from `collector.state` (see `load_states`);
    the collector keeps it current and writes every change back.
    """

    def __init__(
        self,
        feeds: Sequence[FeedSpec],
        producer: AIOKafkaProducer,
        session: aiohttp.ClientSession,
        options: CollectorOptions,
        clock: Clock,
        *,
        states: dict[str, FeedState] | None = None,
        rng: random.Random | None = None,
        on_poll: Callable[[FeedPolled], None] | None = None,
        on_stale: Callable[[FeedStale], None] | None = None,
        on_write_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.feeds = tuple(feeds)
        self.producer = producer
        self.session = session
        self.options = options
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_poll = on_poll
        self.on_stale = on_stale
        # Told "poll" or "tick" when the broker refused a write (metrics, alerting).
        self.on_write_failure = on_write_failure
        self.states: dict[str, FeedState] = dict(states or {})
        # Durable parts as last written, so an unchanged memory is not written again.
        self._written = {key: state.durable_part() for key, state in self.states.items()}
        # revision → the feed that published it: the same article in the same words
        # from two feeds is one item.
        self.index: dict[str, str] = published_revisions(self.states.values())
        self._everywhere = asyncio.Semaphore(max(1, options.concurrency))
        self._per_host: dict[str, asyncio.Semaphore] = {}

    def state_of(self, feed: FeedSpec) -> FeedState:
        return self.states.get(state_key(feed.url)) or FeedState(feed_url=feed.url)

    def _host_slot(self, feed: FeedSpec) -> asyncio.Semaphore:
        host = _host(feed)
        if host not in self._per_host:
            self._per_host[host] = asyncio.Semaphore(max(1, self.options.per_host))
        return self._per_host[host]

    async def _poll(self, feed: FeedSpec) -> _Pending:
        """Fetch and parse one feed within the limits, then decide (and reserve its items)."""
        state = self.state_of(feed)
        async with self._everywhere, self._host_slot(feed):
            outcome: PollOutcome = await poll_feed(
                self.session,
                feed,
                self.options.limits,
                self.clock,
                state.validators,
                max_items=self.options.max_items,
            )
        decision = decide(
            feed,
            state,
            outcome,
            self.index,
            now=self.clock(),
            schedule=self.options.schedule,
            stale_after=self.options.stale_after_for(feed),
            rng=self.rng,
            remembered_items=self.options.remembered_items,
        )
        # No await between deciding and reserving: no other poll can slip in between.
        return _Pending(decision, reserve(self.index, decision.items))

    async def _commit(self, pending: Sequence[_Pending]) -> tuple[ItemCollected, ...]:
        """Publish the items, then health and memory; the memory moves only once items are acked."""
        # Oldest first: downstream sees a batch's history in the order it happened.
        items = sorted(
            (item for p in pending for item in p.decision.items),
            key=lambda item: (item.event_time, item.item_id),
        )
        try:
            await publish(self.producer, _items_out(items))
        except BaseException:
            for p in reversed(pending):
                release(self.index, p.reserved)
            raise
        for p in pending:
            self.states[state_key(p.decision.feed.url)] = p.decision.state
        health: list[Event] = [p.decision.polled for p in pending]
        health += [p.decision.stale for p in pending if p.decision.stale is not None]
        await self._write(health, [p.decision.state for p in pending])
        for p in pending:
            self._announce(p.decision.polled, p.decision.stale)
        return tuple(items)

    async def _write(self, health: Sequence[Event], states: Iterable[FeedState]) -> None:
        outgoing = [Outgoing.of(FEEDS_HEALTH, _feed_url(event), event) for event in health]
        changed: dict[str, FeedState] = {}
        for state in states:
            key = state_key(state.feed_url)
            if self._written.get(key) != state.durable_part():
                changed[key] = state
        outgoing += [Outgoing.of(COLLECTOR_STATE, key, state) for key, state in changed.items()]
        await publish(self.producer, outgoing)
        for key, state in changed.items():
            self._written[key] = state.durable_part()

    def _write_failed(self, what: str) -> None:
        if self.on_write_failure is not None:
            self.on_write_failure(what)

    def _announce(self, polled: FeedPolled, stale: FeedStale | None) -> None:
        if polled.status == "error":
            log.warning("feed %s: %s", polled.feed_url, polled.error)
        if self.on_poll is not None:
            self.on_poll(polled)
        if stale is not None:
            log.warning("feed %s stale: nothing new for %.0f s", stale.feed_url, stale.silent_for_s)
            if self.on_stale is not None:
                self.on_stale(stale)

    async def sweep_stale(self, feeds: Iterable[FeedSpec]) -> tuple[FeedStale, ...]:
        """FeedStale for feeds silent too long that no poll is about to report (deferred ones)."""
        now = self.clock()
        notices: list[FeedStale] = []
        states: list[FeedState] = []
        for feed in feeds:
            state = self.state_of(feed)
            notice = stale_notice(feed, state, now, self.options.stale_after_for(feed))
            if notice is not None:
                notices.append(notice)
                states.append(state.model_copy(update={"stale_reported_at": now}))
        if notices:
            await self._write(notices, states)
            for state in states:
                self.states[state_key(state.feed_url)] = state
            for notice in notices:
                if self.on_stale is not None:
                    self.on_stale(notice)
        return tuple(notices)

    async def tick(self) -> ClockTicked:
        """Record on every partition of news.items that time has passed (see ClockTicked).

        After the items of a round, so a tick never precedes what was collected before it.
        """
        tick = ClockTicked(at=self.clock())
        partitions = sorted(await self.producer.partitions_for(NEWS_ITEMS.name))
        value = encode(tick)
        sent = [
            await self.producer.send(NEWS_ITEMS.name, key=b"clock", value=value, partition=p)
            for p in partitions
        ]
        await asyncio.gather(*sent)
        return tick

    async def run_once(self) -> RoundReport:
        """Poll every feed once (except those whose server asked to wait), publish, report."""
        now = self.clock()
        due: list[FeedSpec] = []
        deferred: list[FeedSpec] = []
        for feed in self.feeds:
            not_before = self.state_of(feed).not_before
            (deferred if not_before is not None and not_before > now else due).append(feed)
        pending = await asyncio.gather(*(self._poll(feed) for feed in due))
        published = await self._commit(pending)
        stale = [p.decision.stale for p in pending if p.decision.stale is not None]
        stale += await self.sweep_stale(deferred)
        await self.tick()
        return RoundReport(
            polls=tuple(p.decision.polled for p in pending),
            published=published,
            stale=tuple(stale),
            deferred=tuple(feed.url for feed in deferred),
        )

    async def run(
        self,
        stop: asyncio.Event,
        on_round: Callable[[RoundReport], None] | None = None,
        report_every_s: float | None = None,
    ) -> None:
        """Poll each feed whenever it is due until `stop` is set.

        Each feed has its own next-poll time (spread over the interval at start,
        then moved by jitter, Retry-After, max-age, TTL and backoff); one slow
        or failing feed holds up only itself and, within the per-host limit, its host.
        """
        now = self.clock()
        report_every = timedelta(seconds=report_every_s or self.options.schedule.interval_s)
        queue: list[tuple[datetime, int]] = []
        for index, feed in enumerate(self.feeds):
            at = self.options.schedule.first_poll(now, self.rng)
            not_before = self.state_of(feed).not_before
            if not_before is not None and not_before > at:
                at = not_before
            queue.append((at, index))
        heapq.heapify(queue)
        wake = asyncio.Event()
        running: set[asyncio.Task[None]] = set()
        polls: list[FeedPolled] = []
        published: list[ItemCollected] = []
        stale: list[FeedStale] = []
        next_report = now + report_every
        next_sweep = now + min(report_every, timedelta(seconds=60))
        next_tick = now

        async def poll_and_reschedule(index: int) -> None:
            feed = self.feeds[index]
            try:
                pending = await self._poll(feed)
                published.extend(await self._commit([pending]))
                polls.append(pending.decision.polled)
                if pending.decision.stale is not None:
                    stale.append(pending.decision.stale)
                at = pending.decision.state.next_poll_at or self.clock()
            except Exception:
                # The broker refused or went away: keep the feed's memory as it was
                # and try again next interval rather than stop every feed.
                log.exception("feed %s: poll not recorded", feed.url)
                self._write_failed("poll")
                at = self.clock() + timedelta(seconds=self.options.schedule.interval_s)
            heapq.heappush(queue, (at, index))
            wake.set()

        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                now = self.clock()
                while queue and queue[0][0] <= now:
                    _, index = heapq.heappop(queue)
                    task = asyncio.create_task(poll_and_reschedule(index))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if now >= next_sweep:
                    # Feeds waiting in the queue, not those being polled right now.
                    waiting = sorted({i for _, i in queue})
                    stale.extend(await self.sweep_stale(self.feeds[i] for i in waiting))
                    next_sweep = now + min(report_every, timedelta(seconds=60))
                if now >= next_tick:
                    try:
                        await self.tick()
                    except Exception:
                        # Time is recorded again at the next tick: a missed one only
                        # delays a falling level, and the broker may be back by then.
                        log.exception("clock tick not recorded")
                        self._write_failed("tick")
                    next_tick = now + self.options.tick_every
                if now >= next_report:
                    if on_round is not None:
                        on_round(RoundReport(tuple(polls), tuple(published), tuple(stale)))
                    polls, published, stale = [], [], []
                    next_report = now + report_every
                deadline = min(
                    [next_report, next_sweep, next_tick] + ([queue[0][0]] if queue else [])
                )
                wake.clear()
                waking = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait(
                        {waking, stopping},
                        timeout=max(0.0, (deadline - self.clock()).total_seconds()),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waking.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waking
        finally:
            stopping.cancel()
            for task in list(running):
                task.cancel()
            await asyncio.gather(stopping, *running, return_exceptions=True)


def _items_out(items: Iterable[ItemCollected]) -> list[Outgoing]:
    return [Outgoing.of(NEWS_ITEMS, item.item_id, item) for item in items]


def _feed_url(event: Event) -> str:
    url = getattr(event, "feed_url", "")
    return url if isinstance(url, str) else ""
