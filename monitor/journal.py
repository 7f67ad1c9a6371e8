"""The embedded broker's journal: what Tansu acked, kept on disk and put back after a restart.

Tansu, the embedded broker, keeps its log in memory. For an event-sourced
service the log is the source of truth, so the embedded default follows it:

    journal = Journal.open(data_dir)            # data_dir/broker-journal.sqlite
    await restore(journal, bootstrap)           # a fresh broker gets everything back
    follower = JournalFollower(journal, bootstrap)
    await follower.start()                      # every record, as the broker acks it
    ...
    await follower.stop()                       # drains to the log's end first

The follower reads every partition of every topic as a plain reader (no
consumer group) and writes each record (offset, timestamp, key, value,
headers) to SQLite, with each topic's partitions and config and, every few
seconds, the committed offsets of every consumer group. `restore` puts all of
it back into an empty broker: the same topics, every record at its own offset
(Tansu numbers a partition's records from 0 without gaps, and the journal has
them all from 0), and the groups' offsets, so a worker goes on where it was,
with its tables' changelogs intact.

What it does not keep: records acked in the last moments before the broker
process is killed (the follower is at most about `poll_s` behind), and group
offsets committed since the last snapshot (a restarted consumer then reads a
few records again, which every consumer here tolerates). A clean stop drains
both first. Apache Kafka keeps its own log and needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from monitor.errors import MonitorError
from monitor.kafka import caught_up

log = logging.getLogger(__name__)

JOURNAL_FILE = "broker-journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    timestamp INTEGER NOT NULL, key BLOB, value BLOB, headers TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
"""


class JournalError(MonitorError):
    """The journal cannot be read, or cannot be put back as it was."""


@dataclass(frozen=True)
class JournalRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def _headers_text(headers: Sequence[tuple[str, bytes]]) -> str:
    return json.dumps([[name, value.hex()] for name, value in headers])


def _headers_of(text: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, bytes.fromhex(value)) for name, value in json.loads(text))


