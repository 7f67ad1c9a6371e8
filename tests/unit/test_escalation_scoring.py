"""Given a dyad's log (tagged items, clock ticks), when folded in log order, then these notices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from monitor.escalation.escalate import escalate, tension_state_of
from monitor.escalation.scoring import (
    ScoringConfig,
    ScoringConfigError,
    next_level,
    story_breakdown,
)
from monitor.escalation.state import DyadState
from monitor.fingerprint import distance, fingerprint
from schemas import DYAD_AZ_RU, ClockTicked, EscalationNotice, ItemTagged
from tests.escalation import fold
from tests.factories import actors_in, item_tagged

CONFIG = ScoringConfig.load()
T0 = datetime(2024, 12, 25, 9, tzinfo=UTC)


def tagged(
    item_id: str, signals: Iterable[str], at: datetime, *, relevant: bool = True, **fields: Any
) -> ItemTagged:
    """As the tagger reports it, with the mentions of the two sides as actor evidence."""
    item = item_tagged(item_id, signals, at, relevant=relevant, **fields)
    return item.model_copy(update={"evidence": actors_in(item.title)}) if relevant else item


def tick(at: datetime) -> ClockTicked:
    return ClockTicked(at=at)


def ticks(start: datetime, end: datetime, every: timedelta) -> list[ClockTicked]:
    """The collector's ticks over a quiet spell."""
    count = int((end - start) / every)
    return [tick(start + n * every) for n in range(1, count + 1)]


def kinds(notices: Sequence[EscalationNotice]) -> list[tuple[str, str, str]]:
    return [(n.kind, n.previous_level, n.level) for n in notices]


SHOOT_DOWN = "Russian air defence shot down the Azerbaijan Airlines plane over Grozny"


def test_a_shoot_down_raises_the_level_to_high_on_its_own_and_protests_raise_it_further() -> None:
    state, notices = fold(
        [
            tagged("crash", ["armed_incident"], T0),
            tagged(
                "protest",
                ["diplomatic_protest", "hostile_rhetoric"],
                T0 + timedelta(days=2),
                title="Baku summons Russian ambassador, demands apology and compensation",
            ),
            tagged(
                "crash-follow-up",
                ["armed_incident"],
                T0 + timedelta(days=2, hours=1),
                title="Damage to AZAL jet points to a Russian missile, investigators say",
            ),
        ]
    )
    assert kinds(notices) == [("raised", "calm", "high"), ("raised", "high", "severe")]
    severe = notices[-1]
    assert severe.trigger_item_id == "crash-follow-up"
    assert {e.item_id for e in severe.evidence} >= {"crash", "protest"}
    assert severe.breakdown["armed_incident"] > severe.breakdown["diplomatic_protest"] > 0
    assert state.level == "severe"


def test_an_apology_settles_part_of_the_tension_that_came_before_it_for_good() -> None:
    crash = tagged("crash", ["armed_incident"], T0, title=SHOOT_DOWN)
    apology = tagged(
        "apology",
        ["leader_contact", "conciliation"],
        T0 + timedelta(days=1),
        title="Putin apologises to Aliyev for the tragic incident in Russian airspace",
    )
    later = tick(T0 + timedelta(days=30))
    without, _ = fold([crash, later])
    settled, notices = fold([crash, apology, later])
    grievance_left = tension_state_of(settled, CONFIG, "x").breakdown["armed_incident"]
    grievance_alone = tension_state_of(without, CONFIG, "x").breakdown["armed_incident"]
    # The apology's de-escalatory weight, from one source.
    strength = -(CONFIG.weights["leader_contact"] + CONFIG.weights["conciliation"])
    assert grievance_left == pytest.approx(
        grievance_alone * 0.5 ** (strength / CONFIG.settle_weight), rel=1e-3
    ), "a month later, the settled share has not come back"
    assert kinds(notices)[-1][:2] == ("lowered", "high")


def test_an_incident_named_only_beside_a_reconciliation_counts_as_context() -> None:
    admission = tagged(
        "dushanbe",
        ["armed_incident", "leader_contact", "conciliation"],
        T0,
        title="Putin admits Russian air defence hit the AZAL jet, promises compensation",
    )
    state, notices = fold([admission])
    breakdown = tension_state_of(state, CONFIG, "x").breakdown
    assert breakdown["armed_incident"] == pytest.approx(
        CONFIG.weights["armed_incident"] * CONFIG.context_weight
    )
    assert notices == [], "an admission and apology raises nothing"


