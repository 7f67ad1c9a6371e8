"""Backfill and rebuild: the event-sourced operations on the broker.

`ingest` publishes archived items into news.items, oldest first, as a
collector would have. `replay` reads news.items, derives everything again
with the current rules (the backtest's pure functions), says what changed
against the notices already published, and with `apply` rebuilds the
derived topics and the escalator's table from that derivation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from monitor.clock import utc_now
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.escalation.agent import dyad_records, tick_records
from monitor.escalation.archive import ArchiveError, RejectedLine
from monitor.escalation.backtest import BacktestResult, fold_log
from monitor.escalation.escalate import tension_state_of
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.state import table_records
from monitor.kafka import producer, publish, read_topic
from monitor.records import Origin, Outgoing, RawRecord, dead_letter
from monitor.tagging.rules import Rules
from monitor.topics import (
    ALERTS_ESCALATIONS,
    NEWS_ITEMS,
    NEWS_TAGGED,
    TENSION_BY_DYAD,
    TENSION_STATE,
    TopicSpec,
    changelog_topics,
    ensure_topics,
)
from schemas import ClockTicked, EscalationNotice, ItemCollected, decode, decode_news_item

log = logging.getLogger(__name__)

Tick = Callable[[int], None]


class ReplayError(MonitorError):
    """A replay cannot go ahead; the message says why."""


async def ingest(
    settings: Settings,
    items: Sequence[ItemCollected],
    tick: Tick,
    rejected: Sequence[RejectedLine] = (),
    source: str = "archive",
) -> int:
    """Publish items to news.items, oldest first (ties by id), as a backfill; the
    lines of `source` that are not items go to news.deadletter (stage `ingest`,
    topic `ingest:<source>`, offset the line number), so that nothing read is lost."""
    await ensure_topics(settings)
    ordered = sorted(items, key=lambda item: (item.event_time, item.item_id))
    letters = [
        dead_letter(
            "ingest",
            RawRecord(f"ingest:{source}", 0, line.number, None, line.line),
            ArchiveError(line.reason),
            utc_now,
        )
        for line in rejected
    ]
    async with producer(settings) as client:
        await publish(client, letters)
        for start in range(0, len(ordered), 500):
            batch = ordered[start : start + 500]
            await publish(client, [Outgoing.of(NEWS_ITEMS, i.item_id, i) for i in batch])
            tick(len(batch))
    return len(ordered)


@dataclass(frozen=True)
class ReplayReport:
    items: int
    undecodable: int
    result: BacktestResult
    previous: dict[str, EscalationNotice]
    # The records of news.items folded, with their (partition, offset), in log order.
    log: tuple[tuple[Origin, ItemCollected | ClockTicked], ...] = ()

    @property
    def current(self) -> dict[str, EscalationNotice]:
        return {notice.notice_id: notice for notice in self.result.notices}

    @property
    def added(self) -> list[EscalationNotice]:
        return [n for i, n in self.current.items() if i not in self.previous]

    @property
    def withdrawn(self) -> list[EscalationNotice]:
        return [n for i, n in self.previous.items() if i not in self.current]

    @property
    def kept(self) -> int:
        return len(self.current.keys() & self.previous.keys())


async def derive(
    settings: Settings, rules: Rules, scoring: ScoringConfig, tick: Tick
) -> ReplayReport:
    """Everything news.items implies under the current rules, and the notices published.

    The records are folded in log order, ticks included, exactly as the worker
    folds them: a redelivered item is absorbed by the escalator as it is live.
    """
    log_records: list[ItemCollected | ClockTicked] = []
    origins: list[Origin] = []
    undecodable = 0
    async for record in read_topic(settings, NEWS_ITEMS):
        try:
            log_records.append(decode_news_item(record.value))
            origins.append((record.partition, record.offset))
        except ValueError:
            undecodable += 1  # already in news.deadletter, as the worker saw it
        tick(1)
    result = fold_log(log_records, rules, scoring, origins=origins)
    previous: dict[str, EscalationNotice] = {}
    async for record in read_topic(settings, ALERTS_ESCALATIONS):
        try:
            notice = decode(EscalationNotice, record.value)
        except ValueError:
            continue
        previous[notice.notice_id] = notice
    items = sum(1 for record in log_records if isinstance(record, ItemCollected))
    return ReplayReport(
        items, undecodable, result, previous, tuple(zip(origins, log_records, strict=True))
    )


async def _refuse_if_worker_runs(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_consumer_groups([settings.app_id])
    except Exception as error:  # a broker without DescribeGroups: say so, go on
        log.warning("cannot tell whether a worker is running (%s); make sure none is", error)
        return
    finally:
        await admin.close()
    members = getattr(description, "members", None) or []
    if members:
        raise ReplayError(
            f"{len(members)} worker(s) of {settings.app_id!r} are running: stop them first,"
            " a rebuild replaces the topics they read and write"
        )


async def _recreate(settings: Settings, specs: Sequence[TopicSpec]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [spec.name for spec in specs if spec.name in existing]
        if doomed:
            await admin.delete_topics(doomed)
        for _ in range(100):  # deletion is asynchronous on real Kafka
            if not set(await admin.list_topics()) & set(doomed):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    await ensure_topics(settings, specs)


async def _commit_to_end(settings: Settings, specs: Sequence[TopicSpec]) -> None:
    """Move the worker group past what the rebuild already derived."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, group_id=settings.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(spec.name, partition)
            for spec in specs
            for partition in sorted(consumer.partitions_for_topic(spec.name) or ())
        ]
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
    finally:
        await consumer.stop()


async def rebuild(settings: Settings, report: ReplayReport, tick: Tick) -> None:
    """Replace the derived topics and the escalator's table with the replay's derivation."""
    await _refuse_if_worker_runs(settings)
    derived = [NEWS_TAGGED, TENSION_BY_DYAD, ALERTS_ESCALATIONS, TENSION_STATE]
    changelogs = list(changelog_topics(settings))
    await _recreate(settings, [*derived, *changelogs])

    result = report.result
    outgoing: list[Outgoing] = [Outgoing.of(NEWS_TAGGED, t.item_id, t) for t in result.tagged]
    tagged = iter(result.tagged)
    for origin, record in report.log:
        if isinstance(record, ClockTicked):
            outgoing += tick_records(record, origin)
        else:
            outgoing += dyad_records(record, next(tagged), origin)
    outgoing += [Outgoing.of(ALERTS_ESCALATIONS, n.dyad, n) for n in result.notices]
    state = result.state
    if state.clock is not None:
        last = result.tagged[-1].item_id if result.tagged else "replay"
        outgoing.append(
            Outgoing.of(TENSION_STATE, state.dyad, tension_state_of(state, result.scoring, last))
        )
        # The table's records, as the worker's escalator stores them, so it resumes here.
        for changelog in changelogs:
            outgoing += [
                Outgoing(changelog, key, value) for key, value in table_records(state).items()
            ]
    async with producer(settings) as client:
        for start in range(0, len(outgoing), 1000):
            batch = outgoing[start : start + 1000]
            await publish(client, batch)
            tick(len(batch))
    await _commit_to_end(settings, [NEWS_ITEMS, NEWS_TAGGED, TENSION_BY_DYAD])
