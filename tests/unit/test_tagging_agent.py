"""The tagger's step builds ItemTagged without validating it again: the same event as validated.

`tagged_item` assembles the event from the validated item, the rules and the
tagger's result (see `monitor.tagging.result.trusted`). Here, on every item
of the corpora, it is held to what pydantic's validation of the same values
gives: equal, the same bytes on the wire, the same repr, and readable back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.escalation.archive import load_archive
from monitor.fingerprint import fingerprint
from monitor.tagging.agent import tagged_item
from monitor.tagging.rules import Rules, load_rules
from schemas import ItemCollected, ItemTagged

DATA = Path(__file__).resolve().parents[1] / "data"
CORPORA = ("dev.jsonl", "heldout.jsonl", "fresh.jsonl", "real.jsonl")


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


def corpus_items() -> list[ItemCollected]:
    return [item for name in CORPORA for item in load_archive(DATA / name)]


def test_the_tagged_event_equals_the_validated_one(rules: Rules) -> None:
    items = corpus_items()
    assert len(items) > 900
    relevant = 0
    for item in items:
        tagged = tagged_item(item, rules)
        validated = ItemTagged.model_validate(tagged.model_dump())
        assert list(vars(tagged)) == list(ItemTagged.model_fields), item.item_id
        assert tagged == validated, item.item_id
        assert tagged.model_dump_json() == validated.model_dump_json(), item.item_id
        assert repr(tagged) == repr(validated), item.item_id
        assert ItemTagged.model_validate_json(tagged.model_dump_json()) == tagged
        relevant += tagged.relevant
    assert 0 < relevant < len(items)


def test_only_relevant_items_carry_the_fingerprint_of_title_and_summary(rules: Rules) -> None:
    for item in corpus_items()[:300]:
        tagged = tagged_item(item, rules)
        if tagged.relevant:
            assert tagged.fingerprint == f"{fingerprint(f'{item.title} {item.summary}'):016x}"
        else:
            assert tagged.fingerprint is None
