"""The escalation's per-record steps: what reaches the escalator, and one record folded in.

The escalator reads `tension.by-dyad`, keyed by dyad: the relevant items of
that dyad, edits of items it may have counted, and the clock's ticks. The
other items (most of the news) never reach it: they carry no signal, and the
collector's ticks tell the passing of time better than they would.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, replace

from monitor.escalation.escalate import Escalation, escalate, tension_state_of
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.state import (
    DyadState,
    StoredState,
    folded_key,
    folded_record,
    header_of,
    is_story_key_of,
    stored_state,
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
    `monitor.escalation.state`, also for the order of writes that keeps it
    consistent through a crash). The decoded state is kept in memory while the
    header stored in the table is the one it was built from; a restore or a
    rebalance that changes the table makes it decode again.
    """

    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table
        self._stored: dict[str, tuple[bytes | None, StoredState]] = {}

    def load(self, dyad: str) -> DyadState:
        header = self.table.get(dyad.encode())
        cached = self._stored.get(dyad)
        if cached is not None and (cached[0] is header or cached[0] == header):
            return cached[1].state
        stored = stored_state(dyad, header, self.table)
        self._drop_orphans(dyad, stored)
        self._stored[dyad] = (header, stored)
        return stored.state

    def _drop_orphans(self, dyad: str, stored: StoredState) -> None:
        """Records no header names: written by a change a crash cut short, or the
        summary's other slot."""
        named = {key.encode() for key in stored.story_keys.values()}
        if stored.folded_key is not None:
            named.add(stored.folded_key.encode())
        orphans = [
            key for key in list(self.table) if is_story_key_of(dyad, key) and key not in named
        ]
        for key in orphans:
            del self.table[key]

    def save(self, result: Escalation) -> bool:
        """Write what the fold changed; True when anything was written."""
        state, change = result.state, result.change
        _, stored = self._stored[state.dyad]
        header = self.table.get(state.dyad.encode())
        if not change.any:
            # The clock moved in memory; the stored header is still the one it continues.
            self._stored[state.dyad] = (header, replace(stored, state=state))
            return False
        writes = stored.writes + 1
        keys = dict(stored.story_keys)
        superseded = []
        for story_id in change.stories_written:
            # The slot the header does not name: the old version stays, unnamed, until
            # the next version overwrites it or the story is folded (no tombstone per
            # update; a restart deletes it).
            slot = 1 if keys.get(story_id) == story_key(state.dyad, story_id, 0) else 0
            key = story_key(state.dyad, story_id, slot)
            self.table[key.encode()] = story_record(state.stories[story_id])
            keys[story_id] = key
        for story_id in change.stories_removed:
            if story_id in keys:
                del keys[story_id]
                superseded += [story_key(state.dyad, story_id, slot) for slot in (0, 1)]
        summary = stored.folded_key
        if change.folded or summary is None:
            # The other slot: the header still names this one until it is written.
            slot = 1 if summary == folded_key(state.dyad, 0) else 0
            summary = folded_key(state.dyad, slot)
            self.table[summary.encode()] = folded_record(state.folded)
        header = header_of(state, keys, summary, writes)
        self.table[state.dyad.encode()] = header
        for key in superseded:
            if key.encode() in self.table:
                del self.table[key.encode()]
        self._stored[state.dyad] = (header, StoredState(state, keys, summary, writes))
        return True


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
        view = tension_state_of(after, config, last, result.weighing)
        tension.append(Outgoing.of(TENSION_STATE, dyad, view))
    return EscalationStep(result, notices, tension)
