"""The events themselves: past-tense facts, frozen, versioned."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Aware datetimes only, normalised to UTC so that equal instants serialise equally.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]

# A link a reader may follow: http(s) with a host, never javascript:, data: or a
# bare path. Pages and notices render links from these fields.
WebLink = Annotated[str, Field(pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+")]

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

# Untrusted time is not time: an event time before this, or more than
# MAX_AHEAD_OF_COLLECTION after the item was collected, is a broken feed's date
# (1970, 2099), and would move the escalator's clock years at once.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD_OF_COLLECTION = timedelta(days=1)


def untrusted_time(event_time: datetime, collected_at: datetime) -> str | None:
    """Why `event_time` cannot be trusted as an item's time, or None when it can."""
    if event_time < EARLIEST_EVENT_TIME:
        return f"event time {event_time.isoformat()} is before {EARLIEST_EVENT_TIME:%Y}"
    if event_time > collected_at + MAX_AHEAD_OF_COLLECTION:
        return (
            f"event time {event_time.isoformat()} is more than a day after its collection "
            f"time {collected_at.isoformat()}"
        )
    return None


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
    link: WebLink | None = None
    title: str
    summary: str = ""
    published: UtcDatetime | None = Field(
        default=None, description="Publication time the feed gave, if any"
    )
    collected_at: UtcDatetime
    event_time: UtcDatetime = Field(
        description=(
            "published, clamped: missing, in the future or before 2000 → collected_at. "
            "Consumers reject a value before 2000 or more than a day after collected_at."
        )
    )
    revises: str | None = Field(
        default=None,
        description="For an edited item republished by its feed: the revision it replaces",
    )

    @model_validator(mode="after")
    def _time_is_trusted(self) -> Self:
        reason = untrusted_time(self.event_time, self.collected_at)
        if reason is not None:
            raise ValueError(reason)
        return self


class ClockTicked(Event):
    """Time passed: a collector was running at `at`, whether or not it found news.

    Topics `news.items` (from the collector, to every partition, key `clock`) and
    `tension.by-dyad` (forwarded by the tagger to every dyad). It is how a quiet
    night reaches the log: the escalator's clock moves only with what the log says,
    so a replay sees the same time pass as the live run did.
    """

    schema_version: Literal[1] = 1
    event_type: Literal["ClockTicked"] = "ClockTicked"
    at: UtcDatetime
    source: str = Field(default="collector", description="Who recorded the time")

    @model_validator(mode="after")
    def _time_is_trusted(self) -> Self:
        if self.at < EARLIEST_EVENT_TIME:
            raise ValueError(f"tick at {self.at.isoformat()} is before {EARLIEST_EVENT_TIME:%Y}")
        return self


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
    link: WebLink | None = None
    title: str
    lang: str | None = Field(description="Language of the text, as detected or declared")
    event_time: UtcDatetime
    relevant: bool
    dyad: str | None = Field(description="AZ-RU when relevant, else null")
    sides: list[Literal["AZ", "RU"]]
    signals: list[SignalId]
    evidence: list[Evidence]
    background: list[Evidence] = Field(
        default_factory=list,
        description="Signal matches set aside as what the item recalls, not what it reports;"
        " the evidence's background notes say why",
    )
    rules_version: str
    fingerprint: str | None = Field(
        default=None,
        description="64-bit SimHash of title and summary (hex), for grouping items into stories",
    )


class NoticeEvidence(Event):
    """A story that moved the tension index, as a notice shows it (its lead item first)."""

    item_id: str = Field(description="The story's lead (earliest) item")
    headline: str
    source: str
    link: WebLink | None = None
    published: UtcDatetime = Field(description="When the story was first seen")
    signals: list[SignalId]
    contribution: float = Field(description="Its weight in the index at the notice's event time")
    story_id: str | None = None
    sources: list[str] = Field(default_factory=list, description="Every outlet that reported it")
    links: list[WebLink] = Field(default_factory=list, description="Links of its items, up to five")
    items: int = Field(default=1, ge=1, description="How many items the story groups")


class BurstDetail(Event):
    """Why a signal burst: its stories in the window against its usual rate."""

    signal: SignalId
    stories: int
    sources: int
    baseline: float = Field(description="Usual stories per window over the baseline period")
    window_hours: float


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
    event_time: UtcDatetime = Field(
        description=(
            "When the level was judged: the triggering item's event time, or for a level "
            "that fell as time passed, the hour at which it was judged"
        )
    )
    trigger_item_id: str = Field(
        description="The item that triggered it, or `clock:<hour>` when time passing did"
    )
    evidence: list[NoticeEvidence]
    rules_version: str | None = None
    burst: BurstDetail | None = Field(default=None, description="Set on kind=burst")


class TensionState(Event):
    """The current state of a dyad. Topic `tension.state` (compacted), key `dyad`."""

    schema_version: Literal[1] = 1
    dyad: str
    level: Level
    index: float
    breakdown: dict[str, float]
    as_of: UtcDatetime = Field(
        description="The escalator's clock: the latest time its log has shown (items and ticks)"
    )
    items_counted: int = Field(ge=0, description="Relevant items counted, folded ones included")
    last_item_id: str = Field(description="The last item the escalator processed")
    last_notice_id: str | None = None
    stories_counted: int = Field(
        default=0, ge=0, description="Stories counted, folded ones included"
    )
    settled_at: UtcDatetime | None = Field(
        default=None,
        description="Time up to which decisions are final: equal to as_of (decided in log order)",
    )


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
    items_updated: int = Field(
        default=0, ge=0, description="Items already published whose content changed (new revision)"
    )
    next_poll_at: UtcDatetime | None = Field(
        default=None, description="When the collector will poll this feed again"
    )
    event_type: Literal["FeedPolled"] = Field(
        default="FeedPolled", description="Tells FeedPolled from FeedStale on feeds.health"
    )


