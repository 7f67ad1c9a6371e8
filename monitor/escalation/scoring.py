"""The scoring file and the pure arithmetic of the tension index: weights, decay,
settlements, levels.

Nothing here keeps state or reads a clock; `monitor.escalation.escalate` folds
records into a dyad's state with these functions, and the time it passes is
always the log's.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from monitor.errors import MonitorError
from monitor.escalation.stories import Story, StoryRules, corroboration
from schemas import LEVELS, SIGNAL_IDS, Level

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
    max_live_stories: int
    context_weight: float
    settle_weight: float
    stories: StoryRules
    bursts: BurstRules

    half_lives: Mapping[str, timedelta]

    def half_life_of(self, signal: str) -> timedelta:
        return self.half_lives.get(signal, self.half_life)

    @cached_property
    def decay_rates(self) -> dict[str, float]:
        """Per signal, ln 2 / half-life in seconds: weight × exp(−rate × age in seconds)."""
        return {
            signal: math.log(2) / self.half_life_of(signal).total_seconds() for signal in SIGNAL_IDS
        }

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
            max_live_stories=int(data.get("max_live_stories", 400)),
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
                max_items=int(stories.get("max_items", 24)),
                reworded_overlap=float(stories.get("reworded_overlap", 0.4)),
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
        if self.stories.max_items < 2:
            return "[stories] max_items must be at least 2"
        if self.max_live_stories < 1:
            return "max_live_stories must be positive"
        if self.stories.copy_distance > self.stories.text_distance:
            return "[stories] copy_distance must not exceed text_distance"
        return None


def decay_factor(age: timedelta, half_life: timedelta) -> float:
    return math.pow(0.5, max(age, timedelta(0)) / half_life)


@dataclass(frozen=True)
class StoryWeights:
    """A story's weight per signal before decay (corroboration and context included),
    and the share of the escalatory weight before it that it leaves unsettled."""

    raw: dict[str, float]
    settle_share: float


# id(story) → (the story, the config, its weights). A story is immutable and is
# weighed at every judgement while it is live: compute its weights once.
_WEIGHTS_CACHE: dict[int, tuple[Story, ScoringConfig, StoryWeights]] = {}
_WEIGHTS_CACHE_SIZE = 4096


def story_weights(story: Story, config: ScoringConfig) -> StoryWeights:
    """A story's weights under `config`, computed once per story value."""
    cached = _WEIGHTS_CACHE.get(id(story))
    if cached is not None and cached[0] is story and cached[1] is config:
        return cached[2]
    raw = {}
    strength = 0.0
    for signal, sources in story.sources.items():
        weight = config.weights.get(signal, 0.0)
        if not weight:
            continue
        corroborated = weight * corroboration(sources, config.stories.corroboration)
        if weight < 0:
            strength -= corroborated
        raw[signal] = corroborated * (config.context_weight if signal in story.context else 1.0)
    # A de-escalatory story settles 0.5^(strength / settle_weight) of what came before it.
    share = math.pow(0.5, strength / config.settle_weight) if strength > 0 else 1.0
    weights = StoryWeights(raw, share)
    if len(_WEIGHTS_CACHE) >= _WEIGHTS_CACHE_SIZE:
        _WEIGHTS_CACHE.clear()  # live stories are weighed again soon and come back
    _WEIGHTS_CACHE[id(story)] = (story, config, weights)
    return weights


def story_breakdown(
    story: Story, now: datetime, config: ScoringConfig, settled: float = 1.0
) -> dict[str, float]:
    """A story's decayed weight per signal at `now`, corroboration included.

    `settled` scales its escalatory signals: what later apologies and meetings
    have settled of it (see `settlement_factors`).
    """
    age = (now - story.first_seen).total_seconds()
    if age < 0:
        return {}
    rates = config.decay_rates
    return {
        signal: weight * math.exp(-rates[signal] * age) * (settled if weight > 0 else 1.0)
        for signal, weight in story_weights(story, config).raw.items()
    }


def settle_share(story: Story, config: ScoringConfig) -> float:
    """How much of the escalatory weight before it a story leaves unsettled (1: none).

    A de-escalatory story (an apology, a summit, compensation) settles part of
    the tension of every story before it, for good: their escalatory weight is
    multiplied by 0.5^(strength / settle_weight), strength being the story's
    de-escalatory weight with corroboration, before decay.
    """
    return story_weights(story, config).settle_share


def settlement_factors(
    stories: Iterable[Story], now: datetime, config: ScoringConfig
) -> dict[str, float]:
    """For each story seen by `now`, the share of its escalatory weight left unsettled."""
    settlers = [
        (story.first_seen, share)
        for story in stories
        if story.first_seen <= now and (share := settle_share(story, config)) < 1.0
    ]
    factors = {}
    for story in stories:
        if story.first_seen > now:
            continue
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
