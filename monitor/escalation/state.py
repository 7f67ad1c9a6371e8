"""What a dyad carries from one record to the next, bounded whatever the length of history.

- **Live stories**: the stories still open to new items (first seen within the
  join window of the clock), in full, each with at most `max_items` items.
- **The folded summary**: what closed stories leave behind, and all that the
  index, the bursts and the evidence still need of them: their weight per
  signal (decayed to one reference time, settled by the apologies after them),
  their count per signal per day for the burst baseline (the baseline period
  only), and the few heaviest of them for notices to show.
- The level, since when, the log's clock, the last bursts and notice, and the
  offset of the last record folded in.

So the state's size depends on how much news is *open* (a few days' worth,
capped at `max_live_stories`), never on how long the service has run.

The Faust table holds it as several records, so that a change writes only
what changed: the header (the level, the clock, what was applied) under the
dyad's key, each live story under `<dyad>|<story id>|<0 or 1>`, and the
folded summary, which changes only when a story closes, under
`<dyad>|folded|<0 or 1>`: each record's two slots taken in turn, the header
naming the one in force. A change writes the new records first, then the
header, then deletes what the header no longer names: a crash at any point
leaves a header whose records all exist (at worst, records that no header
names, which the next load deletes). There are no transactions on the
embedded broker to make the records of one change atomic; this order makes
them unnecessary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from monitor.escalation.stories import Story
from schemas import Level
from schemas.events import UtcDatetime

STORY_KEY_SEPARATOR = "|"


class NotableStory(BaseModel):
    """A folded story kept for the evidence of later notices: its lead and its weight."""

    model_config = ConfigDict(frozen=True)

    story_id: str
    item_id: str
    headline: str
    source: str
    link: str | None
    first_seen: UtcDatetime
    signals: tuple[str, ...]
    # Weight per signal when first seen (corroboration and context included), and
    # the share of its escalatory weight that later settlements have left.
    weights: dict[str, float]
    settled: float = 1.0
    sources: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    items: int = 1


class Folded(BaseModel):
    """What the closed stories of a dyad leave behind."""

    model_config = ConfigDict(frozen=True)

    # Per signal, the summed weight of every folded story, decayed to `reference`
    # and multiplied by the settlements that came after each story.
    reference: UtcDatetime | None = None
    weights: dict[str, float] = {}
    stories: int = 0
    items: int = 0
    # "YYYY-MM-DD" → signal → folded stories first seen that day: the burst
    # baseline. Days older than the baseline period are dropped.
    daily: dict[str, dict[str, int]] = {}
    notable: tuple[NotableStory, ...] = ()


class DyadCore(BaseModel):
    """What the state and its header record share: everything but stories and summary."""

    model_config = ConfigDict(frozen=True)

    dyad: str
    level: Level = "calm"
    level_since: UtcDatetime | None = None
    # The log's clock: the latest time any record folded in has shown (items and
    # ticks alike), and the last hour at which the level was judged for time passing.
    clock: UtcDatetime | None = None
    judged_until: UtcDatetime | None = None
    last_burst: dict[str, UtcDatetime] = {}
    last_notice_id: str | None = None
    # Per news.items partition, the offset of the last record this state includes:
    # a redelivery after a crash (at-least-once) is recognised by it and skipped.
    applied: dict[int, int] = {}

    def core(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in DyadCore.model_fields}


class DyadState(DyadCore):
    """A dyad's state. Internal, not a wire contract."""

    stories: dict[str, Story] = {}
    folded: Folded = Folded()
    # item id → story id of the live stories' items; derived, not stored.
    item_story: dict[str, str] = Field(default={}, exclude=True)

    def with_index(self) -> DyadState:
        """The state with `item_story` derived from its stories (after decoding)."""
        index = {
            item_id: story.story_id for story in self.stories.values() for item_id in story.items
        }
        return self.model_copy(update={"item_story": index})


