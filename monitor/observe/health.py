"""The monitor's health, read from the topics: what `monitor status` and the dashboard show.

The summaries are pure functions of the records (and of `now`), so that what
counts as stale or as needing attention is tested without a broker; only
`check_health` talks to Kafka.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from monitor.config import Settings
from monitor.kafka import read_topic, started
from monitor.observe.broker_watch import BrokerMemory, BrokerSeen, cluster_id_of
from monitor.observe.skips import Skips
from monitor.topics import (
    FEEDS_HEALTH,
    NEWS_DEADLETTER,
    TENSION_STATE,
    TopicSpec,
    all_topics,
)
from schemas import (
    LEVELS,
    DeadLetter,
    Event,
    FeedPolled,
    FeedStale,
    Level,
    TensionState,
    decode_feed_health,
)

E = TypeVar("E", bound=Event)

DEFAULTS = Settings()


@dataclass(frozen=True)
class Thresholds:
    """When something needs attention; the defaults are the settings' (monitor/config.py)."""

    # A feed is stale when it has not been read successfully for this long.
    stale_after: timedelta = timedelta(seconds=DEFAULTS.stale_after_unread_s)
    # More records than this waiting for one consumer group.
    max_lag: int = DEFAULTS.max_lag
    # A dyad at this level or above is worth a look.
    alert_level: Level = DEFAULTS.alert_level
    # Dead letters younger than this need a look; older ones were seen already.
    dead_letter_window: timedelta = timedelta(seconds=DEFAULTS.dead_letter_window_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            stale_after=timedelta(seconds=settings.stale_after_unread_s),
            max_lag=settings.max_lag,
            alert_level=settings.alert_level,
            dead_letter_window=timedelta(seconds=settings.dead_letter_window_s),
        )


@dataclass(frozen=True)
class FeedHealth:
    feed_url: str
    source: str
    polls: int
    errors: int
    consecutive_errors: int
    last_poll: datetime
    last_status: str
    last_success: datetime | None
    last_error: str | None
    stale: bool
    # Set when the collector said the feed has gone quiet (FeedStale) and no new
    # item has come since: it answers, but says nothing.
    silent_since: datetime | None = None


@dataclass
class FeedTally:
    """One feed's polls and silences folded as they are read: its health line in
    constant space, however long the history (the dashboard keeps one per feed for
    months). Polls may come in any order; the latest by `polled_at` is the feed's
    state, and an older one that comes late only adds to the counts."""

    feed_url: str
    source: str = ""
    polls: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    last_poll: datetime | None = None
    last_status: str = ""
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_new: datetime | None = None  # the latest poll that brought a new item
    silence: FeedStale | None = None  # the latest the collector reported

    def add_poll(self, poll: FeedPolled) -> None:
        when = poll.polled_at
        failed = poll.status == "error"
        self.polls += 1
        if failed:
            self.errors += 1
            if self.last_error_at is None or when >= self.last_error_at:
                self.last_error, self.last_error_at = poll.error, when
        elif self.last_success is None or when > self.last_success:
            self.last_success = when
        if poll.items_new and (self.last_new is None or when > self.last_new):
            self.last_new = when
        if self.last_poll is None or when >= self.last_poll:
            self.last_poll, self.last_status, self.source = when, poll.status, poll.source
            self.consecutive_errors = self.consecutive_errors + 1 if failed else 0

    def add_silence(self, silence: FeedStale) -> None:
        if self.silence is None or silence.detected_at > self.silence.detected_at:
            self.silence = silence

    def health(self, now: datetime, stale_after: timedelta) -> FeedHealth | None:
        """The feed's health line; None until a poll of it was read."""
        if self.last_poll is None:
            return None
        quiet = self.silence
        silent = quiet is not None and (self.last_new is None or quiet.detected_at > self.last_new)
        return FeedHealth(
            feed_url=self.feed_url,
            source=self.source,
            polls=self.polls,
            errors=self.errors,
            consecutive_errors=self.consecutive_errors,
            last_poll=self.last_poll,
            last_status=self.last_status,
            last_success=self.last_success,
            last_error=self.last_error,
            stale=silent or self.last_success is None or now - self.last_success > stale_after,
            silent_since=quiet.silent_since if quiet is not None and silent else None,
        )


