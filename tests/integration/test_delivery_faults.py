"""Webhook subscribers that misbehave: one that asks to wait five minutes, one that
names its retry time as an HTTP date, ones that are gone, and URLs that carry tokens.

`monitor deliver` runs as a user starts it, against a broker of this module's own
and a real web server on 127.0.0.1 that plays the subscribers.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from monitor.config import Settings
from monitor.delivery.webhook import url_label
from monitor.kafka import producer, publish, read_topic
from monitor.records import Outgoing
from monitor.topics import ALERTS_ESCALATIONS, WEBHOOKS_DEADLETTER, all_topics
from monitor.web import serving
from schemas import WebhookFailed, decode
from tests.factories import notice
from tests.integration.support import broker_holding, monitor, stop
from tests.waiting import eventually

pytestmark = pytest.mark.integration

DAY = datetime(2024, 12, 25, tzinfo=UTC)
NOTICES = [
    notice("n-1", "elevated", DAY + timedelta(hours=3), index=3.4),
    notice("n-2", "high", DAY + timedelta(hours=6), previous="elevated", index=9.5),
    notice(
        "n-3", "elevated", DAY + timedelta(hours=20), previous="high", kind="lowered", index=4.1
    ),
]
LATE_NOTICE = notice("n-4", "high", DAY + timedelta(hours=22), previous="elevated", index=9.0)
ALL = [*NOTICES, LATE_NOTICE]
# Short enough to be crossed many times while a subscriber waits its five minutes.
MAX_POLL_INTERVAL_S = 2
SECRET = "not-for-anyone's-eyes-0451"


@pytest.fixture(scope="module")
async def settings() -> AsyncIterator[Settings]:
    records = [Outgoing.of(ALERTS_ESCALATIONS, n.dyad, n) for n in NOTICES]
    async with broker_holding(records) as reaching:
        yield reaching


@dataclass
class Request:
    path: str
    delivery: str
    notice_id: str
    attempt: int
    at: float  # Unix time it arrived


@dataclass
class Subscribers:
    """The web server that plays every subscriber, by the first segment of the path:

    /ok/…     takes every notice (204)
    /slow/…   503 with `Retry-After: 300`, every time
    /dated/…  a delivery's first attempt: 503 with an HTTP-date 2 s ahead; then 204
    /down/…   503, every time
    """

    base_url: str = ""
    requests: list[Request] = field(default_factory=list)
    retry_dates: dict[str, float] = field(default_factory=dict)  # delivery id → Unix time

    def to(self, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    def taken(self, prefix: str) -> list[str]:
        """Notice ids a subscriber took, in order."""
        taken = []
        for request in self.to(prefix):
            kind = prefix.strip("/").split("/")[0]
            if kind == "ok" or (kind == "dated" and request.attempt > 1):
                taken.append(request.notice_id)
        return taken


@pytest.fixture(scope="module")
async def subscribers() -> AsyncIterator[Subscribers]:
    state = Subscribers()

    async def hook(request: web.Request) -> web.Response:
        received = Request(
            request.path,
            request.headers["X-Monitor-Delivery"],
            request.headers["X-Monitor-Notice"],
            int(request.headers["X-Monitor-Attempt"]),
            time.time(),
        )
        state.requests.append(received)
        kind = request.path.strip("/").split("/")[0]
        if kind == "ok":
            return web.Response(status=204)
        if kind == "slow":
            return web.Response(status=503, text="maintenance", headers={"Retry-After": "300"})
        if kind == "dated" and received.attempt == 1:
            retry_at = math.ceil(received.at) + 2
            state.retry_dates[received.delivery] = retry_at
            when = format_datetime(datetime.fromtimestamp(retry_at, UTC), usegmt=True)
            return web.Response(status=503, headers={"Retry-After": when})
        if kind == "dated":
            return web.Response(status=204)
        return web.Response(status=503, text="try later", headers={"Retry-After": "300"})

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", hook)
    async with serving(app) as port:
        state.base_url = f"http://127.0.0.1:{port}"
        yield state


def webhook_file(directory: Path, entries: list[dict[str, str]]) -> Path:
    lines = []
    for entry in entries:
        lines.append("[[subscribers]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in entry.items())
        lines.append('secret_env = "HOOK_SECRET"\n')
    path = directory / "webhooks.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


async def committed(settings: Settings, group: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(ALERTS_ESCALATIONS.name, 0)
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    found = offsets.get(tp)
    return found.offset if found is not None and found.offset >= 0 else None


@dataclass(frozen=True)
class Run:
    output: str
    exit_code: int


@pytest.fixture(scope="module")
async def patient_run(
    settings: Settings, subscribers: Subscribers, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """`monitor deliver` with a subscriber that asks for five minutes, one that names
    an HTTP date, and one that takes everything; a notice comes in the meantime."""
    url = subscribers.base_url
    webhooks = webhook_file(
        tmp_path_factory.mktemp("patient"),
        [
            {"name": "ops", "url": f"{url}/ok/ops"},
            {"name": "slow", "url": f"{url}/slow/in"},
            {"name": "dated", "url": f"{url}/dated/in"},
        ],
    )
    process = await monitor(
        "--log-level",
        "info",
        "deliver",
        "--webhooks",
        str(webhooks),
        "--bootstrap",
        settings.bootstrap,
        "--group",
        "patient",
        "--from-beginning",
        "--max-poll-interval",
        str(MAX_POLL_INTERVAL_S),
        "--backoff",
        "0.05",
        env={"HOOK_SECRET": SECRET},
    )
    try:
        await eventually(
            lambda: (
                subscribers.taken("/ok/") == [n.notice_id for n in NOTICES]
                and len(subscribers.taken("/dated/")) == len(NOTICES)
                and len(subscribers.to("/slow/")) >= 1
            ),
            timeout_s=60,
            describe=lambda _: f"requests so far: {subscribers.requests}",
        )
        # The slow subscriber's five minutes run on; let the consumer cross its
        # max.poll.interval several times before the next notice comes.
        await asyncio.sleep(3 * MAX_POLL_INTERVAL_S)
        async with producer(settings) as client:
            await publish(client, [Outgoing.of(ALERTS_ESCALATIONS, "AZ-RU", LATE_NOTICE)])
        await eventually(
            lambda: (
                LATE_NOTICE.notice_id in subscribers.taken("/ok/")
                and LATE_NOTICE.notice_id in subscribers.taken("/dated/")
            ),
            timeout_s=60,
            describe=lambda _: f"requests so far: {subscribers.requests}",
        )
    finally:
        code, output = await stop(process, signal.SIGINT)
    return Run(output, code)


def test_a_subscriber_that_asks_to_wait_five_minutes_holds_up_no_other(
    patient_run: Run, subscribers: Subscribers
) -> None:
    assert patient_run.exit_code == 0, patient_run.output
    assert subscribers.taken("/ok/") == [n.notice_id for n in ALL]


def test_the_slow_subscriber_is_not_asked_again_before_the_time_it_named(
    patient_run: Run, subscribers: Subscribers
) -> None:
    slow = subscribers.to("/slow/")

    assert [(r.notice_id, r.attempt) for r in slow] == [("n-1", 1)], (
        "one request, then nothing for 300 s: no retry, and no later notice jumps the line"
    )


def test_an_http_date_retry_after_is_honoured(patient_run: Run, subscribers: Subscribers) -> None:
    retried = {r.delivery: r.at for r in subscribers.to("/dated/") if r.attempt == 2}

    assert set(retried) == set(subscribers.retry_dates)
    assert len(retried) == len(NOTICES) + 1
    early = {d: (at, subscribers.retry_dates[d]) for d, at in retried.items()}
    assert all(at >= named for at, named in early.values()), (
        f"(came back at, was asked to come back at): {early}"
    )


def test_the_deliverer_stays_in_its_group_while_a_subscriber_waits(patient_run: Run) -> None:
    joined = [line for line in patient_run.output.splitlines() if "joined its group" in line]

    assert len(joined) == 1, patient_run.output[-3000:]
    assert "CommitFailedError" not in patient_run.output
    assert "UnknownMemberId" not in patient_run.output


async def test_the_notice_the_slow_subscriber_still_owes_is_not_committed(
    patient_run: Run, settings: Settings
) -> None:
    assert await committed(settings, "patient") in (None, 0), (
        "after a restart, n-1 onwards are offered again (same delivery ids)"
    )


# -- giving up, and keeping secrets -----------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


TOKENS = ("QUERY-TOKEN-7f3a", "PA55-W0RD-19", "SLACK-PATH-TOKEN-b4c2", "CLOSED-TOKEN-55e1")


@dataclass(frozen=True)
class GivenUp:
    run: Run
    urls: dict[str, str]
    parked: list[WebhookFailed]


@pytest.fixture(scope="module")
async def given_up(
    settings: Settings,
    subscribers: Subscribers,
    tmp_path_factory: pytest.TempPathFactory,
    patient_run: Run,
) -> GivenUp:
    """Subscribers that are gone, at URLs that carry their credentials, and a longest
    wait shorter than the five minutes they ask for; every notice so far (the patient
    run's late one too) from the beginning."""
    base = subscribers.base_url
    urls = {
        "paged": base.replace("http://", f"http://pager:{TOKENS[1]}@")
        + f"/down/paged?token={TOKENS[0]}",
        "unnamed": f"{base}/down/services/T0001/B0001/{TOKENS[2]}",
        "closed": f"http://127.0.0.1:{closed_port()}/hook?token={TOKENS[3]}",
    }
    webhooks = webhook_file(
        tmp_path_factory.mktemp("given-up"),
        [
            {"name": "paged", "url": urls["paged"]},
            {"url": urls["unnamed"]},
            {"name": "closed", "url": urls["closed"]},
        ],
    )
    process = await monitor(
        "--log-level",
        "debug",
        "deliver",
        "--webhooks",
        str(webhooks),
        "--bootstrap",
        settings.bootstrap,
        "--group",
        "given-up",
        "--from-beginning",
        "--max-attempts",
        "3",
        "--backoff",
        "0.05",
        "--max-backoff",
        "0.5",
        env={"HOOK_SECRET": SECRET},
    )

    async def parked() -> list[WebhookFailed]:
        records = [r async for r in read_topic(settings, WEBHOOKS_DEADLETTER)]
        return [decode(WebhookFailed, r.value) for r in records]

    try:

        def all_parked(found: list[WebhookFailed]) -> bool:
            return len(found) >= 3 * len(ALL)

        found = await eventually(parked, all_parked, timeout_s=60)
    finally:
        code, output = await stop(process, signal.SIGINT)
    return GivenUp(Run(output, code), urls, found)


def test_a_subscriber_asking_for_more_than_the_longest_wait_is_parked_with_the_notice(
    given_up: GivenUp,
) -> None:
    paged = [p for p in given_up.parked if p.subscriber == "paged"]

    assert given_up.run.exit_code == 0, given_up.run.output
    assert [p.notice for p in paged] == ALL, "each notice travels with its dead letter"
    assert all(p.attempts == 1 and p.last_status == 503 for p in paged)
    assert all("Retry-After asks for 300 s" in p.reason for p in paged), paged[0].reason


def test_once_given_up_a_subscriber_gets_one_attempt_per_notice_until_it_answers(
    given_up: GivenUp,
) -> None:
    closed = [p for p in given_up.parked if p.subscriber == "closed"]

    assert [p.notice_id for p in closed] == [n.notice_id for n in ALL]
    assert [p.attempts for p in closed] == [3, 1, 1, 1]
    assert all(p.last_status is None and "Connect" in p.reason for p in closed)


def test_the_dead_letters_name_the_subscriber_by_host_and_fingerprint_not_by_its_url(
    given_up: GivenUp, subscribers: Subscribers
) -> None:
    by_name = {p.subscriber: p.url for p in given_up.parked}
    host = subscribers.base_url.removeprefix("http://")

    assert by_name["paged"] == url_label(given_up.urls["paged"])
    assert by_name["paged"].startswith(f"http://{host}/#")
    assert by_name["closed"].startswith("http://127.0.0.1:")
    assert by_name[url_label(given_up.urls["unnamed"])] == url_label(given_up.urls["unnamed"]), (
        "a subscriber without a name is named by its label, not its URL"
    )
    assert len(set(by_name.values())) == 3


async def test_no_secret_or_url_token_reaches_a_topic_or_the_log(
    given_up: GivenUp, settings: Settings
) -> None:
    secrets = (SECRET, *TOKENS)
    on_topics: list[tuple[str, int]] = []
    for spec in all_topics(settings):
        async for record in read_topic(settings, spec):
            raw = b"".join([record.key or b"", record.value, *(v for _, v in record.headers)])
            if any(secret.encode() in raw for secret in secrets):
                on_topics.append((record.topic, record.offset))
    in_log = [secret for secret in secrets if secret in given_up.run.output]

    assert "DEBUG" in given_up.run.output, "the log was read at its most talkative"
    assert not on_topics
    assert not in_log


async def test_a_record_on_the_notices_topic_that_is_no_notice_is_skipped_and_said(
    settings: Settings, subscribers: Subscribers, tmp_path: Path, given_up: GivenUp
) -> None:
    # After the runs above: the topic holds ALL, then these three.
    garbage = Outgoing(ALERTS_ESCALATIONS, b"AZ-RU", b"\x00 not json")
    newer = Outgoing(
        ALERTS_ESCALATIONS,
        b"AZ-RU",
        json.dumps({**json.loads(LATE_NOTICE.model_dump_json()), "schema_version": 2}).encode(),
    )
    phantom = Outgoing.of(ALERTS_ESCALATIONS, "XX-YY", notice("n-5", "high", DAY))
    async with producer(settings) as client:
        await publish(client, [garbage, newer, phantom])
    webhooks = webhook_file(tmp_path, [{"name": "ops", "url": f"{subscribers.base_url}/ok/x"}])
    process = await monitor(
        "deliver",
        "--webhooks",
        str(webhooks),
        "--bootstrap",
        settings.bootstrap,
        "--group",
        "skipping",
        "--from-beginning",
        env={"HOOK_SECRET": SECRET},
    )
    try:
        await eventually(lambda: LATE_NOTICE.notice_id in subscribers.taken("/ok/x"), timeout_s=60)

        async def progress() -> int:
            return await committed(settings, "skipping") or 0

        def past_them(offset: int) -> bool:
            return offset >= len(ALL) + 3

        end = await eventually(progress, past_them)
    finally:
        code, output = await stop(process, signal.SIGINT)

    assert code == 0, output
    assert "n-5" not in subscribers.taken("/ok/x"), "a notice keyed for another dyad is a phantom"
    assert end == len(ALL) + 3, "skipped records are not read again"
    for offset, reason in ((4, "undecodable"), (5, "newer schema_version"), (6, "wrong key")):
        assert f"skipped alerts.escalations[0]@{offset}: {reason}" in output, output[-3000:]
    assert "3 record(s) skipped" in output
