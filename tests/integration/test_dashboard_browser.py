"""The dashboard in a real headless browser (Chromium, driven over the DevTools protocol).

A broker of this module's own holds a month of the monitor's output; the
dashboard follows it; Chromium loads the page, which must show the level,
the timeline, the notices with their evidence and links, feed and stream
health, and then a notice published while the page is open, without a reload.

Set DASHBOARD_SCREENSHOT=docs/dashboard.png to refresh the screenshot in the docs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.clock import utc_now
from monitor.config import Settings
from monitor.escalation.scoring import ScoringConfig
from monitor.kafka import producer, publish
from monitor.observe.dashboard import serve_dashboard
from monitor.records import Outgoing
from monitor.topics import (
    ALERTS_ESCALATIONS,
    FEEDS_HEALTH,
    NEWS_DEADLETTER,
    TENSION_STATE,
)
from schemas import EscalationNotice, FeedPolled, Level, TensionState
from tests.factories import dead_letter, feed_polled, notice, state_after, story, tension_state
from tests.integration.support import broker_holding
from tests.waiting import eventually

pytestmark = pytest.mark.integration

DEC = datetime(2024, 12, 1, tzinfo=UTC)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is not installed: .ci/run installs it (apt-get install chromium)")
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")


def state(day: float, level: Level, index: float, signals: dict[str, float]) -> TensionState:
    return tension_state(
        level,
        index,
        DEC + timedelta(days=day),
        breakdown=signals,
        items_counted=len(signals),
        last_item_id=f"i-{day}",
    )


def raised(
    notice_id: str,
    day: float,
    previous: Level,
    level: Level,
    index: float,
    stories: list[tuple[str, str, list[str]]],
) -> EscalationNotice:
    """A raise of the level on `day`, citing (headline, slug, signals) stories."""
    at = DEC + timedelta(days=day)
    return notice(
        notice_id,
        level,
        at,
        previous=previous,
        index=index,
        evidence=[
            story(slug, headline, signals, at, link=f"https://caspian.example/2024/12/{slug}")
            for headline, slug, signals in stories
        ],
    )


TIMELINE = [
    state(0, "calm", 0.8, {"hostile_rhetoric": 0.8}),
    state(4, "calm", 1.9, {"hostile_rhetoric": 1.9}),
    state(9, "elevated", 3.6, {"diplomatic_protest": 2.0, "hostile_rhetoric": 1.6}),
    state(14, "elevated", 2.9, {"diplomatic_protest": 1.5}),
    state(24.3, "high", 9.5, {"armed_incident": 7.4, "diplomatic_protest": 2.1}),
    state(26, "high", 11.8, {"armed_incident": 8.1, "diplomatic_protest": 3.7}),
    state(28, "high", 8.7, {"armed_incident": 6.9, "conciliation": -1.2}),
    state(30, "high", 6.2, {"armed_incident": 5.2, "conciliation": -2.4}),
]
NOTICES = [
    raised(
        "n-elevated",
        9,
        "calm",
        "elevated",
        3.6,
        [
            (
                "Baku summons Russia's ambassador over remarks on Karabakh",
                "summons",
                ["diplomatic_protest"],
            ),
        ],
    ),
    raised(
        "n-high",
        24.3,
        "elevated",
        "high",
        9.5,
        [
            (
                "Azerbaijan Airlines Embraer goes down near Aktau; 38 dead, 29 rescued",
                "aktau",
                ["armed_incident"],
            ),
            (
                "Damage on crashed AZAL jet points to Russian air defence, sources say",
                "damage",
                ["armed_incident"],
            ),
        ],
    ),
]
# The state the page opens on: the last of the timeline.
CURRENT = TIMELINE[-1]
LATE_NOTICE = raised(
    "n-severe",
    31,
    "high",
    "severe",
    17.2,
    [
        (
            "Safarov brothers dead after Russian security raids on Azerbaijanis in Yekaterinburg",
            "yekaterinburg",
            ["detentions", "armed_incident"],
        ),
    ],
)


def poll(source: str, status: str, minutes_ago: float, error: str | None = None) -> FeedPolled:
    return feed_polled(
        source,
        status,
        utc_now() - timedelta(minutes=minutes_ago),
        http_status=404 if error else 200,
        duration_ms=80.0,
        items_total=20,
        error=error,
    )


@dataclass
class Stack:
    settings: Settings
    url: str


@pytest.fixture(scope="module")
def chromium_binary() -> str:
    """Found (or the module skipped) before any broker or dashboard is started."""
    return chromium()


@pytest.fixture(scope="module")
async def stack(chromium_binary: str) -> AsyncIterator[Stack]:
    records = [Outgoing.of(TENSION_STATE, "AZ-RU", s) for s in TIMELINE]
    records += [Outgoing.of(ALERTS_ESCALATIONS, "AZ-RU", n) for n in NOTICES]
    records += [
        Outgoing.of(FEEDS_HEALTH, p.feed_url, p)
        for p in (
            poll("Caspian Wire", "ok", 3),
            poll("Кавказ-Монитор", "not_modified", 4),
            poll("Baki Xeber", "ok", 5),
            poll("Baku Evening Post", "error", 2, error="HTTP 404"),
        )
    ]
    records.append(Outgoing.of(NEWS_DEADLETTER, "x", dead_letter(utc_now() - timedelta(hours=2))))
    async with (
        broker_holding(records) as settings,
        serve_dashboard(settings, port=0, refresh_s=0.5) as url,
    ):
        yield Stack(settings, url)


class DevTools:
    """Just enough of the Chrome DevTools protocol: call a method, get its result."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.last_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        await self.socket.send_json({"id": self.last_id, "method": method, "params": params})
        while True:
            message = await self.socket.receive_json()
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def text(self) -> str:
        result = await self.call(
            "Runtime.evaluate",
            expression="document.body ? document.body.innerText : ''",  # mid-navigation: none
            returnByValue=True,
        )
        return str(result["result"].get("value", ""))

    async def wait_for_text(self, wanted: str, timeout_s: float = 30) -> str:
        return await eventually(
            self.text,
            lambda text: wanted in text,
            timeout_s=timeout_s,
            describe=lambda text: f"{wanted!r} never appeared; the page shows:\n{text}",
        )


