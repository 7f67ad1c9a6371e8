"""Soak: does the cost per item stay flat over a year of news?

    .venv/bin/python bench/bench_soak.py [--days 365] [--stream-days 60] [--skip-stream]

A synthetic stream (bench/synthetic.py: 300 items a day, 40 of them relevant).

1. Backtest fold, no broker: every item tagged and folded into the dyad's
   state in order, timed per 30-day month: µs per item, and the largest state
   record at the end of each month. Targets: last month / first month ≤ 1.2,
   ≥ 30,000 items/s over the year, state record ≤ 64 KB.
2. Streaming (unless --skip-stream), on one embedded broker and the same input
   topic, the first --stream-days days: Faust's own pass-through agent, then
   our pipeline (tagger → escalator), µs per item for both and their
   ratio (target ≤ 2); RSS of this process and of the broker as it goes.

Absolute numbers drift on a shared machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import faust
from support import bench_broker
from synthetic import synthetic_stream

from monitor.config import Settings
from monitor.escalation.agent import reaches_escalator
from monitor.escalation.escalate import escalate
from monitor.escalation.replay import ingest
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.state import DyadState, table_records
from monitor.records import Outgoing
from monitor.streams import create_pipeline, faust_broker_urls
from monitor.tagging.agent import tagged_item
from monitor.tagging.rules import load_rules
from monitor.topics import NEWS_ITEMS, NEWS_TAGGED, TENSION_STATE, TopicSpec
from schemas import DYAD_AZ_RU, ItemCollected


def state_record_sizes(state: DyadState) -> list[int]:
    """Bytes of every record the escalator's table holds for this state."""
    return [len(value) for value in table_records(state).values()]


MONTH_DAYS = 30
PER_DAY = 300
PROGRESS_EVERY_S = 5.0
# The pipeline is done once its outputs have been quiet this long after the last
# item was tagged (the escalator's own outputs cannot tell: most items never reach it).
QUIET_S = 2.0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Month:
    number: int
    items: int
    seconds: float
    largest_record: int

    @property
    def micros(self) -> float:
        return self.seconds / self.items * 1e6


def midnight_before(item: ItemCollected) -> datetime:
    return item.event_time.replace(hour=0, minute=0, second=0, microsecond=0)


