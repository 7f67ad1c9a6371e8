"""feedparser's own test feeds, ill-formed and hostile ones too, through the collector's parser.

Every document gives items or a recorded reason, and no hostile markup from the
sanitizer tests reaches an item.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.collect.catalogue import FeedSpec
from monitor.collect.parse import ParsedFeed, parse_feed

CORPUS = Path(__file__).resolve().parents[1] / "data" / "feedparser-tests"
SANITIZE = CORPUS / "wellformed" / "sanitize"
FEED = FeedSpec(url="http://example.com/feed.xml", name="corpus")
COLLECTED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# Files declare the HTTP headers they were meant to be served with, as
# "Header: Name: value" lines in their leading comment.
HEADER_LINE = re.compile(rb"^Header:\s*([A-Za-z-]+):[ \t]*(.*?)\s*$", re.MULTILINE)
HOSTILE = re.compile(r"<\s*script|javascript\s*:|\bon[a-z]+\s*=", re.IGNORECASE)


def corpus_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.xml") if path.is_file())


def declared_headers(document: bytes) -> dict[str, str] | None:
    comment = document[: document.find(b"-->") + 3] if document.startswith(b"<!--") else b""
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in HEADER_LINE.findall(comment)
    }
    return headers or None


@functools.cache  # parsed once, checked by several tests
def parse_corpus_file(path: Path) -> ParsedFeed:
    document = path.read_bytes()
    return parse_feed(document, FEED, COLLECTED_AT, response_headers=declared_headers(document))


def test_the_corpus_is_there() -> None:
    # Guards the tests below against passing on an empty directory.
    assert len(corpus_files(CORPUS)) > 1700
    assert len(corpus_files(SANITIZE)) > 700


def test_every_corpus_file_gives_items_or_a_recorded_reason() -> None:
    unexplained: list[str] = []
    for path in corpus_files(CORPUS):
        parsed = parse_corpus_file(path)  # an exception here fails the test, as it should
        if parsed.error is not None:
            explained = not parsed.items
        else:
            explained = bool(parsed.items) or parsed.warning is not None
        if not explained:
            unexplained.append(f"{path.relative_to(CORPUS)}: {parsed}")
    assert unexplained == []


def test_most_wellformed_files_with_entries_give_items() -> None:
    # A parser that silently dropped everything would pass the test above; it
    # must not pass this one.
    items = sum(len(parse_corpus_file(path).items) for path in corpus_files(CORPUS / "wellformed"))
    assert items > 400


@pytest.mark.parametrize("field", ["title", "summary", "link"])
def test_no_hostile_markup_from_the_sanitizer_corpus_reaches_an_item(field: str) -> None:
    checked = 0
    leaks: list[str] = []
    for path in corpus_files(SANITIZE):
        for item in parse_corpus_file(path).items:
            value = getattr(item, field) or ""
            checked += 1
            if HOSTILE.search(value):
                leaks.append(f"{path.name}: {value[:120]!r}")
    assert checked > 150
    assert leaks == []


def test_the_sanitizer_corpus_does_carry_hostile_markup() -> None:
    # The check above means something only if the raw documents are hostile.
    hostile_files = [path for path in corpus_files(SANITIZE) if HOSTILE.search(path.read_text())]
    assert len(hostile_files) > 50
