"""The collector against the hostile feed server, on a broker of this module's own.

Each case asserts what reaches the topics: the items on `news.items` and the
record each poll leaves on `feeds.health`, and that the well-behaved feeds
keep their items and their schedule whatever the others do. Where time
matters, the collector reads it from a clock the test moves: no test waits
for time to pass.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise

import pytest

from monitor.clock import Clock, FrozenClock, utc_now
from monitor.collect.catalogue import FeedSpec
from monitor.collect.guard import guarded_session
from monitor.collect.runner import Collector, CollectorOptions, RoundReport, load_states
from monitor.collect.schedule import SchedulePolicy
from monitor.config import Settings
from monitor.kafka import producer, read_topic
from monitor.topics import FEEDS_HEALTH
from schemas import FeedPolled, FeedStale, ItemCollected, decode_feed_health
from tests.factories import rss
from tests.feed_server import FEED_XML, FeedServer
from tests.integration.support import broker_holding, news_items

pytestmark = pytest.mark.integration

# Small caps so that every hostile case ends within about a second.
FETCH_TIMEOUT_S = 1.0
MAX_FEED_BYTES = 256 * 1024
# When the tests that move the clock start it: a Monday morning, on the second.
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def settings() -> AsyncIterator[Settings]:
    """A broker of this module's own: these tests fill news.items and feeds.health."""
    async with broker_holding(
        partitions=1,
        allow_networks=("127.0.0.1/32",),
        fetch_timeout_s=FETCH_TIMEOUT_S,
        max_feed_bytes=MAX_FEED_BYTES,
        max_redirects=3,
        poll_interval_s=900.0,
    ) as configured:
        yield configured


async def collect_once(
    settings: Settings,
    feeds: Sequence[FeedSpec],
    options: CollectorOptions | None = None,
    clock: Clock = utc_now,
) -> RoundReport:
    """One `--once` run, by a collector that restores its memory first, as a new process would."""
    options = options or CollectorOptions.from_settings(settings)
    states = await load_states(settings)
    async with producer(settings) as client, guarded_session(options.policy) as session:
        collector = Collector(feeds, client, session, options, clock, states=states)
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
    settings: Settings, feed_server: FeedServer
) -> None:
    redirect_inside = feed_server.server.make_url("/redirect-to").with_query(
        to="http://127.0.0.2:9/feed.xml"
    )
    redirect_private = feed_server.server.make_url("/redirect-to").with_query(
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
        "good": spec(feed_server, "/feed.xml", "good"),
        "into-loopback": FeedSpec(url=str(redirect_inside), name="into-loopback"),
        "into-metadata": FeedSpec(url=str(redirect_private), name="into-metadata"),
        "loop": spec(feed_server, "/loop/0", "loop"),
        "gzip-bomb": spec(feed_server, "/bomb/gzip", "gzip-bomb"),
        "deflate-bomb": spec(feed_server, "/bomb/deflate", "deflate-bomb"),
        "endless": spec(feed_server, "/endless", "endless"),
        "trickle": spec(feed_server, "/trickle", "trickle"),
        "rate-limited": spec(feed_server, "/too-many?retry=120", "rate-limited"),
        "file-scheme": spec(feed_server, "/redirect-to-file", "file-scheme"),
    }
    report = await collect_once(settings, list(feeds.values()))

    # Every feed is polled and recorded, the trickle cut at the total timeout.
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
    assert len(report.published) == FEED_XML.count(b"<item>")
    assert report.feeds_failed == len(feeds) - 1


