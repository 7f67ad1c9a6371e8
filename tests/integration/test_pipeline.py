"""Feeds → collector → broker → worker → subscribers, on the real embedded broker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from monitor.collect.catalogue import FeedSpec
from monitor.config import Settings
from monitor.kafka import read_topic
from monitor.service import run_collector
from monitor.streams import Pipeline, create_pipeline
from monitor.tagging.agent import tagged_item
from monitor.topics import (
    ALERTS_ESCALATIONS,
    NEWS_DEADLETTER,
    NEWS_ITEMS,
    NEWS_TAGGED,
    PUBLIC_TOPICS,
    TENSION_BY_DYAD,
    TENSION_STATE,
)
from schemas import decode_news_item, encode
from tests.factories import item_collected, link_of, rss_document, rss_item
from tests.feed_server import FeedServer
from tests.integration.support import succeeds, worker_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    running = create_pipeline(settings)
    await running.app.start()
    yield running
    await running.app.stop()


async def consume_until(
    settings: Settings,
    topic: str,
    done: Callable[[list[Any]], bool],
    timeout_s: float = 60.0,
) -> list[Any]:
    """A plain aiokafka subscriber: read `topic` from the start until `done(records)`."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not done(records):
                batches = await consumer.getmany(timeout_ms=200)
                for messages in batches.values():
                    records.extend(messages)
    finally:
        await consumer.stop()
    return records


SHOOT_DOWN = datetime(2024, 12, 25, 6, 30, tzinfo=UTC)


async def test_a_shoot_down_in_the_feeds_reaches_subscribers_as_an_escalation_notice(
    settings: Settings, pipeline: Pipeline, feed_server: FeedServer
) -> None:
    entries = [
        rss_item(
            "azal-1",
            "Azerbaijan Airlines jet hit by Russian air defence fire over Grozny",
            "Baku says the Embraer was shot at by a Russian missile before it crashed"
            " near Aktau, killing 38.",
            published=SHOOT_DOWN,
            link=link_of("azal-1"),
        ),
        rss_item(
            "azal-2",
            "Aliyev demands Russia admit guilt and punish those responsible for downing"
            " the AZAL plane",
            "Azerbaijan's president said Moscow must apologise, admit responsibility and"
            " pay compensation for the shoot-down.",
            published=SHOOT_DOWN.replace(day=29),
            link=link_of("azal-2"),
        ),
        rss_item(
            "idaho-1",
            "Moscow, Idaho, city council approves new bike lanes",
            "The council of the university town voted 5-1 for the plan.",
            published=SHOOT_DOWN.replace(day=27),
            link=link_of("idaho-1"),
        ),
    ]
    document = rss_document("".join(entries), title="Caspian Wire").encode()
    feed = FeedSpec(url=feed_server.serve("wire.xml", document), name="wire outlet")

    (report,) = await run_collector(settings, (feed,), asyncio.Event(), once=True)

    published = {item.title: item.item_id for item in report.published}
    assert len(published) == len(entries)
    assert report.polls[0].status == "ok"
    air_defence = published["Azerbaijan Airlines jet hit by Russian air defence fire over Grozny"]

    def about_the_shoot_down(record: Any) -> bool:
        # Two partitions: either report may reach the escalator first; wait for the
        # notice that shows the shoot-down itself among its evidence.
        return air_defence in {e["item_id"] for e in json.loads(record.value)["evidence"]}

    records = await consume_until(
        settings, ALERTS_ESCALATIONS.name, lambda rs: any(map(about_the_shoot_down, rs))
    )
    record = next(r for r in records if about_the_shoot_down(r))
    notice = json.loads(record.value)
    assert notice["kind"] == "raised"
    assert notice["level"] in {"elevated", "high", "severe"}
    assert notice["dyad"] == record.key.decode() == "AZ-RU"
    assert "armed_incident" in notice["breakdown"]
    headlines = {e["headline"] for e in notice["evidence"]}
    assert any("air defence" in h for h in headlines)
    assert not any("Idaho" in h for h in headlines)


