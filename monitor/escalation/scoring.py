"""The tension index of a dyad and its levels: pure functions over event time.

`escalate(state, item, config)` is the whole decision: given the state of a
dyad and one tagged item, it returns the next state and the notices to
publish. It never reads a clock; "now" is the latest event time seen.

Idempotent by construction: the state keeps one contribution per item id,
so a redelivered item changes nothing and an edited item (new revision)
replaces its earlier contribution instead of adding to it.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from monitor.errors import MonitorError
from schemas import (
    LEVELS,
    SIGNAL_IDS,
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
class ScoringConfig:
    weights: Mapping[str, float]
    raise_at: Mapping[Level, float]
    half_life: timedelta
    lower_factor: float
    min_dwell: timedelta
    forget_below: float
    evidence_items: int

    @classmethod
    def load(cls, path: Path = DEFAULT_SCORING) -> ScoringConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            weights = {str(k): float(v) for k, v in data["weights"].items()}
            raise_at: dict[Level, float] = {
                level: float(data["raise_at"][level]) for level in LEVELS[1:]
            }
            config = cls(
                weights=weights,
                raise_at=raise_at,
                half_life=timedelta(hours=float(data["half_life_hours"])),
                lower_factor=float(data["lower_factor"]),
                min_dwell=timedelta(hours=float(data["min_dwell_hours"])),
                forget_below=float(data["forget_below"]),
                evidence_items=int(data["evidence_items"]),
            )
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
            raise ScoringConfigError(f"{path}: {type(error).__name__}: {error}") from error
        unknown = set(weights) - set(SIGNAL_IDS)
        if unknown:
            raise ScoringConfigError(f"{path}: unknown signals in [weights]: {sorted(unknown)}")
        thresholds = [raise_at[level] for level in LEVELS[1:]]
        if thresholds != sorted(thresholds) or thresholds[0] <= 0:
            raise ScoringConfigError(f"{path}: [raise_at] must be positive and increasing")
        if not 0 < config.lower_factor < 1:
            raise ScoringConfigError(f"{path}: lower_factor must be between 0 and 1")
        return config


class Contribution(BaseModel):
    """What one item adds to a dyad's index (its weight at its own event time)."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    revision: str
    event_time: UtcDatetime
    signals: tuple[str, ...]
    weight: float
    headline: str
    source: str
    link: str | None


class DyadState(BaseModel):
    """The table value for one dyad. Internal, not a wire contract."""

    model_config = ConfigDict(frozen=True)

    dyad: str
    level: Level = "calm"
    level_since: UtcDatetime | None = None
    as_of: UtcDatetime | None = None
    contributions: dict[str, Contribution] = {}
    last_item_id: str = ""
    last_notice_id: str | None = None


def decay_factor(age: timedelta, half_life: timedelta) -> float:
    return math.pow(0.5, max(age, timedelta(0)) / half_life)


def breakdown_at(
    contributions: Mapping[str, Contribution], now: datetime, config: ScoringConfig
) -> dict[str, float]:
    """Decayed contribution per signal at `now` (items published after `now` excluded)."""
    totals: dict[str, float] = {}
    for contribution in contributions.values():
        if contribution.event_time > now:
            continue
        factor = decay_factor(now - contribution.event_time, config.half_life)
        for signal in contribution.signals:
            totals[signal] = totals.get(signal, 0.0) + config.weights.get(signal, 0.0) * factor
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


def notice_id_for(dyad: str, kind: str, level: Level, item: ItemTagged) -> str:
    """Content-derived: the same trigger always yields the same notice id."""
    digest = hashlib.sha256(
        f"{dyad}|{kind}|{level}|{item.item_id}|{item.revision}".encode()
    ).hexdigest()
    return f"n-{digest[:24]}"


def contribution_of(item: ItemTagged, config: ScoringConfig) -> Contribution:
    weighted = tuple(s for s in item.signals if config.weights.get(s, 0.0) != 0.0)
    return Contribution(
        item_id=item.item_id,
        revision=item.revision,
        event_time=item.event_time,
        signals=weighted,
        weight=sum(config.weights[s] for s in weighted),
        headline=item.title,
        source=item.source,
        link=item.link,
    )


