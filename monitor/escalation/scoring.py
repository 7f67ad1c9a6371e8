"""The tension index of a dyad, its levels and bursts: pure functions over event time.

`escalate(state, item, config)` is the whole decision: given the state of a
dyad and one tagged item, it returns the next state and the notices to
publish. It never reads a clock: time is the items' event time.

How time works. Every tagged item (relevant or not) moves the dyad's
watermark, the latest event time seen. Decisions are *settled* up to the
watermark minus the allowed lateness: items up to that point are taken in
event-time order, grouped into stories, and the level is evaluated at each
of their event times. So items that arrive a little out of order give the
same notices, id for id, as the same items in order (what `monitor
backtest` does). An item later than that still counts from then on, at its
own event time, but does not rewrite settled history.

Idempotent by construction: an item id with the same revision changes
nothing the second time; a new revision replaces the item in its story.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from monitor.errors import MonitorError
from monitor.escalation.stories import (
    Story,
    StoryItem,
    StoryRules,
    corroboration,
    find_story,
    origins,
    story_id_for,
)
from schemas import (
    LEVELS,
    SIGNAL_IDS,
    BurstDetail,
    EscalationNotice,
    ItemTagged,
    Level,
    NoticeEvidence,
    TensionState,
)
from schemas.events import UtcDatetime

DEFAULT_SCORING = Path(__file__).parent / "scoring.toml"


class ScoringConfigError(MonitorError):
    """The scoring file is missing a value or has a wrong one."""


@dataclass(frozen=True)
class BurstRules:
    window: timedelta
    baseline: timedelta
    min_stories: int
    min_sources: int
    ratio: float
    baseline_floor: float
    cooldown: timedelta


@dataclass(frozen=True)
class ScoringConfig:
    weights: Mapping[str, float]
    raise_at: Mapping[Level, float]
    half_life: timedelta
    lower_factor: float
    min_dwell: timedelta
    forget_below: float
    evidence_stories: int
    allowed_lateness: timedelta
    context_weight: float
    settle_weight: float
    stories: StoryRules
    bursts: BurstRules

    half_lives: Mapping[str, timedelta]

    def half_life_of(self, signal: str) -> timedelta:
        return self.half_lives.get(signal, self.half_life)

    @property
    def deescalatory(self) -> frozenset[str]:
        return frozenset(signal for signal, weight in self.weights.items() if weight < 0)

    @classmethod
    def load(cls, path: Path = DEFAULT_SCORING) -> ScoringConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            config = cls._from_dict(data)
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
            raise ScoringConfigError(f"{path}: {type(error).__name__}: {error}") from error
        problem = config._problem()
        if problem:
            raise ScoringConfigError(f"{path}: {problem}")
        return config

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> ScoringConfig:
        stories, bursts = data["stories"], data["bursts"]
        return cls(
            weights={str(k): float(v) for k, v in data["weights"].items()},
            raise_at={level: float(data["raise_at"][level]) for level in LEVELS[1:]},
            half_life=timedelta(hours=float(data["half_life_hours"])),
            lower_factor=float(data["lower_factor"]),
            min_dwell=timedelta(hours=float(data["min_dwell_hours"])),
            forget_below=float(data["forget_below"]),
            evidence_stories=int(data["evidence_stories"]),
            allowed_lateness=timedelta(minutes=float(data["allowed_lateness_minutes"])),
            context_weight=float(data["context_weight"]),
            settle_weight=float(data["settle_weight"]),
            half_lives={
                str(signal): timedelta(hours=float(hours))
                for signal, hours in data.get("half_life_hours_by_signal", {}).items()
            },
            stories=StoryRules(
                join_window=timedelta(hours=float(stories["join_window_hours"])),
                cluster_window=timedelta(hours=float(stories["cluster_window_hours"])),
                text_distance=int(stories["text_distance"]),
                copy_distance=int(stories["copy_distance"]),
                signal_overlap=float(stories["signal_overlap"]),
                corroboration=float(stories["corroboration"]),
            ),
            bursts=BurstRules(
                window=timedelta(hours=float(bursts["window_hours"])),
                baseline=timedelta(days=float(bursts["baseline_days"])),
                min_stories=int(bursts["min_stories"]),
                min_sources=int(bursts["min_sources"]),
                ratio=float(bursts["ratio"]),
                baseline_floor=float(bursts["baseline_floor"]),
                cooldown=timedelta(hours=float(bursts["cooldown_hours"])),
            ),
        )

    def _problem(self) -> str | None:
        for table, signals in (
            ("weights", self.weights),
            ("half_life_hours_by_signal", self.half_lives),
        ):
            unknown = set(signals) - set(SIGNAL_IDS)
            if unknown:
                return f"unknown signals in [{table}]: {sorted(unknown)}"
        thresholds = [self.raise_at[level] for level in LEVELS[1:]]
        if thresholds != sorted(thresholds) or thresholds[0] <= 0:
            return "[raise_at] must be positive and increasing"
        if not 0 < self.lower_factor < 1:
            return "lower_factor must be between 0 and 1"
        if self.settle_weight <= 0:
            return "settle_weight must be positive"
        if not 0 <= self.context_weight <= 1:
            return "context_weight must be between 0 and 1"
        if self.allowed_lateness < timedelta(0):
            return "allowed_lateness_minutes must not be negative"
        if self.stories.copy_distance > self.stories.text_distance:
            return "[stories] copy_distance must not exceed text_distance"
        return None


class PendingItem(BaseModel):
    """An item seen but not yet settled: relevant ones carry what their story needs."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    revision: str
    event_time: UtcDatetime
    story_item: StoryItem | None = None