def test_one_event_reported_by_three_outlets_is_one_story_with_three_sources() -> None:
    reports = [
        tagged("wire", ["armed_incident"], T0, title=SHOOT_DOWN, source="Caspian Wire"),
        tagged(
            "ru",
            ["armed_incident"],
            T0 + timedelta(hours=2),
            title="ПВО России сбила самолёт AZAL над Грозным",
            source="Кавказ-Монитор",
            lang="ru",
        ),
        tagged(
            "de",
            ["armed_incident"],
            T0 + timedelta(hours=3),
            title="Russische Flugabwehr traf das AZAL-Flugzeug",
            source="Ostdienst",
            lang="de",
        ),
    ]
    state, _ = fold(reports)
    [story] = state.stories.values()
    assert set(story.items) == {"wire", "ru", "de"}
    assert story.sources == {"armed_incident": 3}
    one_source, _ = fold(reports[:1])
    [single] = one_source.stories.values()
    at = T0 + timedelta(hours=3)
    three = story_breakdown(story, at, CONFIG)["armed_incident"]
    one = story_breakdown(single, at, CONFIG)["armed_incident"]
    # Corroborated, with diminishing returns: more than one report, less than three.
    assert one * 1.5 < three < one * 3


def test_a_copy_of_the_same_wire_text_is_not_an_independent_source() -> None:
    original = tagged("a", ["detentions"], T0, title="FSB detains Azerbaijanis in Yekaterinburg")
    copy = tagged(
        "b",
        ["detentions"],
        T0 + timedelta(hours=1),
        title="FSB detains Azerbaijanis in Yekaterinburg",
        source="Another Outlet",
    )
    state, _ = fold([original, copy])
    [story] = state.stories.values()
    assert len(story.items) == 2
    assert story.sources == {"detentions": 1}


def test_one_event_told_in_other_words_in_one_language_is_one_story() -> None:
    state, _ = fold(
        [
            tagged(
                "wire",
                ["detentions"],
                T0,
                title="Yekaterinburg police raid homes of Azerbaijanis, two brothers die",
            ),
            tagged(
                "paper",
                ["detentions"],
                T0 + timedelta(hours=20),
                title="Two Azerbaijani brothers die in custody after Yekaterinburg raids",
                source="Baku Post",
            ),
        ]
    )
    [story] = state.stories.values()
    assert story.sources == {"detentions": 2}


def test_unrelated_events_on_the_same_day_are_separate_stories() -> None:
    state, _ = fold(
        [
            tagged("raid", ["detentions"], T0, title="Police raid Azerbaijani diaspora homes"),
            tagged(
                "sputnik",
                ["media_crackdown"],
                T0 + timedelta(hours=4),
                title="Baku suspends Sputnik Azerbaijan",
            ),
        ]
    )
    assert len(state.stories) == 2


def test_a_redelivered_item_changes_nothing_and_raises_no_second_notice() -> None:
    crash = tagged("crash", ["armed_incident", "detentions"], T0)
    state, notices = fold([crash])
    again = escalate(state, crash, CONFIG)
    assert len(notices) == 1
    assert again.notices == ()
    assert again.state == state
    assert not again.changed


def test_a_record_redelivered_after_a_crash_is_skipped_by_its_origin_even_once_folded() -> None:
    old = tagged("old", ["detentions"], T0, title="Raids on Azerbaijanis in Yekaterinburg")
    state = escalate(DyadState(dyad=DYAD_AZ_RU), old, CONFIG, origin=(0, 7)).state
    year_later = escalate(state, tick(T0 + timedelta(days=365)), CONFIG, origin=(0, 8)).state
    assert year_later.stories == {}, "a year on, the story is folded into the summary"
    assert year_later.folded.stories == 1
    again = escalate(year_later, old, CONFIG, origin=(0, 7))
    assert not again.changed
    assert again.state.folded == year_later.folded


def test_an_edited_item_replaces_itself_in_its_story_instead_of_adding() -> None:
    first = tagged("story", ["armed_incident"], T0)
    edited = tagged("story", ["armed_incident", "detentions"], T0, revision="r2")
    state, _ = fold([first, edited])
    [story] = state.stories.values()
    assert list(story.items) == ["story"]
    assert story.items["story"].revision == "r2"
    assert story.signals == {"armed_incident", "detentions"}


def test_an_edit_that_makes_an_item_irrelevant_takes_it_out_of_the_index() -> None:
    state, _ = fold(
        [
            tagged("story", ["armed_incident"], T0),
            tagged("story", [], T0, relevant=False, revision="r2"),
        ]
    )
    assert state.stories == {}
    assert tension_state_of(state, CONFIG, "story").index == 0


def test_notice_ids_derive_from_content_so_a_replay_gives_the_same_ids() -> None:
    items = [
        tagged("a", ["armed_incident"], T0),
        tagged("b", ["detentions", "media_crackdown"], T0 + timedelta(hours=1)),
    ]
    _, first_run = fold(items)
    _, second_run = fold(items)
    assert [n.notice_id for n in first_run] == [n.notice_id for n in second_run]
    assert len({n.notice_id for n in first_run}) == len(first_run)


