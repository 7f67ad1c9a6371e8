"""Given tagged items in event time, when folded into the dyad's state, then these notices."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.escalation.scoring import (
    DyadState,
    ScoringConfig,
    ScoringConfigError,
    escalate,
    next_level,
    tension_state_of,
)
from schemas import DYAD_AZ_RU, EscalationNotice, ItemTagged

CONFIG = ScoringConfig.load()
T0 = datetime(2024, 12, 25, 9, tzinfo=UTC)


def tagged(
    item_id: str,
    signals: Iterable[str],
    at: datetime,
    *,
    relevant: bool = True,
    revision: str = "r1",
) -> ItemTagged:
    return ItemTagged.model_validate(
        {
            "item_id": item_id,
            "revision": revision,
            "source": "Caspian Wire",
            "link": f"https://caspian.example/{item_id}",
            "title": f"headline {item_id}",
            "lang": "en",
            "event_time": at,
            "relevant": relevant,
            "dyad": DYAD_AZ_RU if relevant else None,
            "sides": ["AZ", "RU"] if relevant else [],
            "signals": list(signals),
            "evidence": [],
            "rules_version": "test",
        }
    )


def fold(items: Iterable[ItemTagged]) -> tuple[DyadState, list[EscalationNotice]]:
    state = DyadState(dyad=DYAD_AZ_RU)
    notices: list[EscalationNotice] = []
    for item in items:
        result = escalate(state, item, CONFIG)
        state = result.state
        notices.extend(result.notices)
    return state, notices


def test_a_shoot_down_reported_with_protests_raises_the_level_with_evidence() -> None:
    state, notices = fold(
        [
            tagged("crash", ["armed_incident"], T0),
            tagged("protest", ["armed_incident", "diplomatic_protest"], T0 + timedelta(hours=5)),
        ]
    )
    assert [(n.kind, n.previous_level, n.level) for n in notices] == [
        ("raised", "calm", "elevated"),
        ("raised", "elevated", "high"),
    ]
    high = notices[-1]
    assert high.trigger_item_id == "protest"
    assert {e.item_id for e in high.evidence} == {"crash", "protest"}
    assert high.breakdown["armed_incident"] > high.breakdown["diplomatic_protest"] > 0
    assert state.level == "high"


def test_a_redelivered_item_changes_nothing_and_raises_no_second_notice() -> None:
    crash = tagged("crash", ["armed_incident", "detentions"], T0)
    state, notices = fold([crash])
    again = escalate(state, crash, CONFIG)
    assert len(notices) == 1
    assert again.notices == ()
    assert again.state == state
    assert not again.changed


def test_an_edited_item_replaces_its_contribution_instead_of_adding_to_it() -> None:
    first = tagged("story", ["armed_incident"], T0)
    edited = tagged("story", ["armed_incident"], T0, revision="r2")
    state, _ = fold([first, edited])
    assert len(state.contributions) == 1
    assert state.contributions["story"].revision == "r2"


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
    assert state.contributions == {}


def test_tension_decays_and_reconciliation_lowers_the_level_after_the_dwell() -> None:
    escalation = [
        tagged("crash", ["armed_incident"], T0),
        tagged("protest", ["armed_incident", "diplomatic_protest"], T0 + timedelta(hours=2)),
    ]
    meeting = tagged("meeting", ["leader_contact", "conciliation"], T0 + timedelta(days=20))
    state, notices = fold([*escalation, meeting])
    assert notices[-1].kind == "lowered"
    assert notices[-1].trigger_item_id == "meeting"
    assert state.level == "calm"


def test_the_level_does_not_flap_within_the_minimum_dwell() -> None:
    # Raised to elevated, then a conciliatory item an hour later pulls the index
    # below the lowering threshold: the level holds until the dwell has passed.
    assert next_level("elevated", 0.5, timedelta(hours=1), CONFIG) == "elevated"
    assert next_level("elevated", 0.5, timedelta(hours=30), CONFIG) == "calm"


def test_hysteresis_keeps_the_level_between_the_lowering_and_raising_thresholds() -> None:
    between = CONFIG.raise_at["high"] * (CONFIG.lower_factor + 1) / 2
    assert next_level("high", between, timedelta(days=3), CONFIG) == "high"
    assert next_level("elevated", between, timedelta(days=3), CONFIG) == "elevated"


def test_a_late_item_counts_at_its_own_event_time() -> None:
    earlier = tagged("earlier", ["detentions"], T0)
    later = tagged("later", ["media_crackdown"], T0 + timedelta(days=2))
    in_order, _ = fold([earlier, later])
    out_of_order, _ = fold([later, earlier])
    assert out_of_order.as_of == later.event_time, "a late item does not move the clock back"
    assert tension_state_of(out_of_order, CONFIG).index == pytest.approx(
        tension_state_of(in_order, CONFIG).index
    )
    # Two days old at the state's clock: worth half its weight at a 96-hour half-life.
    assert tension_state_of(out_of_order, CONFIG).breakdown["detentions"] == pytest.approx(
        CONFIG.weights["detentions"] * 0.5 ** (48 / 96), rel=1e-3
    )


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
