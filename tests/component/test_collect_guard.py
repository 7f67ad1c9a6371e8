"""No feed, and no redirect hop, reaches an address the operator did not allow.

The feed server runs on 127.0.0.1, which these tests allow (and only it). A
second server on 127.0.0.2 stands for the private network: every test that
tries to reach it asserts that it received no request at all.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import FetchLimits
from monitor.collect.guard import NetworkPolicy, guarded_session
from monitor.collect.poll import poll_feed
from tests.feed_server import LOOPBACK_ONLY, FeedServer

LIMITS = FetchLimits(total_timeout_s=3.0, connect_timeout_s=1.0, max_body_bytes=1024 * 1024)


def clock() -> datetime:
    return datetime(2024, 5, 1, 12, tzinfo=UTC)


def feed(url: str) -> FeedSpec:
    return FeedSpec(url=url, name="Guarded")


async def test_an_allowed_feed_server_is_read(
    guarded: aiohttp.ClientSession, feed_server: FeedServer
) -> None:
    outcome = await poll_feed(guarded, feed(feed_server.url("/feed.xml")), LIMITS, clock)

    assert (outcome.polled.status, outcome.polled.http_status) == ("ok", 200)
    assert len(outcome.items) == 2


async def test_loopback_is_refused_unless_allowed_and_nothing_is_sent(
    feed_server: FeedServer,
) -> None:
    async with guarded_session(NetworkPolicy()) as nothing_allowed:
        outcome = await poll_feed(
            nothing_allowed, feed(feed_server.url("/feed.xml")), LIMITS, clock
        )

    assert outcome.polled.status == "error"
    assert outcome.polled.http_status is None
    assert outcome.polled.error == "refused address 127.0.0.1: loopback, not in --allow-network"
    assert feed_server.requests == []


@pytest.mark.parametrize(
    ("target", "refusal"),
    [
        ("http://127.0.0.2:{port}/feed.xml", "refused address 127.0.0.2: loopback"),
        ("http://[::ffff:127.0.0.2]:{port}/feed.xml", "(127.0.0.2): loopback"),
        ("http://[::1]:{port}/feed.xml", "refused address ::1: loopback"),
        ("http://10.0.0.1/feed.xml", "refused address 10.0.0.1: private"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "refused address 169.254.169.254: link-local (cloud metadata)",
        ),
        ("http://[fd00:ec2::254]/latest/meta-data/", "refused address fd00:ec2::254: private"),
        ("http://0.0.0.0:{port}/feed.xml", "refused address 0.0.0.0: unspecified"),
    ],
)
async def test_a_redirect_into_loopback_private_or_metadata_addresses_is_refused(
    guarded: aiohttp.ClientSession,
    feed_server: FeedServer,
    inside: FeedServer,
    target: str,
    refusal: str,
) -> None:
    location = target.format(port=inside.port)
    url = str(feed_server.server.make_url("/redirect-to").with_query(to=location))

    outcome = await poll_feed(guarded, feed(url), LIMITS, clock)

    assert outcome.polled.status == "error"
    assert outcome.polled.error is not None
    assert refusal in outcome.polled.error
    assert outcome.polled.error.endswith("not in --allow-network")
    assert feed_server.paths() == ["/redirect-to"]
    assert inside.requests == []


@pytest.mark.parametrize(
    "host", ["2130706434", "0x7f000002", "0177.0.0.2", "127.2", "017700000002", "127.0.0.2."]
)
async def test_numeric_host_forms_of_a_refused_address_do_not_reach_it(
    guarded: aiohttp.ClientSession, feed_server: FeedServer, inside: FeedServer, host: str
) -> None:
    location = f"http://{host}:{inside.port}/feed.xml"
    url = str(feed_server.server.make_url("/redirect-to").with_query(to=location))

    outcome = await poll_feed(guarded, feed(url), LIMITS, clock)

    assert outcome.polled.status == "error"
    assert inside.requests == []


class HostileDNS(AbstractResolver):
    """A name server under the feed owner's control: each lookup gives the next answer."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.lookups = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        pass


async def test_a_name_that_resolves_to_a_private_address_is_refused(inside: FeedServer) -> None:
    dns = HostileDNS("127.0.0.2")
    async with guarded_session(LOOPBACK_ONLY, resolver=dns) as session:
        outcome = await poll_feed(
            session, feed(f"http://news.example:{inside.port}/feed.xml"), LIMITS, clock
        )

    assert outcome.polled.error == "refused address 127.0.0.2: loopback, not in --allow-network"
    assert inside.requests == []


async def test_dns_rebinding_is_caught_at_connect_time(
    feed_server: FeedServer, inside: FeedServer
) -> None:
    # The name first answers with the allowed address, then with the inside one.
    dns = HostileDNS("127.0.0.1", "127.0.0.2")
    first_url = f"http://news.example:{feed_server.port}/feed.xml"
    async with guarded_session(LOOPBACK_ONLY, resolver=dns) as session:
        first = await poll_feed(session, feed(first_url), LIMITS, clock)
        # A new connection (another port), a new lookup, another answer.
        second = await poll_feed(
            session, feed(f"http://news.example:{inside.port}/feed.xml"), LIMITS, clock
        )

    assert first.polled.status == "ok"
    assert second.polled.error == "refused address 127.0.0.2: loopback, not in --allow-network"
    assert dns.lookups == 2
    assert inside.requests == []


async def test_feeds_do_not_reach_through_a_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, feed_server: FeedServer, inside: FeedServer
) -> None:
    # A proxy would make the connection for us, out of the guard's sight.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.2:{inside.port}")
    async with guarded_session(LOOPBACK_ONLY) as session:
        outcome = await poll_feed(session, feed(feed_server.url("/feed.xml")), LIMITS, clock)

    assert outcome.polled.status == "ok"
    assert inside.requests == []