def test_irrelevant_items_do_not_move_the_index() -> None:
    state, notices = fold([tagged("sport", [], T0, relevant=False)])
    assert notices == []
    assert state.stories == {}


def test_a_shoot_down_raises_the_level_as_soon_as_its_first_report_is_folded_in() -> None:
    """No allowed lateness: the item that tips the level gives its notice at once."""
    result = escalate(DyadState(dyad=DYAD_AZ_RU), tagged("crash", ["armed_incident"], T0), CONFIG)
    assert kinds(result.notices) == [("raised", "calm", "high")]
    assert result.notices[0].event_time == T0, "dated by the item that caused it"
    assert result.notices[0].trigger_item_id == "crash"


def test_the_same_log_folded_twice_gives_the_same_notices_byte_for_byte() -> None:
    minute = timedelta(minutes=1)
    log: list[ItemTagged | ClockTicked] = [
        tagged("crash", ["armed_incident"], T0, title=SHOOT_DOWN),
        tagged("sputnik", ["media_crackdown"], T0 + 20 * minute, title="Sputnik raided"),
        tagged("raids", ["detentions"], T0 + 10 * minute, title="Raids in Yekaterinburg"),
        tick(T0 + 30 * minute),
        tagged("call", ["leader_contact"], T0 + 25 * minute, title="Aliyev and Putin talk"),
        *ticks(T0, T0 + timedelta(days=150), timedelta(hours=5)),
    ]
    _, first = fold(log)
    _, second = fold(log)
    assert len(first) >= 2, "the episode raises the level and time lowers it"
    assert [n.model_dump_json() for n in first] == [n.model_dump_json() for n in second]


def test_a_late_item_counts_at_its_own_event_time_and_the_clock_does_not_go_back() -> None:
    recent = tagged("recent", ["media_crackdown"], T0 + timedelta(days=2))
    old = tagged("old", ["detentions"], T0)
    state, _ = fold([recent, old])
    assert state.clock == recent.event_time, "a late item does not move the clock back"
    # Two days old at the state's clock, and decayed as such.
    half_life = CONFIG.half_life_of("detentions")
    assert tension_state_of(state, CONFIG, "old").breakdown["detentions"] == pytest.approx(
        CONFIG.weights["detentions"] * 0.5 ** (timedelta(days=2) / half_life), rel=1e-3
    )


def test_a_late_shoot_down_raises_the_level_when_it_arrives_without_rewriting_the_past() -> None:
    later = tagged("later", ["hostile_rhetoric"], T0 + timedelta(days=3), title="Baku angry")
    crash = tagged("crash", ["armed_incident"], T0, title=SHOOT_DOWN)
    state, notices = fold([later, crash])
    [raised] = [n for n in notices if n.kind == "raised"]
    assert raised.trigger_item_id == "crash"
    assert raised.event_time == later.event_time, "judged from when the calm level began"
    assert state.level != "calm"


def test_without_news_the_level_falls_back_as_the_clock_ticks_on_schedule() -> None:
    escalation = [
        tagged("crash", ["armed_incident"], T0, title=SHOOT_DOWN),
        tagged("raids", ["detentions"], T0 + timedelta(hours=2), title="Raids in Yekaterinburg"),
        tagged("sputnik", ["media_crackdown"], T0 + timedelta(hours=3), title="Sputnik raided"),
    ]
    quiet = ticks(T0 + timedelta(hours=3), T0 + timedelta(days=200), timedelta(minutes=30))
    state, notices = fold([*escalation, *quiet])
    assert notices[0].kind == "raised"
    lowered = [n for n in notices if n.kind == "lowered"]
    assert lowered
    assert state.level == "calm"
    assert all(n.trigger_item_id.startswith("clock:") for n in lowered), "time lowered it"
    assert all(n.event_time.minute == 0 for n in lowered), "judged on the hour"
    held = [later.event_time - earlier.event_time for earlier, later in pairwise(notices)]
    assert all(gap >= CONFIG.min_dwell for gap in held), "each level is held for the dwell"


def test_ticks_change_when_a_fall_is_noticed_never_what_the_notice_says() -> None:
    """A log with the collector's ticks and one without give the same notices, in order."""
    episode = [
        tagged("crash", ["armed_incident"], T0, title=SHOOT_DOWN),
        tagged("raids", ["detentions"], T0 + timedelta(hours=2), title="Raids in Yekaterinburg"),
        tagged("call", ["leader_contact"], T0 + timedelta(days=120), title="Aliyev and Putin talk"),
    ]
    with_ticks: list[ItemTagged | ClockTicked] = [
        episode[0],
        episode[1],
        *ticks(episode[1].event_time, episode[2].event_time, timedelta(minutes=17)),
        episode[2],
    ]
    _, ticked = fold(with_ticks)
    _, unticked = fold(episode)
    assert [n.kind for n in ticked].count("lowered") >= 1
    assert [n.model_dump_json() for n in ticked] == [n.model_dump_json() for n in unticked]


