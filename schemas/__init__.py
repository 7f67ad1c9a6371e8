"""Wire contracts of the Baku–Moscow tension monitor.

Every message on a topic is UTF-8 JSON produced by one of these frozen models
and validates against the JSON Schema document exported beside them
(`schemas/json/<EventName>.json`). Contracts evolve by adding optional fields;
a breaking change is a new `schema_version` with an upcaster.
"""

from schemas.events import (
    DYAD_AZ_RU,
    EARLIEST_EVENT_TIME,
    LEVELS,
    MAX_AHEAD_OF_COLLECTION,
    SIGNAL_IDS,
    BurstDetail,
    ClockTicked,
    DeadLetter,
    DigestCompiled,
    DigestStory,
    EscalationNotice,
    Event,
    Evidence,
    FeedPolled,
    FeedStale,
    ItemCollected,
    ItemTagged,
    Level,
    LevelSpan,
    NoticeEvidence,
    TensionState,
    WebhookFailed,
    decode,
    decode_dyad_record,
    decode_feed_health,
    decode_news_item,
    encode,
    untrusted_time,
)

EVENT_TYPES: tuple[type[Event], ...] = (
    ItemCollected,
    ClockTicked,
    ItemTagged,
    EscalationNotice,
    TensionState,
    FeedPolled,
    FeedStale,
    DeadLetter,
    WebhookFailed,
    DigestCompiled,
)

__all__ = [
    "DYAD_AZ_RU",
    "EARLIEST_EVENT_TIME",
    "EVENT_TYPES",
    "LEVELS",
    "MAX_AHEAD_OF_COLLECTION",
    "SIGNAL_IDS",
    "BurstDetail",
    "ClockTicked",
    "DeadLetter",
    "DigestCompiled",
    "DigestStory",
    "EscalationNotice",
    "Event",
    "Evidence",
    "FeedPolled",
    "FeedStale",
    "ItemCollected",
    "ItemTagged",
    "Level",
    "LevelSpan",
    "NoticeEvidence",
    "TensionState",
    "WebhookFailed",
    "decode",
    "decode_dyad_record",
    "decode_feed_health",
    "decode_news_item",
    "encode",
    "untrusted_time",
]
