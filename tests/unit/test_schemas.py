"""The wire contracts: exported documents match the models, and events round-trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest
from pydantic import ValidationError

from schemas import EVENT_TYPES, ItemCollected, decode, encode
from schemas.export import JSON_DIR, render_all
from tests.factories import item_collected


def test_exported_json_schemas_match_the_models() -> None:
    rendered = render_all()
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in JSON_DIR.glob("*.json")}
    assert set(on_disk) == set(rendered), "run `python -m schemas.export` and commit the result"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} drifted: run `python -m schemas.export`"


def test_every_event_carries_a_schema_version() -> None:
    for event_type in EVENT_TYPES:
        assert "schema_version" in event_type.model_fields, event_type.__name__


def _item(**overrides: object) -> ItemCollected:
    return item_collected(
        title="Baku summons Russian ambassador",
        at=datetime(2025, 7, 1, 11, tzinfo=UTC),
        collected_at=datetime(2025, 7, 1, 12, tzinfo=UTC),
        **overrides,
    )


def test_an_event_round_trips_through_its_wire_form_and_validates_against_its_document() -> None:
    item = _item(summary="Протест в связи с гибелью азербайджанцев в Екатеринбурге")
    raw = encode(item)
    assert decode(ItemCollected, raw) == item
    document = json.loads((JSON_DIR / "ItemCollected.json").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(raw), document)
    assert "Екатеринбурге" in raw.decode("utf-8"), "UTF-8 on the wire, not escaped ASCII"


def test_times_are_normalised_to_utc() -> None:
    baku = timezone(timedelta(hours=4))
    item = _item(event_time=datetime(2025, 7, 1, 15, tzinfo=baku))
    assert item.event_time == datetime(2025, 7, 1, 11, tzinfo=UTC)
    assert b'"event_time":"2025-07-01T11:00:00Z"' in encode(item)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError):
        _item(event_time=datetime(2025, 7, 1, 11))


def test_unknown_fields_from_a_newer_producer_are_ignored() -> None:
    raw = encode(_item())[:-1] + b',"added_in_v1_1":"x"}'
    assert decode(ItemCollected, raw) == _item()


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html,<b>x</b>", "/relative", "ftp://a.az/x"]
)
def test_only_web_links_are_on_the_wire(link: str) -> None:
    with pytest.raises(ValidationError, match="link"):
        _item(link=link)
    assert _item(link="HTTPS://apa.az/news/1").link == "HTTPS://apa.az/news/1"


def test_events_are_immutable() -> None:
    item = _item()
    with pytest.raises(ValidationError):
        item.title = "changed"  # type: ignore[misc]
