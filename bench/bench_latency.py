"""Latency: how long from an item reaching news.items to the notice it triggers?

    .venv/bin/python bench/bench_latency.py [--rate 50] [--seconds 60]

On one embedded broker, our pipeline (tagger → escalator) runs while
items of the synthetic stream (bench/synthetic.py) are produced to news.items
at a live rate of --rate items/s for --seconds seconds. Event time runs fast
(12 minutes of news per item), so levels rise and fall many times in a
minute. Alerts.escalations and tension.state are read from the start as the
pipeline writes them; for each notice, the latency is its receive time minus
the time its triggering item's send was acknowledged, and likewise for each
tension state and the item it names last. Target: p99 ≤ 1 s for notices.

A notice is decided when the escalator processes the item that tips the
level, so its latency is the two hops (tagger, escalator) and the fold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from support import bench_broker
from synthetic import START, redated, synthetic_stream

from monitor.config import Settings
from monitor.escalation.archive import ArchivedItem, collected_from
from monitor.records import Outgoing
from monitor.streams import create_pipeline
from monitor.topics import (
    ALERTS_ESCALATIONS,
    NEWS_ITEMS,
    NEWS_TAGGED,
    TENSION_STATE,
    TopicSpec,
)
from schemas import EscalationNotice, ItemCollected, TensionState, decode

EVENT_STEP = timedelta(minutes=12)
PROGRESS_EVERY_S = 5.0
# Done once nothing has come out for this long after the last item was tagged.
QUIET_S = 2.0
# Our measuring consumers ask the broker not to hold a fetch longer than this, so
# that their own polling adds little to the latencies they measure.
FETCH_MAX_WAIT_MS = 10


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Received:
    """Raw values as they arrived, with the time each poll returned them."""

    records: list[tuple[float, bytes]]
    last_at: float = 0.0


async def collect(settings: Settings, topic: TopicSpec, into: Received) -> None:
    """Read `topic` from its beginning until cancelled."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic.name, 0)  # one partition (see monitor.topics)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batches.values():
                into.records.extend((now, m.value) for m in messages if m.value is not None)
                into.last_at = now if messages else into.last_at
    finally:
        await consumer.stop()


def warm_up_item() -> ItemCollected:
    """An irrelevant item a day before the stream, to see the pipeline has joined."""
    at = START - timedelta(days=1)
    archived = ArchivedItem(
        id="bench-latency-warm-up",
        title="Lisbon tram line reopens after repairs",
        source="bench",
        lang="en",
        published=at,
    )
    return collected_from(archived, at)


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest rank."""
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def print_latencies(name: str, latencies: list[float], skipped: int, note: str) -> None:
    print(f"{name}: {len(latencies):,} measured, {skipped:,} skipped ({note})")
    if not latencies:
        return
    ordered = sorted(latencies)
    cells = [
        f"{label} {percentile(ordered, share) * 1000:,.0f} ms"
        for label, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    ]
    print(f"  latency: {'  '.join(cells)}  max {ordered[-1] * 1000:,.0f} ms")


async def run(rate: float, seconds: float) -> None:
    count = max(int(rate * seconds), 1)
    stream = synthetic_stream(count // 300 + 1)[:count]
    items = redated(stream, START, EVENT_STEP)
    warm_up = warm_up_item()
    sent: dict[str, float] = {}
    tagged = 0
    warm = asyncio.Event()
    all_tagged = asyncio.Event()
    last_output = 0.0

    def observe(outgoing: list[Outgoing]) -> None:
        nonlocal tagged, last_output
        last_output = time.perf_counter()
        for record in outgoing:
            if record.topic is not NEWS_TAGGED:
                continue
            if record.key == warm_up.item_id.encode():
                warm.set()
            else:
                tagged += 1
        if tagged >= count:
            all_tagged.set()

    def acknowledged(item_id: str) -> Callable[[asyncio.Future[Any]], None]:
        def record(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is None:
                sent[item_id] = time.perf_counter()

        return record

    notices, states = Received([]), Received([])
    async with bench_broker("bench-latency-monitor") as broker:
        settings = broker.settings
        pipeline = create_pipeline(settings, observe=observe)
        client = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
        readers: list[asyncio.Task[None]] = []
        await pipeline.app.start()
        await client.start()
        try:
            progress("waiting for the pipeline to join …")
            await client.send_and_wait(
                NEWS_ITEMS.name,
                key=warm_up.item_id.encode(),
                value=warm_up.model_dump_json().encode(),
            )
            await asyncio.wait_for(warm.wait(), timeout=120)
            await asyncio.sleep(1.0)  # and for the escalator to take it
            readers = [
                asyncio.create_task(collect(settings, ALERTS_ESCALATIONS, notices)),
                asyncio.create_task(collect(settings, TENSION_STATE, states)),
            ]
            values = [(i.item_id, i.model_dump_json().encode()) for i in items]
            started = reported = time.perf_counter()
            for n, (item_id, value) in enumerate(values):
                delay = started + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                ack = await client.send(NEWS_ITEMS.name, key=item_id.encode(), value=value)
                ack.add_done_callback(acknowledged(item_id))
                if time.perf_counter() - reported >= PROGRESS_EVERY_S:
                    reported = time.perf_counter()
                    progress(
                        f"  sent {n + 1:,}/{count:,}, tagged {tagged:,},"
                        f" notices {len(notices.records):,},"
                        f" tension states {len(states.records):,}"
                    )
            await client.flush()
            sending = time.perf_counter() - started
            progress("all sent; waiting for the pipeline to finish …")
            await asyncio.wait_for(all_tagged.wait(), timeout=600)
            while True:
                latest = max(last_output, notices.last_at, states.last_at)
                if time.perf_counter() - latest >= QUIET_S:
                    break
                await asyncio.sleep(0.1)
        finally:
            for reader in readers:
                reader.cancel()
            for reader in readers:
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            await client.stop()
            await pipeline.app.stop()
    report(rate, count, sending, sent, notices, states)


def report(
    rate: float,
    count: int,
    sending: float,
    sent: dict[str, float],
    notices: Received,
    states: Received,
) -> None:
    hours = count * EVENT_STEP / timedelta(hours=1)
    print(
        f"live: {count:,} items at {rate:g}/s, sent in {sending:.1f} s"
        f" ({count / sending:,.1f}/s); event time {EVENT_STEP / timedelta(minutes=1):g} min"
        f" per item ({hours:,.0f} h of news)"
    )
    kinds: Counter[str] = Counter()
    latencies, skipped = [], 0
    for received_at, value in notices.records:
        notice = decode(EscalationNotice, value)
        kinds[notice.kind] += 1
        sent_at = sent.get(notice.trigger_item_id)
        if sent_at is None:
            skipped += 1  # e.g. "clock:…": time passing triggered it, not an item
        else:
            latencies.append(received_at - sent_at)
    by_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    print_latencies(
        f"notices ({by_kind or 'none'})", latencies, skipped, "trigger not a stream item"
    )
    print("  (target p99 ≤ 1,000 ms)")
    latencies, skipped = [], 0
    for received_at, value in states.records:
        state = decode(TensionState, value)
        sent_at = sent.get(state.last_item_id)
        if sent_at is None:
            skipped += 1  # the warm-up item, or a clock tick
        else:
            latencies.append(received_at - sent_at)
    print_latencies("tension.state", latencies, skipped, "last item not a stream item")


def main() -> None:
    parser = argparse.ArgumentParser(description="Latency from news.items to notices.")
    parser.add_argument("--rate", type=float, default=50.0, help="items per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds))


if __name__ == "__main__":
    main()