class Journal:
    """The SQLite file: topics, records, group offsets and the cluster id it belongs to."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, data_dir: Path) -> Journal:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / JOURNAL_FILE
        try:
            # Used from the event loop's thread and the writer thread, never at once.
            connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            # WAL with NORMAL sync: a crash of this process loses nothing committed.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise JournalError(f"cannot open the broker journal {path}: {error}") from error
        return cls(connection, path)

    def close(self) -> None:
        self._db.close()

    def cluster_id(self) -> str:
        """The id the broker runs under with this journal: made once, kept for good.

        A broker that comes back with another id has lost its log, which is how
        clients tell a restart from a reset (see monitor.observe.broker_watch).
        """
        row = self._db.execute("SELECT value FROM meta WHERE name = 'cluster_id'").fetchone()
        if row is not None:
            return str(row[0])
        made = f"monitor-{uuid.uuid4().hex}"
        self._db.execute("INSERT INTO meta (name, value) VALUES ('cluster_id', ?)", (made,))
        return made

    def topics(self) -> dict[str, tuple[int, dict[str, str]]]:
        rows = self._db.execute("SELECT name, partitions, config FROM topics ORDER BY name")
        return {name: (partitions, json.loads(config)) for name, partitions, config in rows}

    def record_topic(self, name: str, partitions: int, config: dict[str, str]) -> None:
        self._db.execute(
            "INSERT INTO topics (name, partitions, config) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET partitions = excluded.partitions,"
            " config = excluded.config",
            (name, partitions, json.dumps(config, sort_keys=True)),
        )

    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset the journal expects next (one past its last record)."""
        rows = self._db.execute(
            'SELECT topic, partition, MAX("offset") + 1 FROM records GROUP BY topic, partition'
        )
        return {TopicPartition(topic, partition): int(end) for topic, partition, end in rows}

    def append(self, records: Sequence[JournalRecord]) -> None:
        """Write records in one transaction; one already there (a re-read) is kept as it was."""
        with self._transaction():
            self._db.executemany(
                'INSERT OR IGNORE INTO records (topic, partition, "offset", timestamp, key,'
                " value, headers) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.topic,
                        r.partition,
                        r.offset,
                        r.timestamp,
                        r.key,
                        r.value,
                        _headers_text(r.headers),
                    )
                    for r in records
                ],
            )

    def records(self, topic: str, partition: int) -> Iterator[JournalRecord]:
        rows = self._db.execute(
            'SELECT "offset", timestamp, key, value, headers FROM records'
            ' WHERE topic = ? AND partition = ? ORDER BY "offset"',
            (topic, partition),
        )
        for offset, timestamp, key, value, headers in rows:
            yield JournalRecord(
                topic, partition, offset, timestamp, key, value, _headers_of(headers)
            )

    def record_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def set_group_offsets(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        with self._transaction():
            self._db.executemany(
                'INSERT INTO group_offsets (group_id, topic, partition, "offset")'
                ' VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET "offset" = excluded."offset"',
                [(group_id, tp.topic, tp.partition, offset) for tp, offset in offsets.items()],
            )

    def group_offsets(self) -> dict[str, dict[TopicPartition, int]]:
        groups: dict[str, dict[TopicPartition, int]] = {}
        rows = self._db.execute('SELECT group_id, topic, partition, "offset" FROM group_offsets')
        for group_id, topic, partition, offset in rows:
            groups.setdefault(group_id, {})[TopicPartition(topic, partition)] = int(offset)
        return groups

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


# --- putting it back -----------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    topics: int
    records: int
    groups: int
    seconds: float


Progress = Callable[[int, int], None]
# Sends in flight at once while putting records back, and how often to say how far it got.
_RESTORE_BATCH = 5_000
_PROGRESS_EVERY = 20_000


def _log_progress(done: int, total: int) -> None:
    log.info("broker journal: %d of %d records put back", done, total)


async def restore(journal: Journal, bootstrap: str, progress: Progress = _log_progress) -> Restored:
    """Put the journal back into the empty broker at `bootstrap`, offsets and all."""
    started = time.monotonic()
    topics = journal.topics()
    total = journal.record_count()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, 1, topic_configs=config)
            for name, (partitions, config) in topics.items()
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1 << 20
    )
    await producer.start()
    done = 0
    try:
        for name, (partitions, _) in topics.items():
            for partition in range(partitions):
                pending: list[tuple[int, asyncio.Future[Any]]] = []
                for record in journal.records(name, partition):
                    delivery = await producer.send(
                        name,
                        record.value,
                        key=record.key,
                        partition=partition,
                        timestamp_ms=record.timestamp,
                        headers=list(record.headers),
                    )
                    pending.append((record.offset, delivery))
                    if len(pending) >= _RESTORE_BATCH:
                        done = await _confirm(name, partition, pending, done, total, progress)
                        pending = []
                done = await _confirm(name, partition, pending, done, total, progress)
    finally:
        await producer.stop()

    groups = journal.group_offsets()
    for group_id, offsets in groups.items():
        try:
            await _commit(bootstrap, group_id, offsets)
        except KafkaError as error:
            # Only an empty group takes offsets from outside: a worker that rejoined
            # while the records were put back keeps the positions it has.
            log.warning(
                "broker journal: the offsets of consumer group %s were not put back (%s):"
                " it had members again before the journal was back",
                group_id,
                error,
            )
    return Restored(len(topics), done, len(groups), time.monotonic() - started)


async def _confirm(
    topic: str,
    partition: int,
    pending: list[tuple[int, asyncio.Future[Any]]],
    done: int,
    total: int,
    progress: Progress,
) -> int:
    """Wait for the sends in flight; each record must land at its journaled offset."""
    for offset, delivery in pending:
        metadata = await delivery
        if metadata.offset != offset:
            raise JournalError(
                f"{topic}[{partition}]: the journal's record {offset} came back at offset"
                f" {metadata.offset}; the broker was not empty"
            )
    if pending and (done + len(pending)) // _PROGRESS_EVERY > done // _PROGRESS_EVERY:
        progress(done + len(pending), total)
    return done + len(pending)


