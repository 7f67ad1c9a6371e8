"""The escalation's per-record steps: route tagged items by dyad, fold them into state."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.escalation.scoring import DyadState, ScoringConfig, escalate, tension_state_of
from monitor.records import Outgoing, RawRecord
from monitor.topics import ALERTS_ESCALATIONS, TENSION_BY_DYAD, TENSION_STATE
from schemas import DYAD_AZ_RU, ItemTagged, decode

# The dyads the monitor watches; tagging decides which one an item concerns.
DYADS: tuple[str, ...] = (DYAD_AZ_RU,)


def route_record(record: RawRecord) -> list[Outgoing]:
    """Relevant items go to their dyad; every other item goes to every dyad as a tick.

    Ticks carry event time: they let a quiet dyad's decisions settle and its
    level fall as time passes, without waiting for the next relevant item.
    """
    tagged = decode(ItemTagged, record.value)
    dyads = [tagged.dyad] if tagged.relevant and tagged.dyad else list(DYADS)
    return [Outgoing(TENSION_BY_DYAD, dyad.encode("utf-8"), record.value) for dyad in dyads]


@dataclass(frozen=True)
class EscalationStep:
    state: bytes | None  # the new table value, or None when unchanged
    notices: list[Outgoing]
    tension: Outgoing


def escalate_record(
    record: RawRecord, stored: bytes | None, config: ScoringConfig
) -> EscalationStep:
    tagged = decode(ItemTagged, record.value)
    dyad = (record.key or b"").decode("utf-8") or tagged.dyad or DYADS[0]
    state = DyadState.model_validate_json(stored) if stored else DyadState(dyad=dyad)
    result = escalate(state, tagged, config)
    notices = [Outgoing.of(ALERTS_ESCALATIONS, n.dyad, n) for n in result.notices]
    # Published for redeliveries too: the compacted topic always ends on the truth.
    tension = Outgoing.of(
        TENSION_STATE, dyad, tension_state_of(result.state, config, tagged.item_id)
    )
    new_state = result.state.model_dump_json().encode("utf-8") if result.changed else None
    return EscalationStep(new_state, notices, tension)
