"""The escalation as a live service, on the real broker, with `monitor worker` running.

Given a worker that waits for news, when three outlets report a shoot-down
just now, then the notice comes at once, without any later item; a broken
feed's date in 2099 changes nothing; and when only time passes (the
collector's ticks), the level falls and the published state says so.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.clock import utc_now
from monitor.config import Settings
from monitor.kafka import producer, publish, read_topic
from monitor.records import Outgoing
from monitor.topics import ALERTS_ESCALATIONS, NEWS_DEADLETTER, NEWS_ITEMS, TENSION_STATE
from schemas import ClockTicked, DeadLetter, EscalationNotice, TensionState, decode
from tests.integration.support import monitor, worker_env

pytestmark = pytest.mark.integration

REPORTS = [
    ("Caspian Wire", "en", "Russian air defence shot down the Azerbaijan Airlines plane"),
    ("Кавказ-Монитор", "ru", "Российская ПВО сбила самолёт AZAL над Грозным"),
    ("Ostdienst", "de", "Russische Flugabwehr schoss das AZAL-Flugzeug ab, sagt Baku"),
]


@pytest.fixture
def settings(own_broker_settings: Settings) -> Settings:
    """Each test has a broker of its own, not the session's shared one."""
    return own_broker_settings


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[None]:
    """`monitor worker`, joined and idle, waiting for news."""
    process = await monitor("topics", env=worker_env(settings))
    await process.communicate()
    process = await monitor("worker", env=worker_env(settings))
    try:
        await joined(settings)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, output.decode()


async def joined(settings: Settings) -> None:
    """Once the worker answers a tick with a state, it is reading."""
    tick = ClockTicked(at=datetime(2020, 1, 1, tzinfo=UTC))
    async with producer(settings) as client:
        await publish(client, [Outgoing.of(NEWS_ITEMS, "clock", tick)])
    await states_until(settings, lambda states: bool(states), timeout_s=90)


async def states_until(
    settings: Settings, done: object, timeout_s: float = 30
) -> list[TensionState]:
    assert callable(done)
    async with asyncio.timeout(timeout_s):
        while True:
            states = [
                decode(TensionState, r.value) async for r in read_topic(settings, TENSION_STATE)
            ]
            if done(states):
                return states
            await asyncio.sleep(0.2)


async def notices_until(
    settings: Settings, count: int, timeout_s: float = 30
) -> list[EscalationNotice]:
    async with asyncio.timeout(timeout_s):
        while True:
            notices = [
                decode(EscalationNotice, r.value)
                async for r in read_topic(settings, ALERTS_ESCALATIONS)
            ]
            if len(notices) >= count:
                return notices
            await asyncio.sleep(0.2)


def archive(path: Path, published: datetime, minutes_apart: float = 4) -> Path:
    lines = [
        {
            "id": f"azal-{n}",
            "title": title,
            "summary": "",
            "published": (published + timedelta(minutes=n * minutes_apart)).isoformat(),
            "source": source,
            "lang": lang,
            "link": f"https://news.example/azal-{n}",
        }
        for n, (source, lang, title) in enumerate(REPORTS)
    ]
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n")
    return path


async def ingest(settings: Settings, path: Path) -> None:
    process = await monitor("ingest", str(path), env=worker_env(settings))
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode()


async def test_three_reports_of_a_shoot_down_just_now_raise_a_notice_with_nothing_after_them(
    settings: Settings, worker: None, tmp_path: Path
) -> None:
    await ingest(settings, archive(tmp_path / "now.jsonl", utc_now() - timedelta(minutes=12)))

    [raised] = await notices_until(settings, 1)
    assert raised.kind == "raised"
    assert raised.level in {"high", "severe"}
    assert raised.trigger_item_id  # the report that tipped it, not a later item
    assert "armed_incident" in raised.breakdown


async def test_an_item_dated_2099_is_dead_lettered_and_a_shoot_down_after_it_still_raises(
    settings: Settings, worker: None, tmp_path: Path
) -> None:
    now = utc_now()
    broken = {
        "item_id": "i-broken-clock",
        "revision": "r1",
        "feed_url": "https://broken.example/rss",
        "source": "Broken Clock",
        "title": "Russia and Azerbaijan sign a trade protocol",
        "collected_at": now.isoformat(),
        "event_time": "2099-01-01T00:00:00+00:00",
    }
    async with producer(settings) as client:
        await client.send_and_wait(
            NEWS_ITEMS.name, key=b"i-broken-clock", value=json.dumps(broken).encode()
        )
    await ingest(settings, archive(tmp_path / "now.jsonl", now - timedelta(minutes=12)))

    [raised] = await notices_until(settings, 1)
    assert raised.kind == "raised"
    letters = [decode(DeadLetter, r.value) async for r in read_topic(settings, NEWS_DEADLETTER)]
    assert [letter.stage for letter in letters] == ["tagger"]
    assert "more than a day after its collection time" in letters[0].error


async def test_when_only_time_passes_the_level_falls_and_the_state_says_so(
    settings: Settings, worker: None, tmp_path: Path
) -> None:
    # A shoot-down four months ago, then nothing but the collector's ticks until now:
    # three sources make it weigh 14.3, which falls below high's 4.8 after 71 days.
    long_ago = utc_now() - timedelta(days=120)
    await ingest(settings, archive(tmp_path / "then.jsonl", long_ago))
    [raised] = await notices_until(settings, 1)
    ticks = [ClockTicked(at=long_ago + timedelta(days=day)) for day in range(1, 121)]
    async with producer(settings) as client:
        await publish(client, [Outgoing.of(NEWS_ITEMS, "clock", tick) for tick in ticks])

    notices = await notices_until(settings, 2)
    lowered = notices[1]
    assert lowered.kind == "lowered"
    assert lowered.previous_level == raised.level
    assert lowered.trigger_item_id.startswith("clock:"), "time passing lowered it"
    states = await states_until(
        settings, lambda states: states and states[-1].as_of >= ticks[-1].at
    )
    assert states[-1].level == notices[-1].level
    assert states[-1].index < raised.index
