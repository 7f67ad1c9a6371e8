"""Is the broker there, and is it still the same log? Watched by every long-running role.

A broker that goes away is retried by every client. One that comes back
*empty* (the embedded broker started without its data directory, a Kafka
cluster recreated) looks the same to them, while what they built from the old
log (a worker's tables, the collector's memory) no longer matches the new one.
The cluster id tells the two apart: Kafka's own, and the embedded broker's is
kept with its journal (monitor.journal). The watch logs each change, and
exports `monitor_broker_up` and `monitor_broker_resets_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient

from monitor.observe.metrics import Metrics

log = logging.getLogger(__name__)


class BrokerWatch:
    """One look every `every_s` seconds at the broker's cluster id."""

    def __init__(self, bootstrap: str, metrics: Metrics | None = None, every_s: float = 10.0):
        self.bootstrap = bootstrap
        self.metrics = metrics
        self.every_s = every_s
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
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        return str(cluster["cluster_id"])
