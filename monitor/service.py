"""Long-running roles: the stream worker and the collector loop, with clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import aiohttp

from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import FetchLimits
from monitor.collect.runner import CollectorMemory, RoundReport, collect_round
from monitor.config import Settings
from monitor.kafka import producer
from monitor.streams import create_pipeline, utc_now
from monitor.topics import ensure_topics
from schemas import FeedPolled

log = logging.getLogger(__name__)


def stop_on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM ask for a clean stop instead of killing the process."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set, whichever comes first."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopper):
            pending.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


def fetch_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        total_timeout_s=settings.fetch_timeout_s, max_body_bytes=settings.max_feed_bytes
    )


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Tagger, router and escalator until `stop` is set."""
    await ensure_topics(settings)
    pipeline = create_pipeline(settings)
    await pipeline.app.start()
    log.info("worker started: rules %s", pipeline.rules.version)
    try:
        await stop.wait()
    finally:
        await pipeline.app.stop()


async def run_collector(
    settings: Settings,
    feeds: Sequence[FeedSpec],
    stop: asyncio.Event,
    *,
    once: bool = False,
    on_poll: Callable[[FeedPolled], None] | None = None,
    on_round: Callable[[RoundReport], None] | None = None,
) -> list[RoundReport]:
    """Poll every feed each interval (or once) and publish what is new."""
    await ensure_topics(settings)
    memory = CollectorMemory()
    reports: list[RoundReport] = []
    limits = fetch_limits(settings)
    async with producer(settings) as client, aiohttp.ClientSession() as session:
        while not stop.is_set():
            report = await collect_round(feeds, session, client, memory, limits, utc_now, on_poll)
            reports.append(report)
            if on_round is not None:
                on_round(report)
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.poll_interval_s)
    return reports
