"""Replay equals live: the broker path and the backtest give the same notices, id for id.

And a worker killed mid-stream (SIGKILL) and restarted ends in the state an
uninterrupted run reaches, without counting anything twice.
"""

from __future__ import annotations

import random
import signal
from collections import Counter
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
from monitor.topics import NEWS_DEADLETTER, NEWS_TAGGED
from schemas import ItemCollected, ItemTagged, decode
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


async def tagged_ids(settings: Settings) -> list[str]:
    return [decode(ItemTagged, r.value).item_id async for r in read_topic(settings, NEWS_TAGGED)]


async def test_a_worker_killed_five_times_at_random_points_loses_nothing(
    own_broker_settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL five times while the stream is under way; a sixth worker finishes it."""
    settings = own_broker_settings
    archive = retold(DEV_CORPUS, 4, tmp_path / "timeline.jsonl")
    items, result = expected(archive)
    last = last_escalated(result)
    await run_ingest(settings, archive)
    seed = random.randrange(2**32)
    # Where to kill: after this many records on news.tagged, a different spread each run.
    targets = sorted(random.Random(seed).sample(range(len(items) // 20, len(items) * 9 // 10), 5))

    for target in targets:
        worker = await monitor("worker", env=worker_env(settings))
        try:
            await eventually(
                lambda: tagged_ids(settings), lambda t, at=target: len(t) >= at, timeout_s=120
            )
        finally:
            worker.send_signal(signal.SIGKILL)
            await worker.communicate()

    worker = await monitor("worker", env=worker_env(settings))
    try:
        await until_escalated(settings, last, timeout_s=180)
        tagged = await eventually(
            lambda: tagged_ids(settings), lambda t: set(t) >= {i.item_id for i in items}
        )
    finally:
        code, output = await stop(worker)
    assert code == 0, output

    context = f"seed {seed}, kills after {targets} tagged records"
    assert set(tagged) == {i.item_id for i in items}, context
    delivered = Counter(n.notice_id for n in await notices(settings))
    assert set(delivered) == {n.notice_id for n in result.notices}, context
    # docs/escalation.md: a crash may deliver the notices of the records in flight
    # again, each at most once more per crash; never a notice the log does not give.
    repeats = sum(delivered.values()) - len(delivered)
    assert max(delivered.values()) <= 1 + len(targets), (context, delivered.most_common(3))
    assert repeats <= 2 * len(targets), (context, repeats)
    letters = [r async for r in read_topic(settings, NEWS_DEADLETTER)]
    assert letters == [], context
    final = (await states(settings))[-1]
    uninterrupted = tension_state_of(result.state, result.scoring, last)
    assert final.model_dump(exclude={"last_item_id"}) == uninterrupted.model_dump(
        exclude={"last_item_id"}
    ), context
