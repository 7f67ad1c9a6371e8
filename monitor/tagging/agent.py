"""The tagger's per-record step: decode a news.items record, tag it, say where it goes."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.fingerprint import fingerprint
from monitor.records import Outgoing, RawRecord
from monitor.tagging import tag
from monitor.tagging.result import trusted
from monitor.tagging.rules import Rules
from monitor.topics import NEWS_TAGGED
from schemas import DYAD_AZ_RU, ClockTicked, ItemCollected, ItemTagged, decode_news_item


def tagged_item(item: ItemCollected, rules: Rules) -> ItemTagged:
    result = tag(item.title, item.summary, rules, lang=item.source_lang)
    relevant = result.relevant
    # Every value comes from the validated item, the rules or the tagger's own
    # result: validating them again cost as much as the tagging (see `trusted`).
    return trusted(
        ItemTagged,
        {
            "schema_version": 1,
            "item_id": item.item_id,
            "revision": item.revision,
            "source": item.source,
            "source_kind": item.source_kind,
            "link": item.link,
            "title": item.title,
            "lang": result.lang,
            "event_time": item.event_time,
            "relevant": relevant,
            "dyad": DYAD_AZ_RU if relevant else None,
            "sides": list(result.sides),
            "signals": list(result.signals),
            "evidence": list(result.evidence),
            "background": list(result.background),
            "rules_version": rules.version,
            # Only relevant items are grouped into stories; the rest need no fingerprint.
            "fingerprint": (
                f"{fingerprint(f'{item.title} {item.summary}'):016x}" if relevant else None
            ),
        },
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
