"""Feed bytes → ItemCollected events: feedparser (or the JSON Feed reader) on the bytes,
then plain text, ids and times.

Pure: no I/O, no clock (the collection time is an argument). Never raises on a
document, however broken: what it cannot use becomes an error or a warning.
"""

from __future__ import annotations

import calendar
import io
import pyexpat
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from monitor.clock import event_time_of
from monitor.collect.catalogue import ALLOWED_SCHEMES, FeedSpec
from monitor.collect.dates import language_of, localised_date
from monitor.collect.identity import distinguish, item_id, revision
from monitor.collect.jsonfeed import looks_like_json, read_json_feed
from monitor.collect.schedule import feed_ttl_s
from monitor.collect.text import feed_text
from schemas.events import ItemCollected

# Bounds on what one item may carry: a hostile or broken feed must not produce a
# message the broker refuses (Kafka's default limit is 1 MB) or a headline no
# one can read.
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 20_000
MAX_GUID_CHARS = 2_000
MAX_LINK_CHARS = 2_000
# Dates in one document that dateparser may fail to read in a row before the rest
# of that document's dates are left unread.
MAX_UNREAD_DATES_IN_A_ROW = 10

# Expat bounds entity expansion (the "billion laughs" and quadratic blow-ups) from
# 2.4.0 on; feedparser also drops entity definitions that refer to others. With an
# older expat, documents that declare entities are refused outright.
_EXPAT_LIMITS_ENTITIES = pyexpat.version_info >= (2, 4, 0)
_DECLARES_ENTITIES = re.compile(rb"<!ENTITY", re.IGNORECASE)

