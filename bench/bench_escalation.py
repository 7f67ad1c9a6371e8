"""Escalation benchmarks: the backtest path, and the streaming path against its baselines.

    .venv/bin/python bench/bench_escalation.py [--copies N]

1. Backtest (no broker): items/s of tagging + escalation over a long timeline
   made from the labelled corpus, and of the escalation fold alone.
2. Streaming, on one embedded broker and the same input topic, measured in one
   run: a plain aiokafka consume→produce loop, Faust's own pass-through agent,
   and our pipeline (tagger → escalator), from the first record each saw to the
   last. Printed as µs per item and as ratios. (`bench_soak.py` does the same
   over two months of news, with memory.)

Absolute numbers drift on a shared machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from bench_soak import faust_pass_through, our_pipeline
from support import bench_broker

from monitor.config import Settings
from monitor.escalation.agent import reaches_escalator
from monitor.escalation.archive import load_archive, retold
from monitor.escalation.backtest import backtest
from monitor.escalation.escalate import escalate
from monitor.escalation.replay import ingest
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.state import DyadState
from monitor.tagging.agent import tagged_item
from monitor.tagging.rules import load_rules
from monitor.topics import NEWS_ITEMS, TopicSpec
from schemas import DYAD_AZ_RU, ItemCollected

CORPUS = Path(__file__).parents[1] / "tests" / "data" / "dev.jsonl"


def bench_backtest(items: list[ItemCollected]) -> None:
    rules, scoring = load_rules(), ScoringConfig.load()
    best_full = best_fold = float("inf")
    pairs = sorted(
        ((item, tagged_item(item, rules)) for item in items),
        key=lambda pair: (pair[0].event_time, pair[0].item_id),
    )
    tagged = [t for _, t in pairs]
    # As the worker does: only what reaches the escalator is folded in.
    ordered = [t for item, t in pairs if reaches_escalator(item, t)]
    for _ in range(3):
        started = time.perf_counter()
        backtest(items, rules, scoring)
        best_full = min(best_full, time.perf_counter() - started)
        started = time.perf_counter()
        state = DyadState(dyad=DYAD_AZ_RU)
        for item in ordered:
            state = escalate(state, item, scoring).state
        best_fold = min(best_fold, time.perf_counter() - started)
    relevant = sum(1 for t in tagged if t.relevant)
    print(f"backtest over {len(items)} items ({relevant} relevant), best of 3:")
    print(f"  tag + escalate   {len(items) / best_full:>10,.0f} items/s")
    print(f"  escalate alone   {len(items) / best_fold:>10,.0f} items/s")


async def plain_loop(settings: Settings, count: int, out: str) -> float:
    consumer = AIOKafkaConsumer(
        NEWS_ITEMS.name,
        bootstrap_servers=settings.bootstrap,
        group_id="bench-plain",
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        seen, first = 0, 0.0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    first = first or time.perf_counter()
                    await producer.send(out, key=message.key, value=message.value)
                    seen += 1
        await producer.flush()
        return time.perf_counter() - first
    finally:
        await consumer.stop()
        await producer.stop()


async def bench_streaming(items: list[ItemCollected]) -> None:
    outputs = [TopicSpec(f"bench.out.{name}", "-", None, "") for name in ("a", "b")]
    async with bench_broker("bench-escalation-monitor", outputs) as broker:
        settings = broker.settings
        await ingest(settings, items, lambda _: None)
        count = len(items)
        plain = await plain_loop(settings, count, outputs[0].name)
        passing = await faust_pass_through(settings, count, outputs[1].name)
        ours = (await our_pipeline(settings, items, broker.pid)).seconds
    per_item = {
        name: seconds / count * 1e6
        for name, seconds in (
            ("aiokafka loop", plain),
            ("Faust pass-through", passing),
            ("our pipeline", ours),
        )
    }
    print(f"streaming {count} items through the embedded broker (one partition):")
    for name, micros in per_item.items():
        print(f"  {name:<20} {micros:>8.0f} µs/item  {1e6 / micros:>8,.0f} items/s")
    print(
        f"  ratio ours / Faust pass-through: {ours / passing:.2f}x"
        f"   (two agents: one hop for most items, two for the relevant)"
    )
    print(f"  ratio Faust pass-through / aiokafka loop: {passing / plain:.2f}x")


def everyday_mix(timeline: Path, destination: Path) -> Path:
    """About one item in ten relevant, as in real feeds (the corpus is half relevant)."""
    lines = timeline.read_text(encoding="utf-8").splitlines()
    relevant = [line for line in lines if json.loads(line)["gold"]["relevant"]]
    unrelated = [line for line in lines if not json.loads(line)["gold"]["relevant"]]
    destination.write_text("\n".join(unrelated + relevant[::9]) + "\n", encoding="utf-8")
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", type=int, default=8, help="corpus copies, 3 years apart (240 items each)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        timeline = retold(CORPUS, args.copies, Path(directory) / "timeline.jsonl")
        items = load_archive(timeline)
        everyday = load_archive(everyday_mix(timeline, Path(directory) / "everyday.jsonl"))
    print("== the corpus, half of it relevant ==")
    bench_backtest(items)
    print("== an everyday mix, one item in ten relevant ==")
    bench_backtest(everyday)
    asyncio.run(bench_streaming(items))


if __name__ == "__main__":
    main()