async def test_an_xml_entity_bomb_is_defused_and_its_ordinary_items_still_read(
    settings: Settings, feed_server: FeedServer
) -> None:
    feed = spec(feed_server, "/entity-bomb", "entity bomb")

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
    settings: Settings, feed_server: FeedServer
) -> None:
    feed = spec(feed_server, "/hostile-markup", "hostile markup")

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
    settings: Settings, feed_server: FeedServer
) -> None:
    feed = FeedSpec(url=feed_server.serve("unchanged", rss(("u-1", "One", "a"))), name="unchanged")

    await collect_once(settings, [feed])
    second = await collect_once(settings, [feed])

    assert second.published == ()
    first_poll, second_poll = await polls(settings, feed)
    assert (first_poll.status, first_poll.items_new) == ("ok", 1)
    assert (second_poll.status, second_poll.http_status) == ("not_modified", 304)
    assert (second_poll.items_total, second_poll.items_new) == (0, 0)
    _, headers = feed_server.requests[-1]
    assert headers["If-None-Match"].startswith('"')
    assert len(await items(settings, feed)) == 1


async def test_an_item_edited_between_polls_is_published_as_a_new_revision(
    settings: Settings, feed_server: FeedServer
) -> None:
    url = feed_server.serve("edited", rss(("e-1", "Baku summons envoy", "First version")))
    feed = FeedSpec(url=url, name="edited")
    await collect_once(settings, [feed])

    feed_server.serve(
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
    settings: Settings, feed_server: FeedServer
) -> None:
    a, b, c = ("o-a", "Story A", "a"), ("o-b", "Story B", "b"), ("o-c", "Story C", "c")
    feed = FeedSpec(url=feed_server.serve("reserved", rss(a, b)), name="re-served")

    await collect_once(settings, [feed])
    feed_server.serve("reserved", rss(c))
    await collect_once(settings, [feed])
    feed_server.serve("reserved", rss(a, b, c))  # the old ones are back
    last = await collect_once(settings, [feed])

    assert last.published == ()
    *_, polled = await polls(settings, feed)
    assert (polled.items_total, polled.items_new, polled.items_seen) == (3, 0, 3)
    assert sorted(i.guid or "" for i in await items(settings, feed)) == ["o-a", "o-b", "o-c"]


async def test_a_restarted_collector_neither_republishes_nor_loses_items(
    settings: Settings, feed_server: FeedServer
) -> None:
    first_items = [(f"r-{n}", f"Before the restart {n}", "x") for n in range(3)]
    feed = FeedSpec(url=feed_server.serve("restart", rss(*first_items)), name="restart")
    await collect_once(settings, [feed])  # collector 1, then it is gone

    # While no collector runs, the feed moves on and forgets its validators' version.
    feed_server.serve("restart", rss(("r-new", "After the restart", "y"), *first_items))
    report = await collect_once(settings, [feed])  # collector 2 restores from collector.state

    assert [item.guid for item in report.published] == ["r-new"]
    assert len(await items(settings, feed)) == len(first_items) + 1


async def test_429_and_503_with_retry_after_defer_the_feed_even_across_runs(
    settings: Settings, feed_server: FeedServer
) -> None:
    clock = FrozenClock(START)
    wait = timedelta(hours=1)
    retry_at = START + 2 * wait
    seconds = spec(feed_server, f"/too-many?retry={wait.total_seconds():.0f}", "429 seconds")
    date = spec(
        feed_server,
        f"/too-many?status=503&retry={format_datetime(retry_at, usegmt=True)}",
        "503 date",
    )
    good = FeedSpec(url=feed_server.serve("beside-429", rss(("g-1", "Fine", "z"))), name="fine")
    feeds = [seconds, date, good]

    first = await collect_once(settings, feeds, clock=clock)
    clock.advance(wait - timedelta(seconds=1))
    second = await collect_once(settings, feeds, clock=clock)
    clock.advance(timedelta(seconds=1))
    third = await collect_once(settings, feeds, clock=clock)

    assert first.deferred == ()
    assert set(second.deferred) == {seconds.url, date.url}
    assert [p.feed_url for p in second.polls] == [good.url]  # the good feed is polled as usual
    assert third.deferred == (date.url,), "the seconds are over, the date has not come"
    assert feed_server.paths().count("/too-many") == 3
    (limited, again) = await polls(settings, seconds)
    assert limited.http_status == 429
    assert limited.next_poll_at == START + wait
    assert again.polled_at == START + wait
    (unavailable,) = await polls(settings, date)
    assert unavailable.http_status == 503
    assert unavailable.next_poll_at == retry_at


