"""Backtest: the live pipeline's pure functions over a log, without a broker.

`fold_log` takes the records of news.items in log order (items and clock
ticks) and does what the worker does with each: tag it, send what the
escalator reads (relevant items, edits of counted items, ticks) through
`escalate`. `backtest` does it for an archive, in event-time order (ties by
item id), exactly as `monitor ingest` publishes it; the escalator, reading
them in that order, raises the same notices, id for id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from monitor.escalation.agent import reaches_escalator
from monitor.escalation.escalate import breakdown_at, escalate
from monitor.escalation.scoring import ScoringConfig, index_of
from monitor.escalation.state import DyadState
from monitor.records import Origin
from monitor.tagging.agent import tagged_item
from monitor.tagging.rules import Rules
from schemas import (
    DYAD_AZ_RU,
    LEVELS,
    ClockTicked,
    EscalationNotice,
    ItemCollected,
    ItemTagged,
    Level,
)

# The timeline keeps at most one point per hour of event time (and every notice),
# and one a day through a quiet spell, so that decay draws as decay.
SAMPLE_EVERY = timedelta(hours=1)
SAMPLE_QUIET_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class TimelinePoint:
    time: datetime
    index: float
    level: Level


@dataclass(frozen=True)
class Episode:
    """From the first escalatory item after a calm spell to the return to calm."""

    first_item_time: datetime
    first_item: str
    raised_at: datetime
    peak: Level
    calm_again_at: datetime | None

    @property
    def delay(self) -> timedelta:
        return self.raised_at - self.first_item_time


@dataclass(frozen=True)
class BacktestResult:
    tagged: tuple[ItemTagged, ...]
    notices: tuple[EscalationNotice, ...]
    timeline: tuple[TimelinePoint, ...]
    state: DyadState
    scoring: ScoringConfig
    # item id → the story it joined when it was folded in (relevant items only).
    story_of: dict[str, str] = field(default_factory=dict)

    @property
    def relevant(self) -> int:
        return sum(1 for item in self.tagged if item.relevant)

    def notices_per_month(self) -> dict[str, Counter[str]]:
        months: dict[str, Counter[str]] = {}
        for notice in self.notices:
            label = notice.kind if notice.kind == "burst" else f"{notice.kind} {notice.level}"
            months.setdefault(f"{notice.event_time:%Y-%m}", Counter())[label] += 1
        return dict(sorted(months.items()))

    def episodes(self, lookback: timedelta = timedelta(days=7)) -> list[Episode]:
        escalatory = sorted(
            (
                item
                for item in self.tagged
                if item.relevant and any(self.scoring.weights.get(s, 0) > 0 for s in item.signals)
            ),
            key=lambda item: (item.event_time, item.item_id),
        )
        episodes: list[Episode] = []
        calm_since: datetime | None = None
        current: Episode | None = None
        for notice in self.notices:
            if notice.kind == "raised" and notice.previous_level == "calm":
                # The episode began after the last return to calm, at most `lookback` ago.
                since = notice.event_time - lookback
                if calm_since is not None:
                    since = max(since, calm_since)
                first = next(
                    (i for i in escalatory if since < i.event_time <= notice.event_time), None
                )
                current = Episode(
                    first_item_time=first.event_time if first else notice.event_time,
                    first_item=first.title if first else notice.trigger_item_id,
                    raised_at=notice.event_time,
                    peak=notice.level,
                    calm_again_at=None,
                )
            elif current is not None and notice.kind == "raised":
                if LEVELS.index(notice.level) > LEVELS.index(current.peak):
                    current = replace(current, peak=notice.level)
            elif current is not None and notice.kind == "lowered" and notice.level == "calm":
                episodes.append(replace(current, calm_again_at=notice.event_time))
                current = None
                calm_since = notice.event_time
        if current is not None:
            episodes.append(current)
        return episodes


def fold_log(
    records: Iterable[ItemCollected | ClockTicked],
    rules: Rules,
    scoring: ScoringConfig,
    *,
    dyad: str = DYAD_AZ_RU,
    on_item: Callable[[], None] | None = None,
    origins: Sequence[Origin] | None = None,
) -> BacktestResult:
    """What the worker derives from these records of news.items, read in this order.

    `origins`, when given, are the records' places on news.items: the state then
    records what it applied, as the worker's does.
    """
    state = DyadState(dyad=dyad)
    tagged: list[ItemTagged] = []
    notices: list[EscalationNotice] = []
    timeline: list[TimelinePoint] = []
    story_of: dict[str, str] = {}

    def sample(at: datetime | None) -> None:
        if at is None or (timeline and at - timeline[-1].time < SAMPLE_EVERY):
            return
        index = index_of(breakdown_at(state, at, scoring))
        timeline.append(TimelinePoint(at, index, state.level))

    def sample_quiet_spell(until: datetime) -> None:
        """The index through the days before `until` that no record sampled."""
        if not timeline:
            return
        at = timeline[-1].time + SAMPLE_QUIET_EVERY
        while at < until:
            sample(at)
            at += SAMPLE_QUIET_EVERY

    for position, record in enumerate(records):
        origin = origins[position] if origins is not None else None
        sample_quiet_spell(record.at if isinstance(record, ClockTicked) else record.event_time)
        if isinstance(record, ClockTicked):
            result = escalate(state, record, scoring, origin)
        else:
            item = tagged_item(record, rules)
            tagged.append(item)
            if not reaches_escalator(record, item):
                if on_item is not None:
                    on_item()
                continue
            result = escalate(state, item, scoring, origin)
            joined = result.state.item_story.get(item.item_id)
            if joined is not None:
                story_of[item.item_id] = joined
        state = result.state
        for notice in result.notices:
            notices.append(notice)
            timeline.append(TimelinePoint(notice.event_time, notice.index, notice.level))
        sample(state.clock)
        if on_item is not None:
            on_item()
    return BacktestResult(
        tuple(tagged), tuple(notices), leveled(timeline, notices), state, scoring, story_of
    )


def leveled(
    timeline: list[TimelinePoint], notices: list[EscalationNotice]
) -> tuple[TimelinePoint, ...]:
    """The points in time order, each with the level in force then.

    A fall judged on an hour inside a quiet spell is noticed when the next record
    arrives; the points sampled before that know it from the notice's time.
    """
    changes = sorted((n.event_time, n.level) for n in notices if n.kind != "burst")
    points = []
    level: Level = "calm"
    position = 0
    for point in sorted(timeline, key=lambda p: p.time):
        while position < len(changes) and changes[position][0] <= point.time:
            level = changes[position][1]
            position += 1
        points.append(replace(point, level=level))
    return tuple(points)


def in_log_order(items: Iterable[ItemCollected]) -> list[ItemCollected]:
    """An archive as `monitor ingest` publishes it: oldest first, ties by id."""
    return sorted(items, key=lambda item: (item.event_time, item.item_id))


def backtest(
    items: Iterable[ItemCollected],
    rules: Rules,
    scoring: ScoringConfig,
    *,
    dyad: str = DYAD_AZ_RU,
    on_item: Callable[[], None] | None = None,
) -> BacktestResult:
    """The notices an archive gives once ingested: `fold_log` in ingest order."""
    return fold_log(in_log_order(items), rules, scoring, dyad=dyad, on_item=on_item)