class DyadHeader(DyadCore):
    """The table record under the dyad's key: the state, naming its other records."""

    story_keys: dict[str, str] = {}  # story id → the key of its record
    folded_key: str | None = None  # the key of the folded summary's record
    # How many changes have been written.
    writes: int = 0


def story_key(dyad: str, story_id: str, slot: int = 0) -> str:
    return f"{dyad}{STORY_KEY_SEPARATOR}{story_id}{STORY_KEY_SEPARATOR}{slot}"


def folded_key(dyad: str, slot: int) -> str:
    return f"{dyad}{STORY_KEY_SEPARATOR}folded{STORY_KEY_SEPARATOR}{slot}"


def is_story_key_of(dyad: str, key: bytes) -> bool:
    """A record of the dyad's other than its header: a story's or the summary's."""
    return key.startswith(f"{dyad}{STORY_KEY_SEPARATOR}".encode())


def header_of(
    state: DyadState, story_keys: Mapping[str, str], summary_key: str | None, writes: int
) -> bytes:
    """The header record: the state without its stories and summary, naming their records."""
    header = DyadHeader(
        **state.core(),
        story_keys={story_id: story_keys[story_id] for story_id in sorted(state.stories)},
        folded_key=summary_key,
        writes=writes,
    )
    return header.model_dump_json().encode("utf-8")


def story_record(story: Story) -> bytes:
    return story.model_dump_json().encode("utf-8")


def folded_record(folded: Folded) -> bytes:
    return folded.model_dump_json().encode("utf-8")


def table_records(state: DyadState) -> dict[bytes, bytes]:
    """Every record the table holds for this state, key → value (as first written)."""
    keys = {story_id: story_key(state.dyad, story_id) for story_id in state.stories}
    summary = folded_key(state.dyad, 0)
    records = {
        state.dyad.encode(): header_of(state, keys, summary, writes=1),
        summary.encode(): folded_record(state.folded),
    }
    for story in state.stories.values():
        records[keys[story.story_id].encode()] = story_record(story)
    return records


class StateRecordMissingError(LookupError):
    """The table lists a story it does not hold: the changelog lost a record."""


@dataclass(frozen=True)
class StoredState:
    """A state as the table holds it: with the key of each story's record."""

    state: DyadState
    story_keys: dict[str, str]
    folded_key: str | None
    writes: int


def stored_state(dyad: str, header: bytes | None, records: Mapping[bytes, bytes]) -> StoredState:
    """The state from its table records (`records`: key → record)."""
    if header is None:
        return StoredState(DyadState(dyad=dyad), {}, None, 0)
    decoded = DyadHeader.model_validate_json(header)
    folded = Folded()
    if decoded.folded_key is not None:
        raw_folded = records.get(decoded.folded_key.encode())
        if raw_folded is None:
            raise StateRecordMissingError(f"{dyad}: summary listed but not stored")
        folded = Folded.model_validate_json(raw_folded)
    live = {}
    for story_id, key in decoded.story_keys.items():
        raw = records.get(key.encode())
        if raw is None:
            raise StateRecordMissingError(f"{dyad}: story {story_id} listed but not stored")
        live[story_id] = Story.model_validate_json(raw)
    state = DyadState(
        **decoded.core(),
        stories=live,
        folded=folded,
    ).with_index()
    return StoredState(state, dict(decoded.story_keys), decoded.folded_key, decoded.writes)


def state_from(dyad: str, header: bytes | None, records: Mapping[bytes, bytes]) -> DyadState:
    return stored_state(dyad, header, records).state


@dataclass(frozen=True)
class StateChange:
    """What folding one record changed, so the table writes only that."""

    header: bool = False
    stories_written: tuple[str, ...] = ()
    stories_removed: tuple[str, ...] = ()
    folded: bool = False  # the summary changed

    @property
    def any(self) -> bool:
        return self.header or bool(self.stories_written) or bool(self.stories_removed)


def day_of(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"