async def test_a_feed_silent_for_longer_than_expected_raises_feed_stale_once(
    settings: Settings, feed_server: FeedServer
) -> None:
    feed = FeedSpec(
        url=feed_server.serve("quiet", rss(("q-1", "Last words", "z"))),
        name="quiet",
        country="AZ",
        kind="independent",
    )
    stale_after = timedelta(hours=6)
    options = replace(CollectorOptions.from_settings(settings), stale_after=stale_after)
    clock = FrozenClock(START)
    await collect_once(settings, [feed], options, clock)

    clock.advance(stale_after + timedelta(minutes=1))
    await collect_once(settings, [feed], options, clock)  # 304: still nothing new
    clock.advance(timedelta(minutes=15))
    await collect_once(settings, [feed], options, clock)  # reported already

    events = await health(settings, feed)
    assert [type(e).__name__ for e in events] == [
        "FeedPolled",
        "FeedPolled",
        "FeedStale",
        "FeedPolled",
    ]
    first, second, stale, _ = events
    assert isinstance(first, FeedPolled)
    assert isinstance(second, FeedPolled)
    assert isinstance(stale, FeedStale)
    assert stale.silent_since == first.polled_at == START
    assert stale.detected_at == second.polled_at
    assert stale.silent_for_s == (second.polled_at - first.polled_at).total_seconds()
    assert stale.expected_within_s == stale_after.total_seconds()
    assert (stale.source_country, stale.source_kind, stale.last_status) == (
        "AZ",
        "independent",
        "not_modified",
    )


async def test_items_per_feed_are_capped(settings: Settings, feed_server: FeedServer) -> None:
    cap, many = 10, [(f"m-{n}", f"Item {n}", "text") for n in range(30)]
    feed = FeedSpec(url=feed_server.serve("many", rss(*many)), name="many")
    options = replace(CollectorOptions.from_settings(settings), max_items=cap)

    await collect_once(settings, [feed], options)

    (polled,) = await polls(settings, feed)
    assert (polled.items_total, polled.items_new) == (cap, cap)
    assert polled.parse_warning == f"kept the first {cap} of {len(many)} entries"
    assert len(await items(settings, feed)) == cap


async def test_no_more_than_the_per_host_limit_is_asked_of_one_host_at_once(
    settings: Settings, feed_server: FeedServer
) -> None:
    feeds = [spec(feed_server, f"/slow?seconds=0.1&n={n}", f"slow {n}") for n in range(6)]
    options = replace(CollectorOptions.from_settings(settings), per_host=2)

    report = await collect_once(settings, feeds, options)

    assert report.feeds_ok == len(feeds)
    assert feed_server.most_in_flight == options.per_host


class ScheduleClock:
    """Time for the collector's loop, skipped ahead the way the loop's own schedule says.

    It stands still while a poll is under way, so a poll's decisions are dated
    exactly when the poll was due; and when no poll is under way it moves on to
    the next poll due, so the loop never waits for real time to pass. What it
    knows of the schedule is what the collector tells: each feed's first poll
    (drawn in catalogue order from the loop's random source, replayed here from
    the same seed) and then each FeedPolled's `next_poll_at`.

    A feed in `hanging` never answers: nothing waits for it.
    """

    def __init__(self, start: datetime, first_polls: dict[str, datetime], hanging: str) -> None:
        self.now = start
        self.due = dict(first_polls)  # feed url → when its next poll is due
        self.hanging = hanging
        # Off until the loop has laid out its first polls from the start time.
        self.skipping = False

    def __call__(self) -> datetime:
        waited_for = {url: at for url, at in self.due.items() if url != self.hanging}
        if self.skipping and all(at > self.now for at in waited_for.values()):
            self.now = min(waited_for.values())
        return self.now

    def polled(self, poll: FeedPolled) -> None:
        assert poll.next_poll_at is not None
        self.due[poll.feed_url] = poll.next_poll_at


