"""The collector as operators run it: `monitor collect --once` from cron, `monitor feeds check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.topics import FEEDS_HEALTH
from schemas import FeedPolled
from tests.factories import rss
from tests.feed_server import FeedServer
from tests.integration.support import events, news_items, run_monitor

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bootstrap(own_broker: str) -> str:
    """A broker of this module's own: these runs fill news.items and collector.state."""
    return own_broker


def catalogue(directory: Path, *urls: str) -> Path:
    path = directory / "feeds.toml"
    path.write_text(
        "".join(f'[[feeds]]\nurl = "{url}"\nname = "Feed {n}"\n\n' for n, url in enumerate(urls)),
        encoding="utf-8",
    )
    return path


async def test_collect_once_run_twice_by_cron_publishes_each_item_once(
    bootstrap: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    first_items, later = [("c-1", "First", "a"), ("c-2", "Second", "b")], ("c-3", "Third", "c")
    url = feed_server.serve("cron", rss(*first_items))
    feeds = catalogue(tmp_path, url)

    code, first = await run_monitor(
        "collect", "--once", "--feeds", str(feeds), "--bootstrap", bootstrap,
        "--allow-network", "127.0.0.1/32",
    )  # fmt: skip
    feed_server.serve("cron", rss(later, *first_items))
    code_again, second = await run_monitor(
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
    bootstrap: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("not-allowed", rss(("n-1", "Never read", "a")))
    requests_before = len(feed_server.requests)

    code, output = await run_monitor(
        "collect", "--once", "--feeds", str(catalogue(tmp_path, url)), "--bootstrap", bootstrap
    )

    assert code == 0, output
    assert "1 feeds (0 ok, 1 failed), 0 new items published" in output
    assert len(feed_server.requests) == requests_before
    polls = await events(Settings(bootstrap=bootstrap), FEEDS_HEALTH, FeedPolled)
    assert [p.error for p in polls if p.feed_url == url] == [
        "refused address 127.0.0.1: loopback, not in --allow-network"
    ]


async def test_feeds_check_validates_the_file_and_probes_every_feed_once(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    good = feed_server.url("/feed.xml")
    gone = feed_server.url("/status/404")
    feeds = catalogue(tmp_path, good, gone)

    code, output = await run_monitor(
        "feeds", "check", "--feeds", str(feeds), "--allow-network", "127.0.0.1/32"
    )

    assert code == 2, output
    assert f"{feeds}: 2 feeds, valid" in output
    lines = output.splitlines()
    assert any(line.startswith("ok") and "200" in line and f"<{good}>" in line for line in lines)
    assert any(line.startswith("error") and "HTTP 404" in line for line in lines)
    assert "1 of 2 feeds answered with a usable feed" in output


async def test_feeds_check_without_probing_only_validates(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    requests_before = len(feed_server.requests)
    code, output = await run_monitor(
        "feeds",
        "check",
        "--no-probe",
        "--feeds",
        str(catalogue(tmp_path, feed_server.url("/feed.xml"))),
    )

    assert (code, output.strip()) == (0, f"{tmp_path / 'feeds.toml'}: 1 feeds, valid")
    assert len(feed_server.requests) == requests_before


async def test_feeds_check_names_the_bad_entry_of_an_invalid_catalogue(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text('[[feeds]]\nurl = "gopher://old.example/"\n', encoding="utf-8")

    code, output = await run_monitor("feeds", "check", "--feeds", str(feeds))

    assert code == 1
    assert f"{feeds}: feed #1" in output
    assert "http or https" in output
