"""The Faust application: two thin agents around the per-record steps.

    news.items ──tagger──▶ news.tagged
                     └───▶ tension.by-dyad ──escalator──▶ alerts.escalations, tension.state

The tagger sends the escalator only what it needs (relevant items, edits,
clock ticks), keyed by dyad: one hop for most of the news, two for the rest.

Each agent reads raw bytes (Faust's own decode-error path commits past the
record and then crashes the agent), so decoding happens in the step, and
any failure becomes a dead letter while the agent carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from monitor.clock import Clock, utc_now
from monitor.config import Settings
from monitor.escalation.agent import (
    DyadStates,
    dyad_records,
    escalate_record,
    tick_records,
)
from monitor.escalation.scoring import ScoringConfig
from monitor.records import Outgoing, RawRecord, dead_letter
from monitor.tagging.agent import tag_record
from monitor.tagging.rules import Rules, load_rules
from monitor.topics import (
    ALERTS_ESCALATIONS,
    NEWS_ITEMS,
    PUBLIC_TOPICS,
    TENSION_BY_DYAD,
    TENSION_TABLE,
)
from schemas import ClockTicked, ItemCollected

log = logging.getLogger(__name__)

T = TypeVar("T")

Emit = Callable[[list[Outgoing]], Awaitable[None]]


class AckedChangelogTable(faust.Table[bytes, bytes]):
    """A table that keeps the future of its latest changelog write, so the agent can
    wait until the broker has acknowledged it.

    Faust buffers changelog writes and flushes the buffer before it commits
    offsets, but that flush gives up after 0.1 s: on a loaded machine an offset
    can be committed before the state it produced reached the changelog, and a
    crash then loses that state for good. Waiting here closes the window.
    """

    latest_write: asyncio.Future[Any] | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        self.latest_write = future
        return future


class _FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with the fetch wait of `FetchWaitApp`, not Faust's fixed one.

    A fetch that finds no new record waits up to `fetch_max_wait_ms` at the broker,
    and Faust hard-codes a long wait. On the embedded broker (Tansu) a fetch over
    several partitions is held that long even when one of them receives a record,
    so every hop of the pipeline could add that whole wait to an alert's latency.
    """

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = self.app
        assert isinstance(app, FetchWaitApp)
        # aiokafka reads this when the consumer starts (its Fetcher); set it before.
        consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        return consumer


class _FetchWaitConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _FetchWaitTransport(faust_aiokafka.Transport):
    Consumer = _FetchWaitConsumer


class FetchWaitApp(faust.App):
    """A Faust app whose workers fetch with a short wait: alerts in seconds."""

    fetch_max_wait_ms: int = 100

    def _new_transport(self) -> Any:
        return _FetchWaitTransport(self.conf.broker_consumer, self)


def faust_broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


@dataclass
class Pipeline:
    """The app and its agents, kept together so tests can reach each agent."""

    app: faust.App
    tagger: Any
    escalator: Any
    rules: Rules
    scoring: ScoringConfig


