"""Fetching and polling against a real local HTTP server that misbehaves on request.

Each test asserts what an operator would see: the result's status and error,
and the FeedPolled event that reaches `feeds.health`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import DEFAULT_USER_AGENT, CacheValidators, FetchLimits, fetch_feed
from monitor.collect.poll import poll_feed
from tests.factories import rss, rss_document, rss_item
from tests.feed_server import FEED_ETAG, FEED_LAST_MODIFIED, FeedServer
from tests.waiting import eventually

LIMITS = FetchLimits(
    total_timeout_s=5.0, connect_timeout_s=2.0, max_body_bytes=1024 * 1024, max_redirects=3
)
STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ticking_clock(step: timedelta = timedelta(milliseconds=250)) -> Callable[[], datetime]:
    """A clock that moves on by `step` every time it is read."""
    now = [STARTED - step]

    def clock() -> datetime:
        now[0] += step
        return now[0]

    return clock


async def test_a_feed_is_fetched_with_its_body_and_validators(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    result = await fetch_feed(session, feed_server.url("/feed.xml"), LIMITS)

    assert (result.status, result.http_status, result.error) == ("ok", 200, None)
    assert result.body.startswith(b"<?xml")
    assert result.bytes_read == len(result.body)
    assert result.headers["content-type"].startswith("application/rss+xml")
    assert result.validators == CacheValidators(etag=FEED_ETAG, last_modified=FEED_LAST_MODIFIED)
    _, headers = feed_server.requests[-1]
    assert headers["User-Agent"] == DEFAULT_USER_AGENT
    assert "If-None-Match" not in headers


async def test_a_conditional_second_get_is_not_modified(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    first = await fetch_feed(session, feed_server.url("/feed.xml"), LIMITS)
    second = await fetch_feed(session, feed_server.url("/feed.xml"), LIMITS, first.validators)

    assert (second.status, second.http_status, second.error) == ("not_modified", 304, None)
    assert second.body == b""
    # The 304 omitted Last-Modified; the one we sent still describes our copy.
    assert second.validators == first.validators
    _, headers = feed_server.requests[-1]
    assert headers["If-None-Match"] == FEED_ETAG
    assert headers["If-Modified-Since"] == FEED_LAST_MODIFIED


@pytest.mark.parametrize(("code", "error"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500")])
async def test_an_error_status_is_an_error_result(
    session: aiohttp.ClientSession, feed_server: FeedServer, code: int, error: str
) -> None:
    result = await fetch_feed(session, feed_server.url(f"/status/{code}"), LIMITS)

    assert (result.status, result.http_status) == ("error", code)
    assert result.error is not None
    assert result.error.startswith(error)
    assert result.body == b""


async def test_a_redirect_is_followed_to_the_feed(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    result = await fetch_feed(session, feed_server.url("/redirect"), LIMITS)

    assert (result.status, result.http_status, result.redirects) == ("ok", 200, 1)
    assert result.url == feed_server.url("/feed.xml")
    assert [path for path, _ in feed_server.requests] == ["/redirect", "/feed.xml"]


async def test_a_redirect_loop_is_cut_at_the_cap(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    result = await fetch_feed(session, feed_server.url("/loop/0"), LIMITS)

    assert result.status == "error"
    assert result.error == "too many redirects (more than 3)"
    assert [path for path, _ in feed_server.requests] == [
        "/loop/0",
        "/loop/1",
        "/loop/2",
        "/loop/3",
    ]


async def test_a_redirect_to_another_scheme_is_refused(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    result = await fetch_feed(session, feed_server.url("/redirect-to-file"), LIMITS)

    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("refused url scheme 'file'")
    assert result.url == "file:///etc/passwd"


async def test_a_body_larger_than_the_cap_is_cut(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    result = await fetch_feed(session, feed_server.url("/big"), LIMITS)

    assert (result.status, result.http_status) == ("error", 200)
    assert result.error == f"body exceeds {LIMITS.max_body_bytes} bytes"
    assert result.body == b""


async def test_a_never_ending_body_is_cut_at_the_cap(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    result = await fetch_feed(session, feed_server.url("/endless"), LIMITS)

    assert result.error == f"body exceeds {LIMITS.max_body_bytes} bytes"
    assert result.bytes_read < 2 * LIMITS.max_body_bytes


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compression_bomb_is_cut_at_the_cap_after_decompression(
    session: aiohttp.ClientSession, feed_server: FeedServer, encoding: str
) -> None:
    result = await fetch_feed(session, feed_server.url(f"/bomb/{encoding}"), LIMITS)

    assert result.error == f"body exceeds {LIMITS.max_body_bytes} bytes"
    # Cut within a few chunks of the cap, not after inflating the whole 1 GiB …
    assert result.bytes_read < 2 * LIMITS.max_body_bytes
    # … of which the server got only a few kilobytes out before the client hung up.
    (sent,) = await eventually(lambda: feed_server.bomb_bytes_sent, every_s=0.01)
    assert sent < 64 * 1024


async def test_a_trickling_server_is_cut_by_the_total_timeout(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    limits = FetchLimits(total_timeout_s=0.5, connect_timeout_s=0.5)

    result = await fetch_feed(session, feed_server.url("/trickle"), limits)

    assert result.status == "error"
    assert result.error == "timed out after 0.5 s"
    assert result.http_status == 200
    # A byte every 50 ms: what half a second of trickling brings, not more.
    assert 0 < result.bytes_read < 100


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd", "javascript:alert(1)", "no-scheme"]
)
async def test_a_non_http_url_is_rejected_without_a_request(
    session: aiohttp.ClientSession, feed_server: FeedServer, url: str
) -> None:
    result = await fetch_feed(session, url, LIMITS)

    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("refused url scheme")
    assert feed_server.requests == []


async def test_a_refused_connection_is_an_error_result(
    session: aiohttp.ClientSession, closed_port: int
) -> None:
    result = await fetch_feed(session, f"http://127.0.0.1:{closed_port}/feed.xml", LIMITS)

    assert result.status == "error"
    assert result.http_status is None
    assert result.error is not None
    assert result.error.startswith("cannot connect: ")


async def test_a_hop_check_can_refuse_a_redirect_target(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    checked: list[str] = []

    async def refuse_feed_path(url: str) -> str | None:
        checked.append(url)
        return "refused by policy" if url.endswith("/feed.xml") else None

    result = await fetch_feed(
        session, feed_server.url("/redirect"), LIMITS, hop_check=refuse_feed_path
    )

    assert result.error == "refused by policy"
    assert checked == [feed_server.url("/redirect"), feed_server.url("/feed.xml")]
    assert [path for path, _ in feed_server.requests] == ["/redirect"]


def local_feed(feed_server: FeedServer, path: str = "/feed.xml") -> FeedSpec:
    return FeedSpec(url=feed_server.url(path), name="Local", lang="ru", country="RU")


async def test_a_poll_reports_ok_with_the_items_it_read(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    outcome = await poll_feed(session, local_feed(feed_server), LIMITS, ticking_clock())

    polled = outcome.polled
    assert (polled.status, polled.http_status, polled.error) == ("ok", 200, None)
    assert (polled.items_total, polled.items_new, polled.items_seen) == (2, 2, 0)
    assert polled.bytes_read > 0
    assert polled.duration_ms == 250.0
    assert polled.polled_at == STARTED
    assert polled.parse_warning is None
    first, second = outcome.items
    assert first.title == "Баку и Москва обменялись нотами"
    assert first.summary == "Diplomatic notes were exchanged."
    assert first.link == feed_server.url("/news/1")
    assert first.source == "Local"
    assert first.collected_at == STARTED + timedelta(milliseconds=250)
    assert first.event_time == datetime(2024, 4, 30, 9, 0, tzinfo=UTC)
    assert second.link == "https://elsewhere.example/2"
    assert outcome.validators == CacheValidators(FEED_ETAG, FEED_LAST_MODIFIED)


async def test_a_second_poll_with_validators_is_not_modified(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    feed = local_feed(feed_server)
    first = await poll_feed(session, feed, LIMITS, ticking_clock())
    second = await poll_feed(session, feed, LIMITS, ticking_clock(), first.validators)

    assert (second.polled.status, second.polled.http_status) == ("not_modified", 304)
    assert second.items == ()
    assert second.polled.items_total == 0
    assert second.validators == first.validators


async def test_a_poll_counts_items_seen_before(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    first = await poll_feed(session, local_feed(feed_server), LIMITS, ticking_clock())
    known = {first.items[0].item_id}

    again = await poll_feed(
        session,
        local_feed(feed_server),
        LIMITS,
        ticking_clock(),
        seen=lambda item: item.item_id in known,
    )

    assert (again.polled.items_total, again.polled.items_new, again.polled.items_seen) == (2, 1, 1)
    # Ids do not depend on when the poll ran.
    assert [item.item_id for item in again.items] == [item.item_id for item in first.items]


async def test_a_failed_poll_reports_the_error_and_keeps_the_old_validators(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    previous = CacheValidators(etag='"old"')

    outcome = await poll_feed(
        session, local_feed(feed_server, "/status/500"), LIMITS, ticking_clock(), previous
    )

    polled = outcome.polled
    assert (polled.status, polled.http_status) == ("error", 500)
    assert polled.error is not None
    assert polled.error.startswith("HTTP 500")
    assert outcome.items == ()
    assert outcome.validators == previous


async def test_a_poll_of_an_oversized_feed_is_an_error_event(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    bomb = local_feed(feed_server, "/bomb/gzip")
    outcome = await poll_feed(session, bomb, LIMITS, ticking_clock())

    assert outcome.polled.status == "error"
    assert outcome.polled.error == f"body exceeds {LIMITS.max_body_bytes} bytes"
    assert outcome.polled.bytes_read > LIMITS.max_body_bytes


async def test_a_poll_of_a_document_that_is_not_a_feed_is_an_error_event(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    outcome = await poll_feed(
        session, local_feed(feed_server, "/status/200"), LIMITS, ticking_clock()
    )

    assert outcome.polled.status == "error"
    assert outcome.polled.http_status == 200
    assert outcome.polled.error is not None
    assert outcome.polled.error.startswith("unreadable feed: not a usable feed")
    assert outcome.items == ()


# -- Bodies that are not what they say ---------------------------------------------


def served(url: str) -> FeedSpec:
    return FeedSpec(url=url, name="Local")


async def test_a_gzip_body_served_without_content_encoding_is_inflated_and_read(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    document = rss(("z-1", "Compressed, and not said so", "text"))
    url = feed_server.serve("gzipped", gzip.compress(document), "application/xml")

    outcome = await poll_feed(session, served(url), LIMITS, ticking_clock())

    assert (outcome.polled.status, outcome.polled.error) == ("ok", None)
    assert [item.title for item in outcome.items] == ["Compressed, and not said so"]
    assert outcome.polled.bytes_read == len(document)


async def test_a_gzip_bomb_served_without_content_encoding_is_cut_at_the_cap(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    # 64 MiB of zeros: about 64 KiB on the wire, well inside the 1 MiB cap until inflated.
    bomb = local_feed(feed_server, "/bomb/undeclared-gzip?mib=64")

    outcome = await poll_feed(session, bomb, LIMITS, ticking_clock())

    assert outcome.polled.status == "error"
    assert outcome.polled.error == (
        f"body exceeds {LIMITS.max_body_bytes} bytes once inflated"
        " (gzip-compressed, no Content-Encoding)"
    )
    assert outcome.polled.bytes_read > LIMITS.max_body_bytes


async def test_a_gzip_body_that_does_not_inflate_says_so(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    url = feed_server.serve("broken-gzip", b"\x1f\x8b\x08\x00" + b"not deflate" * 10)

    outcome = await poll_feed(session, served(url), LIMITS, ticking_clock())

    assert outcome.polled.error is not None
    assert outcome.polled.error.startswith(
        "gzip-compressed body (no Content-Encoding) that does not inflate"
    )


async def test_a_utf16_feed_served_as_utf8_is_read(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    document = rss_document(
        rss_item("u-1", "Баку и Москва обменялись нотами"), encoding="utf-16"
    ).encode("utf-16-le")  # no byte order mark, and the header says otherwise
    url = feed_server.serve("utf16", document, "text/xml; charset=utf-8")

    outcome = await poll_feed(session, served(url), LIMITS, ticking_clock())

    assert [item.title for item in outcome.items] == ["Баку и Москва обменялись нотами"]


async def test_a_feed_served_as_html_is_read(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    url = feed_server.serve("as-html", rss(("h-1", "Served as a web page", "")), "text/html")

    outcome = await poll_feed(session, served(url), LIMITS, ticking_clock())

    assert [item.title for item in outcome.items] == ["Served as a web page"]


async def test_a_json_feed_served_as_plain_text_is_read(
    session: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    document = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "JSON",
            "items": [{"id": "j-1", "url": "/news/j-1", "title": "Read from JSON"}],
        }
    ).encode()
    url = feed_server.serve("feed.json", document, "text/plain; charset=utf-8")

    outcome = await poll_feed(session, served(url), LIMITS, ticking_clock())

    assert [(item.title, item.link) for item in outcome.items] == [
        ("Read from JSON", feed_server.url("/news/j-1"))
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"data": [1, 2, 3]}', "application/json", "JSON that is not a JSON Feed"),
        (
            b"<!doctype html><html><head><title>Home</title></head><body>News</body></html>",
            "text/html; charset=utf-8",
            "HTML page, not a feed",
        ),
    ],
)
async def test_a_document_that_is_not_a_feed_is_named_for_what_it_is(
    session: aiohttp.ClientSession,
    feed_server: FeedServer,
    body: bytes,
    content_type: str,
    reason: str,
) -> None:
    url = feed_server.serve("not-a-feed", body, content_type)

    outcome = await poll_feed(session, served(url), LIMITS, ticking_clock())

    assert outcome.polled.status == "error"
    assert outcome.polled.error is not None
    assert outcome.polled.error.startswith(f"unreadable feed: {reason}")
    assert "SAXParseException" not in outcome.polled.error
