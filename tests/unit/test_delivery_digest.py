"""Digests: the level over a period, its top stories and counts per signal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.delivery.digest import compile_digest, digest_id, format_digest, period_containing
from schemas import EscalationNotice, ItemTagged, Level, TensionState
from tests.factories import item_tagged, notice, tension_state

DAY = timedelta(days=1)
START = datetime(2024, 12, 25, tzinfo=UTC)
END = START + DAY
WEIGHTS = {"armed_incident": 4.0, "diplomatic_protest": 2.0, "conciliation": -3.0}


def item(item_id: str, hour: float, signals: list[str], title: str = "") -> ItemTagged:
    return item_tagged(item_id, signals, START + timedelta(hours=hour), title=title or item_id)


def state(hour: float, level: Level, index: float) -> TensionState:
    return tension_state(level, index, START + timedelta(hours=hour))


def raised(notice_id: str, hour: float, level: Level) -> EscalationNotice:
    return notice(notice_id, level, START + timedelta(hours=hour))


def test_periods_are_aligned_to_midnight_utc() -> None:
    assert period_containing(START + timedelta(hours=7), DAY) == (START, END)
    assert period_containing(END, DAY) == (END, END + DAY)


def test_a_day_with_a_shoot_down_reads_as_its_rise_its_stories_and_signals() -> None:
    tagged = [
        item("protest", 9, ["diplomatic_protest"], "Baku summons the Russian ambassador"),
        item("azal", 6.5, ["armed_incident"], "AZAL jet hit by Russian air defence fire"),
        item("azal", 6.5, ["armed_incident", "diplomatic_protest"], "AZAL jet: Baku protests"),
        item("talks", 20, ["conciliation"], "Putin apologises to Aliyev"),
        item("yesterday", -3, ["armed_incident"]),
        item("tomorrow", 25, ["armed_incident"]),
    ]
    states = [
        state(-5, "elevated", 3.5),
        state(6.5, "high", 9.5),
        state(9, "high", 11.0),
        state(20, "elevated", 7.9),
        state(30, "calm", 1.0),
    ]
    notices = [
        raised("n-high", 6.5, "high"),
        raised("n-high", 6.5, "high"),
        raised("n-x", 30, "calm"),
    ]

    digest = compile_digest("AZ-RU", START, END, tagged, states, notices, WEIGHTS, END)

    assert [(span.level, span.since) for span in digest.levels] == [
        ("elevated", START),
        ("high", START + timedelta(hours=6.5)),
        ("elevated", START + timedelta(hours=20)),
    ]
    assert (digest.level_start, digest.level_max, digest.level_end) == (
        "elevated",
        "high",
        "elevated",
    )
    assert digest.index_max == 11.0
    assert digest.index_end == 7.9
    assert digest.notice_ids == ["n-high"], "a redelivered notice counts once"
    assert digest.items_relevant == 3, "the edited item counts once, in its latest form"
    assert digest.signals == {"diplomatic_protest": 2, "armed_incident": 1, "conciliation": 1}
    assert [story.item_id for story in digest.top_stories] == ["azal", "talks", "protest"]
    assert digest.top_stories[0].headline == "AZAL jet: Baku protests"
    assert digest.top_stories[0].weight == 6.0


def test_a_quiet_day_is_a_digest_too() -> None:
    digest = compile_digest("AZ-RU", START, END, [], [state(-30, "calm", 0.4)], [], WEIGHTS, END)

    assert [span.level for span in digest.levels] == ["calm"]
    assert digest.items_relevant == 0
    assert digest.top_stories == []
    assert "signals: none" in format_digest(digest)


def test_the_same_period_has_the_same_id_so_it_is_published_once() -> None:
    assert digest_id("AZ-RU", START, END) == digest_id("AZ-RU", START, END)
    assert digest_id("AZ-RU", START, END) != digest_id("AZ-RU", END, END + DAY)
