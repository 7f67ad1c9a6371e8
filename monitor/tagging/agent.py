"""The tagger's per-record step: decode a news.items record, tag it, say where it goes."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.escalation.stories import fingerprint
from monitor.records import Outgoing, RawRecord
from monitor.tagging import tag
from monitor.tagging.rules import Rules
from monitor.topics import NEWS_TAGGED
from schemas import DYAD_AZ_RU, ClockTicked, ItemCollected, ItemTagged, decode_news_item


def tagged_item(item: ItemCollected, rules: Rules) -> ItemTagged:
    result = tag(item.title, item.summary, rules, lang=item.source_lang)
    return ItemTagged(
        item_id=item.item_id,
        revision=item.revision,
        source=item.source,
        source_kind=item.source_kind,
        link=item.link,
        title=item.title,
        lang=result.lang,
        event_time=item.event_time,
        relevant=result.relevant,
        dyad=DYAD_AZ_RU if result.relevant else None,
        sides=list(result.sides),  # type: ignore[arg-type]
        signals=list(result.signals),  # type: ignore[arg-type]
        evidence=list(result.evidence),
        background=list(result.background),
        rules_version=rules.version,
        # Only relevant items are grouped into stories; the rest need no fingerprint.
        fingerprint=(
            f"{fingerprint(f'{item.title} {item.summary}'):016x}" if result.relevant else None
        ),
    )


@dataclass(frozen=True)
class TagStep:
    incoming: ItemCollected | ClockTicked
    tagged: ItemTagged | None  # None for a tick
    outgoing: list[Outgoing]  # the news.tagged record


def tag_record(record: RawRecord, rules: Rules) -> TagStep:
    """Raises on undecodable input (an untrusted date among it); the agent turns that
    into a dead letter."""
    incoming = decode_news_item(record.value)
    if isinstance(incoming, ClockTicked):
        return TagStep(incoming, None, [])
    tagged = tagged_item(incoming, rules)
    return TagStep(incoming, tagged, [Outgoing.of(NEWS_TAGGED, tagged.item_id, tagged)])