class FeedStale(Event):
    """A feed that has produced nothing new for longer than expected. Topic `feeds.health`.

    Keyed by `feed_url`, like FeedPolled; `event_type` tells the two apart. A
    silenced source must not read as a calm one.
    """

    schema_version: Literal[1] = 1
    event_type: Literal["FeedStale"] = "FeedStale"
    feed_url: str
    source: str
    source_lang: str | None = None
    source_country: str | None = None
    source_kind: str | None = None
    silent_since: UtcDatetime = Field(
        description="The last new or updated item, or when watching began if there was none"
    )
    silent_for_s: float = Field(ge=0)
    expected_within_s: float = Field(gt=0, description="How long a silence the feed is allowed")
    last_status: Literal["ok", "not_modified", "error"] | None = None
    last_error: str | None = None
    consecutive_failures: int = Field(default=0, ge=0)
    detected_at: UtcDatetime


class DeadLetter(Event):
    """A record that could not be decoded or processed. Topic `news.deadletter`."""

    schema_version: Literal[1] = 1
    stage: str = Field(description="Which processor gave up: tagger, escalation…")
    topic: str
    partition: int
    offset: int
    key_b64: str | None = Field(description="The original key, base64 (its first KiB)")
    value_b64: str = Field(
        description="The original value, base64; its first 64 KiB when it was longer"
        " (value_truncated): the whole record stays at its offset"
    )
    value_bytes: int | None = Field(
        default=None, ge=0, description="The original value's size (null in older letters)"
    )
    value_sha256: str | None = Field(
        default=None, description="SHA-256 of the whole original value, hex (null in older letters)"
    )
    value_truncated: bool = Field(default=False, description="value_b64 holds a prefix only")
    error_type: str
    error: str
    failed_at: UtcDatetime


class WebhookFailed(Event):
    """A notice a webhook subscriber did not accept after every retry.

    Topic `alerts.webhooks.deadletter`, key `notice_id`. Carries the notice, so it
    can be delivered again once the subscriber is back.
    """

    schema_version: Literal[1] = 1
    subscriber: str = Field(description="The subscriber's name in the webhook file")
    url: str = Field(
        description="The URL's label: scheme, host, port and the first 12 hex digits of the"
        " SHA-256 of the URL; never the URL itself, which may carry a token"
    )
    delivery_id: str = Field(description="The X-Monitor-Delivery header every attempt carried")
    notice_id: str
    attempts: int = Field(ge=1)
    last_status: int | None = Field(description="The last HTTP status, null if none came back")
    reason: str = Field(description="Why the last attempt failed")
    permanent: bool = Field(description="True when the receiver refused it (4xx): not retried")
    notice: EscalationNotice
    failed_at: UtcDatetime


class LevelSpan(Event):
    """A level held from `since` (within a digest's period)."""

    level: Level
    since: UtcDatetime
    index: float = Field(description="The index when the level was entered, or at period start")


class DigestStory(Event):
    """One of a digest's top stories."""

    item_id: str
    headline: str
    source: str
    link: WebLink | None = None
    published: UtcDatetime
    signals: list[SignalId]
    weight: float = Field(description="Sum of the absolute weights of its signals")


class DigestCompiled(Event):
    """A summary of one period for one dyad. Topic `alerts.digests`, key `dyad`.

    Periods are in event time: an item counts in the period it happened in.
    """

    schema_version: Literal[1] = 1
    digest_id: str = Field(description="Derived from dyad and period: the same period, same id")
    dyad: str
    period_start: UtcDatetime
    period_end: UtcDatetime = Field(description="Exclusive")
    level_start: Level
    level_end: Level
    level_max: Level
    index_end: float
    index_max: float
    levels: list[LevelSpan] = Field(description="The level over the period, in order")
    notices: int = Field(ge=0, description="Escalation notices raised in the period")
    notice_ids: list[str]
    items_relevant: int = Field(ge=0)
    signals: dict[str, int] = Field(description="Relevant items per signal")
    top_stories: list[DigestStory]
    compiled_at: UtcDatetime


E = TypeVar("E", bound=Event)


def encode(event: Event) -> bytes:
    """The wire form: compact UTF-8 JSON."""
    return event.model_dump_json().encode("utf-8")


def decode(event_type: type[E], raw: bytes) -> E:
    """Parse and validate one wire message; raises pydantic.ValidationError on bad input."""
    return event_type.model_validate_json(raw)


def decode_news_item(raw: bytes) -> ItemCollected | ClockTicked:
    """A `news.items` record: a ClockTicked when it says so, else an ItemCollected.

    Raises pydantic.ValidationError on anything else, like `decode`.
    """
    return _decode_tick_or(ItemCollected, raw)


def _decode_tick_or(event_type: type[E], raw: bytes) -> E | ClockTicked:
    # A cheap look before the strict parse: nearly every record is not a tick.
    if b"ClockTicked" in raw:
        try:
            return ClockTicked.model_validate_json(raw)
        except ValidationError:
            pass  # an item that mentions ticks, or garbage: its own parse says which
    return event_type.model_validate_json(raw)


def decode_dyad_record(raw: bytes) -> ItemTagged | ClockTicked:
    """A `tension.by-dyad` record: a ClockTicked when it says so, else an ItemTagged."""
    return _decode_tick_or(ItemTagged, raw)


def decode_feed_health(raw: bytes) -> FeedPolled | FeedStale:
    """A `feeds.health` record: FeedStale when it says so, else FeedPolled (older records too)."""
    data = json.loads(raw)
    if isinstance(data, dict) and data.get("event_type") == "FeedStale":
        return FeedStale.model_validate(data)
    return FeedPolled.model_validate(data)
