"""The embedded broker on a data directory keeps what it acked across a restart.

A user runs the embedded default as a single-machine deployment: the broker is
stopped and started again (an upgrade, a reboot) while a worker stays up, or
with the worker restarted too. Every item acked before the stop is still on
news.items afterwards, at the same offset; the level is the one before; and
the notices at the end are the backtest's, as if nothing had happened.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.broker import EmbeddedBroker
from monitor.config import Settings
from monitor.escalation.archive import load_archive
from monitor.escalation.backtest import backtest
from monitor.escalation.scoring import ScoringConfig
from monitor.kafka import read_topic
from monitor.tagging.rules import load_rules
from monitor.topics import NEWS_ITEMS, ensure_topics
from tests.integration.support import monitor, worker_env
from tests.integration.test_event_sourcing import (
    last_escalated,
    notices,
    run_ingest,
    states,
    until_escalated,
)

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "data" / "dev.jsonl"


def halves(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The corpus in two batches, and the whole of it, as archive files."""
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    middle = len(lines) // 2
    paths = []
    for name, part in (("first", lines[:middle]), ("second", lines[middle:]), ("all", lines)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(part) + "\n", encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1], paths[2]


async def offsets_and_values(settings: Settings) -> list[tuple[int, int, bytes]]:
    return [(r.partition, r.offset, r.value) async for r in read_topic(settings, NEWS_ITEMS)]


async def test_a_restarted_embedded_broker_keeps_items_level_and_offsets(tmp_path: Path) -> None:
    first, second, everything = halves(tmp_path)
    scoring, rules = ScoringConfig.load(), load_rules()
    after_first = backtest(load_archive(first), rules, scoring)
    after_all = backtest(load_archive(everything), rules, scoring)

    broker_dir = tmp_path / "broker"
    broker = EmbeddedBroker(data_dir=broker_dir)
    await broker.start()
    settings = replace(
        Settings(),
        bootstrap=broker.bootstrap,
        partitions=1,
        data_dir=tmp_path / "faust",
        rebalance_timeout_s=4.0,
    )
    worker = None
    try:
        await ensure_topics(settings)
        worker = await monitor("worker", env=worker_env(settings))
        await run_ingest(settings, first)
        await until_escalated(settings, last_escalated(after_first), timeout_s=120)
        acked = await offsets_and_values(settings)
        level_before = (await states(settings))[-1]
        cluster_id = broker.cluster_id

        await broker.stop()
        broker = EmbeddedBroker(port=broker.port, data_dir=broker_dir)
        await broker.start()

        assert broker.cluster_id == cluster_id, "the same log: the same cluster id"
        assert await offsets_and_values(settings) == acked
        assert (await states(settings))[-1] == level_before
        assert [n.notice_id for n in await notices(settings)] == [
            n.notice_id for n in after_first.notices
        ]

        # The worker stayed up through the restart and goes on with the next batch.
        await run_ingest(settings, second)
        await until_escalated(settings, last_escalated(after_all), timeout_s=120)
        assert [n.notice_id for n in await notices(settings)] == [
            n.notice_id for n in after_all.notices
        ]
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
        await broker.stop()
    assert worker.returncode == 0, output.decode()[-4000:]


async def test_a_broker_without_a_data_directory_comes_back_as_another_cluster() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    port, first_id = broker.port, broker.cluster_id
    await broker.stop()
    broker = EmbeddedBroker(port=port)
    await broker.start()
    try:
        assert broker.cluster_id != first_id
    finally:
        await broker.stop()
