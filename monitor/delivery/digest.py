"""Digests: one summary per period (daily by default) on `alerts.digests`.

A digest says how the level went over the period, which stories weighed most
and how many relevant items carried each signal. Periods are in event time
and aligned to the epoch (a daily digest covers 00:00–24:00 UTC), so the same
period always gives the same digest id: a digest that is compiled twice
(a restart, a second digester) is published once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from monitor.clock import Clock, utc_now
from monitor.config import Settings
from monitor.kafka import producer, publish, read_topic
from monitor.observe.progress import Progress
from monitor.observe.skips import Skips
from monitor.records import Outgoing
from monitor.topics import (
    ALERTS_DIGESTS,
    ALERTS_ESCALATIONS,
    NEWS_TAGGED,
    TENSION_STATE,
    TopicSpec,
)
from schemas import (
    DYAD_AZ_RU,
    LEVELS,
    DigestCompiled,
    DigestStory,
    EscalationNotice,
    Event,
    ItemTagged,
    Level,
    LevelSpan,
    TensionState,
)

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def period_containing(moment: datetime, period: timedelta) -> tuple[datetime, datetime]:
    """The epoch-aligned period [start, end) that holds `moment`."""
    steps = (moment - EPOCH) // period
    start = EPOCH + steps * period
    return start, start + period


def digest_id(dyad: str, start: datetime, end: datetime) -> str:
    text = f"{dyad}\n{start.isoformat()}\n{end.isoformat()}"
    return "g-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def compile_digest(
    dyad: str,
    start: datetime,
    end: datetime,
    tagged: Iterable[ItemTagged],
    states: Iterable[TensionState],
    notices: Iterable[EscalationNotice],
    weights: Mapping[str, float],
    compiled_at: datetime,
    top: int = 5,
) -> DigestCompiled:
    """The digest of [start, end) for `dyad`, from the records of the topics (pure)."""
    in_period = [
        item
        for item in tagged
        if item.relevant and item.dyad == dyad and start <= item.event_time < end
    ]
    latest: dict[str, ItemTagged] = {item.item_id: item for item in in_period}  # edits replace
    items = list(latest.values())
    signals = Counter(signal for item in items for signal in item.signals)

    def weight(item: ItemTagged) -> float:
        return sum(abs(weights.get(signal, 0.0)) for signal in item.signals)

    ranked = sorted(items, key=lambda i: (-weight(i), i.event_time, i.item_id))
    stories = [
        DigestStory(
            item_id=item.item_id,
            headline=item.title,
            source=item.source,
            link=item.link,
            published=item.event_time,
            signals=list(item.signals),
            weight=round(weight(item), 3),
        )
        for item in ranked[:top]
    ]

    history = sorted((s for s in states if s.dyad == dyad), key=lambda s: s.as_of)
    before = [s for s in history if s.as_of < start]
    during = [s for s in history if start <= s.as_of < end]
    level: Level = before[-1].level if before else "calm"
    index = before[-1].index if before else 0.0
    spans = [LevelSpan(level=level, since=start, index=round(index, 3))]
    index_max = index
    for state in during:
        index_max = max(index_max, state.index)
        if state.level != spans[-1].level:
            spans.append(LevelSpan(level=state.level, since=state.as_of, index=state.index))
        index = state.index
    period_notices = sorted(
        (n for n in notices if n.dyad == dyad and start <= n.event_time < end),
        key=lambda n: n.event_time,
    )
    unique_notices = list(dict.fromkeys(n.notice_id for n in period_notices))
    return DigestCompiled(
        digest_id=digest_id(dyad, start, end),
        dyad=dyad,
        period_start=start,
        period_end=end,
        level_start=spans[0].level,
        level_end=spans[-1].level,
        level_max=max((span.level for span in spans), key=LEVELS.index),
        index_end=round(index, 3),
        index_max=round(index_max, 3),
        levels=spans,
        notices=len(unique_notices),
        notice_ids=unique_notices,
        items_relevant=len(items),
        signals=dict(sorted(signals.items(), key=lambda kv: (-kv[1], kv[0]))),
        top_stories=stories,
        compiled_at=compiled_at,
    )


async def _read_all(
    settings: Settings,
    spec: TopicSpec,
    event_type: type[E],
    progress: Progress | None,
    skips: Skips,
    key_of: Callable[[E], str] | None = None,
) -> list[E]:
    events = []
    async for record in read_topic(settings, spec):
        # Bad records are the dead letters' business; here they are skipped, and said.
        event = skips.decode(record, event_type, key_of=key_of)
        if event is not None:
            events.append(event)
        if progress is not None:
            progress.advance()
    return events


async def read_history(
    settings: Settings, progress: Progress | None = None, skips: Skips | None = None
) -> tuple[list[ItemTagged], list[TensionState], list[EscalationNotice]]:
    """Everything the digest is made of, read from the start of each topic."""
    skips = skips if skips is not None else Skips("digest")
    return (
        await _read_all(
            settings, NEWS_TAGGED, ItemTagged, progress, skips, key_of=lambda i: i.item_id
        ),
        await _read_all(
            settings, TENSION_STATE, TensionState, progress, skips, key_of=lambda s: s.dyad
        ),
        await _read_all(
            settings,
            ALERTS_ESCALATIONS,
            EscalationNotice,
            progress,
            skips,
            key_of=lambda n: n.dyad,
        ),
    )


async def published_digest_ids(settings: Settings, skips: Skips | None = None) -> set[str]:
    skips = skips if skips is not None else Skips("digest")
    ids = set()
    async for record in read_topic(settings, ALERTS_DIGESTS):
        digest = skips.decode(record, DigestCompiled, key_of=lambda d: d.dyad)
        if digest is not None:
            ids.add(digest.digest_id)
    return ids


async def publish_digest(
    settings: Settings,
    start: datetime,
    end: datetime,
    weights: Mapping[str, float],
    *,
    dyad: str = DYAD_AZ_RU,
    now: datetime | None = None,
    progress: Progress | None = None,
    skips: Skips | None = None,
) -> tuple[DigestCompiled, bool]:
    """Compile the digest of [start, end) and publish it unless it already was.

    Returns the digest and whether this call published it. What cannot be read is
    skipped, logged and counted in `skips`.
    """
    skips = skips if skips is not None else Skips("digest")
    tagged, states, notices = await read_history(settings, progress, skips)
    digest = compile_digest(dyad, start, end, tagged, states, notices, weights, now or utc_now())
    if digest.digest_id in await published_digest_ids(settings, skips):
        return digest, False
    async with producer(settings) as client:
        await publish(client, [Outgoing.of(ALERTS_DIGESTS, dyad, digest)])
    return digest, True


async def run_digests(
    settings: Settings,
    period: timedelta,
    weights: Mapping[str, float],
    stop: asyncio.Event,
    *,
    clock: Clock = utc_now,
    on_digest: Callable[[DigestCompiled, bool], None] | None = None,
    skips: Skips | None = None,
) -> None:
    """At the end of each period, publish its digest; until `stop`."""
    while not stop.is_set():
        _, boundary = period_containing(clock(), period)
        wait_s = (boundary - clock()).total_seconds()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, wait_s))
        if stop.is_set():
            return
        digest, fresh = await publish_digest(
            settings, boundary - period, boundary, weights, skips=skips
        )
        if on_digest is not None:
            on_digest(digest, fresh)


def format_digest(digest: DigestCompiled) -> str:
    levels = " → ".join(f"{span.level} ({span.since:%m-%d %H:%M})" for span in digest.levels)
    signals = ", ".join(f"{signal} {n}" for signal, n in digest.signals.items()) or "none"
    lines = [
        f"digest {digest.dyad} {digest.period_start:%Y-%m-%d %H:%M} – "
        f"{digest.period_end:%Y-%m-%d %H:%M} UTC",
        f"  level:   {levels}; max {digest.level_max}, index {digest.index_end:.1f}"
        f" (max {digest.index_max:.1f})",
        f"  notices: {digest.notices}   relevant items: {digest.items_relevant}",
        f"  signals: {signals}",
    ]
    for story in digest.top_stories:
        lines.append(f"  • {story.headline} — {story.source} [{', '.join(story.signals)}]")
    return "\n".join(lines)
