"""Is the broker there, and is it still the same log? Watched by every long-running role.

A broker that goes away is retried by every client. One that comes back
*empty* (the embedded broker started without its data directory, a Kafka
cluster recreated) looks the same to them, while what they built from the old
log (a worker's tables, the collector's memory) no longer matches the new one.
The cluster id tells the two apart: Kafka's own, and the embedded broker's is
kept with its journal (monitor.journal). The watch logs each change, and
exports `monitor_broker_up` and `monitor_broker_resets_total`.

A process that starts after the reset never saw the old cluster: so the last
cluster id seen for each bootstrap address, and the resets seen, are kept in
the data directory (`BrokerMemory`), where the next process and `monitor
status` find them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from monitor.clock import Clock, utc_now
from monitor.observe.metrics import Metrics

log = logging.getLogger(__name__)


MEMORY_FILE = "brokers.json"
KEPT_RESETS = 20  # the latest are what an operator needs; the file stays small


@dataclass
class Reset:
    at: str  # ISO time the change was first seen
    was: str
    now: str


@dataclass
class BrokerSeen:
    """What the data directory remembers of one bootstrap address."""

    cluster_id: str
    since: str  # ISO time this cluster id was first seen
    resets: list[Reset] = field(default_factory=list)


class BrokerMemory:
    """The cluster ids seen, per bootstrap address, in DATA_DIR/brokers.json."""

    def __init__(self, data_dir: Path, clock: Clock = utc_now):
        self.path = data_dir / MEMORY_FILE
        self.clock = clock

    def load(self) -> dict[str, BrokerSeen]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {
                address: BrokerSeen(
                    seen["cluster_id"], seen["since"], [Reset(**r) for r in seen.get("resets", [])]
                )
                for address, seen in raw.items()
            }
        except (OSError, ValueError, KeyError, TypeError):
            return {}  # none yet, or unreadable: start remembering afresh

    def seen(self, bootstrap: str) -> BrokerSeen | None:
        return self.load().get(bootstrap)

    def remember(self, bootstrap: str, cluster_id: str) -> Reset | None:
        """Record `cluster_id` as the one at `bootstrap`; the reset, if it is another."""
        memory = self.load()
        before = memory.get(bootstrap)
        if before is not None and before.cluster_id == cluster_id:
            return None
        now = self.clock().isoformat()
        if before is None:
            memory[bootstrap] = BrokerSeen(cluster_id, now)
            self._write(memory)
            return None
        reset = Reset(now, before.cluster_id, cluster_id)
        memory[bootstrap] = BrokerSeen(cluster_id, now, [*before.resets, reset][-KEPT_RESETS:])
        self._write(memory)
        return reset

    def _write(self, memory: dict[str, BrokerSeen]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(
                json.dumps({a: asdict(s) for a, s in memory.items()}, indent=2), encoding="utf-8"
            )
            temporary.replace(self.path)  # whole or not at all, with several roles writing
        except OSError as error:
            log.warning("cannot remember the broker's cluster id in %s: %s", self.path, error)


class BrokerWatch:
    """One look every `every_s` seconds at the broker's cluster id."""

    def __init__(
        self,
        bootstrap: str,
        metrics: Metrics | None = None,
        every_s: float = 10.0,
        memory: BrokerMemory | None = None,
    ):
        self.bootstrap = bootstrap
        self.metrics = metrics
        self.every_s = every_s
        self.memory = memory
        self.cluster_id: str | None = None
        self.up: bool | None = None
        self.resets = 0

    async def check(self) -> None:
        try:
            cluster_id = await self._cluster_id()
        except Exception as error:  # any failure to reach it means "not there now"
            if self.up is not False:
                log.warning("broker %s unreachable: %s; retrying", self.bootstrap, error)
            self._set_up(False)
            return
        if self.up is False:
            log.info("broker %s reachable again", self.bootstrap)
        self._set_up(True)
        if self.cluster_id is None and self.memory is not None:
            seen = self.memory.seen(self.bootstrap)
            # Reset while no process watched: the data directory saw the old cluster.
            self.cluster_id = seen.cluster_id if seen is not None else None
        if self.memory is not None:
            self.memory.remember(self.bootstrap, cluster_id)
        if self.cluster_id is None:
            self.cluster_id = cluster_id
            log.info("broker %s: cluster id %s", self.bootstrap, cluster_id)
        elif cluster_id != self.cluster_id:
            self.resets += 1
            if self.metrics is not None:
                self.metrics.broker_resets.inc()
            log.error(
                "broker %s came back as another cluster (%s, was %s): its log is not the"
                " one this process started from. State built from the old log (tables,"
                " the collector's memory) no longer matches it: restart the roles, and"
                " replay the archives into the new broker (monitor ingest) if it lost them.",
                self.bootstrap,
                cluster_id,
                self.cluster_id,
            )
            self.cluster_id = cluster_id

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)

    def _set_up(self, up: bool) -> None:
        self.up = up
        if self.metrics is not None:
            self.metrics.broker_up.set(1 if up else 0)

    async def _cluster_id(self) -> str:
        return await cluster_id_of(self.bootstrap)


async def cluster_id_of(bootstrap: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return str(cluster["cluster_id"])
