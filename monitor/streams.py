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
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import aiokafka
import faust
import faust.exceptions
from aiokafka.errors import KafkaError
from faust.transport.drivers import aiokafka as faust_aiokafka

from monitor.clock import Clock, utc_now
from monitor.config import Settings
from monitor.escalation.agent import (
    DyadStates,
    EscalationStep,
    dyad_records,
    escalate_record,
    tick_records,
)
from monitor.escalation.scoring import ScoringConfig
from monitor.kafka import true_end_offsets
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

Emit = Callable[[list[Outgoing]], Awaitable[None]]  # instead of producing (component tests)


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

    async def _highwaters(self, partitions: list[Any]) -> Mapping[Any, int]:
        # Table recovery reads each changelog up to these offsets and no further: an
        # end offset that falls short (Tansu's, see true_end_offsets) would leave the
        # last writes of a table out of it after every restart.
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return reported
        bootstrap = ",".join(f"{url.host}:{url.port}" for url in self.app.conf.broker)
        return await true_end_offsets(bootstrap, reported)

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


def refused(error: BaseException) -> BaseException | None:
    """The final refusal behind a failed send, if it is one: a record the broker or
    the client will never take (too large, invalid), unlike a broker that is away."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, KafkaError):
            return None if cause.retriable else cause
        if not isinstance(cause, faust.exceptions.ProducerSendError):
            return cause  # not the broker's doing: the record itself cannot be sent
        cause = cause.__cause__
    return None


def faust_broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


@dataclass
class _Pending:
    event: faust.EventT[bytes]
    settled: bool = False


class InOrderAcks:
    """Acks a stream's events in the order they were read, per partition.

    Outputs are acknowledged by the broker in their own time, so two records'
    acks can come in either order; and Faust's commit, given the acked offsets
    C+1… while C (the committed offset, the next to read) is not acked yet,
    commits past C (`Consumer._new_offset` tests for a gap of more than one). A
    rebalance or a restart in that moment would skip C for good: so no record is
    acked before the ones read before it.
    """

    def __init__(self, stream: faust.StreamT[bytes]) -> None:
        self.stream = stream
        self.pending: dict[Any, deque[_Pending]] = defaultdict(deque)

    def expect(self, event: faust.EventT[bytes]) -> _Pending:
        """Called for each event as it is read: its place in the order."""
        slot = _Pending(event)
        self.pending[event.message.tp].append(slot)
        return slot

    async def settled(self, slot: _Pending) -> None:
        """`slot`'s outputs are delivered: ack it once every earlier one is."""
        slot.settled = True
        queue = self.pending[slot.event.message.tp]
        ready = []
        while queue and queue[0].settled:
            ready.append(queue.popleft().event)
        for event in ready:
            await self.stream.ack(event)


@dataclass
class DeliveryFailure:
    """Set when a delivery failed for good: the worker must stop (see create_pipeline)."""

    happened: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None