def create_pipeline(
    settings: Settings,
    rules: Rules | None = None,
    scoring: ScoringConfig | None = None,
    clock: Clock = utc_now,
    emit: Emit | None = None,
    observe: Callable[[list[Outgoing]], None] = lambda outgoing: None,
) -> Pipeline:
    """Build the app. `emit` replaces producing to Kafka (component tests use it
    with Faust's `test_context`, which runs agents without a broker)."""
    rules = rules if rules is not None else load_rules()
    scoring = scoring if scoring is not None else ScoringConfig.load()
    app = FetchWaitApp(
        settings.app_id,
        broker=faust_broker_urls(settings.bootstrap),
        store="memory://",
        datadir=str(settings.data_dir),
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        autodiscover=False,
        Table=AckedChangelogTable,
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms
    topics = {
        spec.name: app.topic(
            spec.name,
            partitions=spec.partition_count(settings),
            key_serializer="raw",
            value_serializer="raw",
        )
        for spec in PUBLIC_TOPICS
    }
    tension = app.Table(
        TENSION_TABLE,
        partitions=TENSION_BY_DYAD.partition_count(settings),
        # bytes in, bytes out: Faust takes the changelog's serializers from these
        # types (a Schema alone is not used when the table recovers).
        key_type=bytes,
        value_type=bytes,
    )
    assert isinstance(tension, AckedChangelogTable)  # the class given as Table= above
    states = DyadStates(tension)

    async def produce(outgoing: list[Outgoing]) -> None:
        for record in outgoing:
            pending = await topics[record.topic.name].send(
                key=record.key, value=record.value, headers=list(record.headers) or None
            )
            if record.topic is ALERTS_ESCALATIONS:
                # Notices are rare and precious: wait for the ack before anything that
                # follows them (the state that says they happened) is sent.
                await pending
        observe(outgoing)  # domain metrics (monitor.observe.metrics) from what was emitted

    send_all = emit if emit is not None else produce

    def raw(event: faust.EventT[bytes]) -> RawRecord:
        message = event.message
        headers = message.headers
        return RawRecord(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=event.key,
            value=event.value if isinstance(event.value, bytes) else b"",
            headers=tuple(headers.items() if isinstance(headers, Mapping) else headers or ()),
        )

    async def records(stream: faust.StreamT[bytes]) -> AsyncIterator[RawRecord]:
        async for event in stream.events():
            yield raw(event)

    async def attempt(stage: str, record: RawRecord, step: Callable[[RawRecord], T]) -> T | None:
        """The step's result, or None after dead-lettering the record it failed on."""
        try:
            return step(record)
        except Exception as error:  # anything a record can do to a step: dead-letter it
            log.warning(
                "%s: %s[%d]@%d to dead letters: %s",
                stage,
                record.topic,
                record.partition,
                record.offset,
                error,
            )
            await send_all([dead_letter(stage, record, error, clock)])
            return None

    @app.agent(topics[NEWS_ITEMS.name], name="tagger", concurrency=1)
    async def tagger(stream: faust.StreamT[bytes]) -> None:
        async for record in records(stream):
            step = await attempt("tagger", record, lambda r: tag_record(r, rules))
            if step is None:
                continue
            if step.tagged is None:
                assert isinstance(step.incoming, ClockTicked)
                await send_all(tick_records(step.incoming, record.origin))
                continue
            assert isinstance(step.incoming, ItemCollected)
            routed = dyad_records(step.incoming, step.tagged, record.origin)
            await send_all(step.outgoing + routed)

    @app.agent(topics[TENSION_BY_DYAD.name], name="escalator", concurrency=1)
    async def escalator(stream: faust.StreamT[bytes]) -> None:
        # Acked by hand: a record's offset may be committed only once the state it
        # produced is in the changelog. Acking when that write is acknowledged, not
        # waiting for it, lets the next record be folded meanwhile; Faust commits no
        # further than the first record not yet acked.
        unacked = cast(faust.Stream[bytes], stream).noack()
        async for event in unacked.events():
            record = raw(event)
            step = await attempt("escalator", record, lambda r: escalate_record(r, states, scoring))
            if step is None:
                await unacked.ack(event)
                continue
            # Notices first, acknowledged; then the state that says they happened. A
            # crash in between raises the same notices (same ids) again, never none.
            await send_all(step.notices)
            written = states.save(step.result) and emit is None
            await send_all(step.tension)
            write = tension.latest_write if written else None
            if write is None:
                await unacked.ack(event)
            else:
                write.add_done_callback(acker(unacked, event))

    acking: set[asyncio.Future[bool]] = set()

    def acker(stream: faust.StreamT[bytes], event: faust.EventT[bytes]) -> Callable[[Any], None]:
        def ack(write: Any) -> None:
            if not write.cancelled() and write.exception() is None:
                # A failed write leaves the record unacked: it is processed again.
                done = asyncio.ensure_future(stream.ack(event))
                acking.add(done)
                done.add_done_callback(acking.discard)

        return ack

    return Pipeline(app, tagger, escalator, rules, scoring)
