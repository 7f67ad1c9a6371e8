"""The collector as operators run it: `monitor collect --once` from cron, `monitor feeds check`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.broker import EmbeddedBroker
from monitor.config import Settings
from monitor.kafka import read_topic
from monitor.topics import FEEDS_HEALTH
from schemas import FeedPolled, decode
from tests.component.conftest import FeedServer, rss, serve_hostile
from tests.integration.support import news_items

pytestmark = pytest.mark.integration


async def monitor(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.fixture(scope="module")
async def bootstrap() -> AsyncIterator[str]:
    """A broker of this module's own: these runs fill news.items and collector.state."""
    async with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="module")
async def hostile() -> AsyncIterator[FeedServer]:
    async with serve_hostile() as server:
        yield server


def catalogue(directory: Path, *urls: str) -> Path:
    path = directory / "feeds.toml"
    path.write_text(
        "".join(f'[[feeds]]\nurl = "{url}"\nname = "Feed {n}"\n\n' for n, url in enumerate(urls)),
        encoding="utf-8",
    )
    return path


async def test_collect_once_run_twice_by_cron_publishes_each_item_once(
    bootstrap: str, hostile: FeedServer, tmp_path: Path
) -> None:
    url = hostile.serve("cron", rss(("c-1", "First", "a"), ("c-2", "Second", "b")))
    feeds = catalogue(tmp_path, url)

    code, first = await monitor(
        "collect", "--once", "--feeds", str(feeds), "--bootstrap", bootstrap,
        "--allow-network", "127.0.0.1/32",
    )  # fmt: skip
    hostile.serve("cron", rss(("c-3", "Third", "c"), ("c-1", "First", "a"), ("c-2", "Second", "b")))
    code_again, second = await monitor(
        "collect", "--once", "--feeds", str(feeds), "--bootstrap", bootstrap,
        env={"MONITOR_ALLOW_NETWORKS": "127.0.0.1/32"},
    )  # fmt: skip

    assert (code, code_again) == (0, 0), first + second
    assert "1 feeds (1 ok, 0 failed), 2 new items published" in first
    assert "1 feeds (1 ok, 0 failed), 1 new items published" in second
    settings = Settings(bootstrap=bootstrap)
    published, ticks = await news_items(settings)
    assert len(ticks) == 2, "each round records that time passed"
    assert sorted(i.guid or "" for i in published if i.feed_url == url) == ["c-1", "c-2", "c-3"]


async def test_collect_refuses_a_loopback_feed_unless_the_network_is_allowed(
    bootstrap: str, hostile: FeedServer, tmp_path: Path
) -> None:
    url = hostile.serve("not-allowed", rss(("n-1", "Never read", "a")))
    requests_before = len(hostile.requests)

    code, output = await monitor(
        "collect", "--once", "--feeds", str(catalogue(tmp_path, url)), "--bootstrap", bootstrap
    )

    assert code == 0, output
    assert "1 feeds (0 ok, 1 failed), 0 new items published" in output
    assert len(hostile.requests) == requests_before
    settings = Settings(bootstrap=bootstrap)
    polls = [
        decode(FeedPolled, r.value)
        async for r in read_topic(settings, FEEDS_HEALTH)
        if r.key == url.encode()
    ]
    assert [p.error for p in polls] == [
        "refused address 127.0.0.1: loopback, not in --allow-network"
    ]


async def test_feeds_check_validates_the_file_and_probes_every_feed_once(
    hostile: FeedServer, tmp_path: Path
) -> None:
    good = hostile.url("/feed.xml")
    gone = hostile.url("/status/404")
    feeds = catalogue(tmp_path, good, gone)

    code, output = await monitor(
        "feeds", "check", "--feeds", str(feeds), "--allow-network", "127.0.0.1/32"
    )

    assert code == 2, output
    assert f"{feeds}: 2 feeds, valid" in output
    lines = output.splitlines()
    assert any(line.startswith("ok") and "200" in line and f"<{good}>" in line for line in lines)
    assert any(line.startswith("error") and "HTTP 404" in line for line in lines)
    assert "1 of 2 feeds answered with a usable feed" in output


async def test_feeds_check_without_probing_only_validates(
    hostile: FeedServer, tmp_path: Path
) -> None:
    requests_before = len(hostile.requests)
    code, output = await monitor(
        "feeds",
        "check",
        "--no-probe",
        "--feeds",
        str(catalogue(tmp_path, hostile.url("/feed.xml"))),
    )

    assert (code, output.strip()) == (0, f"{tmp_path / 'feeds.toml'}: 1 feeds, valid")
    assert len(hostile.requests) == requests_before


async def test_feeds_check_names_the_bad_entry_of_an_invalid_catalogue(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text('[[feeds]]\nurl = "gopher://old.example/"\n', encoding="utf-8")

    code, output = await monitor("feeds", "check", "--feeds", str(feeds))

    assert code == 1
    assert f"{feeds}: feed #1" in output
    assert "http or https" in output