async def _commit(bootstrap: str, group_id: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


# --- following the broker --------------------------------------------------------


class JournalFollower:
    """Writes every record the broker holds into the journal, as it comes."""

    def __init__(
        self,
        journal: Journal,
        bootstrap: str,
        *,
        poll_s: float = 0.1,
        discover_every_s: float = 1.0,
        groups_every_s: float = 2.0,
    ) -> None:
        self.journal = journal
        self.bootstrap = bootstrap
        self.poll_s = poll_s
        self.discover_every_s = discover_every_s
        self.groups_every_s = groups_every_s
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=int(poll_s * 1000),
        )
        self._group_readers: dict[str, AIOKafkaConsumer] = {}
        self._partitions: set[TopicPartition] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._admin.start()
        await self._reader.start()
        await self._discover()
        self._task = asyncio.create_task(self._follow(), name="broker-journal")

    async def stop(self) -> None:
        """Drain to the end of every partition and snapshot the groups, then let go."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.drain()
        finally:
            for consumer in [self._reader, *self._group_readers.values()]:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            with contextlib.suppress(Exception):
                await self._admin.close()

    async def drain(self) -> None:
        """Journal everything the broker holds now, and the groups' offsets."""
        await self._discover()
        if self._partitions:
            partitions = sorted(self._partitions)
            ends = await self._reader.end_offsets(partitions)
            # Caught up by the end offsets and high watermarks, and one more read that
            # finds nothing: Tansu's end offsets alone can fall short (see caught_up).
            while True:
                at_end = await caught_up(self._reader, partitions, ends)
                if not await self._read_once() and at_end:
                    break
        await self._snapshot_groups()

    async def _follow(self) -> None:
        discovered = grouped = time.monotonic()
        while True:
            try:
                await self._read_once()
                now = time.monotonic()
                if now - discovered >= self.discover_every_s:
                    await self._discover()
                    discovered = now
                if now - grouped >= self.groups_every_s:
                    await self._snapshot_groups()
                    grouped = now
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker is going away or busy: try again, never give up
                log.warning("broker journal: reading the broker failed; retrying", exc_info=True)
                await asyncio.sleep(self.poll_s * 5)

    async def _read_once(self) -> int:
        """Journal what one fetch brings; how many records that was."""
        if not self._partitions:
            await asyncio.sleep(self.poll_s)
            return 0
        batches = await self._reader.getmany(timeout_ms=int(self.poll_s * 1000), max_records=5000)
        rows = [
            JournalRecord(
                tp.topic,
                tp.partition,
                message.offset,
                message.timestamp,
                message.key,
                message.value,
                tuple(message.headers),
            )
            for tp, messages in batches.items()
            for message in messages
        ]
        if rows:
            await asyncio.to_thread(self.journal.append, rows)
        return len(rows)

    async def _discover(self) -> None:
        """Follow topics created since the last look, from where the journal ends."""
        described = await self._admin.describe_topics()
        known = self.journal.topics()
        new_partitions: list[TopicPartition] = []
        for topic in described:
            name = topic["topic"]
            partitions = len(topic["partitions"])
            if known.get(name, (None,))[0] != partitions:
                self.journal.record_topic(name, partitions, await self._config_of(name))
            new_partitions.extend(
                tp
                for p in topic["partitions"]
                if (tp := TopicPartition(name, p["partition"])) not in self._partitions
            )
        if not new_partitions:
            return
        self._partitions.update(new_partitions)
        self._reader.assign(sorted(self._partitions))
        journaled = self.journal.next_offsets()
        for tp in self._partitions:
            # assign() forgets positions: every partition starts again where the journal ends.
            self._reader.seek(tp, journaled.get(tp, 0))

    async def _config_of(self, topic: str) -> dict[str, str]:
        """The topic's configs set at creation (cleanup.policy and the like), not defaults."""
        responses = await self._admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
        config: dict[str, str] = {}
        for response in responses:
            for resource in response.resources:
                for entry in resource[4]:
                    name, value, _read_only, source = entry[0], entry[1], entry[2], entry[3]
                    # 1: DYNAMIC_TOPIC_CONFIG, 5: the source Tansu reports for topic configs.
                    if value is not None and source in (1, 5):
                        config[str(name)] = str(value)
        return config

    async def _snapshot_groups(self) -> None:
        groups: list[Any] = await self._admin.list_consumer_groups()
        partitions = sorted(self._partitions)
        for group_id, _protocol in groups:
            reader = self._group_readers.get(group_id)
            if reader is None:
                reader = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap, group_id=group_id, enable_auto_commit=False
                )
                await reader.start()
                self._group_readers[group_id] = reader
            committed = await asyncio.gather(*(reader.committed(tp) for tp in partitions))
            offsets = {
                tp: offset for tp, offset in zip(partitions, committed, strict=True) if offset
            }
            if offsets:
                await asyncio.to_thread(self.journal.set_group_offsets, group_id, offsets)
