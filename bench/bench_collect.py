"""The collector polling 1,000 local feeds, and its parse path against plain feedparser.

    .venv/bin/python bench/bench_collect.py [--feeds 1000] [--items 20] [--rounds 3]

The feeds are served by an aiohttp server in a *separate process* (so that the
CPU time measured here is the collector's alone), each an RSS document of
`--items` items with an ETag. The collector publishes to an embedded broker
it starts. Measured, side by side in one run:

- round 1, every feed new: wall time, and CPU time (time.process_time) per poll,
  which covers fetch, parse, identity, the decisions and publishing to Kafka;
- round 2, every feed unchanged: the same, where every poll is a 304;
- the parse path (`parse_feed`: feedparser + sanitising + ids + events) against
  plain `feedparser.parse` on the same bytes, in items per second (alternating
  rounds, best of each).

All feeds are on one host (127.0.0.1), so the per-host limit is raised to the
overall concurrency for this run; with real outlets each host has its own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

import feedparser
from aiohttp import web

from monitor.broker import EmbeddedBroker
from monitor.collect.catalogue import FeedSpec
from monitor.collect.guard import guarded_session
from monitor.collect.parse import parse_feed
from monitor.collect.runner import Collector, CollectorOptions
from monitor.config import Settings
from monitor.kafka import producer
from monitor.topics import ensure_topics

PUBLISHED = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
SUMMARY = (
    "Азербайджан и Россия обменялись нотами после задержания граждан в Екатеринбурге; "
    "Baku summoned the Russian ambassador and demanded an explanation. <b>Analysts</b> "
    "expect further <a href='/more'>steps</a> from both capitals this week."
)


def document(feed: int, items: int) -> bytes:
    entries = "".join(
        f"<item><guid isPermaLink='false'>feed-{feed}-item-{n}</guid>"
        f"<title>{escape(f'Feed {feed}: Baku and Moscow, story {n}')}</title>"
        f"<link>https://outlet-{feed}.example/news/{n}</link>"
        f"<description>{escape(SUMMARY)}</description>"
        f"<pubDate>{format_datetime(PUBLISHED)}</pubDate></item>"
        for n in range(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Outlet {feed}</title><link>https://outlet-{feed}.example/</link>"
        f"{entries}</channel></rss>"
    ).encode()


async def serve(feeds: int, items: int) -> None:
    """The feed server process: prints its port, serves until stdin closes."""
    bodies = {n: document(n, items) for n in range(feeds)}

    async def feed(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        etag = f'"v1-{n}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=bodies[n], content_type="application/rss+xml", headers={"ETag": etag}
        )

    app = web.Application()
    app.router.add_get("/feed/{n}.xml", feed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    assert site._server is not None
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[attr-defined]
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


async def poll_rounds(
    feeds: int, items: int, concurrency: int
) -> list[tuple[str, float, float, int]]:
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", "--feeds", str(feeds), "--items", str(items),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    assert server.stdin is not None
    port = int((await server.stdout.readline()).decode())
    results = []
    try:
        async with EmbeddedBroker() as broker:
            settings = replace(
                Settings(),
                bootstrap=broker.bootstrap,
                allow_networks=("127.0.0.1/32",),
                fetch_concurrency=concurrency,
                per_host_concurrency=concurrency,
                max_feed_bytes=10 * 1024 * 1024,
            )
            await ensure_topics(settings)
            specs = [
                FeedSpec(url=f"http://127.0.0.1:{port}/feed/{n}.xml", name=f"Outlet {n}")
                for n in range(feeds)
            ]
            options = CollectorOptions.from_settings(settings)
            async with (
                producer(settings) as client,
                guarded_session(options.policy, limit=concurrency) as session,
            ):
                collector = Collector(specs, client, session, options, lambda: datetime.now(UTC))
                for label in ("new (200, every item published)", "unchanged (304)"):
                    cpu, wall = time.process_time(), time.perf_counter()
                    report = await collector.run_once()
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    assert report.feeds_failed == 0, [p.error for p in report.polls if p.error]
                    results.append((label, wall, cpu, len(report.published)))
    finally:
        server.stdin.close()
        await server.wait()
    return results


def parse_rate(bodies: list[bytes], items: int, rounds: int) -> tuple[float, float]:
    feed = FeedSpec(url="http://127.0.0.1/feed.xml", name="bench")
    now = datetime.now(UTC)
    headers = {"content-type": "application/rss+xml"}
    best_ours = best_plain = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for body in bodies:
            parsed = parse_feed(body, feed, now, response_headers=headers)
            assert len(parsed.items) == items
        best_ours = min(best_ours, time.perf_counter() - started)
        started = time.perf_counter()
        for body in bodies:
            document = feedparser.parse(io.BytesIO(body), response_headers=headers)
            assert len(document.entries) == items
        best_plain = min(best_plain, time.perf_counter() - started)
    total = len(bodies) * items
    return total / best_ours, total / best_plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.feeds, args.items))
        return

    print(f"{args.feeds} feeds × {args.items} items, {args.concurrency} fetches in flight")
    for label, wall, cpu, published in asyncio.run(
        poll_rounds(args.feeds, args.items, args.concurrency)
    ):
        print(
            f"  round {label:<34} wall {wall:6.2f} s   CPU {cpu:6.2f} s"
            f" = {cpu / args.feeds * 1000:6.2f} ms/poll   published {published}"
        )
    bodies = [document(n, args.items) for n in range(min(args.feeds, 200))]
    ours, plain = parse_rate(bodies, args.items, args.rounds)
    print(f"  parse path (parse_feed)     {ours:9,.0f} items/s")
    print(f"  plain feedparser.parse      {plain:9,.0f} items/s")
    print(f"  ratio parse_feed / feedparser: {ours / plain:.2f}")


if __name__ == "__main__":
    main()
