"""The escalation's per-record steps: route tagged items by dyad, fold them into state."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.escalation.scoring import DyadState, ScoringConfig, escalate
from monitor.records import Outgoing, RawRecord
from monitor.topics import ALERTS_ESCALATIONS, TENSION_BY_DYAD, TENSION_STATE
from schemas import ItemTagged, decode


def route_record(record: RawRecord) -> list[Outgoing]:
    """Relevant items go on, keyed by their dyad; the rest stop here."""
    tagged = decode(ItemTagged, record.value)
    if not tagged.relevant or tagged.dyad is None:
        return []
    return [Outgoing(TENSION_BY_DYAD, tagged.dyad.encode("utf-8"), record.value)]


@dataclass(frozen=True)
class EscalationStep:
    state: bytes | None  # the new table value, or None when unchanged
    outgoing: list[Outgoing]


def escalate_record(
    record: RawRecord, stored: bytes | None, config: ScoringConfig
) -> EscalationStep:
    tagged = decode(ItemTagged, record.value)
    dyad = tagged.dyad or (record.key or b"").decode("utf-8")
    state = DyadState.model_validate_json(stored) if stored else DyadState(dyad=dyad)
    result = escalate(state, tagged, config)
    outgoing = [Outgoing.of(ALERTS_ESCALATIONS, n.dyad, n) for n in result.notices]
    if result.state.as_of is not None:
        # Published for redeliveries too: the compacted topic always ends on the truth.
        outgoing.append(Outgoing.of(TENSION_STATE, dyad, result.tension_state(config)))
    new_state = result.state.model_dump_json().encode("utf-8") if result.changed else None
    return EscalationStep(new_state, outgoing)
