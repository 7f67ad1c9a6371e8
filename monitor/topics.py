"""Every topic, declared once: name, key, partitions, config, contract.

Topics are created explicitly at start-up, before any client names them:
Tansu creates an unknown topic with 4 partitions on first mention, and a
table's changelog whose partition count differs from its source topic
crashes the agent with PartitionsMismatch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from monitor.config import Settings
from schemas import (
    ClockTicked,
    DeadLetter,
    DigestCompiled,
    EscalationNotice,
    Event,
    FeedPolled,
    FeedStale,
    ItemCollected,
    ItemTagged,
    TensionState,
    WebhookFailed,
)

log = logging.getLogger(__name__)

COMPACTED = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    contract: type[Event] | None
    description: str
    partitions: int | None = None  # None: Settings.partitions
    config: dict[str, str] = field(default_factory=dict)
    # Other events the topic carries beside `contract`, told apart by `event_type`.
    also: tuple[type[Event], ...] = ()

    def partition_count(self, settings: Settings) -> int:
        return self.partitions if self.partitions is not None else settings.partitions

    def contract_of(self, record: dict[str, object]) -> type[Event] | None:
        """The contract a record (decoded JSON) claims: by its `event_type`, else the topic's."""
        for other in self.also:
            if record.get("event_type") == other.__name__:
                return other
        return self.contract


NEWS_ITEMS = TopicSpec(
    "news.items",
    "item_id",
    ItemCollected,
    "Immutable facts: every item a collector read, and when time passed (ClockTicked)",
    also=(ClockTicked,),
)
NEWS_TAGGED = TopicSpec(
    "news.tagged", "item_id", ItemTagged, "Every item with relevance, signals and evidence"
)
# Relevant tagged items re-keyed by dyad, so that one partition holds a dyad's
# whole history and the tension table is local to it.
TENSION_BY_DYAD = TopicSpec(
    "tension.by-dyad",
    "dyad",
    ItemTagged,
    "Relevant tagged items (and edits, and clock ticks) keyed by dyad",
    partitions=1,
    also=(ClockTicked,),
)
ALERTS_ESCALATIONS = TopicSpec(
    "alerts.escalations", "dyad", EscalationNotice, "Escalation notices", partitions=1
)
TENSION_STATE = TopicSpec(
    "tension.state",
    "dyad",
    TensionState,
    "Current tension state per dyad (compacted)",
    partitions=1,
    config=COMPACTED,
)
FEEDS_HEALTH = TopicSpec(
    "feeds.health",
    "feed_url",
    FeedPolled,
    "The outcome of every feed poll, and feeds gone silent (FeedStale)",
    partitions=1,
    also=(FeedStale,),
)
NEWS_DEADLETTER = TopicSpec(
    "news.deadletter",
    "original key",
    DeadLetter,
    "Records that could not be decoded or processed, with the original bytes",
    partitions=1,
)

# Written by the alert consumers (monitor/delivery), not by the stream processors.
ALERTS_DIGESTS = TopicSpec(
    "alerts.digests",
    "dyad",
    DigestCompiled,
    "A summary per period: level over the period, top stories, counts per signal",
    partitions=1,
)
WEBHOOKS_DEADLETTER = TopicSpec(
    "alerts.webhooks.deadletter",
    "notice_id",
    WebhookFailed,
    "Notices a webhook subscriber did not accept after every retry, with the reason",
    partitions=1,
)

PUBLIC_TOPICS: tuple[TopicSpec, ...] = (
    NEWS_ITEMS,
    NEWS_TAGGED,
    TENSION_BY_DYAD,
    ALERTS_ESCALATIONS,
    TENSION_STATE,
    FEEDS_HEALTH,
    NEWS_DEADLETTER,
    ALERTS_DIGESTS,
    WEBHOOKS_DEADLETTER,
)

# The collectors' memory: per feed, what was published (item id → revision), the
# cache validators and the schedule. Compacted, so the latest record per feed is
# what counts; readers keep the last record per key, since the embedded broker
# does not compact.
COLLECTOR_STATE = TopicSpec(
    "collector.state",
    "feed URL",
    None,
    "What the collector published per feed, for restarts (compacted)",
    partitions=1,
    config=COMPACTED,
)
INTERNAL_TOPICS: tuple[TopicSpec, ...] = (COLLECTOR_STATE,)

TENSION_TABLE = "tension"


def changelog_topics(settings: Settings) -> tuple[TopicSpec, ...]:
    """Faust's changelog topics for our tables, named as Faust names them."""
    return (
        TopicSpec(
            f"{settings.app_id}-{TENSION_TABLE}-changelog",
            "dyad",
            None,
            "Changelog of the tension table (Faust)",
            partitions=TENSION_BY_DYAD.partition_count(settings),
            config=COMPACTED,
        ),
    )


def all_topics(settings: Settings) -> tuple[TopicSpec, ...]:
    return PUBLIC_TOPICS + INTERNAL_TOPICS + changelog_topics(settings)


async def ensure_topics(settings: Settings, specs: Iterable[TopicSpec] | None = None) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    wanted = list(specs if specs is not None else all_topics(settings))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in wanted if spec.name not in existing]
        if not missing:
            return []
        new_topics = [
            NewTopic(
                spec.name,
                spec.partition_count(settings),
                settings.replication_factor,
                topic_configs=dict(spec.config),
            )
            for spec in missing
        ]
        try:
            await admin.create_topics(new_topics)
        except TopicAlreadyExistsError:
            # Another process created them between our list and create: fine.
            log.debug("topics created concurrently")
        return [spec.name for spec in missing]
    finally:
        await admin.close()
