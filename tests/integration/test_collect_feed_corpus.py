"""The collector over other feed readers' real-world test feeds, as a new user would run it.

Every file of tests/data/feeds-real is served over local HTTP with the
Content-Type its extension suggests, and one `monitor collect --once` reads a
catalogue of all of them into a broker of this module's own. What a reference
reader finds in each file (feedparser for XML, plain `json` for JSON Feed; see
tests/feeds_corpus.py) is then held against what reached the topics.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.topics import FEEDS_HEALTH
from schemas import FeedPolled
from tests.feed_server import serve_files
from tests.feeds_corpus import (
    FEEDS_REAL,
    Reference,
    catalogue_toml,
    content_type_of,
    corpus_files,
    references,
)
from tests.integration.support import events, news_items, run_monitor

pytestmark = pytest.mark.integration

# How the collector states, on the feed's health record, entries it did not publish.
SKIPPED = re.compile(r"skipped (\d+) (?:unreadable )?entries")
CAPPED = re.compile(r"kept the first (\d+) of (\d+) entries")


@dataclass(frozen=True)
class CorpusRun:
    exit_code: int
    output: str
    # Per file: its reference reading, the poll's health record, the items published.
    reference: dict[Path, Reference]
    polls: dict[Path, FeedPolled]
    published: Counter[Path]


@pytest.fixture(scope="module")
async def corpus_run(own_broker: str, tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    files = corpus_files()
    async with serve_files(FEEDS_REAL, files, content_type_of) as base:
        urls = {f"{base}/{path.relative_to(FEEDS_REAL).as_posix()}": path for path in files}
        catalogue = tmp_path_factory.mktemp("corpus") / "feeds.toml"
        catalogue.write_text(catalogue_toml(urls), encoding="utf-8")
        # The reference reads the files while the collector runs, in its own process.
        (code, output), reference = await asyncio.gather(
            run_monitor(
                "collect", "--once", "--feeds", str(catalogue), "--bootstrap", own_broker,
                "--allow-network", "127.0.0.1/32", timeout_s=240,
            ),
            asyncio.to_thread(references, files),
        )  # fmt: skip
    settings = Settings(bootstrap=own_broker)
    polls = {urls[p.feed_url]: p for p in await events(settings, FEEDS_HEALTH, FeedPolled)}
    items, _ = await news_items(settings)
    return CorpusRun(code, output, reference, polls, Counter(urls[item.feed_url] for item in items))


def test_the_corpus_is_there_and_holds_feeds_of_every_kind(corpus_run: CorpusRun) -> None:
    # Guards the tests below against passing on a corpus that lost its files.
    kinds = Counter(ref.kind for ref in corpus_run.reference.values())
    assert len(corpus_run.reference) > 700
    assert kinds["xml-feed"] > 650
    assert kinds["json-feed"] >= 10
    assert sum(ref.distinct_entries for ref in corpus_run.reference.values()) > 1500


def test_one_collect_over_the_corpus_runs_to_its_end_and_polls_every_file(
    corpus_run: CorpusRun,
) -> None:
    assert corpus_run.exit_code == 0, corpus_run.output[-3000:]
    assert set(corpus_run.polls) == set(corpus_run.reference)


def test_no_file_that_is_a_feed_fails(corpus_run: CorpusRun) -> None:
    failed = [
        f"{path.relative_to(FEEDS_REAL)}: {poll.error}"
        for path, poll in sorted(corpus_run.polls.items())
        if corpus_run.reference[path].is_feed and poll.status == "error"
    ]
    assert failed == []


def test_a_file_that_is_not_a_feed_says_why(corpus_run: CorpusRun) -> None:
    not_feeds = [path for path, ref in corpus_run.reference.items() if not ref.is_feed]
    assert len(not_feeds) > 5, "the corpus has pages and broken documents too"
    silent = [
        str(path.relative_to(FEEDS_REAL))
        for path in not_feeds
        if not (corpus_run.polls[path].error or corpus_run.polls[path].parse_warning)
    ]
    assert silent == []


def test_every_entry_found_is_published_or_has_a_stated_reason(corpus_run: CorpusRun) -> None:
    # Stated reasons: counted as seen on the health record (served twice, or the same
    # article in the same words from another feed), or skipped or capped in its warning.
    unexplained: list[str] = []
    for path, ref in sorted(corpus_run.reference.items()):
        poll, published = corpus_run.polls[path], corpus_run.published[path]
        assert published == poll.items_new + poll.items_updated, path
        warning = poll.parse_warning or ""
        skipped = sum(int(n) for n in SKIPPED.findall(warning))
        capped = sum(int(total) - int(kept) for kept, total in CAPPED.findall(warning))
        accounted = published + poll.items_seen + skipped + capped
        if ref.is_feed and accounted < ref.distinct_entries:
            unexplained.append(
                f"{path.relative_to(FEEDS_REAL)}: {ref.distinct_entries} entries,"
                f" {published} published, {poll.items_seen} seen, {skipped + capped} skipped"
            )
    assert unexplained == []


def test_entries_with_text_are_published_not_merged(corpus_run: CorpusRun) -> None:
    # The check above would pass if everything were "seen"; on a first run, only
    # syndicated copies and entries served twice may be.
    with_text = sum(
        ref.distinct_entries - ref.without_text
        for ref in corpus_run.reference.values()
        if ref.is_feed
    )
    published = sum(corpus_run.published.values())
    seen = sum(poll.items_seen for poll in corpus_run.polls.values())
    assert published + seen >= with_text
    assert seen < 0.02 * published


def test_different_entries_that_share_a_guid_or_link_are_each_published(
    corpus_run: CorpusRun,
) -> None:
    sharing = {path: ref.sharing for path, ref in corpus_run.reference.items() if ref.sharing}
    assert sum(sharing.values()) > 30, "the corpus has such feeds (rome's Google Base ones)"
    merged = [
        f"{path.relative_to(FEEDS_REAL)}: {count} sharing, {corpus_run.published[path]} published"
        for path, count in sorted(sharing.items())
        if corpus_run.published[path] < count
    ]
    assert merged == []
    for path in sharing:
        assert "share a guid or link" in (corpus_run.polls[path].parse_warning or ""), path


def test_json_feeds_are_read(corpus_run: CorpusRun) -> None:
    json_feeds = [p for p, ref in corpus_run.reference.items() if ref.kind == "json-feed"]
    assert all(corpus_run.polls[path].status == "ok" for path in json_feeds)
    assert sum(corpus_run.published[path] for path in json_feeds) >= 10
