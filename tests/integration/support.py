"""What the integration tests share: starting `monitor` the way a user does, and
reading back what it published."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TypeVar

from monitor.config import Settings
from monitor.kafka import read_topic
from monitor.topics import FEEDS_HEALTH, NEWS_ITEMS, TopicSpec
from schemas import ClockTicked, Event, FeedPolled, ItemCollected, decode, decode_news_item

E = TypeVar("E", bound=Event)


async def events(settings: Settings, topic: TopicSpec, event_type: type[E]) -> list[E]:
    """Every record of `topic` so far, decoded as `event_type`, in the order read."""
    return [decode(event_type, record.value) async for record in read_topic(settings, topic)]


async def polls(settings: Settings) -> dict[str, list[FeedPolled]]:
    """The collector's FeedPolled records on feeds.health, by outlet."""
    by_source: dict[str, list[FeedPolled]] = {}
    for polled in await events(settings, FEEDS_HEALTH, FeedPolled):
        by_source.setdefault(polled.source, []).append(polled)
    return by_source


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


async def run_monitor(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
) -> tuple[int, str]:
    """`monitor ARGS…` to its end: the exit code, and what it printed."""
    process = await monitor(*args, env=env)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")


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