@pytest.fixture(scope="module")
async def browser(stack: Stack, chromium_binary: str) -> AsyncIterator[DevTools]:
    binary = chromium_binary
    with tempfile.TemporaryDirectory(prefix="monitor-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1180",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        try:
            endpoint = ""
            async with asyncio.timeout(30):
                while not endpoint:
                    line = (await process.stderr.readline()).decode(errors="replace")
                    assert line, "Chromium exited before it listened for DevTools"
                    found = re.search(r"DevTools listening on ws://([^/]+)/", line)
                    endpoint = found.group(1) if found else ""
            drain = asyncio.create_task(process.stderr.read())  # keep its pipe from filling
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://{endpoint}/json/list") as response:
                    targets = await response.json()
                page = next(t for t in targets if t["type"] == "page")
                async with session.ws_connect(
                    page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024
                ) as socket:
                    devtools = DevTools(socket)
                    await devtools.call("Page.enable")
                    await devtools.call("Page.navigate", url=stack.url)
                    yield devtools
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), timeout=30)
            with contextlib.suppress(NameError):
                await drain


async def test_the_page_shows_the_current_level_and_the_index_over_time(
    browser: DevTools,
) -> None:
    text = await browser.wait_for_text(f"AZ-RU index {CURRENT.index:.1f}")

    assert CURRENT.level.upper() in text.upper()
    points = await browser.call(
        "Runtime.evaluate",
        expression="document.querySelectorAll('#chart circle').length",
        returnByValue=True,
    )
    assert points["result"]["value"] >= len(TIMELINE)
    for level, threshold in ScoringConfig.load().raise_at.items():
        assert f"{level} {threshold:g}" in text, "the thresholds are drawn"


async def test_the_latest_notices_show_their_evidence_with_links(browser: DevTools) -> None:
    text = await browser.wait_for_text("Damage on crashed AZAL jet points to Russian air defence")

    high = NOTICES[-1]
    assert f"raised AZ-RU: {high.previous_level} → {high.level} (index {high.index})" in text
    links = await browser.call(
        "Runtime.evaluate",
        expression="[...document.querySelectorAll('#notices a')].map(a => a.href)",
        returnByValue=True,
    )
    assert {story.link for story in high.evidence} <= set(links["result"]["value"])


async def test_feed_and_stream_health_say_what_needs_attention(browser: DevTools) -> None:
    text = await browser.wait_for_text("Baku Evening Post")

    assert "1 stale feed(s): Baku Evening Post" in text
    assert f"AZ-RU is at level {CURRENT.level} (index {CURRENT.index})" in text
    assert "Dead letters: 1 (1 recent) — tagger: ValidationError ×1" in text
    assert re.search(rf"alerts\.escalations\s+{len(NOTICES)}\b", text), "records per topic"
    assert "Кавказ-Монитор" in text


async def test_a_notice_published_while_the_page_is_open_appears_without_a_reload(
    browser: DevTools, stack: Stack, tmp_path: Path
) -> None:
    await browser.wait_for_text(f"AZ-RU index {CURRENT.index:.1f}")
    async with producer(stack.settings) as client:
        await publish(
            client,
            [
                Outgoing.of(ALERTS_ESCALATIONS, "AZ-RU", LATE_NOTICE),
                Outgoing.of(TENSION_STATE, "AZ-RU", state_after(LATE_NOTICE)),
            ],
        )

    text = await browser.wait_for_text(LATE_NOTICE.evidence[0].headline)

    assert f"AZ-RU index {LATE_NOTICE.index:.1f}" in text
    size = (await browser.call("Page.getLayoutMetrics"))["cssContentSize"]
    whole_page = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = await browser.call(
        "Page.captureScreenshot", format="png", clip=whole_page, captureBeyondViewport=True
    )
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    target = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    await asyncio.to_thread(target.write_bytes, png)