class DyadState(BaseModel):
    """The table value for one dyad. Internal, not a wire contract."""

    model_config = ConfigDict(frozen=True)

    dyad: str
    level: Level = "calm"
    level_since: UtcDatetime | None = None
    watermark: UtcDatetime | None = None
    settled_at: UtcDatetime | None = None
    pending: dict[str, PendingItem] = {}
    stories: dict[str, Story] = {}
    item_story: dict[str, str] = {}
    # Fingerprints of items whose stories were forgotten, newest last: a redelivery
    # after a crash may bring them again, and they must not count twice.
    forgotten: list[str] = []
    last_burst: dict[str, UtcDatetime] = {}
    last_notice_id: str | None = None
    last_judged: UtcDatetime | None = None
    last_forgetting: UtcDatetime | None = None


@dataclass(frozen=True)
class Escalation:
    state: DyadState
    notices: tuple[EscalationNotice, ...]
    changed: bool


def decay_factor(age: timedelta, half_life: timedelta) -> float:
    return math.pow(0.5, max(age, timedelta(0)) / half_life)


def story_breakdown(
    story: Story, now: datetime, config: ScoringConfig, settled: float = 1.0
) -> dict[str, float]:
    """A story's decayed weight per signal at `now`, corroboration included.

    `settled` scales its escalatory signals: what later apologies and meetings
    have settled of it (see `settlement_factors`).
    """
    if story.first_seen > now:
        return {}
    age = now - story.first_seen
    context = story.context
    weights = {}
    for signal, sources in story.sources.items():
        weight = config.weights.get(signal, 0.0)
        if not weight:
            continue
        weights[signal] = (
            weight
            * corroboration(sources, config.stories.corroboration)
            * decay_factor(age, config.half_life_of(signal))
            * (config.context_weight if signal in context else 1.0)
            * (settled if weight > 0 else 1.0)
        )
    return weights


def settlement_factors(
    stories: Iterable[Story], now: datetime, config: ScoringConfig
) -> dict[str, float]:
    """For each story, the share of its escalatory weight left unsettled at `now`.

    A de-escalatory story (an apology, a summit, compensation) settles part of
    the tension of every story before it, for good: their escalatory weight is
    multiplied by 0.5^(strength / settle_weight), where strength is the
    story's de-escalatory weight (corroboration included, before decay).
    """
    ordered = sorted(
        (story for story in stories if story.first_seen <= now),
        key=lambda story: (story.first_seen, story.story_id),
    )
    settlers = []
    for story in ordered:
        strength = -sum(
            config.weights[signal] * corroboration(sources, config.stories.corroboration)
            for signal, sources in story.sources.items()
            if config.weights.get(signal, 0.0) < 0
        )
        if strength > 0:
            settlers.append((story.first_seen, math.pow(0.5, strength / config.settle_weight)))
    factors = {}
    for story in ordered:
        factor = 1.0
        for when, share in settlers:
            if when > story.first_seen:
                factor *= share
        factors[story.story_id] = factor
    return factors


def weighed(
    stories: Iterable[Story], now: datetime, config: ScoringConfig
) -> list[tuple[Story, dict[str, float]]]:
    """Every story seen by `now` with its weight per signal at `now`."""
    visible = [story for story in stories if story.first_seen <= now]
    factors = settlement_factors(visible, now, config)
    return [
        (story, story_breakdown(story, now, config, factors[story.story_id])) for story in visible
    ]


