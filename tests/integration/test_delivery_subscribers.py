"""Subscribers as they really subscribe: webhooks (signed, retried, parked), digests, kcat.

A broker of this module's own carries a day of notices, states and tagged
items; `monitor deliver` and `monitor digest` run as users start them, and an
external client (kcat) reads alerts.escalations.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from monitor.broker import EmbeddedBroker
from monitor.config import Settings
from monitor.kafka import producer, publish, read_topic
from monitor.records import Outgoing
from monitor.topics import (
    ALERTS_DIGESTS,
    ALERTS_ESCALATIONS,
    NEWS_TAGGED,
    TENSION_STATE,
    WEBHOOKS_DEADLETTER,
    ensure_topics,
)
from monitor.web import serving
from schemas import (
    DigestCompiled,
    EscalationNotice,
    ItemTagged,
    NoticeEvidence,
    TensionState,
    WebhookFailed,
    decode,
)
from tests.integration.support import monitor

pytestmark = pytest.mark.integration

DAY = datetime(2024, 12, 25, tzinfo=UTC)
SECRETS = {"ANALYSTS_SECRET": "analysts-s3cret", "FLAKY_SECRET": "flaky", "DOWN_SECRET": "down"}


def evidence(item_id: str, headline: str, signals: list[str]) -> NoticeEvidence:
    return NoticeEvidence(
        item_id=item_id,
        headline=headline,
        source="Caspian Wire",
        link=f"https://caspian.example/{item_id}",
        published=DAY + timedelta(hours=6),
        signals=signals,  # type: ignore[arg-type]
        contribution=4.0,
    )


NOTICES = [
    EscalationNotice(
        notice_id="n-elevated",
        dyad="AZ-RU",
        kind="raised",
        level="elevated",
        previous_level="calm",
        index=3.4,
        breakdown={"diplomatic_protest": 3.4},
        event_time=DAY + timedelta(hours=3),
        trigger_item_id="protest",
        evidence=[
            evidence("protest", "Baku summons the Russian ambassador", ["diplomatic_protest"])
        ],
    ),
    EscalationNotice(
        notice_id="n-high",
        dyad="AZ-RU",
        kind="raised",
        level="high",
        previous_level="elevated",
        index=9.5,
        breakdown={"armed_incident": 7.4, "diplomatic_protest": 2.1},
        event_time=DAY + timedelta(hours=6, minutes=30),
        trigger_item_id="azal",
        evidence=[evidence("azal", "AZAL jet hit by Russian air defence fire", ["armed_incident"])],
    ),
    EscalationNotice(
        notice_id="n-lowered",
        dyad="AZ-RU",
        kind="lowered",
        level="elevated",
        previous_level="high",
        index=4.1,
        breakdown={"armed_incident": 6.0, "conciliation": -1.9},
        event_time=DAY + timedelta(hours=20),
        trigger_item_id="apology",
        evidence=[evidence("apology", "Putin apologises to Aliyev", ["conciliation"])],
    ),
]


def tagged(item_id: str, hours: float, title: str, signals: list[str]) -> ItemTagged:
    return ItemTagged(
        item_id=item_id,
        revision="r1",
        source="Caspian Wire",
        link=f"https://caspian.example/{item_id}",
        title=title,
        lang="en",
        event_time=DAY + timedelta(hours=hours),
        relevant=True,
        dyad="AZ-RU",
        sides=["AZ", "RU"],
        signals=signals,  # type: ignore[arg-type]
        evidence=[],
        rules_version="v1",
    )


def state(notice: EscalationNotice) -> TensionState:
    return TensionState(
        dyad="AZ-RU",
        level=notice.level,
        index=notice.index,
        breakdown=notice.breakdown,
        as_of=notice.event_time,
        items_counted=1,
        last_item_id=notice.trigger_item_id,
        last_notice_id=notice.notice_id,
    )


@pytest.fixture(scope="module")
async def bootstrap() -> AsyncIterator[str]:
    """A broker of this module's own, holding one day of the monitor's output."""
    async with EmbeddedBroker() as broker:
        settings = Settings(bootstrap=broker.bootstrap)
        await ensure_topics(settings)
        records = [
            Outgoing.of(
                NEWS_TAGGED,
                "protest",
                tagged("protest", 3, "Baku summons the Russian ambassador", ["diplomatic_protest"]),
            ),
            Outgoing.of(
                NEWS_TAGGED,
                "azal",
                tagged("azal", 6.5, "AZAL jet hit by Russian air defence fire", ["armed_incident"]),
            ),
            Outgoing.of(
                NEWS_TAGGED,
                "apology",
                tagged("apology", 20, "Putin apologises to Aliyev", ["conciliation"]),
            ),
        ]
        for notice in NOTICES:
            records.append(Outgoing.of(ALERTS_ESCALATIONS, notice.dyad, notice))
            records.append(Outgoing.of(TENSION_STATE, notice.dyad, state(notice)))
        async with producer(settings) as client:
            await publish(client, records)
        yield broker.bootstrap


@dataclass
class Receiver:
    """A subscriber's web server: verifies every request as a receiver would."""

    base_url: str = ""
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    forged: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def verified(secret: str, request_body: bytes, headers: Any) -> bool:
    timestamp = headers["X-Monitor-Timestamp"]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + request_body, hashlib.sha256)
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(
        f"sha256={mac.hexdigest()}", headers["X-Monitor-Signature"]
    )


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    secrets = {
        "analysts": "analysts-s3cret",
        "armed": "analysts-s3cret",
        "flaky": "flaky",
        "down": "down",
    }

    async def hook(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        if not verified(secrets[name], body, request.headers):
            state.forged += 1
            return web.Response(status=401)
        state.changed.set()
        delivery = request.headers["X-Monitor-Delivery"]
        attempt = state.attempts[(name, delivery)] = state.attempts.get((name, delivery), 0) + 1
        if name == "down" or (name == "flaky" and attempt < 3):
            return web.Response(status=503, text="try later")
        state.received.setdefault(name, []).append(
            {
                "delivery": delivery,
                "attempt": request.headers["X-Monitor-Attempt"],
                **json.loads(body),
            }
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/{name}", hook)
    async with serving(app) as port:
        state.base_url = f"http://127.0.0.1:{port}"
        yield state


async def until(
    condition: Callable[[], bool], changed: asyncio.Event, timeout_s: float = 60
) -> None:
    """Wait until `condition` holds, looking again each time `changed` is set."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await changed.wait()
            changed.clear()


@pytest.fixture(scope="module")
async def delivered(
    bootstrap: str, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Receiver, str]:
    """`monitor deliver --webhooks FILE` until every subscriber has had its say."""
    url = receiver.base_url + "/hooks"
    webhooks = tmp_path_factory.mktemp("webhooks") / "webhooks.toml"
    webhooks.write_text(
        f'[[subscribers]]\nname = "analysts"\nurl = "{url}/analysts"\n'
        'secret_env = "ANALYSTS_SECRET"\n\n'
        f'[[subscribers]]\nname = "armed"\nurl = "{url}/armed"\nsecret_env = "ANALYSTS_SECRET"\n'
        'min_level = "high"\nsignals = ["armed_incident"]\n\n'
        f'[[subscribers]]\nname = "flaky"\nurl = "{url}/flaky"\nsecret_env = "FLAKY_SECRET"\n\n'
        f'[[subscribers]]\nname = "down"\nurl = "{url}/down"\nsecret_env = "DOWN_SECRET"\n',
        encoding="utf-8",
    )
    process = await monitor(
        "deliver",
        "--webhooks",
        str(webhooks),
        "--bootstrap",
        bootstrap,
        "--from-beginning",
        "--max-attempts",
        "3",
        "--backoff",
        "0.05",
        env=SECRETS,
    )
    try:
        await until(
            lambda: (
                len(receiver.received.get("flaky", [])) == 3
                and sum(n for (name, _), n in receiver.attempts.items() if name == "down") == 9
                and len(receiver.received.get("analysts", [])) == 3
            ),
            receiver.changed,
        )
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    return receiver, text


def test_every_subscriber_gets_the_notices_it_asked_for_signed(
    delivered: tuple[Receiver, str],
) -> None:
    receiver, _ = delivered

    assert receiver.forged == 0, "every request carried a valid signature"
    assert [n["notice_id"] for n in receiver.received["analysts"]] == [
        "n-elevated",
        "n-high",
        "n-lowered",
    ]
    assert [n["notice_id"] for n in receiver.received["armed"]] == ["n-high", "n-lowered"], (
        "min_level high with armed_incident: the rise to high and the fall from it"
    )


def test_a_failing_subscriber_is_retried_with_the_same_delivery_id(
    delivered: tuple[Receiver, str],
) -> None:
    receiver, output = delivered
    flaky = receiver.received["flaky"]

    assert [n["notice_id"] for n in flaky] == ["n-elevated", "n-high", "n-lowered"]
    assert {n["attempt"] for n in flaky} == {"3"}
    assert len({n["delivery"] for n in flaky}) == 3
    assert all(receiver.attempts[("flaky", n["delivery"])] == 3 for n in flaky)
    assert "delivered after 3 attempt(s)" in output


async def test_what_keeps_failing_is_parked_with_the_reason(
    bootstrap: str,
    delivered: tuple[Receiver, str],
    schema_validator: Callable[[str, Any], None],
) -> None:
    settings = Settings(bootstrap=bootstrap)
    records = [r async for r in read_topic(settings, WEBHOOKS_DEADLETTER)]
    for record in records:
        schema_validator("WebhookFailed", json.loads(record.value))
    parked = [decode(WebhookFailed, r.value) for r in records]

    assert {(p.subscriber, p.notice_id) for p in parked} == {
        ("down", "n-elevated"),
        ("down", "n-high"),
        ("down", "n-lowered"),
    }
    assert all(p.attempts == 3 and p.last_status == 503 for p in parked)
    assert all(p.reason == "HTTP 503: try later" for p in parked)
    assert parked[0].notice == NOTICES[0], "the notice travels with it, for a redelivery"


async def test_the_daily_digest_summarises_the_level_stories_and_signals(
    bootstrap: str, schema_validator: Callable[[str, Any], None]
) -> None:
    process = await monitor(
        "digest", "--once", "--until", "2024-12-26", "--json", "--bootstrap", bootstrap
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode()
    printed = json.loads(output.decode().splitlines()[-1])

    records = [r async for r in read_topic(Settings(bootstrap=bootstrap), ALERTS_DIGESTS)]
    (record,) = records
    schema_validator("DigestCompiled", json.loads(record.value))
    digest = decode(DigestCompiled, record.value)

    assert printed["digest_id"] == digest.digest_id
    assert (digest.period_start, digest.period_end) == (DAY, DAY + timedelta(days=1))
    assert [span.level for span in digest.levels] == ["calm", "elevated", "high", "elevated"]
    assert digest.level_max == "high"
    assert digest.notice_ids == ["n-elevated", "n-high", "n-lowered"]
    assert digest.signals == {"armed_incident": 1, "conciliation": 1, "diplomatic_protest": 1}
    assert digest.top_stories[0].headline == "AZAL jet hit by Russian air defence fire"

    again = await monitor("digest", "--once", "--until", "2024-12-26", "--bootstrap", bootstrap)
    text, _ = await asyncio.wait_for(again.communicate(), timeout=60)
    assert "(published before)" in text.decode()
    assert len([r async for r in read_topic(Settings(bootstrap=bootstrap), ALERTS_DIGESTS)]) == 1


async def test_a_plain_aiokafka_subscriber_reads_notices_that_validate_against_the_schema(
    bootstrap: str, schema_validator: Callable[[str, Any], None]
) -> None:
    # The README's subscriber, as a team outside this project would write it. (kcat
    # is the other documented client; Debian's librdkafka 2.0.2 cannot parse the
    # embedded broker's ApiVersions v3 answer, so it is documented for Apache Kafka.)
    consumer = AIOKafkaConsumer(
        ALERTS_ESCALATIONS.name,
        bootstrap_servers=bootstrap,
        group_id="my-team",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        rebalance_timeout_ms=6000,
    )
    await consumer.start()
    values: list[bytes] = []
    keys: list[bytes | None] = []
    try:
        async with asyncio.timeout(60):
            async for message in consumer:
                keys.append(message.key)
                values.append(message.value or b"")
                if len(values) == len(NOTICES):
                    break
    finally:
        await consumer.stop()

    for value in values:
        schema_validator("EscalationNotice", json.loads(value))
    assert [decode(EscalationNotice, value) for value in values] == NOTICES
    assert set(keys) == {b"AZ-RU"}