def test_conciliation_lowers_the_level_after_the_dwell() -> None:
    escalation = [
        tagged("crash", ["armed_incident"], T0, title=SHOOT_DOWN),
        tagged("protest", ["diplomatic_protest"], T0 + timedelta(hours=2), title="Protest note"),
    ]
    meeting = tagged(
        "meeting",
        ["leader_contact", "conciliation"],
        T0 + timedelta(days=3),
        title="Putin apologises to Aliyev in Dushanbe, promises compensation",
    )
    _, notices = fold([*escalation, meeting])
    assert notices[-1].kind == "lowered"
    assert notices[-1].trigger_item_id == "meeting"


def test_a_burst_of_detention_stories_from_many_sources_raises_a_burst_notice() -> None:
    outlets = ["Caspian Wire", "Baku Post", "Steppe Courier", "Eurasia Desk"]
    headlines = [
        "Yekaterinburg police detain Azerbaijani traders at a market",
        "Two Azerbaijani students held in Novosibirsk after dormitory search",
        "Samara court orders deportation of an Azerbaijani diaspora leader",
        "FSB arrests Azerbaijani businessman in Krasnoyarsk on fraud charges",
        "Migrants from Azerbaijan rounded up in Tula raid, rights group says",
    ]
    arrests = [
        tagged(
            f"arrest-{n}",
            ["detentions"],
            T0 + timedelta(hours=3 * n),
            title=headline,
            source=outlets[n % len(outlets)],
        )
        for n, headline in enumerate(headlines)
    ]
    _, notices = fold(arrests)
    bursts = [n for n in notices if n.kind == "burst"]
    assert len(bursts) == 1, "one burst per signal per cool-down"
    assert bursts[0].burst is not None
    assert bursts[0].burst.signal == "detentions"
    assert bursts[0].burst.stories == CONFIG.bursts.min_stories
    assert bursts[0].burst.sources >= CONFIG.bursts.min_sources


def test_one_event_copied_by_many_outlets_is_no_burst() -> None:
    copies = [
        tagged(
            f"copy-{n}",
            ["detentions"],
            T0 + timedelta(hours=n),
            title="Yekaterinburg police detain Azerbaijani traders overnight",
            source=f"Outlet {n}",
        )
        for n in range(5)
    ]
    state, notices = fold(copies)
    assert len(state.stories) == 1
    assert not [n for n in notices if n.kind == "burst"]


def test_the_level_does_not_flap_within_the_minimum_dwell() -> None:
    assert next_level("elevated", 0.5, timedelta(hours=1), CONFIG) == "elevated"
    assert next_level("elevated", 0.5, timedelta(hours=30), CONFIG) == "calm"


def test_hysteresis_keeps_the_level_between_the_lowering_and_raising_thresholds() -> None:
    between = CONFIG.raise_at["high"] * (CONFIG.lower_factor + 1) / 2
    assert next_level("high", between, timedelta(days=3), CONFIG) == "high"
    assert next_level("elevated", between, timedelta(days=3), CONFIG) == "elevated"


def test_a_broken_scoring_file_fails_with_the_file_and_reason(tmp_path: Path) -> None:
    broken = tmp_path / "scoring.toml"
    broken.write_text("half_life_hours = 96\n[weights]\narmed_incident = 4\n", encoding="utf-8")
    with pytest.raises(ScoringConfigError, match=r"scoring\.toml.*KeyError"):
        ScoringConfig.load(broken)
    broken.write_text(
        (Path(__file__).parents[2] / "monitor/escalation/scoring.toml")
        .read_text(encoding="utf-8")
        .replace("[weights]", "[weights]\nweather = 1.0"),
        encoding="utf-8",
    )
    with pytest.raises(ScoringConfigError, match=r"unknown signals.*weather"):
        ScoringConfig.load(broken)


def test_a_wire_copy_fingerprints_close_and_an_unrelated_text_far() -> None:
    wire = "Russian air defence shot down the Azerbaijan Airlines plane over Grozny, Baku says"
    copy = "Russian air defence shot down the Azerbaijan Airlines jet over Grozny, Baku says"
    other = "Moscow, Idaho, city council approves new bike lanes in the university town"
    assert distance(fingerprint(wire), fingerprint(wire)) == 0
    assert distance(fingerprint(wire), fingerprint(copy)) <= CONFIG.stories.copy_distance
    assert distance(fingerprint(wire), fingerprint(other)) > CONFIG.stories.text_distance
