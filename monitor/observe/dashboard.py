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
import bisect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from monitor.clock import Clock, utc_now
from monitor.config import Settings
from monitor.escalation.scoring import DEFAULT_SCORING, ScoringConfig
from monitor.kafka import read_topic
from monitor.observe.health import (
    DeadLetterTally,
    FeedTallies,
    GroupLag,
    HealthReport,
    Thresholds,
    latest_per_dyad,
    stream_offsets,
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
    TensionState,
    decode_feed_health,
)

log = logging.getLogger(__name__)

# Shown, and kept: the latest by event time (a redelivered one replaces its copy; one
# older than all kept would not be shown, and is not kept).
MAX_NOTICES = 20
TIMELINE_BUCKETS = 1000  # per dyad: the chart's resolution halves each time history outgrows it
FINEST_BUCKET = timedelta(hours=1)  # levels are judged on the hour
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Bucket:
    """The states of one stretch of time: its peak (a spike stays on the chart) and its
    last (where it ended)."""

    start: datetime
    peak: TensionState
    last: TensionState

    def add(self, state: TensionState) -> None:
        if state.index > self.peak.index:
            self.peak = state
        if state.as_of >= self.last.as_of:
            self.last = state

    def merge(self, other: Bucket) -> None:
        self.add(other.peak)
        self.add(other.last)

    def points(self) -> list[TensionState]:
        if self.peak is self.last:
            return [self.peak]
        return sorted((self.peak, self.last), key=lambda s: s.as_of)


@dataclass
class Timeline:
    """A dyad's index over its whole history in at most TIMELINE_BUCKETS buckets: an
    hour each while that fits, twice as wide (neighbours merged) each time it does not.
    A month of hourly states is 720 buckets of an hour; a year, 548 of 16 hours."""

    width: timedelta = FINEST_BUCKET
    buckets: list[Bucket] = field(default_factory=list)

    def _start(self, moment: datetime) -> datetime:
        return EPOCH + ((moment - EPOCH) // self.width) * self.width

    def add(self, state: TensionState) -> None:
        start = self._start(state.as_of)
        if not self.buckets or start > self.buckets[-1].start:
            self.buckets.append(Bucket(start, state, state))
        else:  # the last stretch, or (rarely) an earlier one
            at = bisect.bisect_left(self.buckets, start, key=lambda b: b.start)
            if at < len(self.buckets) and self.buckets[at].start == start:
                self.buckets[at].add(state)
            else:
                self.buckets.insert(at, Bucket(start, state, state))
        if len(self.buckets) > TIMELINE_BUCKETS:
            self._coarsen()

    def _coarsen(self) -> None:
        self.width *= 2
        merged: list[Bucket] = []
        for bucket in self.buckets:
            start = self._start(bucket.start)
            if merged and merged[-1].start == start:
                merged[-1].merge(bucket)
            else:
                merged.append(Bucket(start, bucket.peak, bucket.last))
        self.buckets = merged

    def points(self) -> list[TensionState]:
        return [point for bucket in self.buckets for point in bucket.points()]


@dataclass
class DashboardState:
    """What the followers have read so far, in space that does not grow with time:
    a timeline of bounded resolution and the latest state per dyad, the MAX_NOTICES
    latest notices, a tally per feed, the dead letters folded. Snapshots are computed
    from it."""

    timelines: dict[str, Timeline] = field(default_factory=dict)  # per dyad
    latest: dict[str, TensionState] = field(default_factory=dict)  # per dyad
    notices: dict[str, EscalationNotice] = field(default_factory=dict)
    feeds: FeedTallies = field(default_factory=FeedTallies)
    letters: DeadLetterTally = field(
        default_factory=lambda: DeadLetterTally(Thresholds().dead_letter_window)
    )
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
                self.timelines.setdefault(state.dyad, Timeline()).add(state)
                self.latest[state.dyad] = state
        elif spec is ALERTS_ESCALATIONS:
            notice = self.skips.decode(record, EscalationNotice, key_of=lambda n: n.dyad)
            if notice is not None:
                self._keep(notice)
        elif spec is FEEDS_HEALTH:
            event = self.skips.decode_with(
                record, decode_feed_health, FeedPolled, key_of=lambda e: e.feed_url
            )
            if event is not None:
                self.feeds.add(event)
        elif spec is NEWS_DEADLETTER:
            letter = self.skips.decode(record, DeadLetter)
            if letter is not None:
                self.letters.add(letter)

    def _keep(self, notice: EscalationNotice) -> None:
        self.notices[notice.notice_id] = notice
        if len(self.notices) > MAX_NOTICES:
            oldest = min(self.notices.values(), key=lambda n: (n.event_time, n.notice_id))
            del self.notices[oldest.notice_id]

    def retained(self) -> dict[str, int]:
        """How many entries each part holds: what stays bounded however long it runs."""
        return {
            "timeline buckets": sum(len(t.buckets) for t in self.timelines.values()),
            "notices": len(self.notices),
            "feeds": len(self.feeds),
            "dead letter minutes": len(self.letters.minutes),
        }

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
        states=latest_per_dyad(state.latest.values()),
        feeds=tuple(state.feeds.health(now, thresholds.stale_after)),
        lags=tuple(state.lags),
        dead_letters=state.letters.summary(now),
        records=dict(state.records),
        thresholds=thresholds,
        skipped=state.skips.by_reason(),
    )
    health = report.as_json()
    ordered = sorted(
        (point for timeline in state.timelines.values() for point in timeline.points()),
        key=lambda s: s.as_of,
    )
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
    thresholds = Thresholds.from_settings(settings)
    state = DashboardState(letters=DeadLetterTally(thresholds.dead_letter_window))
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
