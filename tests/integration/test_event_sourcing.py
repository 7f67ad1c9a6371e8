"""Replay equals live: the broker path and the backtest give the same notices, id for id.

And a worker killed mid-stream (SIGKILL) and restarted ends in the state an
uninterrupted run reaches, without counting anything twice.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.escalation.archive import load_archive, retold
from monitor.escalation.backtest import BacktestResult, backtest
from monitor.escalation.escalate import tension_state_of
from monitor.escalation.scoring import ScoringConfig
from monitor.kafka import read_topic
from monitor.streams import create_pipeline
from monitor.tagging.rules import load_rules
from monitor.topics import ALERTS_ESCALATIONS, TENSION_STATE
from schemas import EscalationNotice, ItemCollected, TensionState, decode
from tests.integration.support import monitor, worker_env

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "data" / "dev.jsonl"


async def run_ingest(settings: Settings, archive: Path) -> None:
    process = await monitor("ingest", str(archive), env=worker_env(settings))
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()


def last_escalated(result: BacktestResult) -> str:
    """The last item the escalator takes: the relevant one latest in ingest order."""
    relevant = [item for item in result.tagged if item.relevant]
    return max(relevant, key=lambda item: (item.event_time, item.item_id)).item_id


async def states(settings: Settings) -> list[TensionState]:
    return [decode(TensionState, r.value) async for r in read_topic(settings, TENSION_STATE)]


async def notices(settings: Settings) -> list[EscalationNotice]:
    return [
        decode(EscalationNotice, r.value) async for r in read_topic(settings, ALERTS_ESCALATIONS)
    ]


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    """Poll the broker until `check` holds (the topics are the only way to observe)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(0.3)


async def until_escalated(settings: Settings, last_item_id: str, timeout_s: float) -> None:
    async def escalated() -> bool:
        return any(s.last_item_id == last_item_id for s in await states(settings))

    await eventually(escalated, timeout_s)


def expected(archive: Path) -> tuple[list[ItemCollected], BacktestResult]:
    items = load_archive(archive)
    return items, backtest(items, load_rules(), ScoringConfig.load())


async def test_streaming_a_corpus_through_the_broker_gives_the_backtest_s_notices(
    own_broker_settings: Settings,
) -> None:
    _, result = expected(CORPUS)
    await run_ingest(own_broker_settings, CORPUS)
    pipeline = create_pipeline(own_broker_settings)
    await pipeline.app.start()
    try:
        await until_escalated(own_broker_settings, last_escalated(result), timeout_s=120)
    finally:
        await pipeline.app.stop()

    live = await notices(own_broker_settings)
    assert [n.notice_id for n in live] == [n.notice_id for n in result.notices]
    assert [n.model_dump() for n in live] == [n.model_dump() for n in result.notices]
    final = (await states(own_broker_settings))[-1]
    assert final == tension_state_of(result.state, result.scoring, last_escalated(result))


async def test_a_worker_killed_mid_stream_resumes_without_counting_anything_twice(
    own_broker_settings: Settings, tmp_path: Path
) -> None:
    archive = retold(CORPUS, 3, tmp_path / "timeline.jsonl")
    items, result = expected(archive)
    last = last_escalated(result)
    await run_ingest(own_broker_settings, archive)

    worker = await monitor("worker", env=worker_env(own_broker_settings))

    async def some_notices() -> bool:
        return len(await notices(own_broker_settings)) >= 5

    try:
        await eventually(some_notices, timeout_s=120)
    finally:
        worker.send_signal(signal.SIGKILL)  # also when the wait fails: leave no worker behind
        await worker.wait()
    escalated_before_kill = {s.last_item_id for s in await states(own_broker_settings)}
    assert last not in escalated_before_kill, "killed mid-stream, not after the end"

    worker = await monitor("worker", env=worker_env(own_broker_settings))
    caught_up = True
    try:
        await until_escalated(own_broker_settings, last, timeout_s=180)
    except TimeoutError:
        caught_up = False
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert caught_up, "the restarted worker did not catch up:\n" + output.decode()[-6000:]
    assert worker.returncode == 0, output.decode()

    final = (await states(own_broker_settings))[-1]
    uninterrupted = tension_state_of(result.state, result.scoring, last)
    # Same index, level, stories and items as a clean run. Only `last_item_id` may
    # differ: redelivered records can reach the escalator after the last item.
    assert final.model_dump(exclude={"last_item_id"}) == uninterrupted.model_dump(
        exclude={"last_item_id"}
    )
    delivered = await notices(own_broker_settings)
    # A notice may be delivered twice after a crash, never raised twice: same ids.
    assert {n.notice_id for n in delivered} == {n.notice_id for n in result.notices}
    assert result.state.clock is not None
    assert result.state.clock > min(i.event_time for i in items) + timedelta(days=365 * 6)
