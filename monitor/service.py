"""Long-running roles: the stream worker and the collector loop, with clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from monitor import tagging
from monitor.clock import utc_now
from monitor.collect.catalogue import FeedSpec
from monitor.collect.guard import guarded_session
from monitor.collect.runner import Collector, CollectorOptions, RoundReport, load_states
from monitor.config import Settings
from monitor.escalation.scoring import ScoringConfig
from monitor.kafka import producer
from monitor.observe.metrics import Metrics, instrument
from monitor.streams import create_pipeline
from monitor.tagging.rules import load_rules
from monitor.topics import ensure_topics
from schemas import FeedPolled, FeedStale

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


async def run_worker(
    settings: Settings, stop: asyncio.Event, metrics: Metrics | None = None
) -> None:
    """Tagger and escalator until `stop` is set.

    With a web port, Faust's web server also serves /metrics: Faust's stream
    metrics and the domain's (`metrics`, which `monitor run` shares with its collector).
    """
    # Rules and scoring first: a broken file fails before anything touches Kafka.
    rules = load_rules(settings.rules_dir)
    scoring = (
        ScoringConfig.load(settings.scoring_file) if settings.scoring_file else ScoringConfig.load()
    )
    await ensure_topics(settings)
    metrics = metrics if metrics is not None else Metrics()
    pipeline = create_pipeline(settings, rules=rules, scoring=scoring, observe=metrics.observe)
    if settings.web_port is not None:
        instrument(pipeline.app, metrics)
    await pipeline.app.start()
    log.info(
        "worker started: rules %s, %s tagger",
        pipeline.rules.version,
        "compiled" if tagging.COMPILED else "pure-Python (slower: the extension was not built)",
    )
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
    on_stale: Callable[[FeedStale], None] | None = None,
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
        if once:
            report = await collector.run_once()
            if on_round is not None:
                on_round(report)
            return [report]
        await collector.run(stop, on_round)
    return []
