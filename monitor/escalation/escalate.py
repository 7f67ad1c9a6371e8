"""The escalation's decision: fold one record of the log into a dyad's state.

`escalate(state, record, config)` is the whole of it, a pure function: given
a dyad's state and the next record of its log (a relevant tagged item, or a
`ClockTicked` saying that time passed), it returns the next state, the notices
to publish and what changed. It never reads a clock.

**Decided in log order, at once.** A relevant item is placed into its story
and the level is judged right then, at the item's event time: a shoot-down
raises the level as soon as its first report is processed, not after any
allowed lateness. Replay equals live because both read the same log in the
same order; nothing waits for later items.

**Time is what the log says.** The dyad's clock is the latest time any record
has shown. Whenever it passes the top of an hour, the level is judged at that
hour for time passing (it can only fall then: only news raises it), and the
stories that closed are folded into the summary. A quiet night still moves
the clock, through the collector's ticks. The judgement at an hour depends
only on the state, never on how many records arrived in between, so a stream
without ticks gives the same notices as one with them, only later.

**Late items** (event time before the clock) count at their own event time
for decay, and are judged at that time, but never before the current level
began (the past is not rewritten) nor before the summary's reference time.

Idempotent: a record whose origin on news.items is at or before what the state
has applied from that partition is skipped (a redelivery after a crash, by the
escalator's consumer or by the tagger), an item id already counted with the
same revision changes nothing, and a new revision replaces the item in its story.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from monitor.escalation.scoring import (
    ScoringConfig,
    decay_factor,
    index_of,
    next_level,
    notice_id_for,
    settle_share,
    story_breakdown,
    story_weights,
)
from monitor.escalation.state import (
    DyadState,
    Folded,
    NotableStory,
    StateChange,
    day_of,
)
from monitor.escalation.stories import (
    Story,
    StoryItem,
    find_story,
    names_in,
    origins,
    story_id_for,
)
from monitor.records import Origin
from schemas import (
    LEVELS,
    SIGNAL_IDS,
    BurstDetail,
    ClockTicked,
    EscalationNotice,
    ItemTagged,
    Level,
    NoticeEvidence,
    TensionState,
)

# Time passing is judged at the top of every hour of the log's clock.
JUDGE_EVERY = timedelta(hours=1)
MAX_HEADLINE_CHARS = 300


@dataclass(frozen=True)
class Escalation:
    state: DyadState
    notices: tuple[EscalationNotice, ...]
    change: StateChange
    # The index at the state's clock, when the fold weighed it there last.
    weighing: Weighing | None = None

    @property
    def changed(self) -> bool:
        return self.change.any


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = hour_of(moment)
    return floor if floor == moment else floor + JUDGE_EVERY


def clock_trigger(hour: datetime) -> str:
    return f"clock:{hour.isoformat()}"


def story_item_of(item: ItemTagged) -> StoryItem:
    # Built from a validated event: no need to validate it again.
    return StoryItem.model_construct(
        item_id=item.item_id,
        revision=item.revision,
        source=item.source,
        lang=item.lang,
        signals=tuple(item.signals),
        fingerprint=int(item.fingerprint, 16) if item.fingerprint else 0,
        event_time=item.event_time,
        headline=item.title[:MAX_HEADLINE_CHARS],
        link=item.link,
        names=names_in(item.title, (e.text for e in item.evidence if e.kind == "actor")),
        recalled=tuple(sorted({e.label for e in item.background})),
    )


@dataclass(frozen=True)
class Weighing:
    """The index at one moment: its total per signal, and what it is made of."""

    now: datetime
    totals: dict[str, float]  # per signal, unrounded: the folded part, then the live stories
    # Each live story seen by `now`, with the share of its escalatory weight left unsettled.
    settled: list[tuple[Story, float]]
    folded: dict[str, float]
    # The share of the folded escalatory weight that live settlements leave.
    live_settlement: float
    config: ScoringConfig

    @property
    def breakdown(self) -> dict[str, float]:
        return {signal: round(value, 4) for signal, value in sorted(self.totals.items())}

    @cached_property
    def live(self) -> list[tuple[Story, dict[str, float]]]:
        """Each live story's weight per signal: only a notice's evidence needs them."""
        return [
            (story, story_breakdown(story, self.now, self.config, factor))
            for story, factor in self.settled
        ]


# Far more than a float's error on an index, far less than the 4 decimals it is
# rounded to: what a forecast must clear to spare an hour its full judgement.
FORECAST_MARGIN = 1e-3


@dataclass(frozen=True)
class Forecast:
    """The index between two records, as one decaying term per signal.

    While no record arrives the stories, their settlements and the summary stay
    as they are, so each signal's weight only decays at its own rate: the index
    at any later hour is known from one weighing. It spares the hours that
    cannot lower the level a full weighing; the hour that may, gets one.
    """

    anchor: datetime
    terms: tuple[tuple[float, float], ...]  # (weight at the anchor, decay rate per second)

    @classmethod
    def of(cls, weighing: Weighing, config: ScoringConfig) -> Forecast:
        rates = config.decay_rates
        terms = tuple((value, rates[signal]) for signal, value in weighing.totals.items())
        return cls(weighing.now, terms)

    def index_at(self, moment: datetime) -> float:
        age = (moment - self.anchor).total_seconds()
        return max(0.0, sum(value * math.exp(-rate * age) for value, rate in self.terms))

    def first_hour_below(self, threshold: float, start: datetime, end: datetime) -> datetime:
        """The first hour in [start, end] at which the index may be below `threshold`
        (after `end` when there is none). No hour before it is.

        The escalatory terms only fall; a de-escalatory (negative) term only rises
        toward zero, so from `start` on it is never below its value at `start`.
        Their sum is a lower bound of the index that only falls: bisect on it.
        """
        age = (start - self.anchor).total_seconds()
        floor = sum(value * math.exp(-rate * age) for value, rate in self.terms if value < 0)
        rising = tuple((value, rate) for value, rate in self.terms if value > 0)

        def bound(hours: int) -> float:
            later = age + hours * JUDGE_EVERY.total_seconds()
            return floor + sum(value * math.exp(-rate * later) for value, rate in rising)

        last = int((end - start) / JUDGE_EVERY)
        if bound(last) >= threshold:
            return end + JUDGE_EVERY
        low, high = 0, last
        while low < high:
            middle = (low + high) // 2
            if bound(middle) < threshold:
                high = middle
            else:
                low = middle + 1
        return start + low * JUDGE_EVERY


def weigh(
    state_stories: dict[str, Story], folded: Folded, now: datetime, config: ScoringConfig
) -> Weighing:
    """Every story seen by `now` weighed at `now`, the folded summary included."""
    visible = [
        (story, story_weights(story, config))
        for story in state_stories.values()
        if story.first_seen <= now
    ]
    settlers = [
        (story.first_seen, weights.settle_share)
        for story, weights in visible
        if weights.settle_share < 1.0
    ]
    # Every folded story is older than every live one, so each live settlement applies.
    live_settlement = math.prod(share for _, share in settlers)
    rates = config.decay_rates
    folded_weights: dict[str, float] = {}
    if folded.reference is not None:
        since = (now - folded.reference).total_seconds()
        for signal, value in folded.weights.items():
            weight = value * math.exp(-rates[signal] * max(since, 0.0))
            if config.weights.get(signal, 0.0) > 0:
                weight *= live_settlement
            folded_weights[signal] = weight
    totals = dict(folded_weights)
    settled = []
    for story, weights in visible:
        factor = 1.0
        for when, share in settlers:
            if when > story.first_seen:
                factor *= share
        settled.append((story, factor))
        # As story_breakdown does, summed as it goes: one weighing per judgement.
        age = (now - story.first_seen).total_seconds()
        for signal, weight in weights.raw.items():
            value = weight * math.exp(-rates[signal] * age) * (factor if weight > 0 else 1.0)
            totals[signal] = totals.get(signal, 0.0) + value
    return Weighing(now, totals, settled, folded_weights, live_settlement, config)


def notable_weight(
    story: NotableStory, now: datetime, config: ScoringConfig, live_share: float
) -> float:
    total = 0.0
    for signal, value in story.weights.items():
        weight = value * decay_factor(now - story.first_seen, config.half_life_of(signal))
        if value > 0:
            weight *= story.settled * live_share
        total += weight
    return total


class _Work:
    """The mutable working copy of a state while one record is folded in."""

    def __init__(self, state: DyadState, config: ScoringConfig) -> None:
        self.config = config
        self.dyad = state.dyad
        self.level: Level = state.level
        self.level_since = state.level_since
        self.clock = state.clock
        self.judged_until = state.judged_until
        self.stories = dict(state.stories)
        self.item_story = dict(state.item_story)
        self.folded = state.folded
        self.initial_folded = state.folded
        self.last_burst = dict(state.last_burst)
        self.last_notice_id = state.last_notice_id
        self.applied = state.applied
        self.notices: list[EscalationNotice] = []
        self.last_weighing: Weighing | None = None
        self.written: set[str] = set()
        self.removed: set[str] = set()
        self.header_changed = False

    # -- time ---------------------------------------------------------------

    def advance(self, moment: datetime) -> None:
        """Move the clock to `moment` (never back), judging each hour it passes."""
        if self.clock is None or self.judged_until is None:
            self.clock, self.judged_until = moment, hour_of(moment)
            return
        target = hour_of(max(self.clock, moment))
        hour = self.judged_until + JUDGE_EVERY
        forecast: Forecast | None = None
        while hour <= target:
            if self.level == "calm":
                # Nothing can fall: close what has closed by the end of the jump and go.
                self.fold_closed(target)
                break
            # The level falls only once held for the dwell; no hour before can lower it.
            if self.level_since is not None and hour < self.level_since + self.config.min_dwell:
                hour = ceil_hour(self.level_since + self.config.min_dwell)
                continue
            if self.fold_closed(hour):
                forecast = None
            if forecast is None:
                forecast = Forecast.of(self.weigh(hour), self.config)
            threshold = self.config.raise_at[self.level] * self.config.lower_factor
            candidate = forecast.first_hour_below(threshold + FORECAST_MARGIN, hour, target)
            if candidate > hour:
                hour = candidate  # those hours could not lower it: judged, as unchanged
                continue
            if forecast.index_at(hour) < threshold + FORECAST_MARGIN and self.judge_time_passing(
                hour
            ):
                forecast = None
            hour += JUDGE_EVERY
        self.judged_until = max(self.judged_until, target)
        self.clock = max(self.clock, moment)

    def judge_time_passing(self, hour: datetime) -> bool:
        """Judge the level at `hour` for time passing; True when it fell."""
        weighing = self.weigh(hour)
        index = index_of(weighing.breakdown)
        held_for = hour - self.level_since if self.level_since is not None else None
        level = next_level(self.level, index, held_for, self.config)
        if LEVELS.index(level) >= LEVELS.index(self.level):
            return False
        self.notify("lowered", level, index, weighing, clock_trigger(hour), "", None, None)
        self.level, self.level_since = level, hour
        return True

    # -- stories ------------------------------------------------------------

    def knows(self, item: ItemTagged) -> bool:
        story_id = self.item_story.get(item.item_id)
        story = self.stories.get(story_id) if story_id is not None else None
        return story is not None and story.items[item.item_id].revision == item.revision

    def place(self, item: StoryItem) -> None:
        """Put an item into its story: its old one if it is a revision, else found or new."""
        rules, deescalatory = self.config.stories, self.config.deescalatory
        story_id = self.item_story.get(item.item_id)
        if story_id is None or story_id not in self.stories:
            story_id = find_story(self.stories, item, rules)
        if story_id is None:
            story_id = story_id_for(item)
            self.stories[story_id] = Story.of(story_id, {item.item_id: item}, rules, deescalatory)
        else:
            self.stories[story_id] = self.stories[story_id].with_item(item, rules, deescalatory)
        if item.item_id in self.stories[story_id].items:
            self.item_story[item.item_id] = story_id
        self.written.add(story_id)
        self.header_changed = True
        self.last_weighing = None
        self.cap_live_stories()

    def withdraw(self, item_id: str) -> None:
        """A revision made the item irrelevant: it leaves its story (an empty story goes)."""
        self.last_weighing = None
        story_id = self.item_story.pop(item_id)
        story = self.stories[story_id]
        remaining = story.without_item(item_id, self.config.stories, self.config.deescalatory)
        if remaining is None:
            del self.stories[story_id]
            self.removed.add(story_id)
            self.written.discard(story_id)
        else:
            self.stories[story_id] = remaining
            self.written.add(story_id)
        self.header_changed = True

    def cap_live_stories(self) -> None:
        """A flood of distinct stories folds the oldest early: the state stays bounded."""
        excess = len(self.stories) - self.config.max_live_stories
        if excess > 0:
            for story in sorted(self.stories.values(), key=_story_order)[:excess]:
                self.fold(story)

    def fold_closed(self, now: datetime) -> bool:
        """Fold the stories that can no longer take items (past the join window) by `now`."""
        window = self.config.stories.closes_after
        closed = [story for story in self.stories.values() if story.first_seen + window < now]
        for story in sorted(closed, key=_story_order):
            self.fold(story)
        if closed:
            self.drop_old_days(now)
        return bool(closed)

    def fold(self, story: Story) -> None:
        """Move a story into the summary: its weight, its day count, maybe its headline."""
        self.last_weighing = None
        config, folded = self.config, self.folded
        raw = story_breakdown(story, story.first_seen, config)
        share = settle_share(story, config)
        closes = story.first_seen + config.stories.closes_after
        reference = max(folded.reference, closes) if folded.reference is not None else closes
        weights: dict[str, float] = {}
        for signal, value in folded.weights.items():
            weight = value
            if folded.reference is not None:
                weight *= decay_factor(reference - folded.reference, config.half_life_of(signal))
            if share < 1.0 and config.weights.get(signal, 0.0) > 0:
                weight *= share  # this story settles part of everything before it
            weights[signal] = weight
        for signal, value in raw.items():
            weights[signal] = weights.get(signal, 0.0) + value * decay_factor(
                reference - story.first_seen, config.half_life_of(signal)
            )
        daily = {day: dict(counts) for day, counts in folded.daily.items()}
        counts = daily.setdefault(day_of(story.first_seen), {})
        for signal in story.signals:
            counts[signal] = counts.get(signal, 0) + 1
        notable = [
            n.model_copy(update={"settled": n.settled * share})
            if share < 1.0 and n.first_seen < story.first_seen
            else n
            for n in folded.notable
        ]
        notable.append(_notable(story, raw))
        notable.sort(
            key=lambda n: (
                -abs(notable_weight(n, reference, config, 1.0)),
                n.first_seen,
                n.story_id,
            )
        )
        self.folded = Folded(
            reference=reference,
            weights={s: w for s, w in sorted(weights.items()) if abs(w) >= 1e-9},
            stories=folded.stories + 1,
            items=folded.items + story.items_total,
            daily=daily,
            notable=tuple(notable[: config.evidence_stories]),
        )
        del self.stories[story.story_id]
        for item_id in story.items:
            if self.item_story.get(item_id) == story.story_id:
                del self.item_story[item_id]
        self.written.discard(story.story_id)
        self.removed.add(story.story_id)
        self.header_changed = True

    def drop_old_days(self, now: datetime) -> None:
        rules = self.config.bursts
        oldest = day_of(now - rules.window - rules.baseline - timedelta(days=1))
        if any(day < oldest for day in self.folded.daily):
            daily = {day: counts for day, counts in self.folded.daily.items() if day >= oldest}
            self.folded = self.folded.model_copy(update={"daily": daily})
            self.header_changed = True

    # -- judging ------------------------------------------------------------

    def weigh(self, now: datetime) -> Weighing:
        self.last_weighing = weigh(self.stories, self.folded, now, self.config)
        return self.last_weighing

    def judge_item(self, item: ItemTagged, rules_version: str) -> None:
        """The level (and bursts) when a relevant item has been placed."""
        now = max(
            item.event_time,
            self.level_since or item.event_time,
            self.folded.reference or item.event_time,
        )
        weighing = self.weigh(now)
        index = index_of(weighing.breakdown)
        held_for = now - self.level_since if self.level_since is not None else None
        level = next_level(self.level, index, held_for, self.config)
        trigger = (item.item_id, item.revision)
        if level != self.level:
            kind: Literal["raised", "lowered"] = (
                "raised" if LEVELS.index(level) > LEVELS.index(self.level) else "lowered"
            )
            self.notify(kind, level, index, weighing, *trigger, rules_version, None)
            self.level, self.level_since = level, now
        elif self.level_since is None:
            self.level_since = now
        for signal in item.signals:
            burst = self.burst(signal, now)
            if burst is not None:
                self.notify("burst", self.level, index, weighing, *trigger, rules_version, burst)
                self.last_burst[signal] = now
        self.header_changed = True

    def burst(self, signal: str, now: datetime) -> BurstDetail | None:
        rules = self.config.bursts
        last = self.last_burst.get(signal)
        if last is not None and now - last < rules.cooldown:
            return None
        in_window = []
        before = 0
        for story in self.stories.values():
            if signal not in story.signals or story.first_seen > now:
                continue
            age = now - story.first_seen
            if age <= rules.window:
                in_window.append(story)
            elif age <= rules.window + rules.baseline:
                before += 1
        if len(in_window) < rules.min_stories:
            return None
        # Folded stories count by the day they were first seen (a day's precision).
        since = day_of(now - rules.window - rules.baseline)
        until = day_of(now - rules.window)
        before += sum(
            counts.get(signal, 0)
            for day, counts in self.folded.daily.items()
            if since <= day <= until
        )
        baseline = before * (rules.window / rules.baseline)
        if len(in_window) < rules.ratio * max(baseline, rules.baseline_floor):
            return None
        sources = len(
            origins(
                (item for story in in_window for item in story.items.values()),
                self.config.stories,
            )
        )
        if sources < rules.min_sources:
            return None
        return BurstDetail(
            signal=signal,  # type: ignore[arg-type]
            stories=len(in_window),
            sources=sources,
            baseline=round(baseline, 4),
            window_hours=rules.window.total_seconds() / 3600,
        )

    def notify(
        self,
        kind: Literal["raised", "lowered", "burst"],
        level: Level,
        index: float,
        weighing: Weighing,
        trigger_id: str,
        revision: str,
        rules_version: str | None,
        burst: BurstDetail | None,
    ) -> None:
        label = f"burst:{burst.signal}" if burst is not None else kind
        notice = EscalationNotice(
            notice_id=notice_id_for(self.dyad, label, level, trigger_id, revision),
            dyad=self.dyad,
            kind=kind,
            level=level,
            previous_level=self.level,
            index=index,
            breakdown=weighing.breakdown,
            event_time=weighing.now,
            trigger_item_id=trigger_id,
            evidence=evidence_of(weighing, self.folded, self.config),
            rules_version=rules_version,
            burst=burst,
        )
        self.notices.append(notice)
        self.last_notice_id = notice.notice_id
        self.header_changed = True

    def result(self, origin: Origin | None) -> Escalation:
        if self.header_changed and origin is not None:
            self.applied = {**self.applied, origin[0]: origin[1]}
        state = DyadState.model_construct(
            dyad=self.dyad,
            level=self.level,
            level_since=self.level_since,
            clock=self.clock,
            judged_until=self.judged_until,
            stories=self.stories,
            folded=self.folded,
            last_burst=self.last_burst,
            last_notice_id=self.last_notice_id,
            applied=self.applied,
            item_story=self.item_story,
        )
        change = StateChange(
            header=self.header_changed,
            stories_written=tuple(sorted(self.written)),
            stories_removed=tuple(sorted(self.removed - self.written)),
            folded=self.folded is not self.initial_folded,
        )
        weighing = self.last_weighing
        fresh = weighing is not None and weighing.now == self.clock
        return Escalation(state, tuple(self.notices), change, weighing if fresh else None)


def _story_order(story: Story) -> tuple[datetime, str]:
    return story.first_seen, story.story_id


def _notable(story: Story, raw: dict[str, float]) -> NotableStory:
    lead = story.lead
    items = sorted(story.items.values(), key=lambda i: (i.event_time, i.item_id))
    return NotableStory(
        story_id=story.story_id,
        item_id=lead.item_id,
        headline=lead.headline,
        source=lead.source,
        link=lead.link,
        first_seen=story.first_seen,
        signals=tuple(sorted(story.signals, key=SIGNAL_IDS.index)),
        weights=raw,
        sources=tuple(sorted({i.source for i in items})),
        links=tuple(i.link for i in items if i.link)[:5],
        items=story.items_total,
    )


def evidence_of(weighing: Weighing, folded: Folded, config: ScoringConfig) -> list[NoticeEvidence]:
    """The stories that move the index most at the weighing's moment, live or folded."""
    scored: list[tuple[float, NotableStory]] = []
    for story, breakdown in weighing.live:
        weight = sum(breakdown.values())
        if weight:
            scored.append((weight, _notable(story, raw={})))  # only what a notice shows
    for notable in folded.notable:
        if notable.first_seen > weighing.now:
            continue
        weight = notable_weight(notable, weighing.now, config, weighing.live_settlement)
        if abs(weight) >= config.forget_below:
            scored.append((weight, notable))
    # Largest movers first; ties broken by time then id, so the order is stable.
    scored.sort(key=lambda entry: (-abs(entry[0]), entry[1].first_seen, entry[1].story_id))
    return [
        NoticeEvidence(
            item_id=story.item_id,
            headline=story.headline,
            source=story.source,
            link=story.link,
            published=story.first_seen,
            signals=list(story.signals),  # type: ignore[arg-type]
            contribution=round(weight, 4),
            story_id=story.story_id,
            sources=list(story.sources),
            links=list(story.links),
            items=story.items,
        )
        for weight, story in scored[: config.evidence_stories]
    ]


