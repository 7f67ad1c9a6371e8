"""The events and feed documents the tests build, one factory each.

A factory fills every field a case does not care about with a plain value, so
that a test names only what its case is about. The defaults describe one
unremarkable item of the Caspian Wire on the morning of the AZAL shoot-down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

from monitor.fingerprint import fingerprint
from schemas import (
    DYAD_AZ_RU,
    DeadLetter,
    EscalationNotice,
    Evidence,
    FeedPolled,
    ItemCollected,
    ItemTagged,
    Level,
    NoticeEvidence,
    TensionState,
)

WHEN = datetime(2024, 12, 25, 6, 30, tzinfo=UTC)
SOURCE = "Caspian Wire"
SITE = "https://caspian.example"
FEED_URL = f"{SITE}/rss"


def link_of(item_id: str) -> str:
    return f"{SITE}/{item_id}"


# -- collected and tagged items ----------------------------------------------------------


def item_collected(
    item_id: str = "i-1",
    title: str | None = None,
    *,
    at: datetime = WHEN,
    **fields: Any,
) -> ItemCollected:
    """An item as the collector publishes it, dated `at` and collected then too."""
    values: dict[str, Any] = {
        "item_id": item_id,
        "revision": "r1",
        "feed_url": FEED_URL,
        "source": SOURCE,
        "title": title if title is not None else f"Headline {item_id}",
        "collected_at": at,
        "event_time": at,
    }
    return ItemCollected.model_validate(values | fields)


# The names the tagger reports as actor evidence, and which side each stands for.
_SIDE_NAMES = re.compile(r"Azerbaijan\w*|Baku|Aliyev|Russia\w*|Moscow|Kremlin|Putin")
_AZ_NAMES = ("Azer", "Baku", "Aliyev")


def actors_in(headline: str) -> list[Evidence]:
    """The mentions of the two sides in `headline`, as the tagger reports them."""
    return [
        Evidence(
            rule_id="actor",
            kind="actor",
            label="AZ" if match.group().startswith(_AZ_NAMES) else "RU",
            field="title",
            start=match.start(),
            end=match.end(),
            text=match.group(),
        )
        for match in _SIDE_NAMES.finditer(headline)
    ]


def item_tagged(
    item_id: str = "i-1",
    signals: Iterable[str] = (),
    at: datetime = WHEN,
    *,
    title: str | None = None,
    relevant: bool = True,
    text: str | None = None,
    evidence: Sequence[Evidence] = (),
    **fields: Any,
) -> ItemTagged:
    """An item as the tagger publishes it: relevant to AZ-RU unless told otherwise.

    A relevant item carries the fingerprint of its `text` (the title unless
    given), which the escalator groups stories by.
    """
    signals = list(signals)
    headline = title if title is not None else f"headline {item_id} about {' '.join(signals)}"
    values: dict[str, Any] = {
        "item_id": item_id,
        "revision": "r1",
        "source": SOURCE,
        "link": link_of(item_id),
        "title": headline,
        "lang": "en",
        "event_time": at,
        "relevant": relevant,
        "dyad": DYAD_AZ_RU if relevant else None,
        "sides": ["AZ", "RU"] if relevant else [],
        "signals": signals,
        "evidence": list(evidence),
        "rules_version": "test",
        "fingerprint": f"{fingerprint(text or headline):016x}" if relevant else None,
    }
    return ItemTagged.model_validate(values | fields)


# -- what the escalator publishes --------------------------------------------------------


def tension_state(
    level: Level = "calm",
    index: float = 0.0,
    as_of: datetime = WHEN,
    *,
    breakdown: Mapping[str, float] | None = None,
    **fields: Any,
) -> TensionState:
    values: dict[str, Any] = {
        "dyad": DYAD_AZ_RU,
        "level": level,
        "index": index,
        "breakdown": dict(breakdown or {}),
        "as_of": as_of,
        "items_counted": 1,
        "last_item_id": "i-1",
    }
    return TensionState.model_validate(values | fields)


def story(
    item_id: str,
    headline: str,
    signals: Iterable[str],
    published: datetime = WHEN,
    **fields: Any,
) -> NoticeEvidence:
    """One story a notice cites as its evidence, led by `item_id`."""
    values: dict[str, Any] = {
        "item_id": item_id,
        "headline": headline,
        "source": SOURCE,
        "link": link_of(item_id),
        "published": published,
        "signals": list(signals),
        "contribution": 4.0,
    }
    return NoticeEvidence.model_validate(values | fields)


def notice(
    notice_id: str,
    level: Level,
    at: datetime = WHEN,
    *,
    previous: Level = "calm",
    kind: str = "raised",
    evidence: Sequence[NoticeEvidence] = (),
    **fields: Any,
) -> EscalationNotice:
    """An escalation notice; its trigger is the lead of its first story, if it has one."""
    values: dict[str, Any] = {
        "notice_id": notice_id,
        "dyad": DYAD_AZ_RU,
        "kind": kind,
        "level": level,
        "previous_level": previous,
        "index": 5.0,
        "breakdown": {},
        "event_time": at,
        "trigger_item_id": evidence[0].item_id if evidence else "i-1",
        "evidence": list(evidence),
    }
    return EscalationNotice.model_validate(values | fields)


def state_after(raised: EscalationNotice) -> TensionState:
    """The state the escalator publishes beside `raised`."""
    return tension_state(
        raised.level,
        raised.index,
        raised.event_time,
        breakdown=raised.breakdown,
        last_item_id=raised.trigger_item_id,
        last_notice_id=raised.notice_id,
    )


# -- what the collector and the processors report ----------------------------------------


def feed_polled(source: str, status: str, polled_at: datetime, **fields: Any) -> FeedPolled:
    """A poll of the outlet `source`, at a URL made from its name."""
    values: dict[str, Any] = {
        "feed_url": f"https://{source.lower().replace(' ', '-')}.example/rss",
        "source": source,
        "status": status,
        "duration_ms": 12.0,
        "polled_at": polled_at,
    }
    return FeedPolled.model_validate(values | fields)


def dead_letter(failed_at: datetime, **fields: Any) -> DeadLetter:
    """A record of news.items the tagger could not read."""
    values: dict[str, Any] = {
        "stage": "tagger",
        "topic": "news.items",
        "partition": 0,
        "offset": 7,
        "key_b64": None,
        "value_b64": "",
        "error_type": "ValidationError",
        "error": "title: Field required",
        "failed_at": failed_at,
    }
    return DeadLetter.model_validate(values | fields)


# -- feeds -------------------------------------------------------------------------------

PUBLISHED = datetime(2024, 4, 30, 9, 0, tzinfo=UTC)


def rss_document(
    entries: str = "",
    *,
    encoding: str = "utf-8",
    title: str = "Feed",
    ttl_minutes: int | None = None,
) -> str:
    """An RSS 2.0 document around `entries` (raw <item> markup)."""
    ttl = f"<ttl>{ttl_minutes}</ttl>" if ttl_minutes is not None else ""
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>{SITE}/</link>{ttl}{entries}</channel></rss>"
    )


def rss_item(
    guid: str,
    title: str,
    description: str = "",
    *,
    published: datetime = PUBLISHED,
    link: str | None = None,
) -> str:
    """One <item>, its text escaped as a feed must."""
    link_element = f"<link>{escape(link)}</link>" if link is not None else ""
    return (
        f'<item><guid isPermaLink="false">{escape(guid)}</guid><title>{escape(title)}</title>'
        f"<description>{escape(description)}</description>{link_element}"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
    )


def rss(*items: tuple[str, str, str], ttl_minutes: int | None = None) -> bytes:
    """An RSS 2.0 document of (guid, title, description) items, all published at PUBLISHED."""
    entries = "".join(rss_item(guid, title, text) for guid, title, text in items)
    return rss_document(entries, ttl_minutes=ttl_minutes).encode()
