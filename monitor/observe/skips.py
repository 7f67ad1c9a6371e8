"""Records a reader outside the stream processors cannot use: skipped, but never in silence.

The agents dead-letter what they cannot read (monitor/records.py). The readers
that only follow topics (the webhook deliverer, the dashboard, `monitor status`,
the digest, `monitor alerts`) leave the log as it is, so they skip such a record
and say so: a log line with its topic, partition, offset and why, and a count by
topic and reason that each of them reports (`monitor status` prints it).

Why a record is skipped:

- `undecodable`: not JSON, or not the event the topic carries;
- `newer schema_version`: written by a newer monitor than this reader knows
  (upgrade the reader; the record is fine);
- `wrong key`: the key names another entity than the value (a notice keyed by
  one dyad and about another): taking it would show or deliver a phantom.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from monitor.records import RawRecord
from schemas import Event

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
T = TypeVar("T")

UNDECODABLE = "undecodable"
NEWER_SCHEMA = "newer schema_version"
WRONG_KEY = "wrong key"


def known_version(event_type: type[Event]) -> int:
    """The schema_version this reader's model of `event_type` writes."""
    version = event_type.model_fields["schema_version"].default
    return version if isinstance(version, int) else 1


def why_undecodable(raw: bytes, event_type: type[Event]) -> str:
    """A record's model refused it: was it written by a newer monitor, or is it garbage?"""
    try:
        data = json.loads(raw)
    except ValueError:
        return UNDECODABLE
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > known_version(event_type):
        return NEWER_SCHEMA
    return UNDECODABLE


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


@dataclass
class Skips:
    """What one reader skipped, by topic and reason; each skip is logged where it happens."""

    reader: str
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def skip(self, record: RawRecord, reason: str, detail: str) -> None:
        self.counts[(record.topic, reason)] += 1
        log.warning(
            "%s: skipped %s[%d]@%d: %s (%s)",
            self.reader,
            record.topic,
            record.partition,
            record.offset,
            reason,
            detail,
        )

    def decode(
        self, record: RawRecord, event_type: type[E], *, key_of: Callable[[E], str] | None = None
    ) -> E | None:
        """The record as `event_type`, or None after counting and logging why it cannot
        be used. With `key_of`, a keyed record must be keyed by what `key_of` says of
        its value."""
        return self.decode_with(record, event_type.model_validate_json, event_type, key_of=key_of)

    def decode_with(
        self,
        record: RawRecord,
        decoder: Callable[[bytes], T],
        event_type: type[Event],
        *,
        key_of: Callable[[T], str] | None = None,
    ) -> T | None:
        """`decode` for a topic that carries several events: `decoder` tells them apart,
        `event_type` is one of them (for the schema_version this reader knows)."""
        try:
            event = decoder(record.value)
        except ValueError as error:  # pydantic's ValidationError and JSON errors alike
            self.skip(record, why_undecodable(record.value, event_type), _first_line(error))
            return None
        if key_of is not None and record.key is not None:
            expected = key_of(event)
            if record.key != expected.encode("utf-8"):
                shown = record.key.decode("utf-8", errors="replace")[:80]
                self.skip(record, WRONG_KEY, f"keyed {shown!r}, the value is about {expected!r}")
                return None
        return event

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_reason(self) -> dict[str, int]:
        """`topic: reason` → records skipped, most first."""
        return {f"{topic}: {reason}": n for (topic, reason), n in self.counts.most_common()}

    def summary(self) -> str:
        """One line: how many records were skipped and why; empty when none was."""
        if not self.total:
            return ""
        reasons = ", ".join(f"{why} ×{n}" for why, n in self.by_reason().items())
        return f"{self.total} record(s) skipped: {reasons}"
