"""Rule files: what a valid rules directory looks like, and how a broken one is reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.errors import MonitorError
from monitor.tagging import scan
from monitor.tagging.rules import (
    BUNDLED_RULES,
    RuleFileError,
    load_rules,
    parse_term,
    rule_files,
    rules_version,
)
from schemas import SIGNAL_IDS

MINIMAL_ACTORS = """
[[actor]]
id = "az.test"
side = "AZ"
kind = "state"
terms = ["azerbaijan*"]

[[actor]]
id = "ru.test"
side = "RU"
kind = "state"
terms = ["russia*"]
"""

MINIMAL_SIGNAL = """
[signal]
id = "detentions"
polarity = 1
weight = 3.0

[[trigger]]
id = "detentions.test"
terms = ["arrest*"]
"""


def write_rules(directory: Path, **files: str) -> Path:
    for name, text in {"actors.toml": MINIMAL_ACTORS, **files}.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def test_the_bundled_rules_cover_every_signal_of_the_taxonomy() -> None:
    rules = load_rules()
    assert set(rules.signals) == set(SIGNAL_IDS)
    assert {rules.signals[s].polarity for s in ("leader_contact", "conciliation")} == {-1}
    assert all(rules.signals[s].polarity == 1 for s in SIGNAL_IDS[:10])
    assert all(definition.weight > 0 for definition in rules.signals.values())
    assert {trigger.signal for trigger in rules.triggers} == set(SIGNAL_IDS)
    ids = [a.id for a in rules.actors] + [t.id for t in rules.triggers]
    ids += [x.id for x in rules.exclusions]
    assert len(ids) == len(set(ids))


def test_a_minimal_rules_directory_loads_and_tags(tmp_path: Path) -> None:
    rules = load_rules(write_rules(tmp_path, **{"signals/detentions.toml": MINIMAL_SIGNAL}))
    result = scan("Russia arrests Azerbaijanis", "", rules)
    assert result.relevant
    assert result.signals == ("detentions",)


def test_the_version_is_a_hash_of_the_files_and_changes_with_them(tmp_path: Path) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(BUNDLED_RULES, copy)
    assert rules_version(copy) == load_rules().version
    with (copy / "actors.toml").open("a", encoding="utf-8") as actors:
        actors.write("\n# an analyst's comment\n")
    assert rules_version(copy) != load_rules().version
    assert [p.relative_to(copy) for p in rule_files(copy)] == sorted(
        (p.relative_to(copy) for p in rule_files(copy)), key=lambda p: p.as_posix()
    )


@pytest.mark.parametrize(
    ("pattern", "literal", "open_left", "open_right"),
    [
        ("задержа*", "задержа", False, True),
        ("*karabach*", "karabach", True, True),
        ("Baku", "baku", False, False),
        ("  moscow,   idaho ", "moscow, idaho", False, False),
    ],
)
def test_terms_are_words_stems_or_phrases(
    pattern: str, literal: str, open_left: bool, open_right: bool
) -> None:
    term = parse_term(pattern)
    assert (term.literal, term.open_left, term.open_right) == (literal, open_left, open_right)


def test_a_phrase_may_have_inner_stems(tmp_path: Path) -> None:
    signal = MINIMAL_SIGNAL.replace('terms = ["arrest*"]', 'terms = ["militar* bas*"]')
    rules = load_rules(write_rules(tmp_path, **{"signals/detentions.toml": signal}))
    result = scan("Russia closes military bases in Azerbaijan", "", rules)
    assert [e.text for e in result.evidence if e.kind == "signal"] == ["military bases"]
    assert not scan("Russia closes military in Azerbaijan", "", rules).signals


# --- broken files: the message names the file, the line when known, and the reason ---


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    write_rules(
        tmp_path, **{"signals/detentions.toml": MINIMAL_SIGNAL + '\n[[trigger]\nid = "x"\n'}
    )
    with pytest.raises(RuleFileError) as caught:
        load_rules(tmp_path)
    message = str(caught.value)
    assert "signals/detentions.toml:11:" in message
    assert "not valid TOML" in message
    assert caught.value.line == 11
    assert isinstance(caught.value, MonitorError)
    assert isinstance(caught.value, ValueError)


def test_an_unknown_signal_id_is_an_error(tmp_path: Path) -> None:
    broken = MINIMAL_SIGNAL.replace('id = "detentions"', 'id = "sabre_rattling"')
    write_rules(tmp_path, **{"signals/sabre.toml": broken})
    with pytest.raises(RuleFileError, match=r"sabre\.toml:3: unknown signal id 'sabre_rattling'"):
        load_rules(tmp_path)


def test_empty_terms_are_an_error(tmp_path: Path) -> None:
    broken = MINIMAL_SIGNAL.replace('terms = ["arrest*"]', "terms = []")
    write_rules(tmp_path, **{"signals/detentions.toml": broken})
    with pytest.raises(
        RuleFileError,
        match=r"detentions\.toml:8: rule detentions\.test: 'terms' must be a non-empty",
    ):
        load_rules(tmp_path)


@pytest.mark.parametrize("bad_term", ['""', '"*"', '"***"', '"a**b"', "42"])
def test_a_term_that_cannot_match_is_an_error(tmp_path: Path, bad_term: str) -> None:
    broken = MINIMAL_SIGNAL.replace('terms = ["arrest*"]', f'terms = ["arrest*", {bad_term}]')
    write_rules(tmp_path, **{"signals/detentions.toml": broken})
    with pytest.raises(RuleFileError, match=r"detentions\.toml:8: rule detentions\.test: term"):
        load_rules(tmp_path)


def test_a_duplicate_rule_id_is_an_error_naming_both_files(tmp_path: Path) -> None:
    duplicate = MINIMAL_ACTORS.replace('"az.test"', '"ru.test"', 1)
    write_rules(tmp_path, **{"actors.toml": duplicate})
    with pytest.raises(RuleFileError, match=r"duplicate rule id 'ru.test'") as caught:
        load_rules(tmp_path)
    assert caught.value.line == 9


def test_a_signal_declared_twice_is_a_duplicate(tmp_path: Path) -> None:
    again = MINIMAL_SIGNAL.replace('"detentions.test"', '"detentions.other"')
    write_rules(
        tmp_path, **{"signals/detentions.toml": MINIMAL_SIGNAL, "signals/again.toml": again}
    )
    with pytest.raises(RuleFileError, match="duplicate rule id 'detentions'"):
        load_rules(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('side = "AZ"', 'side = "ARM"', "side must be one of AZ, RU"),
        ('kind = "state"', 'kind = "planet"', "kind must be one of"),
        ('terms = ["azerbaijan*"]', 'terms = ["azerbaijan*"]\ncolour = "red"', "unknown key"),
    ],
)
def test_a_malformed_actor_is_an_error(tmp_path: Path, old: str, new: str, reason: str) -> None:
    write_rules(tmp_path, **{"actors.toml": MINIMAL_ACTORS.replace(old, new, 1)})
    with pytest.raises(RuleFileError, match=r"actors\.toml:3: .*" + reason):
        load_rules(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("polarity = 1", "polarity = 2", "polarity must be 1 or -1"),
        ("weight = 3.0", "weight = -1", "weight must be a positive number"),
        ("weight = 3.0", 'weight = "high"', "weight must be a positive number"),
    ],
)
def test_a_malformed_signal_is_an_error(tmp_path: Path, old: str, new: str, reason: str) -> None:
    write_rules(tmp_path, **{"signals/detentions.toml": MINIMAL_SIGNAL.replace(old, new)})
    with pytest.raises(RuleFileError, match=r"detentions\.toml:3: .*" + reason):
        load_rules(tmp_path)


def test_an_underscore_in_a_term_is_an_error(tmp_path: Path) -> None:
    # "_" joins title and summary in the scanned text; a term must never match it.
    broken = MINIMAL_SIGNAL.replace('terms = ["arrest*"]', 'terms = ["under_score"]')
    write_rules(tmp_path, **{"signals/detentions.toml": broken})
    with pytest.raises(RuleFileError, match="reserved"):
        load_rules(tmp_path)


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ('id = "x.list"\nlabel = "l"\nmin_items = 1\njoiners = ["and"]', "min_items"),
        ('id = "x.list"\nlabel = "l"\njoiners = []', "joiners"),
        ('id = "x.list"\nlabel = "l"\njoiners = ["and"]\ncolour = "red"', "unknown key"),
    ],
)
def test_a_malformed_enumeration_is_an_error(tmp_path: Path, table: str, reason: str) -> None:
    write_rules(tmp_path, **{"lists.toml": "[[enumeration]]\n" + table + "\n"})
    with pytest.raises(RuleFileError, match=r"lists\.toml:2: .*" + reason):
        load_rules(tmp_path)


def test_countries_and_enumerations_are_rules_an_analyst_can_write(tmp_path: Path) -> None:
    lists = (
        '[[country]]\nid = "c.x"\nterms = ["kazakhstan"]\n\n'
        '[[enumeration]]\nid = "x.list"\nlabel = "a list"\njoiners = ["and"]\n'
    )
    rules = load_rules(
        write_rules(tmp_path, **{"lists.toml": lists, "signals/detentions.toml": MINIMAL_SIGNAL})
    )
    assert not scan("Kazakhstan, Russia and Azerbaijan arrest smugglers", "", rules).relevant
    assert scan("Russia arrests Azerbaijanis", "", rules).relevant


def test_a_side_without_actors_is_an_error(tmp_path: Path) -> None:
    only_az = MINIMAL_ACTORS.split("[[actor]]")[1]
    write_rules(tmp_path, **{"actors.toml": "[[actor]]" + only_az})
    with pytest.raises(RuleFileError, match="no \\[\\[actor\\]\\] rule for side RU"):
        load_rules(tmp_path)


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="does not exist"):
        load_rules(tmp_path / "nowhere")


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    write_rules(tmp_path)
    (tmp_path / "broken.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RuleFileError, match=r"broken\.toml: cannot read"):
        load_rules(tmp_path)
