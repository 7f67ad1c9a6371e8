"""What the streaming benchmarks share: an embedded broker of their own, topics made."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.broker import EmbeddedBroker
from monitor.config import Settings
from monitor.topics import TopicSpec, ensure_topics


@dataclass(frozen=True)
class BenchBroker:
    settings: Settings
    pid: int  # the broker process, whose memory the soak watches


@asynccontextmanager
async def bench_broker(app_id: str, extra: Sequence[TopicSpec] = ()) -> AsyncIterator[BenchBroker]:
    """A fresh embedded broker with every topic created (and `extra` ones for baselines),
    and settings for a worker on it that joins its group quickly."""
    with tempfile.TemporaryDirectory() as data:
        async with EmbeddedBroker() as broker:
            settings = replace(
                Settings(),
                bootstrap=broker.bootstrap,
                app_id=app_id,
                data_dir=Path(data),
                rebalance_timeout_s=4.0,
            )
            await ensure_topics(settings)
            if extra:
                await ensure_topics(settings, extra)
            yield BenchBroker(settings, broker.pid)