# How much of a document's start tells what it is (UTF-16, an HTML page).
_SNIFF_BYTES = 256
_GZIP_MAGIC = b"\x1f\x8b"
_XML_DECLARED_ENCODING = re.compile(
    r"""(\A\s*<\?xml[^>]*?encoding\s*=\s*["'])[^"']*(["'])""", re.IGNORECASE
)
_HTML_START = re.compile(r"\A\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_FEED_LINK_TYPE = re.compile(
    r"""type\s*=\s*["']?application/(?:rss\+xml|atom\+xml|feed\+json)""", re.IGNORECASE
)
_HREF = re.compile(r"""href\s*=\s*(["'])(.*?)\1""", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedFeed:
    """What one document gave: its items, and why it gave fewer than it might have."""

    items: tuple[ItemCollected, ...]
    # feedparser's complaint about a document it could still read, and items skipped.
    warning: str | None = None
    # Why the document gave nothing usable; None when it is a feed, even an empty one.
    error: str | None = None
    # How long the feed says it stays unchanged (<ttl>, sy:updatePeriod), in seconds.
    ttl_s: float | None = None


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _as_utc(parsed: Any) -> datetime | None:
    """feedparser's *_parsed value (a UTC struct_time) as an aware datetime, or None."""
    if not isinstance(parsed, time.struct_time):
        return None
    try:
        # timegm, not datetime(*parsed[:6]): it accepts leap seconds (sec=60).
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _safe_link(raw: Any, base_url: str) -> str | None:
    """The entry's link made absolute, or None unless it is http(s): no javascript:, data:…"""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        absolute = urljoin(base_url, raw.strip())
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.netloc:
        return None
    if len(absolute) > MAX_LINK_CHARS or any(not ch.isprintable() for ch in absolute):
        return None
    return absolute


def _type_of(detail: Any) -> str | None:
    value = detail.get("type") if isinstance(detail, Mapping) else None
    return value if isinstance(value, str) else None


def _text_of(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        return ""
    # feedparser tells text (an RSS title, Atom type="text") from markup in *_detail.
    return feed_text(value, _type_of(entry.get(f"{key}_detail")))


def _summary_of(entry: dict[str, Any]) -> str:
    summary = _text_of(entry, "summary")
    if summary:
        return summary
    # Atom entries may carry only <content>; its first text is the best summary there is.
    for content in entry.get("content") or ():
        if isinstance(content, Mapping) and isinstance(content.get("value"), str):
            text = feed_text(content["value"], _type_of(content))
            if text:
                return text
    return ""


def _date_texts(entry: dict[str, Any]) -> list[str]:
    # Read through dict.get: feedparser's own get() maps a missing updated(_parsed)
    # to published(_parsed) with a DeprecationWarning.
    texts = (dict.get(entry, "published"), dict.get(entry, "updated"))
    return [text for text in texts if isinstance(text, str) and text.strip()]


def _published_of(entry: dict[str, Any], languages: Sequence[str] | None) -> datetime | None:
    """The entry's time: feedparser's reading, else (unless `languages` is None) dateparser's."""
    # Atom feeds often give only <updated>; it is the best publication time they offer.
    parsed = _as_utc(dict.get(entry, "published_parsed")) or _as_utc(
        dict.get(entry, "updated_parsed")
    )
    if parsed is not None or languages is None:
        return parsed
    # What feedparser could not read may be a date in another language.
    for text in _date_texts(entry):
        localised = localised_date(text, languages)
        if localised is not None:
            return localised
    return None


def _language_of_detail(detail: Any) -> Any:
    return detail.get("language") if isinstance(detail, Mapping) else None


def _languages_of(*tagged: Any) -> list[str]:
    """Languages named by the catalogue, xml:lang or <language>, most specific first."""
    languages = (language_of(tag) for tag in tagged)
    return list(dict.fromkeys(lang for lang in languages if lang is not None))


def _item_from(
    entry: dict[str, Any],
    feed: FeedSpec,
    base_url: str,
    collected_at: datetime,
    languages: Sequence[str] | None = (),
) -> ItemCollected | None:
    title = _shorten(_text_of(entry, "title"), MAX_TITLE_CHARS)
    summary = _shorten(_summary_of(entry), MAX_SUMMARY_CHARS)
    if not title and not summary:
        return None
    raw_guid = entry.get("id")
    guid = raw_guid.strip()[:MAX_GUID_CHARS] if isinstance(raw_guid, str) else ""
    link = _safe_link(entry.get("link"), base_url)
    published = _published_of(entry, languages)
    event_time = event_time_of(published, collected_at)
    return ItemCollected(
        item_id=item_id(guid, link, title, summary, feed.url),
        revision=revision(title, summary, link),
        feed_url=feed.url,
        source=feed.name,
        source_lang=feed.lang,
        source_country=feed.country,
        source_kind=feed.kind,
        guid=guid or None,
        link=link,
        title=title,
        summary=summary,
        published=published,
        collected_at=collected_at,
        event_time=event_time,
    )


def _describe(exception: Any) -> str:
    if isinstance(exception, BaseException):
        text = str(exception).strip()
        return f"{type(exception).__name__}: {text}" if text else type(exception).__name__
    return str(exception)


def _ttl_of(channel: Any) -> float | None:
    if not isinstance(channel, Mapping):
        return None

    def text(key: str) -> str | None:
        value = channel.get(key)
        return value if isinstance(value, str) else None

    return feed_ttl_s(text("ttl"), text("sy_updateperiod"), text("sy_updatefrequency"))


def _utf16_codec(body: bytes) -> str | None:
    """The codec of a UTF-16 body, by its byte order mark or, without one, by the
    zero bytes that ASCII markup leaves on one side of every code unit."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    head = body[:_SNIFF_BYTES]
    even, odd = head[0::2], head[1::2]
    if len(odd) < 8:
        return None
    if odd.count(0) >= 0.75 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.75 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "utf-16-be"
    return None


def _as_utf8(body: bytes, codec: str) -> bytes:
    """A UTF-16 document as UTF-8, its XML declaration saying so: whatever the HTTP
    header claimed (servers send UTF-16 as "charset=utf-8"), the bytes decide."""
    text = body.decode(codec, errors="replace").lstrip("\ufeff")
    return _XML_DECLARED_ENCODING.sub(r"\1utf-8\2", text, count=1).encode("utf-8")


def _html_page_reason(body: bytes, content_type: str, base: str) -> str | None:
    """ "HTML page, not a feed" (naming the feed it links to, if any), or None."""
    head = body[: _SNIFF_BYTES * 16].decode("latin-1")
    if not (_HTML_START.match(head) or content_type.split(";")[0].strip() == "text/html"):
        return None
    for tag in _LINK_TAG.findall(head):
        if _FEED_LINK_TYPE.search(tag):
            href = _HREF.search(tag)
            link = _safe_link(href.group(2), base) if href else None
            if link is not None:
                return f"HTML page, not a feed (it names a feed: {link})"
    return "HTML page, not a feed"


def _items_of(
    entries: list[Any],
    total: int,
    notes: list[str],
    problem: str | None,
    feed: FeedSpec,
    base: str,
    collected_at: datetime,
    ttl: float | None,
    channel_language: Any,
) -> ParsedFeed:
    """Items from entries (feedparser's shape, whatever the format), `total` counting
    the entries beyond the cap too; `channel_language` is the document's own claim
    (RSS <language>, a JSON Feed's "language"), the last hint for reading dates."""
    if total > len(entries):
        notes.append(f"kept the first {len(entries)} of {total} entries")
    items: list[ItemCollected] = []
    without_text = 0
    failures: list[str] = []
    unreadable_dates: list[str] = []
    unread_in_a_row = untried = 0
    for entry in entries:
        # dateparser takes milliseconds a date: a feed whose dates it keeps failing on
        # (garbage, or a format it does not know) is not worth seconds a poll.
        trying = unread_in_a_row < MAX_UNREAD_DATES_IN_A_ROW
        languages = _languages_of(
            feed.lang, _language_of_detail(entry.get("title_detail")), channel_language
        )
        try:
            item = _item_from(entry, feed, base, collected_at, languages if trying else None)
        except Exception as error:  # one odd entry must not cost the feed its other items
            failures.append(_describe(error))
            continue
        if item is None:
            without_text += 1
            continue
        items.append(item)
        if dated := _date_texts(entry):
            if item.published is not None:
                unread_in_a_row = 0
            else:
                unreadable_dates.append(dated[0])
                unread_in_a_row += 1
                untried += not trying
    if without_text:
        notes.append(f"skipped {without_text} entries without title or summary")
    if unreadable_dates:
        gave_up = f"; {untried} not tried after {MAX_UNREAD_DATES_IN_A_ROW} failures in a row"
        notes.append(
            f"{len(unreadable_dates)} entries with a date that could not be read"
            f" (first: {unreadable_dates[0][:80]!r}), timed when collected instead"
            + (gave_up if untried else "")
        )
    if failures:
        notes.append(f"skipped {len(failures)} unreadable entries (first: {failures[0]})")
    if not items and problem is not None:
        # Broken and nothing readable in it: that is a failed poll, not an empty feed.
        return ParsedFeed(items=(), error=f"not a usable feed: {'; '.join(notes)}")
    ids = distinguish([(item.item_id, item.revision) for item in items])
    sharing = sum(1 for item, new_id in zip(items, ids, strict=True) if new_id != item.item_id)
    if sharing:
        notes.append(
            f"{sharing} entries share a guid or link with a different entry:"
            " each is published as an item of its own"
        )
        items = [
            item if new_id == item.item_id else item.model_copy(update={"item_id": new_id})
            for item, new_id in zip(items, ids, strict=True)
        ]
    return ParsedFeed(items=tuple(items), warning="; ".join(notes) or None, ttl_s=ttl)


def parse_feed(
    body: bytes,
    feed: FeedSpec,
    collected_at: datetime,
    response_headers: Mapping[str, str] | None = None,
    max_items: int = 500,
    base_url: str | None = None,
) -> ParsedFeed:
    """Parse one feed document (RSS, Atom or JSON Feed) into items; never raises on
    the document's content.

    The format is told by the bytes, not by the Content-Type (servers send feeds
    as text/html and JSON as text/plain). `base_url` is where the document was
    actually read from (after redirects); relative links resolve against it, or
    against the feed's URL when not given. `collected_at` must be timezone-aware:
    it clamps every item's event time.
    """
    if collected_at.tzinfo is None:
        raise ValueError("collected_at must be timezone-aware")
    collected_at = collected_at.astimezone(UTC)
    base = base_url or feed.url
    if not body.strip():
        return ParsedFeed(items=(), error="empty document")
    if looks_like_json(body):
        read = read_json_feed(body, max_items)
        if read.error is not None:
            return ParsedFeed(items=(), error=read.error)
        notes = list(read.warnings)
        if not read.entries and not read.total:
            notes.append("no entries")
        entries = list(read.entries)
        return _items_of(
            entries,
            read.total,
            notes,
            None,
            feed,
            base,
            collected_at,
            ttl=None,
            channel_language=read.language,
        )
    # feedparser reads header names in lower case. Content-Location is its only way
    # to learn the base URL of a document given as bytes.
    if response_headers is None:
        # Bytes without HTTP context (a file, a test): let the XML declaration name
        # the encoding instead of warning that no Content-Type was sent.
        headers = {"content-type": "application/xml"}
    else:
        headers = {name.lower(): value for name, value in response_headers.items()}
    content_type = headers.get("content-type", "")
    codec = _utf16_codec(body)
    if codec is not None:
        body = _as_utf8(body, codec)
        headers["content-type"] = "application/xml; charset=utf-8"
    headers["content-location"] = base
    if not _EXPAT_LIMITS_ENTITIES and _DECLARES_ENTITIES.search(body):
        return ParsedFeed(items=(), error="declares XML entities, and this expat cannot bound them")
    try:
        # A BytesIO, never the bytes themselves: feedparser treats a bytes argument
        # it can open() as a file *path*, so a body of b"/etc/passwd" would read it.
        document = feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            sanitize_html=True,
            resolve_relative_uris=True,
        )
    except Exception as error:  # feedparser on hostile input: report, don't crash the collector
        return ParsedFeed(items=(), error=f"feedparser failed: {_describe(error)}")

    entries = list(document.get("entries") or [])
    channel = document.get("feed")
    ttl = _ttl_of(channel)
    problem = _describe(document.get("bozo_exception")) if document.get("bozo") else None
    if not entries:
        if document.get("version"):
            # A feed with nothing in it right now is not a failure, but worth a look.
            return ParsedFeed(
                items=(), warning="; ".join(filter(None, [problem, "no entries"])), ttl_s=ttl
            )
        html_page = _html_page_reason(body, content_type, base)
        if html_page is not None:
            return ParsedFeed(items=(), error=html_page)
        if body.startswith(_GZIP_MAGIC):
            return ParsedFeed(items=(), error="not a feed: gzip-compressed bytes")
        if problem is not None:
            return ParsedFeed(items=(), error=f"not a usable feed: {problem}")
        return ParsedFeed(items=(), error="not a recognised RSS, Atom or JSON feed")
    return _items_of(
        entries[:max_items],
        len(entries),
        [problem] if problem else [],
        problem,
        feed,
        base,
        collected_at,
        ttl,
        channel.get("language") if isinstance(channel, Mapping) else None,
    )
