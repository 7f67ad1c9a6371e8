"""Backtest: the live pipeline's pure functions over an archive, without a broker.

Items are tagged with the current rules and folded into the dyad's state in
event-time order (ties by item id), exactly as `monitor ingest` publishes
them; the escalator, reading them in that order, raises the same notices,
id for id. Items still within the allowed lateness of the last one stay
pending, as they would live, unless `settle` decides them too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.escalation.scoring import (
    DyadState,
    ScoringConfig,
    breakdown_at,
    escalate,
    index_of,
    settle_all,
)
from monitor.tagging.agent import tagged_item
from monitor.tagging.rules import Rules
from schemas import DYAD_AZ_RU, LEVELS, EscalationNotice, ItemCollected, ItemTagged, Level

# The timeline keeps at most one point per hour of event time (and every notice).
SAMPLE_EVERY = timedelta(hours=1)


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

    @property
    def relevant(self) -> int:
        return sum(1 for item in self.tagged if item.relevant)

    @property
    def pending(self) -> int:
        return len(self.state.pending)

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


def backtest(
    items: Iterable[ItemCollected],
    rules: Rules,
    scoring: ScoringConfig,
    *,
    settle: bool = False,
    dyad: str = DYAD_AZ_RU,
    on_item: Callable[[], None] | None = None,
) -> BacktestResult:
    tagged = [tagged_item(item, rules) for item in items]
    ordered: Sequence[ItemTagged] = sorted(tagged, key=lambda t: (t.event_time, t.item_id))
    state = DyadState(dyad=dyad)
    notices: list[EscalationNotice] = []
    timeline: list[TimelinePoint] = []

    def sample(at: datetime | None, force: bool = False) -> None:
        if at is None or (not force and timeline and at - timeline[-1].time < SAMPLE_EVERY):
            return
        index = index_of(breakdown_at(state.stories.values(), at, scoring))
        timeline.append(TimelinePoint(at, index, state.level))

    for item in ordered:
        result = escalate(state, item, scoring)
        state = result.state
        for notice in result.notices:
            notices.append(notice)
            timeline.append(TimelinePoint(notice.event_time, notice.index, notice.level))
        sample(state.settled_at)
        if on_item is not None:
            on_item()
    if settle:
        result = settle_all(state, scoring, rules.version)
        state = result.state
        notices.extend(result.notices)
        sample(state.settled_at, force=True)
    return BacktestResult(tuple(tagged), tuple(notices), tuple(timeline), state, scoring)
