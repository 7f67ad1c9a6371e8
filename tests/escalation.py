"""A dyad's log folded as the escalator folds it: one record after another, in log order."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.escalation.escalate import escalate
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.state import DyadState
from schemas import DYAD_AZ_RU, ClockTicked, EscalationNotice, ItemTagged

BUNDLED = ScoringConfig.load()


def fold(
    records: Iterable[ItemTagged | ClockTicked],
    config: ScoringConfig = BUNDLED,
    state: DyadState | None = None,
) -> tuple[DyadState, list[EscalationNotice]]:
    """The state after `records` (from a calm dyad unless given one), and the notices raised."""
    state = state if state is not None else DyadState(dyad=DYAD_AZ_RU)
    notices: list[EscalationNotice] = []
    for record in records:
        result = escalate(state, record, config)
        state = result.state
        notices.extend(result.notices)
    return state, notices
