"""The events themselves: past-tense facts, frozen, versioned."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Aware datetimes only, normalised to UTC so that equal instants serialise equally.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]

Level = Literal["calm", "elevated", "high", "severe"]
LEVELS: tuple[Level, ...] = ("calm", "elevated", "high", "severe")

SignalId = Literal[
    "armed_incident",
    "detentions",
    "media_crackdown",
    "hostile_rhetoric",
    "diplomatic_protest",
    "legal_action",
    "economic_pressure",
    "security_realignment",
    "cultural_decoupling",
    "regional_rivalry",
    "leader_contact",
    "conciliation",
]
SIGNAL_IDS: tuple[str, ...] = SignalId.__args__  # type: ignore[attr-defined]

DYAD_AZ_RU = "AZ-RU"


class Event(BaseModel):
    """Base of every wire event: immutable, unknown fields ignored on read.

    Ignoring unknown fields is what lets a producer add an optional field
    without breaking consumers that have not been upgraded yet.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")


class ItemCollected(Event):
    """A news item as a collector read it from a feed. Topic `news.items`, key `item_id`."""

    schema_version: Literal[1] = 1
    item_id: str = Field(description="Stable id: from the guid, else the link, else a content hash")
    revision: str = Field(description="Hash of the item's content; changes when the item is edited")
    feed_url: str
    source: str = Field(description="The outlet's name from the feed catalogue")
    source_lang: str | None = Field(default=None, description="Language the catalogue declares")
    source_country: str | None = None
    source_kind: str | None = Field(default=None, description="state, independent, international…")
    guid: str | None = None
    link: str | None = None
    title: str
    summary: str = ""
    published: UtcDatetime | None = Field(
        default=None, description="Publication time the feed gave, if any"
    )
    collected_at: UtcDatetime
    event_time: UtcDatetime = Field(
        description="published, clamped: missing or in the future → collected_at"
    )


class Evidence(Event):
    """One matched rule: why an item was found relevant or given a signal."""

    rule_id: str
    kind: Literal["actor", "signal", "exclusion", "note"]
    label: str = Field(description="The side (AZ, RU), signal id or exclusion the rule stands for")
    field: Literal["title", "summary"]
    start: int = Field(ge=0, description="Offset of the match in the normalised field text")
    end: int = Field(ge=0)
    text: str = Field(description="The matched text")


class ItemTagged(Event):
    """An item after tagging. Topic `news.tagged`, key `item_id`.

    Carries no wall-clock time: tagging the same item with the same rules gives
    the same bytes, which is what makes a replay comparable.
    """

    schema_version: Literal[1] = 1
    item_id: str
    revision: str
    source: str
    source_kind: str | None = None
    link: str | None = None
    title: str
    lang: str | None = Field(description="Language of the text, as detected or declared")
    event_time: UtcDatetime
    relevant: bool
    dyad: str | None = Field(description="AZ-RU when relevant, else null")
    sides: list[Literal["AZ", "RU"]]
    signals: list[SignalId]
    evidence: list[Evidence]
    rules_version: str


class NoticeEvidence(Event):
    """An item that moved the tension index, as a notice shows it."""

    item_id: str
    headline: str
    source: str
    link: str | None = None
    published: UtcDatetime
    signals: list[SignalId]
    contribution: float = Field(description="Its weight in the index at the notice's event time")


class EscalationNotice(Event):
    """A change worth telling subscribers. Topic `alerts.escalations`, key `dyad`."""

    schema_version: Literal[1] = 1
    notice_id: str = Field(description="Derived from dyad, kind, level and the triggering item")
    dyad: str
    kind: Literal["raised", "lowered", "burst"]
    level: Level
    previous_level: Level
    index: float
    breakdown: dict[str, float] = Field(description="Index contribution per signal")
    event_time: UtcDatetime = Field(description="Event time of the item that triggered the notice")
    trigger_item_id: str
    evidence: list[NoticeEvidence]
    rules_version: str | None = None


class TensionState(Event):
    """The current state of a dyad. Topic `tension.state` (compacted), key `dyad`."""

    schema_version: Literal[1] = 1
    dyad: str
    level: Level
    index: float
    breakdown: dict[str, float]
    as_of: UtcDatetime = Field(description="Latest event time seen for this dyad")
    items_counted: int = Field(ge=0, description="Distinct relevant items in the decay window")
    last_item_id: str
    last_notice_id: str | None = None


class FeedPolled(Event):
    """The outcome of one poll of one feed. Topic `feeds.health`, key `feed_url`."""

    schema_version: Literal[1] = 1
    feed_url: str
    source: str
    status: Literal["ok", "not_modified", "error"]
    http_status: int | None = None
    bytes_read: int = Field(default=0, ge=0)
    items_total: int = Field(default=0, ge=0)
    items_new: int = Field(default=0, ge=0)
    items_seen: int = Field(default=0, ge=0)
    duration_ms: float = Field(ge=0)
    error: str | None = Field(default=None, description="Why the poll failed, if it did")
    parse_warning: str | None = Field(
        default=None, description="feedparser's bozo exception for a feed it could still read"
    )
    polled_at: UtcDatetime


class DeadLetter(Event):
    """A record that could not be decoded or processed. Topic `news.deadletter`."""

    schema_version: Literal[1] = 1
    stage: str = Field(description="Which processor gave up: tagger, escalation…")
    topic: str
    partition: int
    offset: int
    key_b64: str | None = Field(description="The original key, base64")
    value_b64: str = Field(description="The original value, base64: nothing is lost")
    error_type: str
    error: str
    failed_at: UtcDatetime


E = TypeVar("E", bound=Event)


def encode(event: Event) -> bytes:
    """The wire form: compact UTF-8 JSON."""
    return event.model_dump_json().encode("utf-8")


def decode(event_type: type[E], raw: bytes) -> E:
    """Parse and validate one wire message; raises pydantic.ValidationError on bad input."""
    return event_type.model_validate_json(raw)
