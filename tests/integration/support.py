"""What the integration tests share: starting `monitor` the way a user does, and
reading back what it published."""

from __future__ import annotations

import asyncio
import os
import sys

from monitor.config import Settings
from monitor.kafka import read_topic
from monitor.topics import NEWS_ITEMS
from schemas import ClockTicked, ItemCollected, decode_news_item


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


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that points `monitor worker` (or `ingest`) at `settings`."""
    return {
        "MONITOR_KAFKA_BOOTSTRAP": settings.bootstrap,
        "MONITOR_PARTITIONS": str(settings.partitions),
        "MONITOR_DATA_DIR": str(settings.data_dir),
        "MONITOR_REBALANCE_TIMEOUT": str(settings.rebalance_timeout_s),
    }
