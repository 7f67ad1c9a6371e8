"""The collector against the hostile feed server, on a broker of this module's own.

Each case asserts what reaches the topics: the items on `news.items` and the
record each poll leaves on `feeds.health`, and that the well-behaved feeds
keep their items and their schedule whatever the others do.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise

import pytest

from monitor.broker import EmbeddedBroker
from monitor.collect.catalogue import FeedSpec
from monitor.collect.guard import guarded_session
from monitor.collect.runner import Collector, CollectorOptions, RoundReport, load_states
from monitor.collect.schedule import SchedulePolicy
from monitor.config import Settings
from monitor.kafka import producer, read_topic
from monitor.topics import FEEDS_HEALTH, ensure_topics
from schemas import FeedPolled, FeedStale, ItemCollected, decode_feed_health
from tests.factories import rss
from tests.feed_server import FeedServer
from tests.integration.support import news_items

pytestmark = pytest.mark.integration

# Small caps so that every hostile case ends within about a second.
FETCH_TIMEOUT_S = 1.0
MAX_FEED_BYTES = 256 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
async def settings() -> AsyncIterator[Settings]:
    """A broker of this module's own: these tests fill news.items and feeds.health."""
    async with EmbeddedBroker() as broker:
        configured = Settings(
            bootstrap=broker.bootstrap,
            partitions=1,
            allow_networks=("127.0.0.1/32",),
            fetch_timeout_s=FETCH_TIMEOUT_S,
            max_feed_bytes=MAX_FEED_BYTES,
            max_redirects=3,
            poll_interval_s=900.0,
        )
        await ensure_topics(configured)
        yield configured


@pytest.fixture
def hostile(feed_server: FeedServer) -> FeedServer:
    return feed_server


async def collect_once(
    settings: Settings, feeds: Sequence[FeedSpec], options: CollectorOptions | None = None
) -> RoundReport:
    """One `--once` run, by a collector that restores its memory first, as a new process would."""
    options = options or CollectorOptions.from_settings(settings)
    states = await load_states(settings)
    async with producer(settings) as client, guarded_session(options.policy) as session:
        collector = Collector(feeds, client, session, options, utc_now, states=states)
        return await collector.run_once()


async def health(settings: Settings, feed: FeedSpec) -> list[FeedPolled | FeedStale]:
    records = read_topic(settings, FEEDS_HEALTH)
    return [decode_feed_health(r.value) async for r in records if r.key == feed.url.encode("utf-8")]


async def polls(settings: Settings, feed: FeedSpec) -> list[FeedPolled]:
    return [event for event in await health(settings, feed) if isinstance(event, FeedPolled)]


async def items(settings: Settings, feed: FeedSpec) -> list[ItemCollected]:
    published, _ = await news_items(settings)
    return [item for item in published if item.feed_url == feed.url]


def spec(server: FeedServer, path: str, name: str) -> FeedSpec:
    return FeedSpec(url=server.url(path), name=name, lang="ru", country="RU", kind="state")