def breakdown_at(
    stories: Iterable[Story], now: datetime, config: ScoringConfig
) -> dict[str, float]:
    totals: dict[str, float] = {}
    for _, breakdown in weighed(stories, now, config):
        for signal, value in breakdown.items():
            totals[signal] = totals.get(signal, 0.0) + value
    return {signal: round(value, 4) for signal, value in sorted(totals.items())}


def index_of(breakdown: Mapping[str, float]) -> float:
    return round(max(0.0, sum(breakdown.values())), 4)


def next_level(
    current: Level, index: float, held_for: timedelta | None, config: ScoringConfig
) -> Level:
    """The level after seeing `index`: rise at once, fall with hysteresis and dwell."""
    rank = LEVELS.index(current)
    target = 0
    for position, level in enumerate(LEVELS[1:], start=1):
        if index >= config.raise_at[level]:
            target = position
    if target > rank:
        return LEVELS[target]
    if held_for is not None and held_for < config.min_dwell:
        return current
    while rank > 0 and index < config.raise_at[LEVELS[rank]] * config.lower_factor:
        rank -= 1
    return LEVELS[rank]


def notice_id_for(dyad: str, kind: str, level: Level, item_id: str, revision: str) -> str:
    """Content-derived: the same trigger always yields the same notice id."""
    digest = hashlib.sha256(f"{dyad}|{kind}|{level}|{item_id}|{revision}".encode()).hexdigest()
    return f"n-{digest[:24]}"


def story_item_of(item: ItemTagged) -> StoryItem:
    return StoryItem(
        item_id=item.item_id,
        revision=item.revision,
        source=item.source,
        lang=item.lang,
        signals=tuple(item.signals),
        fingerprint=int(item.fingerprint, 16) if item.fingerprint else 0,
        event_time=item.event_time,
        headline=item.title,
        link=item.link,
    )


def evidence_at(
    stories: Iterable[Story], now: datetime, config: ScoringConfig
) -> list[NoticeEvidence]:
    scored = []
    for story, breakdown in weighed(stories, now, config):
        weight = sum(breakdown.values())
        if weight:
            scored.append((weight, story))
    # Largest movers first; ties broken by time then id, so the order is stable.
    scored.sort(key=lambda pair: (-abs(pair[0]), pair[1].first_seen, pair[1].story_id))
    evidence = []
    for weight, story in scored[: config.evidence_stories]:
        lead = story.lead
        items = sorted(story.items.values(), key=lambda i: (i.event_time, i.item_id))
        evidence.append(
            NoticeEvidence(
                item_id=lead.item_id,
                headline=lead.headline,
                source=lead.source,
                link=lead.link,
                published=story.first_seen,
                signals=sorted(story.signals, key=SIGNAL_IDS.index),  # type: ignore[arg-type]
                contribution=round(weight, 4),
                story_id=story.story_id,
                sources=sorted({i.source for i in items}),
                links=[i.link for i in items if i.link][:5],
                items=len(items),
            )
        )
    return evidence


