"""Readers outside the stream processors meet records they cannot use: `monitor status`,
the dashboard and `monitor digest` skip them, and say so, instead of dropping them
in silence or showing a phantom.

A broker of this module's own holds the monitor's output for a day with poison
among it: a state and a notice keyed by another dyad than the one they are about
(taken, they would show a phantom level), records that are not JSON, and records
from a newer monitor (schema_version 2).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from monitor.config import Settings
from monitor.observe.dashboard import serve_dashboard
from monitor.records import Outgoing
from monitor.topics import (
    ALERTS_ESCALATIONS,
    FEEDS_HEALTH,
    NEWS_DEADLETTER,
    NEWS_TAGGED,
    TENSION_STATE,
    TopicSpec,
)
from schemas import Event
from tests.factories import feed_polled, item_tagged, notice, state_after
from tests.integration.support import broker_holding, run_monitor, succeeds
from tests.waiting import eventually

pytestmark = pytest.mark.integration

DAY = datetime(2024, 12, 25, tzinfo=UTC)
ITEM = item_tagged("protest", ["diplomatic_protest"], DAY + timedelta(hours=3))
RAISED = notice("n-elevated", "elevated", DAY + timedelta(hours=3), index=3.4)
PHANTOM = notice("n-phantom", "severe", DAY + timedelta(hours=9), previous="elevated", index=30)
POLL = feed_polled("Caspian Wire", "ok", DAY + timedelta(hours=4))


def newer(event: Event) -> bytes:
    """`event` as a newer monitor would write it."""
    return json.dumps({**json.loads(event.model_dump_json()), "schema_version": 2}).encode()


def raw(topic: TopicSpec, key: str, value: bytes) -> Outgoing:
    return Outgoing(topic, key.encode(), value)


# What each reader should skip, as (topic, offset, reason), in the order they are published.
POISON = [
    (raw(TENSION_STATE, "RU-UA", state_after(PHANTOM).model_dump_json().encode()), "wrong key"),
    (raw(TENSION_STATE, "AZ-RU", b"{not json"), "undecodable"),
    (Outgoing.of(ALERTS_ESCALATIONS, "RU-UA", PHANTOM), "wrong key"),
    (raw(ALERTS_ESCALATIONS, "AZ-RU", newer(PHANTOM)), "newer schema_version"),
    (
        raw(FEEDS_HEALTH, "https://elsewhere.example/rss", POLL.model_dump_json().encode()),
        "wrong key",
    ),
    (raw(FEEDS_HEALTH, POLL.feed_url, newer(POLL)), "newer schema_version"),
    (raw(NEWS_DEADLETTER, "x", b"\xff\xfe"), "undecodable"),
    (raw(NEWS_TAGGED, "another-item", ITEM.model_dump_json().encode()), "wrong key"),
]


@pytest.fixture(scope="module")
async def settings() -> AsyncIterator[Settings]:
    good = [
        Outgoing.of(NEWS_TAGGED, ITEM.item_id, ITEM),
        Outgoing.of(ALERTS_ESCALATIONS, RAISED.dyad, RAISED),
        Outgoing.of(TENSION_STATE, RAISED.dyad, state_after(RAISED)),
        Outgoing.of(FEEDS_HEALTH, POLL.feed_url, POLL),
    ]
    # The poison comes after the good records: a reader that took it would end on it.
    async with broker_holding([*good, *(record for record, _ in POISON)]) as reaching:
        yield reaching


def expected(*topics: TopicSpec) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record, reason in POISON:
        if record.topic in topics:
            key = f"{record.topic.name}: {reason}"
            counts[key] = counts.get(key, 0) + 1
    return counts


SHOWN_BY_STATUS = expected(TENSION_STATE, FEEDS_HEALTH, NEWS_DEADLETTER)


async def test_status_says_how_many_records_it_skipped_and_shows_no_phantom(
    settings: Settings,
) -> None:
    code, text = await run_monitor("status", "--bootstrap", settings.bootstrap)
    _, as_json = await run_monitor("status", "--json", "--bootstrap", settings.bootstrap)
    report = json.loads(as_json[as_json.index("{") :])

    assert code in (0, 1), text
    assert "level          AZ-RU ELEVATED, index 3.4" in text, "not the phantom's severe"
    assert f"skipped        {sum(SHOWN_BY_STATUS.values())} record(s) it could not use" in text
    assert report["skipped"] == {
        "total": sum(SHOWN_BY_STATUS.values()),
        "by_reason": SHOWN_BY_STATUS,
    }
    assert "skipped tension.state[0]@1: wrong key (keyed 'RU-UA'" in text
    assert [feed["feed_url"] for feed in report["feeds"]] == [POLL.feed_url]
    assert report["dead_letters"]["total"] == 0


async def test_the_dashboard_shows_what_it_skipped_and_logs_where_it_was(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    wanted = expected(TENSION_STATE, ALERTS_ESCALATIONS, FEEDS_HEALTH, NEWS_DEADLETTER)

    async def snapshot() -> dict[str, Any]:
        async with session.get(url + "api/snapshot") as response:
            found: dict[str, Any] = await response.json()
            return found

    def read_everything(found: dict[str, Any]) -> bool:
        return bool(found["skipped"]["by_reason"] == wanted and found["notices"])

    with caplog.at_level(logging.WARNING, logger="monitor.observe.skips"):
        async with (
            serve_dashboard(settings, port=0, refresh_s=0.5) as url,
            aiohttp.ClientSession() as session,
        ):
            shown = await eventually(snapshot, read_everything, timeout_s=60)

    assert [n["notice_id"] for n in shown["notices"]] == [RAISED.notice_id]
    assert [(s["dyad"], s["level"]) for s in shown["current"]] == [("AZ-RU", "elevated")]
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("dashboard: skipped alerts.escalations[0]@") and "newer schema_version" in m
        for m in logged
    ), logged


async def test_the_digest_leaves_out_what_it_cannot_use_and_says_so(settings: Settings) -> None:
    output = await succeeds(
        "digest", "--once", "--until", f"{DAY + timedelta(days=1):%Y-%m-%d}", "--json",
        "--bootstrap", settings.bootstrap,
    )  # fmt: skip
    digest = json.loads(next(line for line in output.splitlines() if line.startswith("{")))
    wanted = expected(NEWS_TAGGED, TENSION_STATE, ALERTS_ESCALATIONS)

    assert digest["notice_ids"] == [RAISED.notice_id]
    assert digest["level_max"] == "elevated"
    assert digest["items_relevant"] == 1
    assert f"{sum(wanted.values())} record(s) skipped" in output
    for reason, count in wanted.items():
        assert f"{reason} ×{count}" in output
