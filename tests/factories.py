"""The events and feed documents the tests build, one factory each.

A factory fills every field a case does not care about with a plain value, so
that a test names only what its case is about.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

SITE = "https://caspian.example"


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
