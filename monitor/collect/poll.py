"""One poll of one feed: fetch, parse, and the FeedPolled fact describing what happened.

No Kafka here: the runner decides what to publish from the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from monitor.clock import Clock
from monitor.collect.catalogue import FeedSpec
from monitor.collect.fetch import CacheValidators, FetchLimits, HopCheck, fetch_feed
from monitor.collect.parse import parse_feed
from monitor.collect.schedule import max_age_s, retry_after_s
from schemas.events import FeedPolled, ItemCollected

DEFAULT_MAX_ITEMS = 500
# Only these statuses carry a Retry-After that asks a client to hold off.
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class PollOutcome:
    """What one poll learnt: the health event, the items read, the validators for next time."""

    polled: FeedPolled
    items: tuple[ItemCollected, ...]
    # For the next conditional GET. After a failure these are the ones passed in:
    # a document that failed to parse must not be answered with 304 next time.
    validators: CacheValidators | None
    # What the server and the feed asked about the next poll, in seconds.
    retry_after_s: float | None = None
    max_age_s: float | None = None
    ttl_s: float | None = None


def _elapsed_ms(started: datetime, finished: datetime) -> float:
    # The clock is wall time and may step backwards; a duration never does.
    return max(0.0, (finished - started).total_seconds() * 1000.0)


async def poll_feed(
    session: aiohttp.ClientSession,
    feed: FeedSpec,
    limits: FetchLimits,
    clock: Clock,
    validators: CacheValidators | None = None,
    *,
    seen: Callable[[ItemCollected], bool] | None = None,
    max_items: int = DEFAULT_MAX_ITEMS,
    hop_check: HopCheck | None = None,
) -> PollOutcome:
    """Poll `feed` once; never raises for anything the feed or the network does.

    `clock` gives timezone-aware times: the poll's start is `polled_at`, and the
    moment the body arrived is every item's `collected_at`. Without `seen`, all
    items count as new; the caller that knows what it published before may pass
    `seen` or correct `items_new`/`items_seen` itself.
    """
    started = clock()
    fetched = await fetch_feed(session, feed.url, limits, validators, hop_check=hop_check)
    finished = clock()

    def polled(**outcome: object) -> FeedPolled:
        return FeedPolled.model_validate(
            {
                "feed_url": feed.url,
                "source": feed.name,
                "http_status": fetched.http_status,
                "bytes_read": fetched.bytes_read,
                "duration_ms": _elapsed_ms(started, finished),
                "polled_at": started,
                **outcome,
            }
        )

    if fetched.status == "error":
        retry_after = (
            retry_after_s(fetched.headers, finished)
            if fetched.http_status in _RETRY_AFTER_STATUSES
            else None
        )
        return PollOutcome(
            polled(status="error", error=fetched.error), (), validators, retry_after_s=retry_after
        )
    max_age = max_age_s(fetched.headers)
    if fetched.status == "not_modified":
        return PollOutcome(
            polled(status="not_modified"),
            (),
            fetched.validators or validators,
            max_age_s=max_age,
        )

    # In a thread: a large document takes feedparser a while, and the other feeds'
    # fetches (and their timeouts) must keep running meanwhile.
    parsed = await asyncio.to_thread(
        parse_feed,
        fetched.body,
        feed,
        collected_at=finished,
        response_headers=fetched.headers,
        max_items=max_items,
        base_url=fetched.url,
    )
    if parsed.error is not None:
        return PollOutcome(
            polled(status="error", error=f"unreadable feed: {parsed.error}"),
            (),
            validators,
            max_age_s=max_age,
        )
    items_seen = sum(1 for item in parsed.items if seen(item)) if seen is not None else 0
    return PollOutcome(
        polled(
            status="ok",
            items_total=len(parsed.items),
            items_new=len(parsed.items) - items_seen,
            items_seen=items_seen,
            parse_warning=parsed.warning,
        ),
        parsed.items,
        # Whatever this response said, even nothing: stale validators would only
        # make the server compare against a version it no longer describes.
        fetched.validators or CacheValidators(),
        max_age_s=max_age,
        ttl_s=parsed.ttl_s,
    )