@dataclass
class Pipeline:
    """The app and its agents, kept together so tests can reach each agent."""

    app: faust.App
    tagger: Any
    escalator: Any
    rules: Rules
    scoring: ScoringConfig
    failed: DeliveryFailure


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

    async def produce(outgoing: list[Outgoing]) -> list[asyncio.Future[Any]]:
        """Send `outgoing`; the deliveries still in flight, to ack the input on."""
        in_flight: list[asyncio.Future[Any]] = []
        for record in outgoing:
            pending = await topics[record.topic.name].send(
                key=record.key, value=record.value, headers=list(record.headers) or None
            )
            if record.topic is ALERTS_ESCALATIONS:
                # Notices are rare and precious: wait for the ack before anything that
                # follows them (the state that says they happened) is sent.
                await pending
            else:
                in_flight.append(asyncio.ensure_future(pending))
        observe(outgoing)  # domain metrics (monitor.observe.metrics) from what was emitted
        return in_flight

    async def send_all(outgoing: list[Outgoing]) -> list[asyncio.Future[Any]]:
        if emit is not None:
            await emit(outgoing)
            return []
        return await produce(outgoing)

    failed = DeliveryFailure()
    settling: set[asyncio.Future[None]] = set()

    def fail(error: BaseException) -> None:
        """A delivery failed past the producer's own retries (a broker gone for longer
        than its request timeout): the worker must stop, and its unacked records be
        read again by whoever runs next. Going on would leave a gap it cannot fill."""
        if failed.error is None:
            log.error("delivery failed for good, the worker stops: %r", error)
            failed.error = error
            failed.happened.set()

    async def dead_letter_instead(stage: str, record: RawRecord, refusal: BaseException) -> bool:
        """Dead-letter `record` whose output was refused; False if even that failed."""
        log.warning(
            "%s: %s[%d]@%d to dead letters, its output was refused: %s",
            stage,
            record.topic,
            record.partition,
            record.offset,
            refusal,
        )
        try:
            await asyncio.gather(*await send_all([dead_letter(stage, record, refusal, clock)]))
        except Exception as error:
            fail(error)
            return False
        return True

    async def deliver(
        stage: str,
        acks: InOrderAcks,
        event: faust.EventT[bytes],
        record: RawRecord,
        produced: Awaitable[list[asyncio.Future[Any]]],
    ) -> bool:
        """Ack `event` once what it produced is acknowledged by the broker; False when
        the agent must stop (see `fail`).

        Faust commits an agent's offsets after flushing its producer for at most a
        moment; an input acked before its outputs were delivered could be committed
        and its outputs lost in a stop or a crash. Unacked, it is read again. Output
        the broker refuses for good (a record too large) makes the input a dead
        letter: every input ends as output or as a dead letter.
        """
        slot = acks.expect(event)
        try:
            in_flight = await produced
        except Exception as error:
            refusal = refused(error)
            if refusal is None:
                fail(error)
                return False
            if not await dead_letter_instead(stage, record, refusal):
                return False
            in_flight = []
        if not in_flight:
            await acks.settled(slot)
            return True
        settled = asyncio.ensure_future(settle(stage, acks, slot, record, in_flight))
        settling.add(settled)
        settled.add_done_callback(settling.discard)
        return True

    async def settle(
        stage: str,
        acks: InOrderAcks,
        slot: _Pending,
        record: RawRecord,
        in_flight: list[asyncio.Future[Any]],
    ) -> None:
        outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if errors:
            refusal = refused(errors[0])
            if refusal is None:
                fail(errors[0])  # left unacked: read again after the restart
                return
            if not await dead_letter_instead(stage, record, refusal):
                return
        await acks.settled(slot)

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
            # Delivered before anything after it is acked: nothing is lost in between.
            try:
                await asyncio.gather(*await send_all([dead_letter(stage, record, error, clock)]))
            except Exception as undeliverable:
                fail(undeliverable)
                raise
            return None

    @app.agent(topics[NEWS_ITEMS.name], name="tagger", concurrency=1)
    async def tagger(stream: faust.StreamT[bytes]) -> None:
        # Acked by hand, once what a record produced is delivered (see deliver).
        unacked = cast(faust.Stream[bytes], stream).noack()
        acks = InOrderAcks(unacked)
        async for event in unacked.events():
            record = raw(event)
            step = await attempt("tagger", record, lambda r: tag_record(r, rules))
            if step is None:
                outgoing: list[Outgoing] = []
            elif step.tagged is None:
                assert isinstance(step.incoming, ClockTicked)
                outgoing = tick_records(step.incoming, record.origin)
            else:
                assert isinstance(step.incoming, ItemCollected)
                outgoing = step.outgoing + dyad_records(step.incoming, step.tagged, record.origin)
            if not await deliver("tagger", acks, event, record, send_all(outgoing)):
                return

    @app.agent(topics[TENSION_BY_DYAD.name], name="escalator", concurrency=1)
    async def escalator(stream: faust.StreamT[bytes]) -> None:
        # Acked by hand: a record's offset may be committed only once the state it
        # produced is in the changelog. Acking when that write is acknowledged, not
        # waiting for it, lets the next record be folded meanwhile; acks go in read
        # order (InOrderAcks), so no commit passes a record not yet acknowledged.
        unacked = cast(faust.Stream[bytes], stream).noack()
        acks = InOrderAcks(unacked)
        async for event in unacked.events():
            record = raw(event)
            step = await attempt("escalator", record, lambda r: escalate_record(r, states, scoring))
            produced = fold(step) if step is not None else nothing()
            if not await deliver("escalator", acks, event, record, produced):
                return

    async def nothing() -> list[asyncio.Future[Any]]:
        return []

    async def fold(step: EscalationStep) -> list[asyncio.Future[Any]]:
        """Send a step's notices, acknowledged, then save and send the state that says
        they happened. A crash in between raises the same notices (same ids) again,
        never none."""
        await send_all(step.notices)
        written = states.save(step.result) and emit is None
        in_flight = await send_all(step.tension)
        if written and tension.latest_write is not None:
            in_flight.append(tension.latest_write)
        return in_flight

    return Pipeline(app, tagger, escalator, rules, scoring, failed)
