"""The escalation as a live service, on the real broker, with `monitor worker` running.

Given a worker that waits for news, when three outlets report a shoot-down
just now, then the notice comes at once, without any later item; a broken
feed's date in 2099 changes nothing; and when only time passes (the
collector's ticks), the level falls and the published state says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.clock import utc_now
from monitor.config import Settings
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.stories import corroboration
from monitor.kafka import producer, publish
from monitor.records import Outgoing
from monitor.topics import ALERTS_ESCALATIONS, NEWS_DEADLETTER, NEWS_ITEMS, TENSION_STATE
from schemas import ClockTicked, DeadLetter, EscalationNotice, TensionState
from tests.factories import item_collected
from tests.integration.support import events, monitor, stop, succeeds, worker_env
from tests.waiting import eventually

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
    await succeeds("topics", env=worker_env(settings))
    process = await monitor("worker", env=worker_env(settings))
    try:
        await joined(settings)
        yield
    finally:
        code, output = await stop(process)
        assert code == 0, output


async def joined(settings: Settings) -> None:
    """Once the worker answers a tick with a state, it is reading."""
    tick = ClockTicked(at=datetime(2020, 1, 1, tzinfo=UTC))
    async with producer(settings) as client:
        await publish(client, [Outgoing.of(NEWS_ITEMS, "clock", tick)])
    await states_until(settings, bool, timeout_s=90)


async def states_until(
    settings: Settings, done: Callable[[list[TensionState]], object], timeout_s: float = 30
) -> list[TensionState]:
    return await eventually(
        lambda: events(settings, TENSION_STATE, TensionState), done, timeout_s=timeout_s
    )


async def notices_until(
    settings: Settings, count: int, timeout_s: float = 30
) -> list[EscalationNotice]:
    return await eventually(
        lambda: events(settings, ALERTS_ESCALATIONS, EscalationNotice),
        lambda notices: len(notices) >= count,
        timeout_s=timeout_s,
    )


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
    await succeeds("ingest", str(path), env=worker_env(settings))


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
    # As a feed with a broken clock would have it; the model itself refuses such a date.
    broken = item_collected(
        "i-broken-clock",
        "Russia and Azerbaijan sign a trade protocol",
        at=now,
        feed_url="https://broken.example/rss",
        source="Broken Clock",
    ).model_dump(mode="json") | {"event_time": "2099-01-01T00:00:00+00:00"}
    async with producer(settings) as client:
        await client.send_and_wait(
            NEWS_ITEMS.name, key=b"i-broken-clock", value=json.dumps(broken).encode()
        )
    await ingest(settings, archive(tmp_path / "now.jsonl", now - timedelta(minutes=12)))

    [raised] = await notices_until(settings, 1)
    assert raised.kind == "raised"
    letters = await events(settings, NEWS_DEADLETTER, DeadLetter)
    assert [letter.stage for letter in letters] == ["tagger"]
    assert "more than a day after its collection time" in letters[0].error


async def test_when_only_time_passes_the_level_falls_and_the_state_says_so(
    settings: Settings, worker: None, tmp_path: Path
) -> None:
    # A shoot-down four months ago, then nothing but the collector's ticks until now.
    quiet = timedelta(days=120)
    # Told by three sources, the story's weight decays below what holds the level at
    # high well within that (see monitor/escalation/scoring.toml).
    scoring = ScoringConfig.load()
    weight = scoring.weights["armed_incident"] * corroboration(
        len(REPORTS), scoring.stories.corroboration
    )
    holds_high = scoring.raise_at["high"] * scoring.lower_factor
    assert scoring.half_life_of("armed_incident") * math.log2(weight / holds_high) < quiet
    long_ago = utc_now() - quiet
    await ingest(settings, archive(tmp_path / "then.jsonl", long_ago))
    [raised] = await notices_until(settings, 1)
    ticks = [ClockTicked(at=long_ago + timedelta(days=day)) for day in range(1, quiet.days + 1)]
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
