"""JSON Feed (https://jsonfeed.org, versions 1 and 1.1) read into entries shaped like feedparser's.

The entries then go through the same path as RSS and Atom entries (identity,
sanitising, caps, dates: see `monitor.collect.parse`). Dates are read here in
RFC 3339 and RFC 822, as feedparser reads an RSS date; what neither reads goes,
as text, to the same reader of dates in other languages, with the same note
on the feed's health record when that fails too. Strict about types, as
pydantic models are, but forgiving the way a reader has to be: a field of the
wrong type is dropped (and counted), an item that is not an object is skipped
(and counted), and the rest of the feed is still read. Pure, never raises on
the document.

Why not a library: the one maintained candidate on PyPI (jsonfeed-util) checks
with `assert`, passes fields of any type through, and rejects the whole feed
for one item without an id; the format is small enough for a few models.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

# The versions the spec defines; others are read too, with a warning.
_KNOWN_VERSIONS = frozenset({"https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1"})


def _number_as_text(value: Any) -> Any:
    # Ids are strings in the spec; feeds in the wild send numbers too (reader and
    # gofeed accept them). Booleans are not numbers here.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class JsonFeedItem(BaseModel):
    """The fields of an item the collector uses; others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    id: Annotated[str | None, BeforeValidator(_number_as_text)] = None
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    summary: str | None = None
    content_text: str | None = None
    content_html: str | None = None
    date_published: str | None = None
    date_modified: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class JsonFeedRead:
    """What a JSON document gave: entries (feedparser's shape), or why there are none."""

    entries: tuple[dict[str, Any], ...] = ()
    # Items in the document, also those beyond the cap.
    total: int = 0
    warnings: tuple[str, ...] = ()
    # Why the document is not a JSON Feed; None when it is one, even an empty one.
    error: str | None = None
    # The feed's own "language" (JSON Feed 1.1), a hint for reading its dates.
    language: str | None = None


def looks_like_json(body: bytes) -> bool:
    """Whether the document starts like JSON (after a byte order mark and spaces)."""
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def _parsed_time(text: str | None) -> time.struct_time | None:
    """An RFC 3339 date as feedparser gives dates (a UTC struct_time); RFC 822 dates,
    which some JSON feeds send, are read too."""
    if not text or not text.strip():
        return None
    value = text.strip()
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            moment = None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # as feedparser reads a date without a zone
    try:
        return moment.astimezone(UTC).utctimetuple()
    except (OverflowError, ValueError):
        return None


def _item_of(raw: Any) -> tuple[JsonFeedItem | None, list[str]]:
    """The item, with the fields of the wrong type dropped (named in the second value)."""
    if not isinstance(raw, dict):
        return None, []
    fields = dict(raw)
    dropped: list[str] = []
    for _ in range(len(JsonFeedItem.model_fields) + 1):
        try:
            return JsonFeedItem.model_validate(fields), dropped
        except ValidationError as error:
            bad = {str(problem["loc"][0]) for problem in error.errors() if problem["loc"]}
            if not bad:
                return None, dropped
            dropped.extend(sorted(bad))
            for name in bad:
                fields.pop(name, None)
    return None, dropped


def _entry_of(item: JsonFeedItem) -> dict[str, Any]:
    # The spec makes title, summary and content_text plain text, as feedparser
    # types an RSS title: "the <title> tag" is text there, not markup.
    contents = (("text/plain", item.content_text), ("text/html", item.content_html))
    entry: dict[str, Any] = {
        "id": item.id or "",
        "link": item.url or item.external_url,
        "title": item.title or "",
        "title_detail": {"type": "text/plain", "language": item.language},
        "summary": item.summary or "",
        "summary_detail": {"type": "text/plain"},
        "content": [{"value": text, "type": kind} for kind, text in contents if text],
    }
    for key, text in (("published", item.date_published), ("updated", item.date_modified)):
        if text:
            entry[key] = text
            entry[f"{key}_parsed"] = _parsed_time(text)
    return entry


def read_json_feed(body: bytes, max_items: int) -> JsonFeedRead:
    """The entries of a JSON Feed document, at most `max_items` of them."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        return JsonFeedRead(error=f"JSON that is not UTF-8: {error.reason}")
    except RecursionError:
        return JsonFeedRead(error="not valid JSON: nested too deeply")
    except ValueError as error:
        return JsonFeedRead(error=f"not valid JSON: {error}")
    if not isinstance(document, dict):
        return JsonFeedRead(error=f"JSON that is not a JSON Feed: a {type(document).__name__}")
    version, items = document.get("version"), document.get("items")
    if not isinstance(version, str) or not isinstance(items, list):
        missing = [
            f'"{key}"'
            for key, value, kind in (("version", version, str), ("items", items, list))
            if not isinstance(value, kind)
        ]
        return JsonFeedRead(
            error=f"JSON that is not a JSON Feed: no {' or '.join(missing)} of the right type"
        )
    warnings: list[str] = []
    if version not in _KNOWN_VERSIONS:
        warnings.append(f"unknown JSON Feed version {version[:80]!r}, read as JSON Feed 1.1")
    entries: list[dict[str, Any]] = []
    not_objects = 0
    with_dropped: dict[str, int] = {}
    for raw in items[:max_items]:
        item, dropped = _item_of(raw)
        for name in dropped:
            with_dropped[name] = with_dropped.get(name, 0) + 1
        if item is None:
            not_objects += 1
            continue
        entries.append(_entry_of(item))
    if not_objects:
        warnings.append(f"skipped {not_objects} entries that are not JSON objects")
    if with_dropped:
        named = ", ".join(f"{name} ({count})" for name, count in sorted(with_dropped.items()))
        warnings.append(f"ignored fields of the wrong type: {named}")
    language = document.get("language")
    return JsonFeedRead(
        tuple(entries),
        len(items),
        tuple(warnings),
        language=language if isinstance(language, str) else None,
    )