def fold_months(items: list[ItemCollected]) -> list[Month]:
    """Tag and escalate every item in order; one row per 30 days of event time."""
    rules, scoring = load_rules(), ScoringConfig.load()
    start = midnight_before(items[0])
    by_month: dict[int, list[ItemCollected]] = {}
    for item in items:
        by_month.setdefault((item.event_time - start).days // MONTH_DAYS, []).append(item)
    state = DyadState(dyad=DYAD_AZ_RU)
    months: list[Month] = []
    done, last_report = 0, time.monotonic()
    for number, chunk in sorted(by_month.items()):
        seconds = 0.0
        # Timed in slices, so that progress reports stay outside the measurement.
        for begin in range(0, len(chunk), 500):
            started = time.perf_counter()
            for item in chunk[begin : begin + 500]:
                # As the worker does: only what reaches the escalator is folded in.
                tagged = tagged_item(item, rules)
                if reaches_escalator(item, tagged):
                    state = escalate(state, tagged, scoring).state
            seconds += time.perf_counter() - started
            done += len(chunk[begin : begin + 500])
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                progress(f"  fold: month {number + 1}, {done:,}/{len(items):,} items")
        month = Month(number + 1, len(chunk), seconds, max(state_record_sizes(state)))
        months.append(month)
        print(
            f"  {month.number:>5} {month.items:>7,} {month.micros:>9.1f}"
            f" {1e6 / month.micros:>10,.0f} {month.largest_record:>12,}",
            flush=True,
        )
    return months


def bench_fold(items: list[ItemCollected]) -> None:
    print(f"backtest fold (tag + escalate) over {len(items):,} items, by 30-day month:")
    print(f"  {'month':>5} {'items':>7} {'µs/item':>9} {'items/s':>10} {'state bytes':>12}")
    months = fold_months(items)
    first = months[0]
    # A short trailing month (365 = 12 x 30 + 5) is noisier; compare full months if any.
    full = [m for m in months if m.items >= MONTH_DAYS * PER_DAY * 0.9]
    last = full[-1] if len(full) > 1 else months[-1]
    total_items = sum(m.items for m in months)
    total_seconds = sum(m.seconds for m in months)
    largest = max(m.largest_record for m in months)
    peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    print(
        f"  month {last.number} / month {first.number} µs per item:"
        f" {last.micros / first.micros:.2f}x   (target ≤ 1.2)"
    )
    print(
        f"  overall: {total_items / total_seconds:,.0f} items/s tag + escalate   (target ≥ 30,000)"
    )
    print(f"  largest state record: {largest:,} bytes   (target ≤ {64 * 1024:,})")
    print(f"  peak RSS of this process: {peak_rss_kb / 1024:,.0f} MB")


def rss_kb(pid: int | str = "self") -> int:
    """VmRSS of a process, in KB (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def report_progress(what: str, count: int, seen: Callable[[], int]) -> None:
    """A line on stderr every few seconds until cancelled."""
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        progress(f"  {what}: {seen():,}/{count:,}")


async def faust_pass_through(settings: Settings, count: int, out: str) -> float:
    """Faust's own floor: one agent copying news.items to `out`, bytes in, bytes out."""
    app = faust.App(
        "bench-soak-pass-through",
        broker=faust_broker_urls(settings.bootstrap),
        store="memory://",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.session_timeout_s,
        web_enabled=False,
        datadir=str(settings.data_dir / "pass-through"),
    )
    source = app.topic(NEWS_ITEMS.name, key_serializer="raw", value_serializer="raw")
    sink = app.topic(out, key_serializer="raw", value_serializer="raw")
    done = asyncio.Event()
    marks: list[float] = []

    @app.agent(source, concurrency=1)
    async def pass_through(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            marks.append(time.perf_counter())
            await sink.send(key=event.key, value=event.value)
            if len(marks) == count:
                done.set()

    reporter = asyncio.create_task(report_progress("pass-through", count, lambda: len(marks)))
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=3600)
        await app.producer.flush()
        return time.perf_counter() - marks[0]
    finally:
        reporter.cancel()
        await app.stop()


@dataclass(frozen=True)
class Sample:
    tagged: int
    escalated: int  # stream position of the last item the escalator took
    worker_kb: int
    broker_kb: int


@dataclass(frozen=True)
class PipelineRun:
    seconds: float
    samples: list[Sample]
    outputs: dict[str, int]

    def processed(self, sample: Sample) -> int:
        # Items through the whole pipeline: the escalator, the last stage, lags the
        # tagger; the tagged count only if the escalator never named an item.
        escalates = any(s.escalated for s in self.samples)
        return sample.escalated if escalates else sample.tagged


async def our_pipeline(
    settings: Settings, items: list[ItemCollected], broker_pid: int
) -> PipelineRun:
    count = len(items)
    position = {item.item_id: n for n, item in enumerate(items)}
    tagged = escalated = 0
    all_tagged = asyncio.Event()
    active = asyncio.Event()  # set at every output
    first = last = 0.0
    outputs: dict[str, int] = {}

    def observe(outgoing: list[Outgoing]) -> None:
        nonlocal tagged, escalated, first, last
        last = time.perf_counter()
        first = first or last
        active.set()
        for record in outgoing:
            outputs[record.topic.name] = outputs.get(record.topic.name, 0) + 1
            if record.topic is NEWS_TAGGED:
                tagged += 1
            elif record.topic is TENSION_STATE:
                # Progress only (not completion): the stream position of the last item
                # the escalator took; ids that are not items (clock ticks) say nothing.
                last_item = json.loads(record.value).get("last_item_id")
                escalated = max(escalated, position.get(last_item, -1) + 1)
        if tagged >= count:
            all_tagged.set()

    samples = [Sample(0, 0, rss_kb(), rss_kb(broker_pid))]

    async def sample_every_second() -> None:
        reported = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            samples.append(Sample(tagged, escalated, rss_kb(), rss_kb(broker_pid)))
            if time.monotonic() - reported >= PROGRESS_EVERY_S:
                reported = time.monotonic()
                progress(
                    f"  our pipeline: {tagged:,}/{count:,} tagged, {escalated:,} escalated,"
                    f" RSS worker {samples[-1].worker_kb / 1024:,.0f} MB"
                    f" broker {samples[-1].broker_kb / 1024:,.0f} MB"
                )

    pipeline = create_pipeline(settings, observe=observe)
    sampler = asyncio.create_task(sample_every_second())
    await pipeline.app.start()
    try:
        await asyncio.wait_for(all_tagged.wait(), timeout=3600)
        # Then the escalator catches up: done at its last output.
        while True:
            active.clear()
            try:
                await asyncio.wait_for(active.wait(), QUIET_S)
            except TimeoutError:
                break
        samples.append(Sample(count, count, rss_kb(), rss_kb(broker_pid)))
        return PipelineRun(last - first, samples, outputs)
    finally:
        sampler.cancel()
        await pipeline.app.stop()


def print_rss(run: PipelineRun, count: int) -> None:
    # The first sample at or past each quarter of the items through; 100 % is taken
    # once the pipeline has gone quiet.
    quarters = [
        next(s for s in run.samples if run.processed(s) >= count * q / 4) for q in (1, 2, 3)
    ]
    points = [run.samples[0], *quarters, run.samples[-1]]
    print("  RSS as the items went through (MB):")
    print(f"    {'':>5} {'items':>8} {'worker':>8} {'broker':>8}")
    for label, sample in zip(("start", "25 %", "50 %", "75 %", "100 %"), points, strict=True):
        print(
            f"    {label:>5} {run.processed(sample):>8,} {sample.worker_kb / 1024:>8,.0f}"
            f" {sample.broker_kb / 1024:>8,.0f}"
        )

    def growth(before: Sample, after: Sample) -> str:
        items = run.processed(after) - run.processed(before)
        if items <= 0:
            return "n/a (no sample inside the quarter)"
        return f"{(after.broker_kb - before.broker_kb) / items * 1000:,.0f} KB"

    print(
        f"  broker RSS growth per 1,000 items: first quarter {growth(points[0], points[1])},"
        f" last quarter {growth(points[3], points[4])}"
    )


async def bench_streaming(items: list[ItemCollected]) -> None:
    count = len(items)
    out = TopicSpec("bench.out.pass-through", "-", None, "")
    async with bench_broker("bench-soak-monitor", [out]) as broker:
        settings = broker.settings
        ingested = 0

        def tick(n: int) -> None:
            nonlocal ingested
            ingested += n
            if ingested % 5000 < n:
                progress(f"  ingest: {ingested:,}/{count:,}")

        await ingest(settings, items, tick)
        passing = await faust_pass_through(settings, count, out.name)
        ours = await our_pipeline(settings, items, broker.pid)
    print(f"streaming {count:,} items through the embedded broker (one partition):")
    for name, seconds in (("Faust pass-through", passing), ("our pipeline", ours.seconds)):
        micros = seconds / count * 1e6
        print(f"  {name:<20} {micros:>8.0f} µs/item  {count / seconds:>8,.0f} items/s")
    print(f"  ratio ours / Faust pass-through: {ours.seconds / passing:.2f}x   (target ≤ 2)")
    print(
        "  records our pipeline produced: "
        + ", ".join(f"{topic} {n:,}" for topic, n in sorted(ours.outputs.items()))
    )
    print_rss(ours, count)


def main() -> None:
    parser = argparse.ArgumentParser(description="Soak: cost per item over a year of news.")
    parser.add_argument("--days", type=int, default=365, help="days of the backtest fold")
    parser.add_argument("--stream-days", type=int, default=60, help="days streamed via Kafka")
    parser.add_argument("--skip-stream", action="store_true", help="backtest fold only")
    args = parser.parse_args()
    progress(f"generating {args.days} days of synthetic news …")
    items = synthetic_stream(max(args.days, 0 if args.skip_stream else args.stream_days))
    start = midnight_before(items[0])
    bench_fold([i for i in items if (i.event_time - start).days < args.days])
    if not args.skip_stream:
        streamed = [i for i in items if (i.event_time - start).days < args.stream_days]
        asyncio.run(bench_streaming(streamed))


if __name__ == "__main__":
    main()
