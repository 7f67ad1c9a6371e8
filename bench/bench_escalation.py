"""Escalation benchmarks: the backtest path, and the streaming path against its baselines.

    .venv/bin/python bench/bench_escalation.py [--copies N] [--backtest-only] [--before DIR]

1. Backtest (no broker): items/s of tagging + escalation over a long timeline
   made from the labelled corpus, of the escalation fold alone, and of the
   tagger's step alone (`tagged_item`: tag, the ItemTagged event, the
   fingerprint), and of the backtest with no index sampled through quiet
   spells (what the timeline's daily samples cost). Rates are per CPU second
   of this process (time.process_time).
   `--before DIR` runs the same backtest of another checkout in a child
   process, its rounds alternating with this one's.
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
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from bench_soak import faust_pass_through, our_pipeline
from support import bench_broker

from monitor.config import Settings
from monitor.escalation import backtest as backtest_module
from monitor.escalation.agent import reaches_escalator
from monitor.escalation.archive import load_archive, retold
from monitor.escalation.backtest import backtest
from monitor.escalation.escalate import escalate
from monitor.escalation.replay import ingest
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.state import DyadState
from monitor.tagging.agent import tagged_item
from monitor.tagging.rules import Rules, load_rules
from monitor.topics import NEWS_ITEMS, TopicSpec
from schemas import DYAD_AZ_RU, ItemCollected

CORPUS = Path(__file__).parents[1] / "tests" / "data" / "dev.jsonl"


def without_quiet_samples(items: list[ItemCollected], rules: Rules, scoring: ScoringConfig) -> None:
    """The backtest with no index sampled through quiet spells: what those samples cost."""
    every = backtest_module.SAMPLE_QUIET_EVERY
    backtest_module.SAMPLE_QUIET_EVERY = timedelta(days=10**6)
    try:
        backtest(items, rules, scoring)
    finally:
        backtest_module.SAMPLE_QUIET_EVERY = every


def backtest_rates(items: list[ItemCollected], rounds: int = 3) -> dict[str, float]:
    """Best items/s (CPU time) of the backtest, of it without the quiet-spell samples, of
    the fold alone and of the tagger's step alone."""
    rules, scoring = load_rules(), ScoringConfig.load()
    best = {
        "full": float("inf"),
        "unsampled": float("inf"),
        "fold": float("inf"),
        "tagging": float("inf"),
    }
    pairs = sorted(
        ((item, tagged_item(item, rules)) for item in items),
        key=lambda pair: (pair[0].event_time, pair[0].item_id),
    )
    # As the worker does: only what reaches the escalator is folded in.
    ordered = [t for item, t in pairs if reaches_escalator(item, t)]
    for _ in range(rounds):
        started = time.process_time()
        backtest(items, rules, scoring)
        best["full"] = min(best["full"], time.process_time() - started)
        started = time.process_time()
        without_quiet_samples(items, rules, scoring)
        best["unsampled"] = min(best["unsampled"], time.process_time() - started)
        started = time.process_time()
        state = DyadState(dyad=DYAD_AZ_RU)
        for item in ordered:
            state = escalate(state, item, scoring).state
        best["fold"] = min(best["fold"], time.process_time() - started)
        started = time.process_time()
        for item in items:
            tagged_item(item, rules)
        best["tagging"] = min(best["tagging"], time.process_time() - started)
    return {name: len(items) / seconds for name, seconds in best.items()}


def bench_backtest(items: list[ItemCollected]) -> None:
    rates = backtest_rates(items)
    relevant = sum(1 for t in (tagged_item(item, load_rules()) for item in items) if t.relevant)
    print(f"backtest over {len(items)} items ({relevant} relevant), best of 3:")
    print(f"  tag + escalate   {rates['full']:>10,.0f} items/s")
    print(f"  the same, no index sampled through quiet spells {rates['unsampled']:>10,.0f} items/s")
    print(f"  escalate alone   {rates['fold']:>10,.0f} items/s")
    print(f"  tagging alone    {rates['tagging']:>10,.0f} items/s")


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


def corpora(copies: int) -> tuple[list[ItemCollected], list[ItemCollected]]:
    """The retold corpus and the everyday mix cut from it."""
    with tempfile.TemporaryDirectory() as directory:
        timeline = retold(CORPUS, copies, Path(directory) / "timeline.jsonl")
        items = load_archive(timeline)
        everyday = load_archive(everyday_mix(timeline, Path(directory) / "everyday.jsonl"))
    return items, everyday


def child_rounds(copies: int) -> None:
    """The `--before` side: a backtest round of each mix per line from the parent."""
    items, everyday = corpora(copies)
    print("ready", flush=True)
    for _ in sys.stdin:
        rates = {"corpus": backtest_rates(items, 1), "everyday": backtest_rates(everyday, 1)}
        print(json.dumps(rates), flush=True)


def compare_with_before(directory: Path, copies: int, rounds: int) -> None:
    """This backtest and `directory`'s, in alternating rounds: the best of each."""
    command = [sys.executable, __file__, "--child", "--copies", str(copies)]
    environment = {
        **os.environ,
        "PYTHONPATH": f"{directory.resolve()}:{directory.resolve() / 'bench'}",
        "PYTHONSAFEPATH": "1",
    }
    child = subprocess.Popen(
        command,
        cwd=directory,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdout.readline()
    items, everyday = corpora(copies)
    now: dict[str, dict[str, float]] = {"corpus": {}, "everyday": {}}
    before: dict[str, dict[str, float]] = {"corpus": {}, "everyday": {}}
    for round_number in range(1, rounds + 1):
        child.stdin.write("round\n")
        child.stdin.flush()
        theirs = json.loads(child.stdout.readline())
        ours = {"corpus": backtest_rates(items, 1), "everyday": backtest_rates(everyday, 1)}
        for mix in ("corpus", "everyday"):
            for name in ("full", "unsampled", "fold", "tagging"):
                now[mix][name] = max(now[mix].get(name, 0.0), ours[mix][name])
                before[mix][name] = max(before[mix].get(name, 0.0), theirs[mix][name])
        print(
            f"  round {round_number}: everyday tag + escalate {ours['everyday']['full']:,.0f}"
            f" items/s now, {theirs['everyday']['full']:,.0f} before"
        )
    child.stdin.close()
    child.wait()
    for mix in ("corpus", "everyday"):
        print(f"{mix}, best of {rounds} alternating rounds (items/s):   before      now")
        for name, label in (
            ("full", "tag + escalate"),
            ("unsampled", "no quiet samples"),
            ("fold", "escalate alone"),
            ("tagging", "tagging alone"),
        ):
            print(
                f"  {label:<16} {before[mix][name]:>14,.0f} {now[mix][name]:>8,.0f}"
                f"   ({now[mix][name] / before[mix][name]:.2f}x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", type=int, default=8, help="corpus copies, 3 years apart (240 items each)"
    )
    parser.add_argument("--backtest-only", action="store_true", help="no streaming part")
    parser.add_argument(
        "--before", type=Path, metavar="DIR", help="another checkout's backtest, in the same run"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds for --before")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_rounds(args.copies)
        return
    if args.before:
        compare_with_before(args.before, args.copies, args.rounds)
        return
    items, everyday = corpora(args.copies)
    print("== the corpus, half of it relevant ==")
    bench_backtest(items)
    print("== an everyday mix, one item in ten relevant ==")
    bench_backtest(everyday)
    if not args.backtest_only:
        asyncio.run(bench_streaming(items))


if __name__ == "__main__":
    main()
