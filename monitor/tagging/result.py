"""What the tagger returns, and events built from values that are valid by construction.

These types live apart from the algorithm (`matcher.py`, `background.py`), which
is compiled where a compiler is at hand: the compiled and the pure-Python
tagger return the very same classes.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel

from schemas import Evidence

Field = Literal["title", "summary"]
EvidenceKind = Literal["actor", "signal", "exclusion", "note"]


class TagResult(NamedTuple):
    """What the tagger found in one item.

    `signals` follow the order of SIGNAL_IDS; `sides` are a subset of ("AZ", "RU");
    evidence offsets refer to the normalised field text (see `normalise_field`).
    A named tuple rather than a frozen dataclass: as immutable, and built in a
    third of the time, which counts at tens of thousands of items a second.
    """

    relevant: bool
    sides: tuple[str, ...]
    signals: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    lang: str | None
    rules_version: str
    # Signal matches set aside as what the item recalls (monitor.tagging.background).
    background: tuple[Evidence, ...] = ()


Model = TypeVar("Model", bound=BaseModel)
_new_object = object.__new__
_set_attribute = object.__setattr__


def trusted(model: type[Model], values: dict[str, Any]) -> Model:
    """A model made of values that are valid by construction, without validating them.

    What `model_construct` does, minus its per-field default and alias handling:
    `values` must give every field, in the model's order. Validating what the
    tagger built itself from validated parts cost as much as tagging did. Unit
    tests hold the result equal to the validated model, so a pydantic upgrade
    that changes the internals fails there, not in production.
    """
    instance = _new_object(model)
    _set_attribute(instance, "__dict__", values)
    _set_attribute(instance, "__pydantic_fields_set__", set(values))
    _set_attribute(instance, "__pydantic_extra__", None)
    _set_attribute(instance, "__pydantic_private__", None)
    return instance


def evidence_record(
    rule_id: str, kind: EvidenceKind, label: str, field: Field, start: int, end: int, text: str
) -> Evidence:
    """An Evidence from values that are valid by construction (see `trusted`)."""
    return trusted(
        Evidence,
        {
            "rule_id": rule_id,
            "kind": kind,
            "label": label,
            "field": field,
            "start": start,
            "end": end,
            "text": text,
        },
    )
