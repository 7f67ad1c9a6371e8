"""Replay equals live: the broker path and the backtest give the same notices, id for id.

And a worker killed mid-stream (SIGKILL) and restarted ends in the state an
uninterrupted run reaches, without counting anything twice.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.escalation.archive import load_archive, retold
from monitor.escalation.backtest import BacktestResult, backtest
from monitor.escalation.escalate import tension_state_of
from monitor.escalation.scoring import ScoringConfig
from monitor.streams import create_pipeline
from monitor.tagging.rules import load_rules
from schemas import ItemCollected
from tests.corpus import DEV_CORPUS
from tests.integration.support import (
    last_escalated,
    monitor,
    notices,
    run_ingest,
    states,
    stop,
    until_escalated,
    worker_env,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def expected(archive: Path) -> tuple[list[ItemCollected], BacktestResult]:
    items = load_archive(archive)
    return items, backtest(items, load_rules(), ScoringConfig.load())


async def test_streaming_a_corpus_through_the_broker_gives_the_backtest_s_notices(
    own_broker_settings: Settings,
) -> None:
    _, result = expected(DEV_CORPUS)
    await run_ingest(own_broker_settings, DEV_CORPUS)
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
    archive = retold(DEV_CORPUS, 3, tmp_path / "timeline.jsonl")
    items, result = expected(archive)
    last = last_escalated(result)
    await run_ingest(own_broker_settings, archive)

    worker = await monitor("worker", env=worker_env(own_broker_settings))

    try:
        await eventually(
            lambda: notices(own_broker_settings), lambda n: len(n) >= 5, timeout_s=120, every_s=0.3
        )
    finally:
        worker.send_signal(signal.SIGKILL)  # also when the wait fails: leave no worker behind
        await worker.wait()
    escalated_before_kill = {s.last_item_id for s in await states(own_broker_settings)}
    assert last not in escalated_before_kill, "killed mid-stream, not after the end"

    worker = await monitor("worker", env=worker_env(own_broker_settings))
    caught_up = True
    try:
        await until_escalated(own_broker_settings, last, timeout_s=180)
    except AssertionError:
        caught_up = False
    finally:
        code, output = await stop(worker)
    assert caught_up, "the restarted worker did not catch up:\n" + output[-6000:]
    assert code == 0, output

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