async def test_hostile_feeds_each_leave_a_health_record_and_the_good_feed_its_items(
    settings: Settings, hostile: FeedServer
) -> None:
    redirect_inside = hostile.server.make_url("/redirect-to").with_query(
        to="http://127.0.0.2:9/feed.xml"
    )
    redirect_private = hostile.server.make_url("/redirect-to").with_query(
        to="http://169.254.169.254/latest/meta-data/"
    )
    expected = {
        "good": ("ok", 200, None),
        "into-loopback": ("error", 302, "refused address 127.0.0.2: loopback"),
        "into-metadata": ("error", 302, "refused address 169.254.169.254: link-local"),
        "loop": ("error", 302, "too many redirects (more than 3)"),
        "gzip-bomb": ("error", 200, f"body exceeds {MAX_FEED_BYTES} bytes"),
        "deflate-bomb": ("error", 200, f"body exceeds {MAX_FEED_BYTES} bytes"),
        "endless": ("error", 200, f"body exceeds {MAX_FEED_BYTES} bytes"),
        "trickle": ("error", 200, f"timed out after {FETCH_TIMEOUT_S:g} s"),
        "rate-limited": ("error", 429, "HTTP 429"),
        "file-scheme": ("error", 302, "refused url scheme 'file'"),
    }
    feeds = {
        "good": spec(hostile, "/feed.xml", "good"),
        "into-loopback": FeedSpec(url=str(redirect_inside), name="into-loopback"),
        "into-metadata": FeedSpec(url=str(redirect_private), name="into-metadata"),
        "loop": spec(hostile, "/loop/0", "loop"),
        "gzip-bomb": spec(hostile, "/bomb/gzip", "gzip-bomb"),
        "deflate-bomb": spec(hostile, "/bomb/deflate", "deflate-bomb"),
        "endless": spec(hostile, "/endless", "endless"),
        "trickle": spec(hostile, "/trickle", "trickle"),
        "rate-limited": spec(hostile, "/too-many?retry=120", "rate-limited"),
        "file-scheme": spec(hostile, "/redirect-to-file", "file-scheme"),
    }
    started = time.monotonic()

    report = await collect_once(settings, list(feeds.values()))

    # The trickle is cut at the total timeout, and nothing waits for anything else.
    assert time.monotonic() - started < FETCH_TIMEOUT_S + 2
    for name, feed in feeds.items():
        (polled,) = await polls(settings, feed)
        status, http_status, error = expected[name]
        assert (polled.status, polled.http_status) == (status, http_status), name
        if error is None:
            assert polled.error is None
        else:
            assert polled.error is not None
            assert polled.error.startswith(error), (name, polled.error)
    good = await items(settings, feeds["good"])
    assert [item.title for item in good] == ["Second item", "Баку и Москва обменялись нотами"]
    assert {(i.source_lang, i.source_country, i.source_kind) for i in good} == {
        ("ru", "RU", "state")
    }
    assert len(report.published) == 2
    assert report.feeds_failed == len(feeds) - 1


async def test_an_xml_entity_bomb_is_defused_and_its_ordinary_items_still_read(
    settings: Settings, hostile: FeedServer
) -> None:
    feed = spec(hostile, "/entity-bomb", "entity bomb")

    await collect_once(settings, [feed])

    (polled,) = await polls(settings, feed)
    assert polled.status == "ok"
    assert polled.parse_warning is not None
    assert "amplification" in polled.parse_warning or "syntax error" in polled.parse_warning
    published = await items(settings, feed)
    assert "An ordinary item after the bomb" in {item.title for item in published}
    # Nothing was expanded: no item carries the billion laughs or the 1 GB of x.
    assert all(len(item.title) < 1_000 and "lollol" not in item.title for item in published)
    assert all(len(item.summary) <= 20_000 for item in published)


async def test_no_script_event_handler_or_javascript_link_reaches_a_published_item(
    settings: Settings, hostile: FeedServer
) -> None:
    feed = spec(hostile, "/hostile-markup", "hostile markup")

    await collect_once(settings, [feed])

    (item,) = await items(settings, feed)
    assert item.title == "Baku protests"
    assert item.summary == "Read The note was delivered."
    assert item.link is None
    for text in (item.title, item.summary):
        assert "script" not in text
        assert "onerror" not in text
        assert "javascript" not in text


async def test_the_second_poll_of_an_unchanged_feed_is_a_304_and_publishes_nothing(
    settings: Settings, hostile: FeedServer
) -> None:
    feed = FeedSpec(url=hostile.serve("unchanged", rss(("u-1", "One", "a"))), name="unchanged")

    await collect_once(settings, [feed])
    second = await collect_once(settings, [feed])

    assert second.published == ()
    first_poll, second_poll = await polls(settings, feed)
    assert (first_poll.status, first_poll.items_new) == ("ok", 1)
    assert (second_poll.status, second_poll.http_status) == ("not_modified", 304)
    assert (second_poll.items_total, second_poll.items_new) == (0, 0)
    _, headers = hostile.requests[-1]
    assert headers["If-None-Match"].startswith('"')
    assert len(await items(settings, feed)) == 1