class FeedTallies(dict[str, FeedTally]):
    """A tally per feed URL: the dashboard's (and `monitor status`'s) memory of feeds.health."""

    def add(self, event: FeedPolled | FeedStale) -> None:
        tally = self.get(event.feed_url)
        if tally is None:
            tally = self[event.feed_url] = FeedTally(event.feed_url)
        if isinstance(event, FeedStale):
            tally.add_silence(event)
        else:
            tally.add_poll(event)

    def health(self, now: datetime, stale_after: timedelta) -> list[FeedHealth]:
        """One line per polled feed, stale ones first."""
        lines = [line for tally in self.values() if (line := tally.health(now, stale_after))]
        return sorted(lines, key=lambda f: (not f.stale, f.source.lower()))


def summarize_feeds(
    polls: Iterable[FeedPolled],
    now: datetime,
    stale_after: timedelta,
    silences: Iterable[FeedStale] = (),
) -> list[FeedHealth]:
    """One line of health per feed, from its poll history (in any order).

    A feed is stale when it has not been read successfully within `stale_after`,
    or when the collector reported it silent (FeedStale) after its last new item.
    """
    tallies = FeedTallies()
    for poll in polls:
        tallies.add(poll)
    for silence in silences:
        tallies.add(silence)
    return tallies.health(now, stale_after)


@dataclass(frozen=True)
class DeadLetterSummary:
    total: int = 0
    recent: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)  # "stage: ErrorType" → count
    last_at: datetime | None = None


@dataclass
class DeadLetterTally:
    """Dead letters folded as they are read, in space bounded by the window: totals by
    reason, and the recent ones counted per minute (a minute counts as recent when its
    latest letter is), kept while within `window` of the latest letter."""

    window: timedelta
    total: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    last_at: datetime | None = None
    # minute → (letters in it, the latest of them), in the order the minutes came
    minutes: OrderedDict[datetime, tuple[int, datetime]] = field(default_factory=OrderedDict)

    def add(self, letter: DeadLetter) -> None:
        when = letter.failed_at
        self.total += 1
        self.by_reason[f"{letter.stage}: {letter.error_type}"] += 1
        if self.last_at is None or when > self.last_at:
            self.last_at = when
        assert self.last_at is not None
        horizon = self.last_at - self.window
        if when < horizon:
            return  # recent to no one
        minute = when.replace(second=0, microsecond=0)
        count, latest = self.minutes.get(minute, (0, when))
        self.minutes[minute] = (count + 1, max(latest, when))
        while self.minutes:  # the oldest minutes first; a straggler waits its turn
            _, latest = next(iter(self.minutes.values()))
            if latest >= horizon:
                break
            self.minutes.popitem(last=False)

    def summary(self, now: datetime) -> DeadLetterSummary:
        recent = sum(n for n, at in self.minutes.values() if now - at <= self.window)
        return DeadLetterSummary(
            self.total, recent, dict(self.by_reason.most_common()), self.last_at
        )


def summarize_dead_letters(
    letters: Iterable[DeadLetter], now: datetime, window: timedelta
) -> DeadLetterSummary:
    tally = DeadLetterTally(window)
    for letter in letters:
        tally.add(letter)
    return tally.summary(now)


@dataclass(frozen=True)
class GroupLag:
    """How far one consumer group is behind, per topic (summed over partitions)."""

    group: str
    by_topic: dict[str, int]
    # Records committed past the end of a topic: the broker lost what it had acked.
    ahead: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_topic.values())


def group_lags(
    committed: dict[str, dict[TopicPartition, int]], end_offsets: dict[TopicPartition, int]
) -> list[GroupLag]:
    """Lag of each group on the partitions it has committed offsets for."""
    lags = []
    for group, offsets in sorted(committed.items()):
        by_topic: dict[str, int] = {}
        ahead: dict[str, int] = {}
        for tp, offset in offsets.items():
            if offset < 0 or tp not in end_offsets:
                continue  # the group does not read this partition
            by_topic[tp.topic] = by_topic.get(tp.topic, 0) + max(0, end_offsets[tp] - offset)
            if offset > end_offsets[tp]:
                ahead[tp.topic] = ahead.get(tp.topic, 0) + offset - end_offsets[tp]
        if by_topic:
            lags.append(
                GroupLag(group, dict(sorted(by_topic.items())), dict(sorted(ahead.items())))
            )
    return lags