@dataclass
class _Fold:
    """The mutable working copy of a state while one record is folded in."""

    state: DyadState
    stories: dict[str, Story]
    item_story: dict[str, str]
    level: Level
    level_since: datetime | None
    last_burst: dict[str, datetime]
    last_notice_id: str | None
    notices: list[EscalationNotice]
    forgotten: list[str]
    last_judged: datetime | None

    @classmethod
    def of(cls, state: DyadState) -> _Fold:
        return cls(
            state=state,
            stories=dict(state.stories),
            item_story=dict(state.item_story),
            level=state.level,
            level_since=state.level_since,
            last_burst=dict(state.last_burst),
            last_notice_id=state.last_notice_id,
            notices=[],
            forgotten=list(state.forgotten),
            last_judged=state.last_judged,
        )

    def place(self, item: StoryItem, config: ScoringConfig) -> None:
        """Put an item into its story: its old one if it is a revision, else found or new."""
        known = self.item_story.get(item.item_id)
        if known is not None and known in self.stories:
            self.stories[known] = self.stories[known].with_item(
                item, config.stories, config.deescalatory
            )
            return
        story_id = find_story(self.stories, item, config.stories)
        if story_id is None:
            story_id = story_id_for(item)
            self.stories[story_id] = Story.of(
                story_id, {item.item_id: item}, config.stories, config.deescalatory
            )
        else:
            self.stories[story_id] = self.stories[story_id].with_item(
                item, config.stories, config.deescalatory
            )
        self.item_story[item.item_id] = story_id

    def withdraw(self, item_id: str, config: ScoringConfig) -> None:
        """A revision made the item irrelevant: it leaves its story (and an empty story goes)."""
        story_id = self.item_story.pop(item_id, None)
        story = self.stories.get(story_id) if story_id is not None else None
        if story is None:
            return
        remaining = story.without_item(item_id, config.stories, config.deescalatory)
        if remaining is None:
            del self.stories[story.story_id]
        else:
            self.stories[story.story_id] = remaining

    def evaluate(self, point: PendingItem, config: ScoringConfig, rules_version: str) -> None:
        """The level (and bursts) at one settled item's event time."""
        now = point.event_time
        if point.story_item is None and (
            self.level == "calm"
            or (self.last_judged is not None and now - self.last_judged < JUDGE_TICKS_EVERY)
        ):
            # Only new stories raise; time passing only lowers, and judging that
            # hourly in event time is plenty. Deterministic: it depends on event
            # times alone, so live and backtest still agree.
            return
        self.last_judged = now
        breakdown = breakdown_at(self.stories.values(), now, config)
        index = index_of(breakdown)
        held_for = now - self.level_since if self.level_since is not None else None
        level = next_level(self.level, index, held_for, config)
        if level != self.level:
            kind: Literal["raised", "lowered"] = (
                "raised" if LEVELS.index(level) > LEVELS.index(self.level) else "lowered"
            )
            self._notify(kind, level, index, breakdown, point, config, rules_version, None)
            self.level = level
            self.level_since = now
        elif self.level_since is None:
            self.level_since = now
        if point.story_item is not None:
            for signal in point.story_item.signals:
                burst = self._burst(signal, now, config)
                if burst is not None:
                    self._notify(
                        "burst", self.level, index, breakdown, point, config, rules_version, burst
                    )
                    self.last_burst[signal] = now

    def _burst(self, signal: str, now: datetime, config: ScoringConfig) -> BurstDetail | None:
        rules = config.bursts
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
        baseline = before * (rules.window / rules.baseline)
        if len(in_window) < rules.ratio * max(baseline, rules.baseline_floor):
            return None
        sources = len(
            origins((item for story in in_window for item in story.items.values()), config.stories)
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

    def _notify(
        self,
        kind: Literal["raised", "lowered", "burst"],
        level: Level,
        index: float,
        breakdown: dict[str, float],
        point: PendingItem,
        config: ScoringConfig,
        rules_version: str,
        burst: BurstDetail | None,
    ) -> None:
        label = f"burst:{burst.signal}" if burst is not None else kind
        notice = EscalationNotice(
            notice_id=notice_id_for(self.state.dyad, label, level, point.item_id, point.revision),
            dyad=self.state.dyad,
            kind=kind,
            level=level,
            previous_level=self.level,
            index=index,
            breakdown=breakdown,
            event_time=point.event_time,
            trigger_item_id=point.item_id,
            evidence=evidence_at(self.stories.values(), point.event_time, config),
            rules_version=rules_version,
            burst=burst,
        )
        self.notices.append(notice)
        self.last_notice_id = notice.notice_id

    def forget(self, now: datetime, config: ScoringConfig) -> None:
        """Drop stories that are past the burst baseline and have decayed to nothing."""
        horizon = config.bursts.window + config.bursts.baseline
        for story_id, story in list(self.stories.items()):
            if now - story.first_seen <= horizon:
                continue
            if abs(sum(story_breakdown(story, now, config).values())) < config.forget_below:
                del self.stories[story_id]
                for item in story.items.values():
                    self.item_story.pop(item.item_id, None)
                    self.forgotten.append(_trace(item.item_id, item.revision))
        del self.forgotten[:-FORGOTTEN_KEPT]


# Enough to cover what a crash can redeliver (the items of one commit interval).
FORGOTTEN_KEPT = 2000
# How often, in event time, ticks have the level judged and old stories forgotten.
JUDGE_TICKS_EVERY = timedelta(hours=1)
FORGET_EVERY = timedelta(days=1)


def _trace(item_id: str, revision: str) -> str:
    return hashlib.blake2b(f"{item_id}|{revision}".encode(), digest_size=8).hexdigest()


def _is_known(state: DyadState, item: ItemTagged) -> bool:
    if state.forgotten and _trace(item.item_id, item.revision) in state.forgotten:
        return True
    pending = state.pending.get(item.item_id)
    if pending is not None:
        return pending.revision == item.revision
    story_id = state.item_story.get(item.item_id)
    if story_id is None:
        return False
    story = state.stories.get(story_id)
    return story is not None and story.items[item.item_id].revision == item.revision


def escalate(state: DyadState, item: ItemTagged, config: ScoringConfig) -> Escalation:
    """Fold one tagged item into a dyad's state; say which notices that settles."""
    relevant = item.relevant and item.dyad == state.dyad
    if _is_known(state, item):
        return Escalation(state, (), changed=False)
    late = state.settled_at is not None and item.event_time <= state.settled_at
    if late and not relevant and item.item_id not in state.item_story:
        return Escalation(state, (), changed=False)

    fold = _Fold.of(state)
    pending = dict(state.pending)
    story_item = story_item_of(item) if relevant else None
    if story_item is None and item.item_id in state.item_story:
        fold.withdraw(item.item_id, config)
    elif late or (story_item is not None and item.item_id in state.item_story):
        # Too late to be decided in order, or a new revision of a settled item: it
        # counts from now on, at its own event time, and the level is judged again
        # now (at the settled time), since the index now includes it.
        assert story_item is not None
        fold.place(story_item, config)
        if state.settled_at is not None:
            now = PendingItem(
                item_id=item.item_id,
                revision=item.revision,
                event_time=state.settled_at,
                story_item=story_item,
            )
            fold.evaluate(now, config, item.rules_version)
    elif not late:
        pending[item.item_id] = PendingItem(
            item_id=item.item_id,
            revision=item.revision,
            event_time=item.event_time,
            story_item=story_item,
        )

    watermark = max(state.watermark or item.event_time, item.event_time)
    settle_until = watermark - config.allowed_lateness
    ready = sorted(
        (p for p in pending.values() if p.event_time <= settle_until),
        key=lambda p: (p.event_time, p.item_id),
    )
    for point in ready:
        del pending[point.item_id]
        if point.story_item is not None:
            fold.place(point.story_item, config)
        fold.evaluate(point, config, item.rules_version)
    settled_at = max(state.settled_at or settle_until, settle_until)
    last_forgetting = state.last_forgetting
    if last_forgetting is None or settled_at - last_forgetting >= FORGET_EVERY:
        fold.forget(settled_at, config)
        last_forgetting = settled_at

    next_state = DyadState(
        dyad=state.dyad,
        level=fold.level,
        level_since=fold.level_since,
        watermark=watermark,
        settled_at=settled_at,
        pending=pending,
        stories=fold.stories,
        item_story=fold.item_story,
        forgotten=fold.forgotten,
        last_burst=fold.last_burst,
        last_notice_id=fold.last_notice_id,
        last_judged=fold.last_judged,
        last_forgetting=last_forgetting,
    )
    return Escalation(next_state, tuple(fold.notices), changed=True)


def settle_all(state: DyadState, config: ScoringConfig, rules_version: str) -> Escalation:
    """Decide everything still pending, as if the stream had moved far past it.

    For the end of a backtest: the live stream settles these once later items arrive.
    """
    if not state.pending:
        return Escalation(state, (), changed=False)
    fold = _Fold.of(state)
    ready = sorted(state.pending.values(), key=lambda p: (p.event_time, p.item_id))
    for point in ready:
        if point.story_item is not None:
            fold.place(point.story_item, config)
        fold.evaluate(point, config, rules_version)
    settled_at = max(ready[-1].event_time, state.settled_at or ready[-1].event_time)
    next_state = state.model_copy(
        update={
            "level": fold.level,
            "level_since": fold.level_since,
            "settled_at": settled_at,
            "pending": {},
            "stories": fold.stories,
            "item_story": fold.item_story,
            "last_burst": fold.last_burst,
            "last_notice_id": fold.last_notice_id,
            "last_judged": fold.last_judged,
        }
    )
    return Escalation(next_state, tuple(fold.notices), changed=True)


def tension_state_of(state: DyadState, config: ScoringConfig, last_item_id: str) -> TensionState:
    """The wire view of a state: the index at the latest event time seen."""
    as_of = state.watermark
    assert as_of is not None, "a dyad state is published only after its first item"
    breakdown = breakdown_at(state.stories.values(), as_of, config)
    return TensionState(
        dyad=state.dyad,
        level=state.level,
        index=index_of(breakdown),
        breakdown=breakdown,
        as_of=as_of,
        items_counted=len(state.item_story),
        last_item_id=last_item_id,
        last_notice_id=state.last_notice_id,
        stories_counted=len(state.stories),
        settled_at=state.settled_at,
    )
