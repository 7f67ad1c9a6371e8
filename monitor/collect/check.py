"""`monitor feeds check`: probe every catalogue feed once, without Kafka, and say how it went."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

from monitor.clock import Clock
from monitor.collect.catalogue import FeedSpec
from monitor.collect.guard import guarded_session
from monitor.collect.poll import poll_feed
from monitor.collect.runner import CollectorOptions
from schemas import FeedPolled


async def probe_feeds(
    feeds: Sequence[FeedSpec], options: CollectorOptions, clock: Clock
) -> list[FeedPolled]:
    """One poll per feed, as the collector would make it (same limits, guard and politeness)."""
    everywhere = asyncio.Semaphore(options.concurrency)
    per_host: dict[str, asyncio.Semaphore] = {}
    async with guarded_session(options.policy, limit=options.concurrency) as session:

        async def probe(feed: FeedSpec) -> FeedPolled:
            host = (urlsplit(feed.url).hostname or "").lower()
            slot = per_host.setdefault(host, asyncio.Semaphore(options.per_host))
            async with everywhere, slot:
                outcome = await poll_feed(
                    session, feed, options.limits, clock, max_items=options.max_items
                )
            return outcome.polled

        return list(await asyncio.gather(*(probe(feed) for feed in feeds)))


def format_probe(feed: FeedSpec, polled: FeedPolled) -> str:
    http = str(polled.http_status) if polled.http_status is not None else "-"
    detail = polled.error or polled.parse_warning or ""
    line = f"{polled.status:<12} {http:>4} {polled.items_total:>4} items  {feed.name}  <{feed.url}>"
    return f"{line}  {detail}" if detail else line
