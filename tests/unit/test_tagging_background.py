"""Background is not news (SIGNALS.md, "What a signal marks"), as an analyst reads it.

Given an item that reports one thing and recalls another, when it is tagged,
then only the news gives a signal, and the evidence shows what was set aside
and which rule did it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.tagging import RuleFileError, Rules, load_rules, tag
from monitor.tagging.agent import tagged_item
from monitor.tagging.rules import BUNDLED_RULES
from schemas import ItemCollected


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


def background_notes(title: str, summary: str, rules: Rules) -> list[str]:
    result = tag(title, summary, rules)
    return [e.text for e in result.evidence if e.rule_id == "note.background"]


def test_an_apology_for_the_crash_is_conciliation_not_a_new_incident(rules: Rules) -> None:
    title = "Putin apologises to Aliyev for the Azerbaijan Airlines crash"
    summary = (
        "In a phone call, Putin told Aliyev that Russian air defence systems had been"
        " firing at Ukrainian drones when the airliner was shot down."
    )
    result = tag(title, summary, rules)
    assert result.signals == ("leader_contact", "conciliation")
    assert {e.label for e in result.background} == {"armed_incident"}
    assert all(e.kind == "signal" for e in result.background)
    notes = background_notes(title, summary, rules)
    assert notes
    assert all("background.answered" in note for note in notes)
    assert any("shot down" in note for note in notes)


def test_a_release_is_conciliation_and_the_arrest_it_ends_is_background(rules: Rules) -> None:
    result = tag(
        "Azerbaijan releases Sputnik Azerbaijan editor detained in June",
        "Igor Kartavykh, arrested in a raid on the agency's Baku office, was freed and"
        " flew to Moscow, Russia's foreign ministry said.",
        rules,
    )
    assert "conciliation" in result.signals
    assert not {"detentions", "media_crackdown"} & set(result.signals)
    assert {"detentions", "media_crackdown"} <= {e.label for e in result.background}


def test_a_summons_over_detentions_is_the_protest_alone(rules: Rules) -> None:
    title = "Russia summons Azerbaijan's ambassador over the detention of Russian journalists"
    result = tag(title, "", rules)
    assert result.signals == ("diplomatic_protest",)
    notes = background_notes(title, "", rules)
    assert any("introduced by 'over'" in note for note in notes)


def test_a_postposition_marks_the_occasion_in_turkish_and_azerbaijani(rules: Rules) -> None:
    result = tag(
        "Azərbaycan Kiyevdəki səfirliyinin atəşə tutulması ilə bağlı Rusiyaya nota verib",
        "",
        rules,
        lang="az",
    )
    assert result.signals == ("diplomatic_protest",)
    assert {e.label for e in result.background} == {"armed_incident"}


def test_new_arrests_reported_beside_a_protest_still_count(rules: Rules) -> None:
    # The headline names the detentions itself: both are the day's news.
    result = tag(
        "Russian police detain 30 Azerbaijanis in Yekaterinburg; Baku summons Russian envoy",
        "",
        rules,
    )
    assert {"detentions", "diplomatic_protest"} <= set(result.signals)
    assert result.background == ()


def test_a_cue_never_takes_away_the_only_signal(rules: Rules) -> None:
    # "after" introduces the raids, but nothing else is reported: they are the news.
    result = tag(
        "Two Azerbaijanis die after Russian police raids in Yekaterinburg",
        "Relatives said the men were beaten in custody.",
        rules,
    )
    assert "detentions" in result.signals
    assert result.background == ()


def test_a_court_remand_is_legal_action_not_a_new_arrest(rules: Rules) -> None:
    result = tag(
        "Baku court remands Russian citizens detained in police raids",
        "The court ordered them held for four months on drug trafficking charges.",
        rules,
    )
    assert result.signals == ("legal_action",)
    assert {e.label for e in result.background} == {"detentions"}


def test_the_tagged_record_carries_what_was_set_aside(rules: Rules) -> None:
    item = ItemCollected(
        item_id="i-1",
        revision="r-1",
        feed_url="https://feeds.example/az",
        source="example",
        title="Putin apologises to Aliyev for the Azerbaijan Airlines crash",
        summary="Russian air defence shot the airliner down, Putin admitted.",
        event_time=datetime(2025, 1, 1, tzinfo=UTC),
        collected_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    tagged = tagged_item(item, rules)
    assert "armed_incident" not in tagged.signals
    assert {e.label for e in tagged.background} == {"armed_incident"}
    decoded = type(tagged).model_validate_json(tagged.model_dump_json())
    assert decoded.background == tagged.background


def test_a_precedence_naming_an_unknown_trigger_is_a_rule_error(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    for path in BUNDLED_RULES.rglob("*.toml"):
        target = rules_dir / path.relative_to(BUNDLED_RULES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (rules_dir / "background.toml").write_text(
        '[[precedence]]\nid = "background.typo"\nreports = ["conciliation.apolgy"]\n'
        'recalls = ["armed_incident"]\n',
        encoding="utf-8",
    )
    with pytest.raises(RuleFileError, match=r"background\.toml.*conciliation\.apolgy"):
        load_rules(rules_dir)
