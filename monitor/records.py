"""Records in and out of the stream processors, and the dead-letter path.

Agents read raw bytes and decode them here. Anything that fails to decode or
to process becomes a DeadLetter with the original bytes and the reason;
the agent goes on with the next record.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from monitor.clock import Clock
from monitor.topics import NEWS_DEADLETTER, TopicSpec
from schemas import DeadLetter, Event, encode

Headers = tuple[tuple[str, bytes], ...]

# Where a derived record comes from: the partition and offset of its source record
# on news.items. Carried as a header, so that a consumer downstream can tell a
# redelivery (the same source, sent again after a crash) from a new record.
ORIGIN_HEADER = "monitor-origin"
Origin = tuple[int, int]


@dataclass(frozen=True)
class RawRecord:
    """A consumed record as the broker gave it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()

    @property
    def origin(self) -> Origin:
        """This record as the origin of what is derived from it."""
        return self.partition, self.offset

    def derived_from(self) -> Origin | None:
        """The origin this record carries, if it is a derived one."""
        for name, value in self.headers:
            if name == ORIGIN_HEADER:
                partition, _, offset = value.decode("ascii", errors="replace").partition(":")
                if partition.isdigit() and offset.isdigit():
                    return int(partition), int(offset)
        return None


@dataclass(frozen=True)
class Outgoing:
    """A record to produce."""

    topic: TopicSpec
    key: bytes
    value: bytes
    headers: Headers = ()

    @classmethod
    def of(cls, topic: TopicSpec, key: str, event: Event, origin: Origin | None = None) -> Outgoing:
        headers: Headers = ()
        if origin is not None:
            headers = ((ORIGIN_HEADER, f"{origin[0]}:{origin[1]}".encode("ascii")),)
        return cls(topic, key.encode("utf-8"), encode(event), headers)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# The largest value the monitor produces from input it did not make (an archive's
# item): under the 1 MiB that producers and brokers take by default, with room for
# the record batch around it.
MAX_RECORD_BYTES = 1_000_000

# The most of a failed record's value and key a dead letter carries. A letter must
# fit under the broker's record limit (1 MiB by default) whatever it reports on,
# or the failure it records would be lost with it; a longer value is cut here and
# its size and hash say what it was (the whole record stays at its offset).
MAX_DEAD_VALUE_BYTES = 64 * 1024
MAX_DEAD_KEY_BYTES = 1024


def dead_letter(stage: str, record: RawRecord, error: BaseException, clock: Clock) -> Outgoing:
    """The dead-letter record for `record`, keyed like the original (a key too long
    to repeat is replaced by its hash)."""
    key = record.key
    letter = DeadLetter(
        stage=stage,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key_b64=_b64(key[:MAX_DEAD_KEY_BYTES]) if key is not None else None,
        value_b64=_b64(record.value[:MAX_DEAD_VALUE_BYTES]),
        value_bytes=len(record.value),
        value_sha256=hashlib.sha256(record.value).hexdigest(),
        value_truncated=len(record.value) > MAX_DEAD_VALUE_BYTES,
        error_type=type(error).__name__,
        error=str(error)[:2000],
        failed_at=clock(),
    )
    if key is not None and len(key) > MAX_DEAD_KEY_BYTES:
        key = hashlib.sha256(key).hexdigest().encode("ascii")
    return Outgoing(NEWS_DEADLETTER, key or b"", encode(letter))
