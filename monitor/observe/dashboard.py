"""The dashboard: one page that follows the topics and redraws itself.

A small aiohttp server (`monitor dashboard --port`) reads the topics the way
any subscriber does: tension.state gives the index timeline, alerts.escalations
the notices, feeds.health the feed health, news.deadletter the failures; the
offsets give throughput and consumer lag. The page (monitor/observe/page.py)
asks /api/snapshot every few seconds and draws it; it loads nothing from
elsewhere, so it works where browsers have no internet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from monitor.clock import Clock, utc_now
from monitor.config import Settings
from monitor.escalation.scoring import DEFAULT_SCORING, ScoringConfig
from monitor.kafka import read_topic
from monitor.observe.health import (
    GroupLag,
    HealthReport,
    Thresholds,
    latest_per_dyad,
    stream_offsets,
    summarize_dead_letters,
    summarize_feeds,
)
from monitor.observe.page import PAGE
from monitor.observe.skips import Skips
from monitor.records import RawRecord
from monitor.topics import (
    ALERTS_ESCALATIONS,
    FEEDS_HEALTH,
    NEWS_DEADLETTER,
    TENSION_STATE,
    TopicSpec,
)
from monitor.web import serving
from schemas import (
    DeadLetter,
    EscalationNotice,
    FeedPolled,
    FeedStale,
    TensionState,
    decode_feed_health,
)

log = logging.getLogger(__name__)

MAX_NOTICES = 20
MAX_TIMELINE = 5000


@dataclass
class DashboardState:
    """What the followers have read so far; snapshots are computed from it."""

    states: list[TensionState] = field(default_factory=list)
    notices: dict[str, EscalationNotice] = field(default_factory=dict)
    polls: list[FeedPolled] = field(default_factory=list)
    silences: list[FeedStale] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)
    lags: list[GroupLag] = field(default_factory=list)
    # (monotonic time, records per topic), to turn counts into rates.
    samples: deque[tuple[float, dict[str, int]]] = field(default_factory=lambda: deque(maxlen=60))
    skips: Skips = field(default_factory=lambda: Skips("dashboard"))

    def take(self, spec: TopicSpec, record: RawRecord) -> None:
        """Keep what `record` of `spec` shows; what cannot be read is skipped and said."""
        if spec is TENSION_STATE:
            state = self.skips.decode(record, TensionState, key_of=lambda s: s.dyad)
            if state is not None:
                self.states.append(state)
                del self.states[:-MAX_TIMELINE]
        elif spec is ALERTS_ESCALATIONS:
            notice = self.skips.decode(record, EscalationNotice, key_of=lambda n: n.dyad)
            if notice is not None:
                self.notices[notice.notice_id] = notice
        elif spec is FEEDS_HEALTH:
            event = self.skips.decode_with(
                record, decode_feed_health, FeedPolled, key_of=lambda e: e.feed_url
            )
            if isinstance(event, FeedStale):
                self.silences.append(event)
            elif event is not None:
                self.polls.append(event)
        elif spec is NEWS_DEADLETTER:
            letter = self.skips.decode(record, DeadLetter)
            if letter is not None:
                self.letters.append(letter)

    def rates(self, window_s: float = 60.0) -> dict[str, float]:
        """Records per minute per topic over the last `window_s` seconds of samples."""
        if len(self.samples) < 2:
            return {}
        newest_at, newest = self.samples[-1]
        oldest_at, oldest = next(
            ((at, counts) for at, counts in self.samples if newest_at - at <= window_s),
            self.samples[0],
        )
        if (oldest_at, oldest) == (newest_at, newest):
            oldest_at, oldest = self.samples[-2]
        elapsed = max(newest_at - oldest_at, 1e-6)
        return {
            topic: max(0, count - oldest.get(topic, 0)) * 60.0 / elapsed
            for topic, count in newest.items()
        }


def snapshot(
    state: DashboardState, now: datetime, thresholds: Thresholds, scoring: ScoringConfig
) -> dict[str, Any]:
    """The JSON the page draws: pure, so that what it shows is tested without a browser."""
    report = HealthReport(
        checked_at=now,
        states=latest_per_dyad(state.states),
        feeds=tuple(summarize_feeds(state.polls, now, thresholds.stale_after, state.silences)),
        lags=tuple(state.lags),
        dead_letters=summarize_dead_letters(state.letters, now, thresholds.dead_letter_window),
        records=dict(state.records),
        thresholds=thresholds,
        skipped=state.skips.by_reason(),
    )
    health = report.as_json()
    ordered = sorted(state.states, key=lambda s: s.as_of)
    notices = sorted(state.notices.values(), key=lambda n: n.event_time, reverse=True)
    rates = state.rates()
    return {
        "generated_at": now.isoformat(),
        "ok": health["ok"],
        "attention": health["attention"],
        "current": health["states"],
        "thresholds": dict(scoring.raise_at),
        "timeline": [
            {"t": s.as_of.isoformat(), "index": round(s.index, 3), "level": s.level}
            for s in ordered
        ],
        "notices": [n.model_dump(mode="json") for n in notices[:MAX_NOTICES]],
        "feeds": health["feeds"],
        "dead_letters": health["dead_letters"],
        "streams": [
            {"topic": topic, "records": count, "per_min": round(rates.get(topic, 0.0), 1)}
            for topic, count in sorted(state.records.items())
            if not topic.startswith("__")
        ],
        "consumer_lag": health["consumer_lag"],
        "skipped": health["skipped"],
    }


async def _follow(settings: Settings, spec: TopicSpec, state: DashboardState) -> None:
    async for record in read_topic(settings, spec, follow=True, poll_timeout_ms=300):
        state.take(spec, record)


async def _sample_streams(settings: Settings, state: DashboardState, every_s: float) -> None:
    while True:
        try:
            records, lags = await stream_offsets(settings)
        except Exception as error:  # a broker hiccup must not take the page down
            log.warning("dashboard: cannot read offsets: %s", error)
        else:
            state.records, state.lags = records, lags
            state.samples.append((time.monotonic(), records))
        await asyncio.sleep(every_s)


def create_app(
    state: DashboardState,
    thresholds: Thresholds,
    refresh_s: float,
    scoring: ScoringConfig,
    clock: Clock = utc_now,
) -> web.Application:
    page = PAGE.replace("__REFRESH_MS__", str(int(refresh_s * 1000)))

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def api(_request: web.Request) -> web.Response:
        return web.json_response(snapshot(state, clock(), thresholds, scoring))

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/api/snapshot", api)
    return app


@asynccontextmanager
async def serve_dashboard(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    refresh_s: float = 5.0,
) -> AsyncIterator[str]:
    """Follow the topics and serve the page until the block ends; yields its URL."""
    state = DashboardState()
    thresholds = Thresholds.from_settings(settings)
    scoring = ScoringConfig.load(settings.scoring_file or DEFAULT_SCORING)
    tasks = [
        asyncio.create_task(_follow(settings, spec, state))
        for spec in (TENSION_STATE, ALERTS_ESCALATIONS, FEEDS_HEALTH, NEWS_DEADLETTER)
    ]
    tasks.append(asyncio.create_task(_sample_streams(settings, state, max(1.0, refresh_s))))
    try:
        app = create_app(state, thresholds, refresh_s, scoring)
        async with serving(app, host, port) as bound:
            yield f"http://{host}:{bound}/"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
