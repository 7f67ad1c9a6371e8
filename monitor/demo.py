"""`monitor demo`: the whole pipeline on the embedded broker and the bundled sample feeds.

It starts what it needs (broker, a local feed server, the stream worker),
runs the real collector path once, prints each escalation notice as it
arrives, waits until every collected item has gone through the pipeline,
prints a summary, and stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web

from monitor.broker import EmbeddedBroker
from monitor.collect.catalogue import FeedSpec
from monitor.config import SAMPLES_DIR, Settings
from monitor.delivery.terminal import format_notice
from monitor.errors import MonitorError
from monitor.kafka import read_topic
from monitor.service import run_collector
from monitor.streams import create_pipeline
from monitor.topics import (
    ALERTS_ESCALATIONS,
    NEWS_DEADLETTER,
    NEWS_TAGGED,
    TENSION_STATE,
    TopicSpec,
    ensure_topics,
)
from monitor.web import serving
from schemas import EscalationNotice, FeedPolled, ItemTagged, TensionState, decode

Echo = Callable[[str], None]


class DemoError(MonitorError):
    """The demo could not finish: the message says which step and why."""


def load_sample_catalogue(base_url: str, directory: Path = SAMPLES_DIR) -> tuple[FeedSpec, ...]:
    data = tomllib.loads((directory / "catalogue.toml").read_text(encoding="utf-8"))
    feeds = []
    for entry in data["feeds"]:
        fields = {key: value for key, value in entry.items() if key != "file"}
        feeds.append(FeedSpec(url=f"{base_url}/{entry['file']}", **fields))
    return tuple(feeds)


def _feed_files(directory: Path) -> dict[str, Path]:
    return {path.name: path for path in directory.glob("*.xml")}


@asynccontextmanager
async def serve_directory(directory: Path, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve the feed files of `directory` over HTTP on a free port; yields the base URL."""
    files = _feed_files(directory)

    async def feed(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        # application/xml, not text/xml: for text/xml without a charset the
        # XML media-type rules say us-ascii, and feedparser would (rightly) warn.
        return web.FileResponse(path, headers={"Content-Type": "application/xml"})

    app = web.Application()
    app.router.add_get("/{name}", feed)
    async with serving(app, host) as port:
        yield f"http://{host}:{port}"


@dataclass
class DemoTally:
    """What the demo has seen on the topics so far."""

    tagged: dict[str, ItemTagged] = field(default_factory=dict)
    escalated: set[str] = field(default_factory=set)
    notices: dict[str, EscalationNotice] = field(default_factory=dict)
    dead_letters: int = 0
    state: TensionState | None = None


async def _follow(settings: Settings, spec: TopicSpec, sink: Callable[[bytes], None]) -> None:
    async for record in read_topic(settings, spec, follow=True, poll_timeout_ms=200):
        sink(record.value)


@dataclass(frozen=True)
class DemoSummary:
    feeds: tuple[FeedPolled, ...]
    collected: int
    tagged: int
    relevant: int
    signals: dict[str, int]
    notices: tuple[EscalationNotice, ...]
    dead_letters: int
    state: TensionState | None
    seconds: float

    def format(self) -> str:
        ok = sum(1 for poll in self.feeds if poll.status != "error")
        warned = sum(1 for poll in self.feeds if poll.parse_warning)
        by_level = Counter(notice.level for notice in self.notices)
        by_kind = Counter(notice.kind for notice in self.notices)
        lines = [
            "Summary",
            f"  feeds polled:    {len(self.feeds)} ({ok} ok, {len(self.feeds) - ok} failed,"
            f" {warned} read with parse warnings)",
            f"  items collected: {self.collected}",
            f"  items tagged:    {self.tagged} ({self.relevant} relevant to Baku–Moscow)",
            "  signals:         "
            + (", ".join(f"{s} {n}" for s, n in sorted(self.signals.items())) or "none"),
            f"  notices:         {len(self.notices)} ("
            + ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
            + ")   by level: "
            + ", ".join(f"{level} {n}" for level, n in sorted(by_level.items())),
            f"  dead letters:    {self.dead_letters}",
        ]
        if self.state is not None:
            lines.append(
                f"  now {self.state.dyad}: {self.state.level}, index {self.state.index:.1f}"
                f" as of {self.state.as_of:%Y-%m-%d}"
            )
        lines.append(f"  took {self.seconds:.1f} s")
        return "\n".join(lines)


async def run_demo(
    settings: Settings, echo: Echo, *, embedded: bool = True, timeout_s: float = 100.0
) -> DemoSummary:
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        if embedded:
            echo("[1/5] starting the embedded Kafka broker (Tansu) …")
            broker = await stack.enter_async_context(EmbeddedBroker())
            settings = replace(settings, bootstrap=broker.bootstrap)
            echo(f"      ready at {broker.bootstrap}")
        else:
            echo(f"[1/5] using the Kafka broker at {settings.bootstrap}")
        created = await ensure_topics(settings)
        echo(f"[2/5] topics ready ({len(created)} created)")
        base_url = await stack.enter_async_context(serve_directory(SAMPLES_DIR / "feeds"))
        feeds = load_sample_catalogue(base_url)
        echo(f"[3/5] serving {len(feeds)} sample feeds at {base_url}/")

        echo("[4/5] starting the stream worker (tagger → escalator) …")
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="monitor-demo-"))
        pipeline = create_pipeline(replace(settings, data_dir=Path(data_dir)))
        await pipeline.app.start()
        stack.push_async_callback(pipeline.app.stop)
        echo(f"      rules {pipeline.rules.version}")

        tally = DemoTally()

        def on_tagged(raw: bytes) -> None:
            with contextlib.suppress(ValueError):
                item = decode(ItemTagged, raw)
                tally.tagged[item.item_id] = item

        def on_state(raw: bytes) -> None:
            with contextlib.suppress(ValueError):
                state = decode(TensionState, raw)
                tally.escalated.add(state.last_item_id)
                tally.state = state

        def on_notice(raw: bytes) -> None:
            with contextlib.suppress(ValueError):
                notice = decode(EscalationNotice, raw)
                if notice.notice_id not in tally.notices:
                    tally.notices[notice.notice_id] = notice
                    echo("\n" + format_notice(notice) + "\n")

        def on_dead_letter(_raw: bytes) -> None:
            tally.dead_letters += 1

        followers = [
            asyncio.create_task(_follow(settings, spec, sink))
            for spec, sink in (
                (NEWS_TAGGED, on_tagged),
                (TENSION_STATE, on_state),
                (ALERTS_ESCALATIONS, on_notice),
                (NEWS_DEADLETTER, on_dead_letter),
            )
        ]

        async def stop_followers() -> None:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

        stack.push_async_callback(stop_followers)

        def on_poll(poll: FeedPolled) -> None:
            detail = poll.error or f"{poll.items_total} items"
            warning = f" (parse warning: {poll.parse_warning})" if poll.parse_warning else ""
            echo(f"      {poll.status:>12}  {poll.source}: {detail}{warning}")

        echo("[5/5] collecting the sample feeds …")
        # The sample feeds are served on loopback, which collectors refuse unless allowed.
        local = replace(settings, allow_networks=("127.0.0.1/32",))
        reports = await run_collector(local, feeds, asyncio.Event(), once=True, on_poll=on_poll)
        report = reports[0]
        published = {item.item_id for item in report.published}
        echo(f"      published {len(published)} items to news.items; processing …")

        deadline = time.monotonic() + timeout_s
        last_line = ""
        while True:
            relevant = {i for i in published if i in tally.tagged and tally.tagged[i].relevant}
            done_tagged = len(published & tally.tagged.keys())
            done_escalated = len(relevant & tally.escalated)
            line = f"      tagged {done_tagged}/{len(published)}, escalation {done_escalated}"
            if line != last_line:
                echo(line)
                last_line = line
            if done_tagged == len(published) and done_escalated == len(relevant):
                break
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the pipeline did not finish within {timeout_s:.0f} s: {line.strip()}"
                )
            await asyncio.sleep(0.25)
        # The escalator publishes a state only once its notices are acknowledged, so a
        # read to the end now sees every notice, even one the live printer has not shown.
        async for record in read_topic(settings, ALERTS_ESCALATIONS):
            on_notice(record.value)

        tagged = [tally.tagged[i] for i in published]
        signals: Counter[str] = Counter(s for item in tagged if item.relevant for s in item.signals)
        return DemoSummary(
            feeds=report.polls,
            collected=len(published),
            tagged=len(tagged),
            relevant=sum(1 for item in tagged if item.relevant),
            signals=dict(signals),
            notices=tuple(sorted(tally.notices.values(), key=lambda n: n.event_time)),
            dead_letters=tally.dead_letters,
            state=tally.state,
            seconds=time.monotonic() - started,
        )