async def test_garbage_on_news_items_is_dead_lettered_and_the_next_item_still_gets_through(
    settings: Settings, pipeline: Pipeline
) -> None:
    garbage = b"\x00\xff{not json at all"
    good = item_collected(
        "i-after-garbage",
        "Russian embassy in Baku protests detention of Russian citizens",
        at=datetime(2025, 7, 1, 9, tzinfo=UTC),
        collected_at=datetime(2025, 7, 1, 12, tzinfo=UTC),
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    try:
        # Same key, so same partition: the good item is behind the garbage.
        await producer.send_and_wait(NEWS_ITEMS.name, key=b"garbage-key", value=garbage)
        await producer.send_and_wait(NEWS_ITEMS.name, key=b"garbage-key", value=encode(good))
    finally:
        await producer.stop()

    def of_the_garbage(record: Any) -> bool:
        return base64.b64decode(json.loads(record.value)["value_b64"]) == garbage

    letters = await consume_until(
        settings, NEWS_DEADLETTER.name, lambda rs: any(map(of_the_garbage, rs))
    )
    letter = json.loads(next(r for r in letters if of_the_garbage(r)).value)
    assert letter["stage"] == "tagger"
    assert letter["topic"] == NEWS_ITEMS.name
    assert base64.b64decode(letter["key_b64"]) == b"garbage-key"
    assert letter["error_type"] == "ValidationError"

    def of_the_good_item(record: Any) -> bool:
        return bool(json.loads(record.value)["item_id"] == good.item_id)

    tagged = await consume_until(
        settings, NEWS_TAGGED.name, lambda rs: any(map(of_the_good_item, rs))
    )
    after_garbage = json.loads(next(r for r in tagged if of_the_good_item(r)).value)
    assert after_garbage["relevant"], "the item behind the garbage was tagged, not skipped"


async def test_an_oversized_garbage_record_is_dead_lettered_with_its_size_and_hash(
    settings: Settings, pipeline: Pipeline
) -> None:
    """900 KB of garbage: its dead letter still fits the broker, and says what it was."""
    garbage = bytes(range(256)) * (900 * 1024 // 256)
    good = item_collected(
        "i-after-big-garbage",
        "Russian embassy in Baku protests detention of Russian citizens",
        at=datetime(2025, 7, 2, 9, tzinfo=UTC),
        collected_at=datetime(2025, 7, 2, 12, tzinfo=UTC),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap, acks="all", max_request_size=2**22
    )
    await producer.start()
    try:
        await producer.send_and_wait(NEWS_ITEMS.name, key=b"big-garbage", value=garbage)
        await producer.send_and_wait(NEWS_ITEMS.name, key=b"big-garbage", value=encode(good))
    finally:
        await producer.stop()

    digest = hashlib.sha256(garbage).hexdigest()

    def of_the_garbage(record: Any) -> bool:
        return bool(json.loads(record.value).get("value_sha256") == digest)

    letters = await consume_until(
        settings, NEWS_DEADLETTER.name, lambda rs: any(map(of_the_garbage, rs))
    )
    letter = json.loads(next(r for r in letters if of_the_garbage(r)).value)
    assert letter["value_bytes"] == len(garbage)
    assert letter["value_truncated"] is True
    kept = base64.b64decode(letter["value_b64"])
    assert 0 < len(kept) < len(garbage)
    assert garbage.startswith(kept)

    def of_the_good_item(record: Any) -> bool:
        return bool(json.loads(record.value)["item_id"] == good.item_id)

    await consume_until(settings, NEWS_TAGGED.name, lambda rs: any(map(of_the_good_item, rs)))


async def test_an_item_whose_outputs_are_too_large_to_send_is_dead_lettered(
    settings: Settings, pipeline: Pipeline
) -> None:
    """A valid item with a 1.1 MB headline: the tagger cannot send what it makes of it
    (past the 1 MiB record limit); the item ends as a dead letter, not lost, and the
    next item still gets through."""
    huge = item_collected(
        "i-huge-headline",
        "Russian embassy in Baku protests detention of Russian citizens " + "x" * 1_100_000,
        at=datetime(2025, 7, 3, 9, tzinfo=UTC),
        collected_at=datetime(2025, 7, 3, 12, tzinfo=UTC),
    )
    good = item_collected(
        "i-after-huge-headline",
        "Russian embassy in Baku protests detention of Russian citizens",
        at=datetime(2025, 7, 3, 10, tzinfo=UTC),
        collected_at=datetime(2025, 7, 3, 12, tzinfo=UTC),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap, acks="all", max_request_size=2**22
    )
    await producer.start()
    try:
        await producer.send_and_wait(NEWS_ITEMS.name, key=b"huge", value=encode(huge))
        await producer.send_and_wait(NEWS_ITEMS.name, key=b"huge", value=encode(good))
    finally:
        await producer.stop()

    def of_the_huge_item(record: Any) -> bool:
        return bool(json.loads(record.value).get("value_sha256") == _sha256(encode(huge)))

    letters = await consume_until(
        settings, NEWS_DEADLETTER.name, lambda rs: any(map(of_the_huge_item, rs))
    )
    letter = json.loads(next(r for r in letters if of_the_huge_item(r)).value)
    assert letter["stage"] == "tagger"
    assert letter["error_type"] == "MessageSizeTooLargeError"

    def of_the_good_item(record: Any) -> bool:
        return bool(json.loads(record.value)["item_id"] == good.item_id)

    await consume_until(settings, NEWS_TAGGED.name, lambda rs: any(map(of_the_good_item, rs)))


async def test_ingest_dead_letters_the_lines_that_are_not_items_and_publishes_the_rest(
    settings: Settings, tmp_path: Path
) -> None:
    first = {
        "id": "ingest-ok-1",
        "title": "Aliyev and Putin talk by phone",
        "published": "2025-08-01T10:00:00Z",
    }
    huge = {
        "id": "ingest-huge",
        "title": "Baku and Moscow " + "y" * 5_000_000,
        "published": "2025-08-01T11:00:00Z",
    }
    last = {
        "id": "ingest-ok-2",
        "title": "Lavrov meets Bayramov in Moscow",
        "published": "2025-08-01T12:00:00Z",
    }
    lines = [json.dumps(first), json.dumps(huge), "{not json", json.dumps(last)]
    archive = tmp_path / "backfill.jsonl"
    archive.write_text("\n".join(lines) + "\n", encoding="utf-8")

    output = await succeeds("ingest", str(archive), env=worker_env(settings), timeout_s=120)

    assert "published 2 items" in output
    guids = set()
    async for record in read_topic(settings, NEWS_ITEMS):
        # The session's broker: other tests put garbage here on purpose.
        with contextlib.suppress(ValueError):
            guids.add(getattr(decode_news_item(record.value), "guid", None))
    assert {"ingest-ok-1", "ingest-ok-2"} <= guids
    assert "ingest-huge" not in guids
    letters = [
        json.loads(record.value)
        async for record in read_topic(settings, NEWS_DEADLETTER)
        if json.loads(record.value)["topic"] == "ingest:backfill.jsonl"
    ]
    by_line = {letter["offset"]: letter for letter in letters}
    assert set(by_line) == {2, 3}
    assert by_line[2]["value_bytes"] == len(lines[1].encode())
    assert by_line[2]["value_sha256"] == _sha256(lines[1].encode())
    assert by_line[2]["value_truncated"] is True
    assert "larger than a record may be" in by_line[2]["error"]
    assert base64.b64decode(by_line[3]["value_b64"]) == b"{not json"
    assert by_line[3]["error"].startswith("not JSON")


async def test_poison_on_the_escalator_s_topic_is_dead_lettered_and_makes_no_phantom_dyad(
    settings: Settings, pipeline: Pipeline
) -> None:
    """A newer monitor's record on news.items, and on tension.by-dyad a record keyed by
    a dyad nobody watches and one that is not an event: each a dead letter, none a state."""
    item = item_collected(
        "i-from-the-future-monitor",
        "Russian embassy in Baku protests detention of Russian citizens",
        at=datetime(2025, 7, 4, 9, tzinfo=UTC),
        collected_at=datetime(2025, 7, 4, 12, tzinfo=UTC),
    )
    newer = json.dumps({**json.loads(encode(item)), "schema_version": 2}).encode()
    tagged = tagged_item(item, pipeline.rules)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(NEWS_ITEMS.name, key=b"newer", value=newer)
        await producer.send_and_wait(TENSION_BY_DYAD.name, key=b"AZ-XX", value=encode(tagged))
        await producer.send_and_wait(TENSION_BY_DYAD.name, key=b"AZ-RU", value=b"\x00garbage")
    finally:
        await producer.stop()

    def poison(record: Any) -> bool:
        value = base64.b64decode(json.loads(record.value)["value_b64"])
        return value in {newer, encode(tagged), b"\x00garbage"}

    letters = await consume_until(
        settings, NEWS_DEADLETTER.name, lambda rs: sum(map(poison, rs)) >= 3
    )
    by_value = {
        base64.b64decode(letter["value_b64"]): letter
        for letter in (json.loads(r.value) for r in letters if poison(r))
    }
    assert (by_value[newer]["topic"], by_value[newer]["stage"]) == (NEWS_ITEMS.name, "tagger")
    assert "schema_version" in by_value[newer]["error"]
    phantom = by_value[encode(tagged)]
    assert (phantom["topic"], phantom["stage"]) == (TENSION_BY_DYAD.name, "escalator")
    assert "AZ-XX" in phantom["error"]
    assert by_value[b"\x00garbage"]["topic"] == TENSION_BY_DYAD.name
    async for record in read_topic(settings, TENSION_STATE):
        assert json.loads(record.value)["dyad"] == "AZ-RU", "no phantom dyad"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_script_link_put_straight_on_news_items_never_reaches_a_page(
    settings: Settings, pipeline: Pipeline
) -> None:
    """The wire contract takes http(s) links only: anything else is dead-lettered."""
    hostile = item_collected(
        "i-script-link",
        "Russian embassy in Baku protests detention of Russian citizens",
        at=datetime(2025, 7, 1, 9, tzinfo=UTC),
        collected_at=datetime(2025, 7, 1, 12, tzinfo=UTC),
    )
    # Another producer than ours, writing the JSON by hand.
    raw = json.loads(encode(hostile))
    raw["link"] = "javascript:alert(document.cookie)"
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            NEWS_ITEMS.name, key=b"script-link", value=json.dumps(raw).encode()
        )
    finally:
        await producer.stop()

    def of_the_script(record: Any) -> bool:
        return b"javascript:" in base64.b64decode(json.loads(record.value)["value_b64"])

    letters = await consume_until(
        settings, NEWS_DEADLETTER.name, lambda rs: any(map(of_the_script, rs))
    )
    letter = json.loads(next(r for r in letters if of_the_script(r)).value)
    assert letter["stage"] == "tagger"
    assert "link" in letter["error"]
    async for record in read_topic(settings, NEWS_TAGGED):
        assert b"javascript:" not in record.value


async def test_every_message_on_every_topic_validates_against_its_json_schema(
    settings: Settings, pipeline: Pipeline, schema_validator: Callable[[str, Any], None]
) -> None:
    dead_lettered = set()
    async for record in read_topic(settings, NEWS_DEADLETTER):
        letter = json.loads(record.value)
        dead_lettered.add((letter["topic"], letter["partition"], letter["offset"]))

    counts: dict[str, int] = {}
    for spec in PUBLIC_TOPICS:
        assert spec.contract is not None
        async for record in read_topic(settings, spec):
            if (record.topic, record.partition, record.offset) in dead_lettered:
                continue  # bad input a test put there on purpose, accounted for above
            value = json.loads(record.value.decode("utf-8"))
            contract = spec.contract_of(value)
            assert contract is not None
            schema_validator(contract.__name__, value)
            counts[spec.name] = counts.get(spec.name, 0) + 1
    assert counts.keys() >= {
        "news.items",
        "news.tagged",
        "tension.by-dyad",
        "alerts.escalations",
        "tension.state",
        "feeds.health",
        "news.deadletter",
    }
