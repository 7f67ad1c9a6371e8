"""Long-running roles: the stream worker and the collector loop, with clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from monitor import tagging
from monitor.clock import utc_now
from monitor.collect.catalogue import FeedSpec
from monitor.collect.guard import guarded_session
from monitor.collect.runner import Collector, CollectorOptions, RoundReport, load_states
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.escalation.scoring import ScoringConfig
from monitor.kafka import producer
from monitor.observe.broker_watch import BrokerMemory, BrokerWatch
from monitor.observe.metrics import Metrics, instrument, serve_web_views
from monitor.streams import create_pipeline
from monitor.tagging.rules import Rules
from monitor.topics import ensure_topics
from schemas import FeedPolled, FeedStale

log = logging.getLogger(__name__)


class DeliveryFailedError(MonitorError):
    """The worker stopped because the broker did not take its output in time."""


async def first_of(*waits: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of `waits` is done; cancel the others."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    rules: Rules,
    scoring: ScoringConfig,
    metrics: Metrics | None = None,
) -> None:
    """Tagger and escalator until `stop` is set.

    With a web port, Faust's web server also serves /metrics: Faust's stream
    metrics and the domain's (`metrics`, which `monitor run` shares with its collector).
    """
    await ensure_topics(settings)
    metrics = metrics if metrics is not None else Metrics()
    pipeline = create_pipeline(settings, rules=rules, scoring=scoring, observe=metrics.observe)
    if settings.web_port is not None:
        serve_web_views(pipeline.app, settings)  # before anything builds the web server
        instrument(pipeline.app, metrics, settings)
    await pipeline.app.start()
    log.info(
        "worker started: rules %s, %s tagger",
        pipeline.rules.version,
        "compiled" if tagging.COMPILED else "pure-Python (slower: the extension was not built)",
    )
    watch = asyncio.create_task(
        BrokerWatch(settings.bootstrap, metrics, memory=BrokerMemory(settings.data_dir)).run(stop)
    )
    failed = pipeline.failed
    try:
        await first_of(stop.wait(), failed.happened.wait())
    finally:
        await stop_watching(watch)
        if failed.error is not None:
            # Records whose output failed stay unacked: waiting for their acks would
            # wait for ever. Faust commits no further than the first of them.
            pipeline.app.conf.stream_wait_empty = False
        await pipeline.app.stop()
    if failed.error is not None:
        raise DeliveryFailedError(
            f"a delivery to the broker failed for good ({failed.error!r}): the worker"
            " stopped; what it had not delivered is read again when it starts"
        )


async def run_collector(
    settings: Settings,
    feeds: Sequence[FeedSpec],
    stop: asyncio.Event,
    *,
    once: bool = False,
    on_poll: Callable[[FeedPolled], None] | None = None,
    on_round: Callable[[RoundReport], None] | None = None,
    on_stale: Callable[[FeedStale], None] | None = None,
    on_write_failure: Callable[[str], None] | None = None,
    metrics: Metrics | None = None,
) -> list[RoundReport]:
    """Poll every feed on its schedule (or each once) and publish what is new.

    The collector's memory is restored from `collector.state` first, so a restart
    neither republishes nor loses items. With `once`, returns the one round's
    report; otherwise runs until `stop` and reports each interval through `on_round`.
    """
    await ensure_topics(settings)
    options = CollectorOptions.from_settings(settings)
    states = await load_states(settings)
    async with (
        producer(settings) as client,
        guarded_session(options.policy, limit=options.concurrency) as session,
    ):
        collector = Collector(feeds, client, session, options, utc_now, states=states)
        collector.on_poll, collector.on_stale = on_poll, on_stale
        collector.on_write_failure = on_write_failure
        if once:
            report = await collector.run_once()
            if on_round is not None:
                on_round(report)
            return [report]
        # A running collector also watches the broker (monitor run: the worker does).
        watch = (
            BrokerWatch(settings.bootstrap, metrics, memory=BrokerMemory(settings.data_dir))
            if metrics is not None
            else None
        )
        watching = asyncio.create_task(watch.run(stop)) if watch is not None else None
        try:
            await collector.run(stop, on_round)
        finally:
            await stop_watching(watching)
    return []


async def stop_watching(watch: asyncio.Task[None] | None) -> None:
    if watch is not None:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
