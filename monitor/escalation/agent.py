"""The escalation's per-record steps: what reaches the escalator, and one record folded in.

The escalator reads `tension.by-dyad`, keyed by dyad: the relevant items of
that dyad, edits of items it may have counted, and the clock's ticks. The
other items (most of the news) never reach it: they carry no signal, and the
collector's ticks tell the passing of time better than they would.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from monitor.escalation.escalate import Escalation, escalate, tension_state_of
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.state import (
    DyadState,
    header_of,
    state_from,
    story_key,
    story_record,
)
from monitor.records import Origin, Outgoing, RawRecord
from monitor.topics import ALERTS_ESCALATIONS, TENSION_BY_DYAD, TENSION_STATE
from schemas import DYAD_AZ_RU, ClockTicked, ItemCollected, ItemTagged, decode_dyad_record

# The dyads the monitor watches; tagging decides which one an item concerns.
DYADS: tuple[str, ...] = (DYAD_AZ_RU,)


class UnknownDyadError(ValueError):
    """A tension.by-dyad record keyed by a dyad the monitor does not watch."""


def reaches_escalator(collected: ItemCollected, tagged: ItemTagged) -> bool:
    """Relevant items, and edits (which may take back an item counted before)."""
    return tagged.relevant or collected.revises is not None


def dyad_records(
    collected: ItemCollected, tagged: ItemTagged, origin: Origin | None
) -> list[Outgoing]:
    """The tension.by-dyad records for one tagged item: to its dyad, or to all for an edit.

    `origin` is the item's place on news.items: the escalator skips what it already
    folded in from there, when the tagger sends it again after a crash.
    """
    if tagged.relevant and tagged.dyad:
        return [Outgoing.of(TENSION_BY_DYAD, tagged.dyad, tagged, origin)]
    if reaches_escalator(collected, tagged):
        return [Outgoing.of(TENSION_BY_DYAD, dyad, tagged, origin) for dyad in DYADS]
    return []


def tick_records(tick: ClockTicked, origin: Origin | None) -> list[Outgoing]:
    return [Outgoing.of(TENSION_BY_DYAD, dyad, tick, origin) for dyad in DYADS]


class DyadStates:
    """The dyads' states over the escalator's table: decoded once, written per change.

    The table holds a header per dyad and a record per live story (see
    `monitor.escalation.state`). The decoded state is kept in memory while the
    header stored in the table is the one it was built from; a restore or a
    rebalance that changes the table makes it decode again.
    """

    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table
        self._decoded: dict[str, tuple[bytes | None, DyadState]] = {}

    def load(self, dyad: str) -> DyadState:
        header = self.table.get(dyad.encode())
        cached = self._decoded.get(dyad)
        if cached is not None and (cached[0] is header or cached[0] == header):
            return cached[1]
        state = state_from(dyad, header, self.table)
        self._decoded[dyad] = (header, state)
        return state

    def save(self, result: Escalation) -> bool:
        """Write what the fold changed; True when anything was written."""
        state, change = result.state, result.change
        for story_id in change.stories_written:
            self.table[story_key(state.dyad, story_id)] = story_record(state.stories[story_id])
        for story_id in change.stories_removed:
            key = story_key(state.dyad, story_id)
            if key in self.table:
                del self.table[key]
        header = self.table.get(state.dyad.encode())
        if change.header:
            header = header_of(state)
            self.table[state.dyad.encode()] = header
        # Also when nothing was written: the clock moved in memory, and the stored
        # header is still the one this state continues from.
        self._decoded[state.dyad] = (header, state)
        return change.any


@dataclass(frozen=True)
class EscalationStep:
    result: Escalation
    notices: list[Outgoing]
    tension: list[Outgoing]  # the dyad's TensionState, when there is news of it


def escalate_record(record: RawRecord, states: DyadStates, config: ScoringConfig) -> EscalationStep:
    """Fold one tension.by-dyad record; raises on a record that is not one (dead letter)."""
    dyad = (record.key or b"").decode("utf-8", errors="replace")
    if dyad not in DYADS:
        raise UnknownDyadError(f"key {dyad!r} is not a watched dyad ({', '.join(DYADS)})")
    incoming = decode_dyad_record(record.value)
    before = states.load(dyad)
    result = escalate(before, incoming, config, origin=record.derived_from())
    notices = [Outgoing.of(ALERTS_ESCALATIONS, n.dyad, n) for n in result.notices]
    after = result.state
    # The compacted view moves with every item (a redelivered one too, so that it
    # ends on the truth after a crash) and every hour the clock passes: a quiet
    # night shows its decay without waiting for news.
    news = isinstance(incoming, ItemTagged) or after.judged_until != before.judged_until
    tension = []
    if news and after.clock is not None:
        last = (
            incoming.item_id
            if isinstance(incoming, ItemTagged)
            else f"clock:{incoming.at.isoformat()}"
        )
        tension.append(Outgoing.of(TENSION_STATE, dyad, tension_state_of(after, config, last)))
    return EscalationStep(result, notices, tension)