async def test_an_item_edited_between_polls_is_published_as_a_new_revision(
    settings: Settings, hostile: FeedServer
) -> None:
    url = hostile.serve("edited", rss(("e-1", "Baku summons envoy", "First version")))
    feed = FeedSpec(url=url, name="edited")
    await collect_once(settings, [feed])

    hostile.serve(
        "edited",
        rss(("e-2", "A new story", "New"), ("e-1", "Baku summons envoy", "Corrected version")),
    )
    await collect_once(settings, [feed])

    *_, second = await polls(settings, feed)
    assert (second.items_new, second.items_updated, second.items_seen) == (1, 1, 0)
    published = await items(settings, feed)
    edits = [i for i in published if i.guid == "e-1"]
    assert [e.summary for e in edits] == ["First version", "Corrected version"]
    assert edits[0].item_id == edits[1].item_id
    assert edits[0].revision != edits[1].revision
    assert len(published) == 3


async def test_a_feed_that_re_serves_old_guids_publishes_them_only_once(
    settings: Settings, hostile: FeedServer
) -> None:
    a, b, c = ("o-a", "Story A", "a"), ("o-b", "Story B", "b"), ("o-c", "Story C", "c")
    feed = FeedSpec(url=hostile.serve("reserved", rss(a, b)), name="re-served")

    await collect_once(settings, [feed])
    hostile.serve("reserved", rss(c))
    await collect_once(settings, [feed])
    hostile.serve("reserved", rss(a, b, c))  # the old ones are back
    last = await collect_once(settings, [feed])

    assert last.published == ()
    *_, polled = await polls(settings, feed)
    assert (polled.items_total, polled.items_new, polled.items_seen) == (3, 0, 3)
    assert sorted(i.guid or "" for i in await items(settings, feed)) == ["o-a", "o-b", "o-c"]


async def test_a_restarted_collector_neither_republishes_nor_loses_items(
    settings: Settings, hostile: FeedServer
) -> None:
    first_items = [(f"r-{n}", f"Before the restart {n}", "x") for n in range(3)]
    feed = FeedSpec(url=hostile.serve("restart", rss(*first_items)), name="restart")
    await collect_once(settings, [feed])  # collector 1, then it is gone

    # While no collector runs, the feed moves on and forgets its validators' version.
    hostile.serve("restart", rss(("r-new", "After the restart", "y"), *first_items))
    report = await collect_once(settings, [feed])  # collector 2 restores from collector.state

    assert [item.guid for item in report.published] == ["r-new"]
    assert len(await items(settings, feed)) == 4


async def test_429_with_retry_after_defers_the_feed_even_across_runs(
    settings: Settings, hostile: FeedServer
) -> None:
    retry_at = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    seconds = spec(hostile, "/too-many?retry=3600", "429 seconds")
    date = spec(hostile, f"/too-many?status=503&retry={retry_at}", "503 date")
    good = FeedSpec(url=hostile.serve("beside-429", rss(("g-1", "Fine", "z"))), name="fine")

    first = await collect_once(settings, [seconds, date, good])
    second = await collect_once(settings, [seconds, date, good])

    assert first.deferred == ()
    assert set(second.deferred) == {seconds.url, date.url}
    assert [p.feed_url for p in second.polls] == [good.url]  # the good feed is polled as usual
    assert hostile.paths().count("/too-many") == 2  # once each, not again
    (limited,) = await polls(settings, seconds)
    assert limited.http_status == 429
    assert limited.next_poll_at is not None
    assert limited.next_poll_at - limited.polled_at >= timedelta(seconds=3600)
    (unavailable,) = await polls(settings, date)
    assert unavailable.http_status == 503
    assert unavailable.next_poll_at is not None
    assert unavailable.next_poll_at - unavailable.polled_at >= timedelta(hours=1, minutes=59)


