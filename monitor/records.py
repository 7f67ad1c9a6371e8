"""Records in and out of the stream processors, and the dead-letter path.

Agents read raw bytes and decode them here. Anything that fails to decode or
to process becomes a DeadLetter with the original bytes and the reason;
the agent goes on with the next record.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from monitor.topics import NEWS_DEADLETTER, TopicSpec
from schemas import DeadLetter, Event, encode

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RawRecord:
    """A consumed record as the broker gave it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Outgoing:
    """A record to produce."""

    topic: TopicSpec
    key: bytes
    value: bytes

    @classmethod
    def of(cls, topic: TopicSpec, key: str, event: Event) -> Outgoing:
        return cls(topic, key.encode("utf-8"), encode(event))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dead_letter(stage: str, record: RawRecord, error: BaseException, clock: Clock) -> Outgoing:
    """The dead-letter record for `record`, keyed like the original."""
    letter = DeadLetter(
        stage=stage,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key_b64=_b64(record.key) if record.key is not None else None,
        value_b64=_b64(record.value),
        error_type=type(error).__name__,
        error=str(error)[:2000],
        failed_at=clock(),
    )
    return Outgoing(NEWS_DEADLETTER, record.key or b"", encode(letter))
