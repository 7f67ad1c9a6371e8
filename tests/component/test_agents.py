"""The Faust agents, run by Faust's own `test_context`: records in, records out.

The agents produce through the pipeline's `emit` port; here it collects what
they would send, so each agent can be driven on its own without a broker.
The same agents run against the real broker in tests/integration.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import Settings
from monitor.records import Outgoing
from monitor.streams import Pipeline, create_pipeline
from monitor.topics import (
    ALERTS_ESCALATIONS,
    NEWS_DEADLETTER,
    NEWS_TAGGED,
    TENSION_BY_DYAD,
    TENSION_STATE,
)
from schemas import (
    ClockTicked,
    DeadLetter,
    EscalationNotice,
    ItemCollected,
    ItemTagged,
    TensionState,
    decode,
    encode,
)
from tests.factories import item_collected, link_of

FAILED_AT = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2025, 6, 27, 8, tzinfo=UTC)


@pytest.fixture
async def sent() -> list[Outgoing]:
    return []


@pytest.fixture
async def pipeline(sent: list[Outgoing], tmp_path: Path) -> AsyncIterator[Pipeline]:
    async def emit(outgoing: list[Outgoing]) -> None:
        sent.extend(outgoing)

    built = create_pipeline(
        Settings(app_id="component", data_dir=tmp_path), clock=lambda: FAILED_AT, emit=emit
    )
    built.app.finalize()
    built.app.flow_control.resume()
    yield built
    # test_context builds Faust's consumer but never starts it, so the event loop
    # its thread owns is never closed by Faust; close it here.
    consumer = built.app._consumer
    if consumer is not None and not consumer._thread.thread_loop.is_closed():
        consumer._thread.thread_loop.close()


def item(item_id: str, title: str, summary: str = "", hours: float = 0) -> ItemCollected:
    """An item of the Caspian Wire, published `hours` after T0 and collected an hour later."""
    return item_collected(
        item_id,
        title,
        at=T0 + timedelta(hours=hours),
        collected_at=T0 + timedelta(hours=hours + 1),
        summary=summary,
        source_lang="en",
        link=link_of(item_id),
    )


RAID = item(
    "raid",
    "Russian police raid Azerbaijani diaspora homes in Yekaterinburg, two brothers die in custody",
    "Baku condemns the deaths of the Safarov brothers after the FSB detained dozens of "
    "Azerbaijanis.",
)
IDAHO = item("idaho", "Moscow, Idaho: farmers market opens for the season")


def on(topic_name: str, sent: list[Outgoing]) -> list[Outgoing]:
    return [record for record in sent if record.topic.name == topic_name]


async def test_the_tagger_tags_an_item_and_publishes_it_with_its_evidence(
    pipeline: Pipeline, sent: list[Outgoing]
) -> None:
    async with pipeline.tagger.test_context() as agent:
        await agent.put(encode(RAID), key=b"raid")
        await agent.put(encode(IDAHO), key=b"idaho")

    raid, idaho = (decode(ItemTagged, r.value) for r in on(NEWS_TAGGED.name, sent))
    assert raid.relevant
    assert raid.dyad == "AZ-RU"
    assert "detentions" in raid.signals
    assert {e.label for e in raid.evidence} >= {"AZ", "RU", "detentions"}
    assert raid.rules_version == pipeline.rules.version
    assert not idaho.relevant
    assert idaho.signals == []


async def test_the_tagger_dead_letters_garbage_with_the_original_bytes_and_carries_on(
    pipeline: Pipeline, sent: list[Outgoing]
) -> None:
    garbage = b"\xff\xfe not an event"
    async with pipeline.tagger.test_context() as agent:
        await agent.put(garbage, key=b"k1")
        await agent.put(encode(RAID), key=b"raid")

    [letter_record] = on(NEWS_DEADLETTER.name, sent)
    letter = decode(DeadLetter, letter_record.value)
    assert base64.b64decode(letter.value_b64) == garbage
    assert letter.stage == "tagger"
    assert letter.failed_at == FAILED_AT
    assert letter_record.key == b"k1"
    assert [decode(ItemTagged, r.value).item_id for r in on(NEWS_TAGGED.name, sent)] == ["raid"]


async def test_the_tagger_sends_the_escalator_relevant_items_and_ticks_keyed_by_dyad(
    pipeline: Pipeline, sent: list[Outgoing]
) -> None:
    tick = ClockTicked(at=T0 + timedelta(hours=2))
    async with pipeline.tagger.test_context() as agent:
        await agent.put(encode(RAID), key=b"raid")
        await agent.put(encode(IDAHO), key=b"idaho")
        await agent.put(encode(tick), key=b"clock")

    routed = on(TENSION_BY_DYAD.name, sent)
    assert [r.key for r in routed] == [b"AZ-RU", b"AZ-RU"]
    assert decode(ItemTagged, routed[0].value).item_id == "raid"
    assert decode(ClockTicked, routed[1].value) == tick
    assert [decode(ItemTagged, r.value).item_id for r in on(NEWS_TAGGED.name, sent)] == [
        "raid",
        "idaho",
    ], "every item is tagged; only the relevant one goes on to the escalator"


async def test_the_tagger_dead_letters_an_item_dated_2099_with_the_reason(
    pipeline: Pipeline, sent: list[Outgoing]
) -> None:
    future = RAID.model_dump(mode="json") | {
        "item_id": "future",
        "event_time": "2099-01-01T00:00:00Z",
    }
    async with pipeline.tagger.test_context() as agent:
        await agent.put(json.dumps(future).encode(), key=b"future")
        await agent.put(encode(RAID), key=b"raid")

    [letter] = [decode(DeadLetter, r.value) for r in on(NEWS_DEADLETTER.name, sent)]
    assert "more than a day after its collection time" in letter.error
    assert [decode(ItemTagged, r.value).item_id for r in on(TENSION_BY_DYAD.name, sent)] == ["raid"]


async def test_the_escalator_dead_letters_a_record_keyed_by_a_dyad_it_does_not_watch(
    pipeline: Pipeline, sent: list[Outgoing]
) -> None:
    async with pipeline.tagger.test_context() as agent:
        await agent.put(encode(RAID), key=b"raid")
    [routed] = on(TENSION_BY_DYAD.name, sent)
    sent.clear()

    async with pipeline.escalator.test_context() as agent:
        await agent.put(routed.value, key=b"AZ-XX")
        await agent.put(routed.value, key=b"AZ-RU")

    [letter] = [decode(DeadLetter, r.value) for r in on(NEWS_DEADLETTER.name, sent)]
    assert "'AZ-XX' is not a watched dyad" in letter.error
    [state] = [decode(TensionState, r.value) for r in on(TENSION_STATE.name, sent)]
    assert state.dyad == "AZ-RU", "no phantom dyad"
    assert state.items_counted == 1


async def test_the_escalator_raises_one_notice_however_often_the_item_is_delivered(
    pipeline: Pipeline, sent: list[Outgoing]
) -> None:
    shoot_down = item(
        "azal",
        "Russian air defence shot down the Azerbaijan Airlines plane, Baku says",
        "Azerbaijan demands that Moscow admit guilt, punish those responsible and pay "
        "compensation.",
    )
    async with pipeline.tagger.test_context() as agent:
        for collected in (shoot_down, RAID):
            await agent.put(encode(collected), key=collected.item_id.encode())
    routed = on(TENSION_BY_DYAD.name, sent)
    sent.clear()

    async with pipeline.escalator.test_context() as agent:
        for record in routed + routed:  # every record delivered twice
            await agent.put(record.value, key=record.key)

    notices = [decode(EscalationNotice, r.value) for r in on(ALERTS_ESCALATIONS.name, sent)]
    assert notices, "a shoot-down and deaths in custody raise the level"
    assert len({n.notice_id for n in notices}) == len(notices), "no notice twice"
    assert notices[-1].level in {"high", "severe"}
    states = [decode(TensionState, r.value) for r in on(TENSION_STATE.name, sent)]
    assert len(states) == 2 * len(routed), "the state is republished for every delivery"
    assert states[-1].items_counted == 2
    assert states[-1].level == notices[-1].level