@dataclass(frozen=True)
class HealthReport:
    checked_at: datetime
    states: tuple[TensionState, ...]
    feeds: tuple[FeedHealth, ...]
    lags: tuple[GroupLag, ...]
    dead_letters: DeadLetterSummary
    records: dict[str, int]  # topic → records kept (end minus beginning offsets)
    thresholds: Thresholds
    broker: BrokerSeen | None = None  # as the data directory remembers it (BrokerMemory)
    # "topic: reason" → records read and not used (see monitor/observe/skips.py)
    skipped: Mapping[str, int] = field(default_factory=dict)

    def attention(self) -> list[str]:
        """Why someone should look, one reason a line; empty when all is well."""
        reasons = []
        alert_rank = LEVELS.index(self.thresholds.alert_level)
        for state in self.states:
            if LEVELS.index(state.level) >= alert_rank:
                reasons.append(f"{state.dyad} is at level {state.level} (index {state.index:.1f})")
        for lag in self.lags:
            if lag.total > self.thresholds.max_lag:
                reasons.append(
                    f"consumer group {lag.group} is {lag.total} records behind"
                    f" (more than {self.thresholds.max_lag})"
                )
        for lag in self.lags:
            for topic, records in lag.ahead.items():
                reasons.append(
                    f"consumer group {lag.group} has committed {records} records past the end"
                    f" of {topic}: the broker lost records it had acknowledged"
                )
        last_reset = self.broker.resets[-1] if self.broker and self.broker.resets else None
        if last_reset and self.checked_at - datetime.fromisoformat(last_reset.at) < (
            self.thresholds.dead_letter_window
        ):
            reasons.append(
                f"the broker came back as another cluster at {last_reset.at[:16]} (was"
                f" {last_reset.was}): what it held before is gone unless its data directory"
                " was kept; restart the roles and replay archives if needed"
            )
        if not self.feeds:
            reasons.append("no feed poll recorded on feeds.health: is a collector running?")
        stale = [feed.source for feed in self.feeds if feed.stale]
        if stale:
            reasons.append(f"{len(stale)} stale feed(s): {', '.join(stale)}")
        if self.dead_letters.recent:
            hours = self.thresholds.dead_letter_window.total_seconds() / 3600
            reasons.append(f"{self.dead_letters.recent} dead letter(s) in the last {hours:g} h")
        return reasons

    def as_json(self) -> dict[str, object]:
        reasons = self.attention()
        return {
            "ok": not reasons,
            "attention": reasons,
            "checked_at": self.checked_at.isoformat(),
            "states": [state.model_dump(mode="json") for state in self.states],
            "consumer_lag": {lag.group: {"total": lag.total, **lag.by_topic} for lag in self.lags},
            "broker": None if self.broker is None else asdict(self.broker),
            "feeds": [
                {
                    "source": f.source,
                    "feed_url": f.feed_url,
                    "stale": f.stale,
                    "last_status": f.last_status,
                    "last_poll": f.last_poll.isoformat(),
                    "last_success": f.last_success.isoformat() if f.last_success else None,
                    "polls": f.polls,
                    "errors": f.errors,
                    "consecutive_errors": f.consecutive_errors,
                    "last_error": f.last_error,
                    "silent_since": f.silent_since.isoformat() if f.silent_since else None,
                }
                for f in self.feeds
            ],
            "dead_letters": {
                "total": self.dead_letters.total,
                "recent": self.dead_letters.recent,
                "by_reason": self.dead_letters.by_reason,
                "last_at": self.dead_letters.last_at.isoformat()
                if self.dead_letters.last_at
                else None,
            },
            "records": self.records,
            "skipped": {"total": sum(self.skipped.values()), "by_reason": dict(self.skipped)},
        }


def latest_per_dyad(states: Iterable[TensionState]) -> tuple[TensionState, ...]:
    """The last state per dyad (what compaction would keep)."""
    latest: dict[str, TensionState] = {}
    for state in states:
        latest[state.dyad] = state
    return tuple(latest[dyad] for dyad in sorted(latest))


async def _each(
    settings: Settings,
    spec: TopicSpec,
    event_type: type[E],
    skips: Skips,
    key_of: Callable[[E], str] | None = None,
) -> AsyncIterator[E]:
    async for record in read_topic(settings, spec):
        event = skips.decode(record, event_type, key_of=key_of)
        if event is not None:
            yield event