async def test_a_feed_silent_for_longer_than_expected_raises_feed_stale_once(
    settings: Settings, hostile: FeedServer
) -> None:
    feed = FeedSpec(
        url=hostile.serve("quiet", rss(("q-1", "Last words", "z"))),
        name="quiet",
        country="AZ",
        kind="independent",
    )
    options = replace(CollectorOptions.from_settings(settings), stale_after=timedelta(seconds=0.3))
    await collect_once(settings, [feed], options)

    await asyncio.sleep(0.4)
    await collect_once(settings, [feed], options)  # 304: still nothing new
    await collect_once(settings, [feed], options)  # reported already

    events = await health(settings, feed)
    assert [type(e).__name__ for e in events] == [
        "FeedPolled",
        "FeedPolled",
        "FeedStale",
        "FeedPolled",
    ]
    stale = events[2]
    assert isinstance(stale, FeedStale)
    first = events[0]
    assert isinstance(first, FeedPolled)
    assert stale.silent_since == first.polled_at
    assert stale.silent_for_s > 0.3
    assert (stale.source_country, stale.source_kind, stale.last_status) == (
        "AZ",
        "independent",
        "not_modified",
    )


async def test_items_per_feed_are_capped(settings: Settings, hostile: FeedServer) -> None:
    many = [(f"m-{n}", f"Item {n}", "text") for n in range(30)]
    feed = FeedSpec(url=hostile.serve("many", rss(*many)), name="many")
    options = replace(CollectorOptions.from_settings(settings), max_items=10)

    await collect_once(settings, [feed], options)

    (polled,) = await polls(settings, feed)
    assert (polled.items_total, polled.items_new) == (10, 10)
    assert polled.parse_warning == "kept the first 10 of 30 entries"
    assert len(await items(settings, feed)) == 10


async def test_no_more_than_the_per_host_limit_is_asked_of_one_host_at_once(
    settings: Settings, hostile: FeedServer
) -> None:
    feeds = [spec(hostile, f"/slow?seconds=0.1&n={n}", f"slow {n}") for n in range(6)]
    options = replace(CollectorOptions.from_settings(settings), per_host=2)

    report = await collect_once(settings, feeds, options)

    assert report.feeds_ok == 6
    assert hostile.most_in_flight == 2


async def test_the_loop_keeps_each_feeds_schedule_whatever_the_others_do(
    settings: Settings, hostile: FeedServer
) -> None:
    interval = 0.3
    steady = FeedSpec(url=hostile.serve("steady", rss(("s-1", "Steady", "s"))), name="steady")
    limited = spec(hostile, "/too-many?retry=1", "limited")
    broken = spec(hostile, "/status/500", "broken")
    trickle = spec(hostile, "/trickle", "trickle")
    options = replace(
        CollectorOptions.from_settings(settings),
        schedule=SchedulePolicy(interval_s=interval, jitter=0.2),
        limits=replace(CollectorOptions.from_settings(settings).limits, total_timeout_s=0.5),
        per_host=8,
    )
    seen: dict[str, list[FeedPolled]] = {}
    stop = asyncio.Event()
    async with producer(settings) as client, guarded_session(options.policy) as session:
        collector = Collector(
            [steady, limited, broken, trickle], client, session, options, utc_now,
            rng=random.Random(7),
            on_poll=lambda p: seen.setdefault(p.source, []).append(p),
        )  # fmt: skip
        loop = asyncio.create_task(collector.run(stop))
        await asyncio.sleep(3.0)
        stop.set()
        await loop

    def gaps(name: str) -> list[float]:
        times = [p.polled_at for p in seen.get(name, [])]
        return [(b - a).total_seconds() for a, b in pairwise(times)]

    # The steady feed keeps to its interval (± jitter, plus the poll itself) …
    assert len(seen["steady"]) >= 7
    assert all(interval * 0.85 <= gap <= interval * 1.1 + 0.15 for gap in gaps("steady"))
    assert [p.status for p in seen["steady"][1:]] == ["not_modified"] * (len(seen["steady"]) - 1)
    # … while the rate-limited one waits as long as it was asked to,
    assert all(gap >= 1.0 for gap in gaps("limited"))
    # the broken one backs off exponentially,
    broken_gaps = gaps("broken")
    assert len(broken_gaps) >= 2
    assert broken_gaps[1] > broken_gaps[0] * 1.5
    # and the trickle is cut each time at its timeout.
    assert all(p.error == "timed out after 0.5 s" for p in seen["trickle"])
