"""Background is not news: the signal matches an item recalls rather than reports.

    result = set_aside(result, title_text, summary_text, rules)

SIGNALS.md, "What a signal marks": an apology is told with the crash it
apologises for, a protest note with the arrests it protests; the crash and
the arrests are background and give no signal. Two rules of
`rules/background.toml` say so, applied to the scan's result (`matcher.tag`
runs it; compiled where the matcher is, from this same file):

- a [[precedence]]: an item that reports an answer (an apology, a release,
  a flight suspension…) only recalls the incidents it answers, wherever in
  the item they are named;
- a [[cue]]: a match introduced by "over", "after", "в связи с", "nach",
  "ardından"… in the same sentence is the occasion of something else, so it
  is set aside when the item reports something else too.

Matches set aside leave the evidence for `TagResult.background`, each with a
note saying which rule set it aside and why, so an analyst sees both what
counted and what did not.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES

from monitor.tagging.result import TagResult
from monitor.tagging.rules import CueRule, Rules, fold
from schemas import Evidence

try:  # the C kernel (setup.py builds it), or its definition
    from monitor.tagging._text import evidence
except ImportError:
    from monitor.tagging.text import evidence

# Compiled with the matcher (setup.py), from this file and background.pxd.
COMPILED = __file__.endswith(tuple(EXTENSION_SUFFIXES))

# Where a sentence or clause ends: a cue does not reach across one.
_SENTENCE_MARKS = (".", "!", "?", ";", ":", "…")


def set_aside(result: TagResult, title_text: str, summary_text: str, rules: Rules) -> TagResult:
    """The result without the signals that are only background, and why.

    `title_text` and `summary_text` are the normalised fields the evidence
    offsets refer to (`normalise_field`).
    """
    recallable = rules.recallable
    if len(result.signals) < 2 or recallable.isdisjoint(result.signals):
        return result
    rows = [e for e in result.evidence if e.kind == "signal"]
    reasons: dict[int, str] = {}

    reported = {e.rule_id: e for e in rows}
    in_headline = {e.rule_id: e for e in rows if e.field == "title"}
    headline_signals = {e.label for e in in_headline.values()}
    for precedence in rules.precedences:
        found = in_headline if precedence.headline else reported
        answer = None
        for trigger_id in precedence.reports:
            if trigger_id in found:
                answer = found[trigger_id]
                break
        if answer is None or (precedence.headline and precedence.recalls & headline_signals):
            continue
        for index, row in enumerate(rows):
            if row.label in precedence.recalls and row.label != answer.label:
                reasons.setdefault(
                    index,
                    f"{precedence.id}: the item reports {answer.label}"
                    f" ({answer.rule_id} {answer.text!r})",
                )

    candidates = [
        (index, row, cue)
        for index, row in enumerate(rows)
        if index not in reasons
        for cue in rules.cues
        if row.label in cue.recalls
    ]
    if candidates:
        cued: dict[int, str] = {}
        for index, row, cue in candidates:
            if index not in cued:
                text = title_text if row.field == "title" else summary_text
                word = _cue_at(cue, text, row.start, row.end)
                if word is not None:
                    cued[index] = f"{cue.id}: introduced by {word!r}, it is the occasion"
        # A cue only says what else the item reports: one signal must remain.
        remaining = {row.label for i, row in enumerate(rows) if i not in reasons and i not in cued}
        if remaining:
            reasons.update(cued)

    if not reasons:
        return result
    counted = {row.label for i, row in enumerate(rows) if i not in reasons}
    background = tuple([rows[i] for i in sorted(reasons)])
    aside = {id(row) for row in background}
    notes = tuple([_note(rows[i], reason) for i, reason in sorted(reasons.items())])
    return result._replace(
        signals=tuple([s for s in result.signals if s in counted]),
        evidence=tuple([e for e in result.evidence if id(e) not in aside]) + notes,
        background=background,
    )


def _cue_at(cue: CueRule, text: str, start: int, end: int) -> str | None:
    """The cue phrase that introduces text[start:end] in its sentence, if any."""
    if cue.before is not None:
        sentence_start = max([text.rfind(mark, 0, start) for mark in _SENTENCE_MARKS]) + 1
        words = fold(text[sentence_start:start]).split()[-cue.window_tokens :]
        found = cue.before.search(" ".join(words))
        if found is not None:
            return found.group(0)
    if cue.after is not None:
        ends = [at for mark in _SENTENCE_MARKS if (at := text.find(mark, end)) >= 0]
        words = fold(text[end : min(ends, default=len(text))]).split()[: cue.window_tokens]
        found = cue.after.search(" ".join(words))
        if found is not None:
            return found.group(0)
    return None


def _note(row: Evidence, reason: str) -> Evidence:
    return evidence(
        "note.background",
        "note",
        "background",
        row.field,
        row.start,
        row.end,
        f"{row.label} {row.text!r} set aside as background ({reason})",
    )