def _evidence(
    contributions: Mapping[str, Contribution], now: datetime, config: ScoringConfig
) -> list[NoticeEvidence]:
    scored = [
        (c.weight * decay_factor(now - c.event_time, config.half_life), c)
        for c in contributions.values()
        if c.event_time <= now and c.weight != 0.0
    ]
    # Largest movers first; ties broken by time then id, so the order is stable.
    scored.sort(key=lambda pair: (-abs(pair[0]), pair[1].event_time, pair[1].item_id))
    return [
        NoticeEvidence(
            item_id=c.item_id,
            headline=c.headline,
            source=c.source,
            link=c.link,
            published=c.event_time,
            signals=list(c.signals),  # type: ignore[arg-type]
            contribution=round(weight, 4),
        )
        for weight, c in scored[: config.evidence_items]
    ]


@dataclass(frozen=True)
class Escalation:
    state: DyadState
    notices: tuple[EscalationNotice, ...]
    changed: bool

    def tension_state(self, config: ScoringConfig) -> TensionState:
        return tension_state_of(self.state, config)


def tension_state_of(state: DyadState, config: ScoringConfig) -> TensionState:
    as_of = state.as_of
    assert as_of is not None, "a dyad state is published only after its first item"
    breakdown = breakdown_at(state.contributions, as_of, config)
    return TensionState(
        dyad=state.dyad,
        level=state.level,
        index=index_of(breakdown),
        breakdown=breakdown,
        as_of=as_of,
        items_counted=len(state.contributions),
        last_item_id=state.last_item_id,
        last_notice_id=state.last_notice_id,
    )


def escalate(state: DyadState, item: ItemTagged, config: ScoringConfig) -> Escalation:
    """Fold one tagged item into a dyad's state; say which notices that raises."""
    if not item.relevant or item.dyad != state.dyad:
        return Escalation(state, (), changed=False)
    known = state.contributions.get(item.item_id)
    if known is not None and known.revision == item.revision:
        return Escalation(state, (), changed=False)

    now = max(state.as_of, item.event_time) if state.as_of is not None else item.event_time
    contributions = dict(state.contributions)
    contributions[item.item_id] = contribution_of(item, config)
    # Forget what has decayed to nothing, so the state stays small over years.
    contributions = {
        item_id: c
        for item_id, c in contributions.items()
        if abs(c.weight) * decay_factor(now - c.event_time, config.half_life) >= config.forget_below
        or c.item_id == item.item_id
    }
    breakdown = breakdown_at(contributions, now, config)
    index = index_of(breakdown)
    held_for = now - state.level_since if state.level_since is not None else None
    level = next_level(state.level, index, held_for, config)

    notices: tuple[EscalationNotice, ...] = ()
    level_since = state.level_since
    last_notice_id = state.last_notice_id
    if level != state.level:
        kind: Literal["raised", "lowered"] = (
            "raised" if LEVELS.index(level) > LEVELS.index(state.level) else "lowered"
        )
        notice = EscalationNotice(
            notice_id=notice_id_for(state.dyad, kind, level, item),
            dyad=state.dyad,
            kind=kind,
            level=level,
            previous_level=state.level,
            index=index,
            breakdown=breakdown,
            event_time=item.event_time,
            trigger_item_id=item.item_id,
            evidence=_evidence(contributions, now, config),
            rules_version=item.rules_version,
        )
        notices = (notice,)
        level_since = now
        last_notice_id = notice.notice_id
    elif level_since is None:
        level_since = now

    next_state = DyadState(
        dyad=state.dyad,
        level=level,
        level_since=level_since,
        as_of=now,
        contributions=contributions,
        last_item_id=item.item_id,
        last_notice_id=last_notice_id,
    )
    return Escalation(next_state, notices, changed=True)