def _feed_url(event: FeedPolled | FeedStale) -> str:
    return event.feed_url


async def feed_tallies(settings: Settings, skips: Skips) -> FeedTallies:
    """feeds.health folded per feed (it holds two events, told apart by `event_type`;
    each keyed by its feed)."""
    tallies = FeedTallies()
    async for record in read_topic(settings, FEEDS_HEALTH):
        event = skips.decode_with(record, decode_feed_health, FeedPolled, key_of=_feed_url)
        if event is not None:
            tallies.add(event)
    return tallies


async def topic_offsets(
    settings: Settings, specs: Sequence[TopicSpec]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(beginning, end) offsets of every partition of `specs` that exists."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False
    )
    async with started(consumer):
        await consumer._client.force_metadata_update()  # see every topic, not only cached ones
        partitions = [
            TopicPartition(spec.name, p)
            for spec in specs
            for p in sorted(consumer.partitions_for_topic(spec.name) or ())
        ]
        if not partitions:
            return {}, {}
        beginning = dict(await consumer.beginning_offsets(partitions))
        listed = dict(await consumer.end_offsets(partitions))
        # The embedded broker (Tansu) answers "latest offset" with the end of the
        # last batch's first record, not of the batch (25 records sent in one batch:
        # it says 1). The high watermark of a fetch is right on every broker, so
        # fetch the last batch of each partition and take the larger of the two.
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, max(beginning[tp], listed[tp] - 1))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while any(consumer.highwater(tp) is None for tp in partitions):
            if loop.time() > deadline:
                break
            await consumer.getmany(*partitions, timeout_ms=200, max_records=1)
        end = {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in partitions}
        return beginning, end


async def committed_offsets(
    settings: Settings, partitions: Sequence[TopicPartition]
) -> dict[str, dict[TopicPartition, int]]:
    """Every consumer group's committed offsets on `partitions`.

    The partitions are named explicitly: the embedded broker (Tansu) cannot
    answer the "all partitions of the group" form of OffsetFetch.
    """
    async with started(AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)) as admin:
        groups = sorted({str(group[0]) for group in await admin.list_consumer_groups()})
        found: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group, partitions=list(partitions))
            found[group] = {tp: meta.offset for tp, meta in offsets.items()}
        return found


async def stream_offsets(
    settings: Settings,
) -> tuple[dict[str, int], list[GroupLag]]:
    """Records kept per topic, and the lag of every consumer group."""
    beginning, end = await topic_offsets(settings, all_topics(settings))
    records: dict[str, int] = {}
    for tp, offset in end.items():
        records[tp.topic] = records.get(tp.topic, 0) + offset - beginning.get(tp, 0)
    lags = group_lags(await committed_offsets(settings, sorted(end)), end) if end else []
    return records, lags


async def check_health(
    settings: Settings, now: datetime, thresholds: Thresholds, skips: Skips | None = None
) -> HealthReport:
    """Read the topics and offsets once and summarise them; what cannot be read is
    skipped, logged and counted in the report."""
    skips = skips if skips is not None else Skips("monitor status")
    records, lags = await stream_offsets(settings)
    # Folded as they are read: a year of polls is not held in memory.
    latest: dict[str, TensionState] = {}
    async for state in _each(settings, TENSION_STATE, TensionState, skips, lambda s: s.dyad):
        latest[state.dyad] = state
    feeds = await feed_tallies(settings, skips)
    letters = DeadLetterTally(thresholds.dead_letter_window)
    async for letter in _each(settings, NEWS_DEADLETTER, DeadLetter, skips):
        letters.add(letter)
    memory = BrokerMemory(settings.data_dir)
    memory.remember(settings.bootstrap, await cluster_id_of(settings.bootstrap))
    return HealthReport(
        checked_at=now,
        states=latest_per_dyad(latest.values()),
        feeds=tuple(feeds.health(now, thresholds.stale_after)),
        lags=tuple(lags),
        dead_letters=letters.summary(now),
        records=dict(sorted(records.items())),
        thresholds=thresholds,
        broker=memory.seen(settings.bootstrap),
        skipped=skips.by_reason(),
    )
