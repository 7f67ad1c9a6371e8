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

from monitor.config import Settings
from monitor.kafka import read_topic
from monitor.records import Outgoing
from monitor.topics import (
    ALERTS_DIGESTS,
    ALERTS_ESCALATIONS,
    NEWS_TAGGED,
    TENSION_STATE,
    WEBHOOKS_DEADLETTER,
)
from monitor.web import serving
from schemas import (
    DigestCompiled,
    EscalationNotice,
    ItemTagged,
    NoticeEvidence,
    WebhookFailed,
    decode,
)
from tests.factories import item_tagged, notice, state_after, story
from tests.integration.support import broker_holding, monitor, stop, succeeds

pytestmark = pytest.mark.integration

DAY = datetime(2024, 12, 25, tzinfo=UTC)
SECRETS = {"ANALYSTS_SECRET": "analysts-s3cret", "FLAKY_SECRET": "flaky", "DOWN_SECRET": "down"}


# A day of the monitor's output: the tagged items, and the notices they led to.
PROTEST = item_tagged(
    "protest",
    ["diplomatic_protest"],
    DAY + timedelta(hours=3),
    title="Baku summons the Russian ambassador",
)
AZAL = item_tagged(
    "azal",
    ["armed_incident"],
    DAY + timedelta(hours=6.5),
    title="AZAL jet hit by Russian air defence fire",
)
APOLOGY = item_tagged(
    "apology", ["conciliation"], DAY + timedelta(hours=20), title="Putin apologises to Aliyev"
)
TAGGED = [PROTEST, AZAL, APOLOGY]


def cited(item: ItemTagged) -> NoticeEvidence:
    return story(item.item_id, item.title, item.signals, item.event_time)


NOTICES = [
    notice(
        "n-elevated",
        "elevated",
        PROTEST.event_time,
        index=3.4,
        breakdown={"diplomatic_protest": 3.4},
        evidence=[cited(PROTEST)],
    ),
    notice(
        "n-high",
        "high",
        AZAL.event_time,
        previous="elevated",
        index=9.5,
        breakdown={"armed_incident": 7.4, "diplomatic_protest": 2.1},
        evidence=[cited(AZAL)],
    ),
    notice(
        "n-lowered",
        "elevated",
        APOLOGY.event_time,
        previous="high",
        kind="lowered",
        index=4.1,
        breakdown={"armed_incident": 6.0, "conciliation": -1.9},
        evidence=[cited(APOLOGY)],
    ),
]
# What `monitor deliver` is told: try each delivery this often before parking it.
MAX_ATTEMPTS = 3
# The flaky subscriber answers 503 this many times before it takes a delivery.
FLAKY_FAILURES = 2


@pytest.fixture(scope="module")
async def bootstrap() -> AsyncIterator[str]:
    """A broker of this module's own, holding one day of the monitor's output."""
    records = [Outgoing.of(NEWS_TAGGED, item.item_id, item) for item in TAGGED]
    for sent in NOTICES:
        records.append(Outgoing.of(ALERTS_ESCALATIONS, sent.dyad, sent))
        records.append(Outgoing.of(TENSION_STATE, sent.dyad, state_after(sent)))
    async with broker_holding(records) as settings:
        yield settings.bootstrap


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
        if name == "down" or (name == "flaky" and attempt <= FLAKY_FAILURES):
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
        str(MAX_ATTEMPTS),
        "--backoff",
        "0.05",
        env=SECRETS,
    )
    try:
        await until(
            lambda: (
                len(receiver.received.get("flaky", [])) == len(NOTICES)
                and sum(n for (name, _), n in receiver.attempts.items() if name == "down")
                == MAX_ATTEMPTS + len(NOTICES) - 1
                and len(receiver.received.get("analysts", [])) == len(NOTICES)
            ),
            receiver.changed,
        )
    finally:
        code, text = await stop(process, signal.SIGINT)
    assert code == 0, text
    return receiver, text


def test_every_subscriber_gets_the_notices_it_asked_for_signed(
    delivered: tuple[Receiver, str],
) -> None:
    receiver, _ = delivered

    assert receiver.forged == 0, "every request carried a valid signature"
    assert [n["notice_id"] for n in receiver.received["analysts"]] == [n.notice_id for n in NOTICES]
    assert [n["notice_id"] for n in receiver.received["armed"]] == ["n-high", "n-lowered"], (
        "min_level high with armed_incident: the rise to high and the fall from it"
    )


def test_a_failing_subscriber_is_retried_with_the_same_delivery_id(
    delivered: tuple[Receiver, str],
) -> None:
    receiver, output = delivered
    flaky = receiver.received["flaky"]

    taken_at = FLAKY_FAILURES + 1
    assert [n["notice_id"] for n in flaky] == [n.notice_id for n in NOTICES]
    assert {n["attempt"] for n in flaky} == {str(taken_at)}
    assert len({n["delivery"] for n in flaky}) == len(NOTICES)
    assert all(receiver.attempts[("flaky", n["delivery"])] == taken_at for n in flaky)
    assert f"delivered after {taken_at} attempt(s)" in output


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

    assert [(p.subscriber, p.notice_id) for p in parked] == [("down", n.notice_id) for n in NOTICES]
    assert [p.attempts for p in parked] == [MAX_ATTEMPTS, 1, 1], (
        "once a notice is given up, the next get one attempt each until the subscriber answers"
    )
    assert all(p.last_status == 503 for p in parked)
    assert all(p.reason == "HTTP 503: try later" for p in parked)
    assert parked[0].notice == NOTICES[0], "the notice travels with it, for a redelivery"


async def test_the_daily_digest_summarises_the_level_stories_and_signals(
    bootstrap: str, schema_validator: Callable[[str, Any], None]
) -> None:
    until = f"{DAY + timedelta(days=1):%Y-%m-%d}"
    output = await succeeds(
        "digest", "--once", "--until", until, "--json", "--bootstrap", bootstrap
    )
    printed = json.loads(output.splitlines()[-1])

    records = [r async for r in read_topic(Settings(bootstrap=bootstrap), ALERTS_DIGESTS)]
    (record,) = records
    schema_validator("DigestCompiled", json.loads(record.value))
    digest = decode(DigestCompiled, record.value)

    assert printed["digest_id"] == digest.digest_id
    assert (digest.period_start, digest.period_end) == (DAY, DAY + timedelta(days=1))
    assert [span.level for span in digest.levels] == ["calm", "elevated", "high", "elevated"]
    assert digest.level_max == "high"
    assert digest.notice_ids == [n.notice_id for n in NOTICES]
    assert digest.signals == {signal: 1 for item in TAGGED for signal in item.signals}
    assert digest.top_stories[0].headline == AZAL.title

    again = await succeeds("digest", "--once", "--until", until, "--bootstrap", bootstrap)
    assert "(published before)" in again
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
