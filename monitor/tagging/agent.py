"""The tagger's per-record step: decode an ItemCollected, tag it, say where it goes."""

from __future__ import annotations

from monitor.escalation.stories import fingerprint
from monitor.records import Outgoing, RawRecord
from monitor.tagging import tag
from monitor.tagging.rules import Rules
from monitor.topics import NEWS_TAGGED
from schemas import DYAD_AZ_RU, ItemCollected, ItemTagged, decode


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
        rules_version=rules.version,
        # Only relevant items are grouped into stories; the rest need no fingerprint.
        fingerprint=(
            f"{fingerprint(f'{item.title} {item.summary}'):016x}" if result.relevant else None
        ),
    )


def tag_record(record: RawRecord, rules: Rules) -> list[Outgoing]:
    """Raises on undecodable input; the agent turns that into a dead letter."""
    item = decode(ItemCollected, record.value)
    tagged = tagged_item(item, rules)
    return [Outgoing.of(NEWS_TAGGED, tagged.item_id, tagged)]
