"""Plain aiokafka clients for everything outside the Faust app: collectors, subscribers, demo."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from monitor.config import Settings
from monitor.records import Outgoing, RawRecord
from monitor.topics import TopicSpec

Client = TypeVar("Client", AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient)


@asynccontextmanager
async def started(client: Client) -> AsyncIterator[Client]:
    """`client`, started for the block and closed after it however the block ends.

    Also when the task is cancelled while the client is still starting (a
    dashboard or a status check closing early): a start outside the `try`
    would leave that client open, its connections with it.
    """
    try:
        await client.start()
        yield client
    finally:
        await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())


@asynccontextmanager
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        acks="all",
        enable_idempotence=settings.idempotence,
        linger_ms=5,
    )
    async with started(client):
        yield client


async def publish(client: AIOKafkaProducer, outgoing: Iterable[Outgoing]) -> int:
    """Send every record and wait until the broker has acknowledged them all."""
    pending = [
        await client.send(record.topic.name, key=record.key, value=record.value)
        for record in outgoing
    ]
    await asyncio.gather(*pending)
    return len(pending)


async def true_end_offsets(
    bootstrap: str, reported: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """The end offsets `reported` by ListOffsets, corrected by what a fetch there says.

    Tansu, the embedded broker, answers ListOffsets with the last batch's index
    rather than the next offset when records are batched; a fetch response's
    high watermark is right. Apache Kafka's answers agree, and come back as they were.
    """
    if not reported:
        return {}
    client = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    async with started(client) as probe:
        probe.assign(list(reported))
        for tp, offset in reported.items():
            probe.seek(tp, offset)
        await probe.getmany(timeout_ms=200, max_records=1)
        return {tp: max(offset, probe.highwater(tp) or 0) for tp, offset in reported.items()}


async def caught_up(
    consumer: AIOKafkaConsumer,
    assigned: list[TopicPartition],
    end_offsets: dict[TopicPartition, int],
) -> bool:
    """At or past the end, by the end offsets and the high watermarks fetches reported.

    Both, because the embedded broker (Tansu) answers ListOffsets with the
    last batch's index rather than the next offset when records are batched.
    """
    for tp in assigned:
        target = max(end_offsets[tp], consumer.highwater(tp) or 0)
        if await consumer.position(tp) < target:
            return False
    return True


async def read_topic(
    settings: Settings,
    spec: TopicSpec,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    poll_timeout_ms: int = 500,
) -> AsyncIterator[RawRecord]:
    """Records of one topic, without a consumer group (subscribers read independently).

    Without `follow`, stops at the end of the topic as it was when reading caught up.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    async with started(consumer):
        partitions = consumer.partitions_for_topic(spec.name)
        while not partitions:
            await consumer._client.force_metadata_update()  # first contact may not know it yet
            partitions = consumer.partitions_for_topic(spec.name) or set()
            if partitions:
                break
            if not follow:
                return  # no such topic (yet): nothing to read
            await asyncio.sleep(poll_timeout_ms / 1000)  # a follower waits for it to appear
        assigned = [TopicPartition(spec.name, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        end_offsets: dict[TopicPartition, int] = await consumer.end_offsets(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
            # A fetch tells the true end where ListOffsets may not (see caught_up).
            await consumer.getmany(*assigned, timeout_ms=100)
            for tp in assigned:
                highwater = consumer.highwater(tp)
                if highwater is not None and highwater > await consumer.position(tp):
                    consumer.seek(tp, highwater)
        while True:
            at_end = not follow and await caught_up(consumer, assigned, end_offsets)
            # Once caught up, one short poll confirms nothing more has arrived.
            timeout = min(poll_timeout_ms, 50) if at_end else poll_timeout_ms
            batches = await consumer.getmany(*assigned, timeout_ms=timeout)
            if at_end and not any(batches.values()):
                return
            for tp, messages in batches.items():
                for message in messages:
                    yield RawRecord(
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=message.offset,
                        key=message.key,
                        value=message.value if message.value is not None else b"",
                    )