async def test_the_loop_keeps_each_feeds_schedule_whatever_the_others_do(
    settings: Settings, feed_server: FeedServer
) -> None:
    policy = SchedulePolicy(interval_s=900.0, jitter=0.2)
    retry_after = timedelta(minutes=30)
    steady = FeedSpec(url=feed_server.serve("steady", rss(("s-1", "Steady", "s"))), name="steady")
    limited = spec(feed_server, f"/too-many?retry={retry_after.total_seconds():.0f}", "limited")
    broken = spec(feed_server, "/status/500", "broken")
    # A server that never finishes answering (the fetch's timeout is longer than the test).
    hanging = spec(feed_server, "/trickle", "hanging")
    feeds = [steady, limited, broken, hanging]
    options = replace(
        CollectorOptions.from_settings(settings),
        schedule=policy,
        limits=replace(CollectorOptions.from_settings(settings).limits, total_timeout_s=60.0),
        per_host=len(feeds),
    )
    seed = 7
    twin = random.Random(seed)  # the loop's random source, replayed
    first_polls = {feed.url: policy.first_poll(START, twin) for feed in feeds}
    clock = ScheduleClock(START, first_polls, hanging.url)
    seen: dict[str, list[FeedPolled]] = {feed.name: [] for feed in feeds}
    enough = asyncio.Event()

    def on_poll(polled: FeedPolled) -> None:
        clock.polled(polled)
        seen[polled.source].append(polled)
        if len(seen["steady"]) >= 7 and len(seen["broken"]) >= 3 and len(seen["limited"]) >= 2:
            enough.set()

    stop = asyncio.Event()
    async with producer(settings) as client, guarded_session(options.policy) as session:
        collector = Collector(
            feeds, client, session, options, clock, rng=random.Random(seed), on_poll=on_poll
        )
        loop = asyncio.create_task(collector.run(stop))
        await asyncio.sleep(0)  # the loop lays out its first polls from START
        clock.skipping = True
        try:
            async with asyncio.timeout(30):
                await enough.wait()
        except TimeoutError:
            counts = {name: len(polled) for name, polled in seen.items()}
            pytest.fail(f"the loop stalled at {clock.now:%H:%M:%S} with polls {counts}")
        finally:
            stop.set()
            await loop

    def gaps(name: str) -> list[timedelta]:
        return [b.polled_at - a.polled_at for a, b in pairwise(seen[name])]

    # Every feed is polled exactly when its schedule says, neither before nor after …
    for feed in (steady, limited, broken):
        polled = seen[feed.name]
        assert polled[0].polled_at == first_polls[feed.url], feed.name
        assert all(b.polled_at == a.next_poll_at for a, b in pairwise(polled)), feed.name
    interval = timedelta(seconds=policy.interval_s)
    spread = (1 - policy.jitter / 2, 1 + policy.jitter / 2)
    # … the steady feed every interval, spread by the jitter, and read from its cache,
    assert all(interval * spread[0] <= gap <= interval * spread[1] for gap in gaps("steady"))
    assert [p.status for p in seen["steady"]] == ["ok"] + ["not_modified"] * len(gaps("steady"))
    # the rate-limited one no sooner than it was asked to,
    assert all(gap >= retry_after for gap in gaps("limited"))
    # the broken one backing off exponentially,
    for failures, gap in enumerate(gaps("broken")):
        backoff = interval * 2**failures
        assert backoff * spread[0] <= gap <= backoff * spread[1], failures
    # and all of it while the hanging feed's one request was still unanswered.
    assert feed_server.paths().count("/trickle") == 1
    assert seen["hanging"] == []
    assert sum(p.polled_at > first_polls[hanging.url] for p in seen["steady"]) >= 5
