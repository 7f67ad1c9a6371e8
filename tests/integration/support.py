"""What the integration tests share: starting `monitor` the way a user does, and
reading back what it published."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from monitor.broker import EmbeddedBroker
from monitor.config import Settings
from monitor.escalation.backtest import BacktestResult
from monitor.kafka import producer, publish, read_topic
from monitor.records import Outgoing
from monitor.topics import (
    ALERTS_ESCALATIONS,
    NEWS_ITEMS,
    TENSION_STATE,
    TopicSpec,
    ensure_topics,
)
from schemas import (
    ClockTicked,
    EscalationNotice,
    Event,
    ItemCollected,
    TensionState,
    decode,
    decode_news_item,
)
from tests.waiting import eventually

E = TypeVar("E", bound=Event)


@asynccontextmanager
async def broker_holding(
    records: Sequence[Outgoing] = (), **settings: Any
) -> AsyncIterator[Settings]:
    """An embedded broker of the caller's own, its topics created and holding `records`;
    yields the settings that reach it (`settings` overriding the defaults)."""
    async with EmbeddedBroker() as broker:
        reaching = Settings(bootstrap=broker.bootstrap, **settings)
        await ensure_topics(reaching)
        if records:
            async with producer(reaching) as client:
                await publish(client, records)
        yield reaching


async def events(settings: Settings, topic: TopicSpec, event_type: type[E]) -> list[E]:
    """Every record of `topic` so far, decoded as `event_type`, in the order read."""
    return [decode(event_type, record.value) async for record in read_topic(settings, topic)]


async def news_items(settings: Settings) -> tuple[list[ItemCollected], list[ClockTicked]]:
    """What news.items holds: the items collected, and the collector's clock ticks."""
    items: list[ItemCollected] = []
    ticks: list[ClockTicked] = []
    async for record in read_topic(settings, NEWS_ITEMS):
        decoded = decode_news_item(record.value)
        (ticks if isinstance(decoded, ClockTicked) else items).append(decoded)  # type: ignore[arg-type]
    return items, ticks


async def monitor(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """`monitor ARGS…` in a child process, output and errors on one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


async def stop(
    process: asyncio.subprocess.Process,
    how: signal.Signals = signal.SIGTERM,
    timeout_s: float = 60,
) -> tuple[int, str]:
    """Stop `monitor` as a user does (Ctrl-C sends SIGINT, `docker stop` SIGTERM) and
    wait for its end: the exit code, and what it printed."""
    process.send_signal(how)
    return await _ended(process, timeout_s)


async def _ended(process: asyncio.subprocess.Process, timeout_s: float) -> tuple[int, str]:
    output, _ = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")


async def run_monitor(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
) -> tuple[int, str]:
    """`monitor ARGS…` to its end: the exit code, and what it printed."""
    return await _ended(await monitor(*args, env=env), timeout_s)


async def succeeds(*args: str, env: dict[str, str] | None = None, timeout_s: float = 60) -> str:
    """`monitor ARGS…` to its end, which must be exit code 0; what it printed."""
    code, output = await run_monitor(*args, env=env, timeout_s=timeout_s)
    assert code == 0, output
    return output


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that points `monitor worker` (or `ingest`) at `settings`."""
    return {
        "MONITOR_KAFKA_BOOTSTRAP": settings.bootstrap,
        "MONITOR_PARTITIONS": str(settings.partitions),
        "MONITOR_DATA_DIR": str(settings.data_dir),
        "MONITOR_REBALANCE_TIMEOUT": str(settings.rebalance_timeout_s),
    }


# --- what the escalation published -----------------------------------------------


async def run_ingest(settings: Settings, archive: Path) -> None:
    await succeeds("ingest", str(archive), env=worker_env(settings), timeout_s=120)


def last_escalated(result: BacktestResult) -> str:
    """The last item the escalator takes: the relevant one latest in ingest order."""
    relevant = [item for item in result.tagged if item.relevant]
    return max(relevant, key=lambda item: (item.event_time, item.item_id)).item_id


async def states(settings: Settings) -> list[TensionState]:
    return await events(settings, TENSION_STATE, TensionState)


async def notices(settings: Settings) -> list[EscalationNotice]:
    return await events(settings, ALERTS_ESCALATIONS, EscalationNotice)


async def until_escalated(settings: Settings, last_item_id: str, timeout_s: float) -> None:
    """Until the escalator has taken `last_item_id` (the topics are the only way to observe)."""

    def escalated(published: list[TensionState]) -> bool:
        return any(s.last_item_id == last_item_id for s in published)

    await eventually(lambda: states(settings), escalated, timeout_s=timeout_s, every_s=0.3)
