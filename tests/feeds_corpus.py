"""The real-world feed corpus (tests/data/feeds-real) and what a reference reader finds in it.

Shared by the corpus test and bench/bench_feed_corpus.py. The reference is
independent of the collector's own parser: feedparser for XML, plain `json`
for JSON Feed, so that "every entry found is published" is measured against
something the collector did not produce.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax import SAXParseException

import feedparser

FEEDS_REAL = Path(__file__).parent / "data" / "feeds-real"
OPML_REAL = Path(__file__).parent / "data" / "opml-real"
# The corpus' own paperwork, not feeds.
_NOT_FEEDS = {"README.md", "MANIFEST.tsv"}
# How each file is served: by its extension, as a static web server would.
_CONTENT_TYPES = {
    ".json": "application/json",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
}
_DEFAULT_CONTENT_TYPE = "application/xml"
_GZIP_MAGIC = b"\x1f\x8b"


def corpus_files(root: Path = FEEDS_REAL) -> list[Path]:
    """Every feed file of the corpus, in a stable order."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.name not in _NOT_FEEDS and "LICENSES" not in path.parts
    )


def content_type_of(path: Path) -> str:
    return _CONTENT_TYPES.get(path.suffix.lower(), _DEFAULT_CONTENT_TYPE)


@dataclass(frozen=True)
class Reference:
    """What the reference reader finds in one file."""

    is_feed: bool
    # Entries, counting an entry served twice identically once.
    distinct_entries: int
    # Of those, entries with neither a title nor any text: nothing to publish.
    without_text: int
    kind: str  # "json-feed", "xml-feed" or "not a feed"
    # Entries with text that share their id (or, without one, their link) with
    # another entry of the document that says something else: distinct stories.
    sharing: int = 0


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _json_feed_reference(document: Any) -> Reference | None:
    if not isinstance(document, dict):
        return None
    version = document.get("version")
    items = document.get("items")
    # A JSON object with a version and a list of items is a JSON Feed, even when the
    # version is not the spec's URL (gofeed's test feeds say "1.0").
    if not isinstance(version, str) or not isinstance(items, list):
        return None
    distinct = {json.dumps(item, sort_keys=True) for item in items if isinstance(item, dict)}
    without_text = sum(
        1
        for raw in distinct
        if not any(
            _text(json.loads(raw).get(key))
            for key in ("title", "summary", "content_text", "content_html")
        )
    )
    return Reference(True, len(distinct), without_text, "json-feed")


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, ...]:
    contents = tuple(
        _text(content.get("value"))
        for content in entry.get("content") or ()
        if isinstance(content, Mapping)
    )
    return (
        _text(entry.get("id")),
        _text(entry.get("link")),
        _text(entry.get("title")),
        _text(entry.get("summary")),
        *contents,
    )


def reference_of(body: bytes, content_type: str) -> Reference:
    """What feedparser (XML) or a plain JSON read (JSON Feed) finds in `body`.

    A gzip file is read as what it holds: what a reader sees in it is a feed.
    """
    if body.startswith(_GZIP_MAGIC):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            return Reference(False, 0, 0, "not a feed")
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        try:
            found = _json_feed_reference(json.loads(stripped))
        except ValueError:
            found = None
        return found or Reference(False, 0, 0, "not a feed")
    # Counting needs neither feedparser's sanitiser nor its link resolution (the most
    # of its time on large documents).
    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-type": content_type},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    keys = {_entry_key(entry) for entry in parsed.get("entries") or ()}
    without_text = sum(1 for key in keys if not any(key[2:]))
    by_name = Counter(key[0] or key[1] for key in keys if any(key[2:]) and (key[0] or key[1]))
    sharing = sum(count for count in by_name.values() if count > 1)
    well_formed = not isinstance(parsed.get("bozo_exception"), SAXParseException)
    # A feed: something to read in it, or a well-formed document feedparser recognises
    # (an empty feed is a feed). Broken markup with nothing readable is not.
    is_feed = len(keys) > without_text or (bool(parsed.get("version")) and well_formed)
    kind = "xml-feed" if is_feed else "not a feed"
    return Reference(is_feed, len(keys), without_text, kind, sharing)


def references(files: Iterable[Path]) -> dict[Path, Reference]:
    return {path: reference_of(path.read_bytes(), content_type_of(path)) for path in files}


def catalogue_toml(urls: Iterable[str]) -> str:
    """A feed catalogue naming each URL, as a user would write it."""
    return "".join(
        f'[[feeds]]\nurl = "{url}"\nname = "corpus {n}"\n\n' for n, url in enumerate(urls)
    )