def escalate(
    state: DyadState,
    record: ItemTagged | ClockTicked,
    config: ScoringConfig,
    origin: Origin | None = None,
) -> Escalation:
    """Fold one record of the dyad's log into its state; say which notices that raises.

    `origin` is the (partition, offset) on news.items the record was derived from,
    when known: a record from at or before what the state has applied from that
    partition is a redelivery and changes nothing.
    """
    unchanged = Escalation(state, (), StateChange())
    if origin is not None and origin[1] <= state.applied.get(origin[0], -1):
        return unchanged
    work = _Work(state, config)
    if isinstance(record, ClockTicked):
        work.advance(record.at)
        return work.result(origin)
    relevant = record.relevant and record.dyad == state.dyad
    if relevant and work.knows(record):
        return unchanged
    work.advance(record.event_time)
    if relevant:
        work.place(story_item_of(record))
        work.judge_item(record, record.rules_version)
    elif record.item_id in work.item_story:
        work.withdraw(record.item_id)
    return work.result(origin)


def breakdown_at(state: DyadState, now: datetime, config: ScoringConfig) -> dict[str, float]:
    return weigh(state.stories, state.folded, now, config).breakdown


def tension_state_of(
    state: DyadState, config: ScoringConfig, last_record: str, weighing: Weighing | None = None
) -> TensionState:
    """The wire view of a state: the index at the log's clock (`weighing`, if the fold
    already weighed it there)."""
    as_of = state.clock
    assert as_of is not None, "a dyad state is published only after its first record"
    if weighing is None or weighing.now != as_of:
        weighing = weigh(state.stories, state.folded, as_of, config)
    breakdown = weighing.breakdown
    return TensionState(
        dyad=state.dyad,
        level=state.level,
        index=index_of(breakdown),
        breakdown=breakdown,
        as_of=as_of,
        items_counted=state.folded.items + sum(s.items_total for s in state.stories.values()),
        last_item_id=last_record,
        last_notice_id=state.last_notice_id,
        stories_counted=state.folded.stories + len(state.stories),
        settled_at=as_of,
    )
