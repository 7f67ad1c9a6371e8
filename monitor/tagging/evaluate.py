"""Scoring the tagger on a labelled corpus (format: shared/design/SIGNALS.md).

    items = load_corpus(path)
    report = evaluate(items, rules)
    print(report.format_text())

Relevance is scored with precision, recall and F1 over all items. Signals are
scored micro-averaged over the items that are relevant in the gold labels
(a signal on an item that is not relevant is already a relevance error), both
overall and per language, plus P/R/F1 per signal, and a confusion of the
most frequent mistakes (which gold label was tagged as what) so that a rule
author sees where to look. Pure: no I/O besides `load_corpus`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.tagging import TagResult, tag
from monitor.tagging.rules import Rules
from schemas import SIGNAL_IDS


class CorpusError(ValueError):
    """A corpus line is not a labelled item; the message names file and line."""


@dataclass(frozen=True)
class LabelledItem:
    id: str
    lang: str
    title: str
    summary: str
    relevant: bool
    signals: frozenset[str]


def load_corpus(path: Path | str) -> list[LabelledItem]:
    """Read a JSON-lines corpus; blank lines are skipped, anything malformed raises CorpusError."""
    path = Path(path)
    items = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                gold = record["gold"]
                signals = frozenset(str(s) for s in gold.get("signals", []))
                unknown = signals - set(SIGNAL_IDS)
                if unknown:
                    raise ValueError(f"unknown signal(s) {sorted(unknown)}")
                items.append(
                    LabelledItem(
                        id=str(record["id"]),
                        lang=str(record["lang"]),
                        title=str(record.get("title", "")),
                        summary=str(record.get("summary", "")),
                        relevant=bool(gold["relevant"]),
                        signals=signals,
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise CorpusError(f"{path}:{number}: {exc!r}") from exc
    return items


@dataclass(frozen=True)
class Score:
    """Precision, recall and F1 from counts; an empty denominator scores 1.0 (nothing to miss)."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.true_positives + other.true_positives,
            self.false_positives + other.false_positives,
            self.false_negatives + other.false_negatives,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.true_positives,
            "fp": self.false_positives,
            "fn": self.false_negatives,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


@dataclass(frozen=True)
class Miss:
    """An item the tagger got wrong, with what it said and why."""

    id: str
    lang: str
    title: str
    gold_relevant: bool
    tagged_relevant: bool
    missing_signals: tuple[str, ...]
    extra_signals: tuple[str, ...]
    evidence: tuple[str, ...]

    @property
    def cost(self) -> int:
        # A relevance error is worse than any signal error: it hides or invents an item.
        return (
            10 * (self.gold_relevant != self.tagged_relevant)
            + len(self.missing_signals)
            + len(self.extra_signals)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lang": self.lang,
            "title": self.title,
            "gold_relevant": self.gold_relevant,
            "tagged_relevant": self.tagged_relevant,
            "missing_signals": list(self.missing_signals),
            "extra_signals": list(self.extra_signals),
            "evidence": list(self.evidence),
        }


# The "nothing" side of a confusion: a signal tagged where the gold has none
# to match it, or a gold signal the tagger left untagged.
NOTHING = "-"


@dataclass(frozen=True)
class Confusion:
    """How often gold label `gold` came out as `tagged`, over the corpus.

    Relevance mistakes read "relevant" -> "not relevant" and the reverse;
    signal mistakes pair each missing gold signal with each extra tagged one
    on the same item, or with NOTHING when the other side is empty.
    """

    gold: str
    tagged: str
    count: int
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gold": self.gold,
            "tagged": self.tagged,
            "count": self.count,
            "examples": list(self.examples),
        }


def _confusions(misses: Sequence[Miss], examples: int = 3) -> tuple[Confusion, ...]:
    found: dict[tuple[str, str], list[str]] = {}
    for miss in misses:
        if miss.gold_relevant != miss.tagged_relevant:
            pairs = [
                ("relevant", "not relevant") if miss.gold_relevant else ("not relevant", "relevant")
            ]
        else:
            pairs = [
                (gold, tagged)
                for gold in miss.missing_signals or (NOTHING,)
                for tagged in miss.extra_signals or (NOTHING,)
            ]
        for pair in pairs:
            found.setdefault(pair, []).append(miss.id)
    ranked = sorted(found.items(), key=lambda entry: (-len(entry[1]), entry[0]))
    return tuple(
        Confusion(gold, tagged, len(ids), tuple(ids[:examples])) for (gold, tagged), ids in ranked
    )


CONFUSIONS_SHOWN = 12


@dataclass(frozen=True)
class Report:
    items: int
    rules_version: str
    relevance: Score
    signals: Score
    relevance_by_lang: dict[str, Score]
    signals_by_lang: dict[str, Score]
    per_signal: dict[str, Score]
    language_detected_correctly: int
    worst_misses: tuple[Miss, ...] = field(default=())
    confusions: tuple[Confusion, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "rules_version": self.rules_version,
            "relevance": self.relevance.to_dict(),
            "signals": self.signals.to_dict(),
            "relevance_by_lang": {k: v.to_dict() for k, v in self.relevance_by_lang.items()},
            "signals_by_lang": {k: v.to_dict() for k, v in self.signals_by_lang.items()},
            "per_signal": {k: v.to_dict() for k, v in self.per_signal.items()},
            "language_detected_correctly": self.language_detected_correctly,
            "worst_misses": [m.to_dict() for m in self.worst_misses],
            "confusions": [c.to_dict() for c in self.confusions],
        }

    def format_text(self) -> str:
        def row(name: str, score: Score) -> str:
            return (
                f"  {name:<22} P {score.precision:6.3f}  R {score.recall:6.3f}  F1 {score.f1:6.3f}"
                f"   (tp {score.true_positives}, fp {score.false_positives},"
                f" fn {score.false_negatives})"
            )

        lines = [
            f"{self.items} items, rules {self.rules_version}; language detected right for"
            f" {self.language_detected_correctly}/{self.items}",
            "relevance",
            row("all", self.relevance),
            *(row(lang, score) for lang, score in self.relevance_by_lang.items()),
            "signals (micro, over gold-relevant items)",
            row("all", self.signals),
            *(row(lang, score) for lang, score in self.signals_by_lang.items()),
            "per signal",
            *(row(signal, score) for signal, score in self.per_signal.items()),
        ]
        if self.confusions:
            lines.append(f"most frequent mistakes (gold -> tagged; {NOTHING} is none)")
            for confusion in self.confusions[:CONFUSIONS_SHOWN]:
                lines.append(
                    f"  {confusion.count:4d}  {confusion.gold:>20} -> {confusion.tagged:<20}"
                    f" e.g. {', '.join(confusion.examples)}"
                )
        if self.worst_misses:
            lines.append("worst misses")
            for miss in self.worst_misses:
                verdict = (
                    f"relevant: gold {miss.gold_relevant}, tagged {miss.tagged_relevant}"
                    if miss.gold_relevant != miss.tagged_relevant
                    else ""
                )
                details = [
                    verdict,
                    f"missing {', '.join(miss.missing_signals)}" if miss.missing_signals else "",
                    f"extra {', '.join(miss.extra_signals)}" if miss.extra_signals else "",
                ]
                lines.append(f"  {miss.id} [{miss.lang}] {miss.title}")
                lines.append(f"      {'; '.join(d for d in details if d)}")
                if miss.evidence:
                    lines.append(f"      evidence: {' | '.join(miss.evidence)}")
        return "\n".join(lines)


def _relevance_score(gold: bool, tagged: bool) -> Score:
    return Score(int(gold and tagged), int(tagged and not gold), int(gold and not tagged))


def _signal_score(gold: Iterable[str], tagged: Iterable[str]) -> Score:
    gold_set, tagged_set = set(gold), set(tagged)
    return Score(len(gold_set & tagged_set), len(tagged_set - gold_set), len(gold_set - tagged_set))


def evaluate(
    items: Sequence[LabelledItem],
    rules: Rules,
    *,
    declared_lang: bool = False,
    worst: int = 15,
) -> Report:
    """Tag every item and score the results against the gold labels.

    `declared_lang`: pass the corpus language to the tagger (as a feed's
    catalogue would) instead of letting it detect the language.
    """
    relevance = Score()
    signals = Score()
    relevance_by_lang: dict[str, Score] = {}
    signals_by_lang: dict[str, Score] = {}
    per_signal = {signal: Score() for signal in SIGNAL_IDS}
    detected_right = 0
    misses = []
    for item in items:
        result: TagResult = tag(
            item.title, item.summary, rules, lang=item.lang if declared_lang else None
        )
        detected_right += result.lang == item.lang
        relevance_score = _relevance_score(item.relevant, result.relevant)
        relevance += relevance_score
        relevance_by_lang[item.lang] = relevance_by_lang.get(item.lang, Score()) + relevance_score
        tagged_signals = set(result.signals) if result.relevant else set()
        if item.relevant:
            signal_score = _signal_score(item.signals, tagged_signals)
            signals += signal_score
            signals_by_lang[item.lang] = signals_by_lang.get(item.lang, Score()) + signal_score
            for signal in SIGNAL_IDS:
                per_signal[signal] += _signal_score(
                    item.signals & {signal}, tagged_signals & {signal}
                )
        gold_signals = item.signals if item.relevant else frozenset()
        if item.relevant != result.relevant or gold_signals != tagged_signals:
            misses.append(
                Miss(
                    id=item.id,
                    lang=item.lang,
                    title=item.title,
                    gold_relevant=item.relevant,
                    tagged_relevant=result.relevant,
                    missing_signals=tuple(
                        s for s in SIGNAL_IDS if s in gold_signals - tagged_signals
                    ),
                    extra_signals=tuple(
                        s for s in SIGNAL_IDS if s in tagged_signals - gold_signals
                    ),
                    evidence=tuple(
                        f"{e.kind}:{e.label}:{e.rule_id}:{e.text!r}"
                        for e in result.evidence
                        if e.kind != "actor" or not result.relevant
                    ),
                )
            )
    misses.sort(key=lambda miss: (-miss.cost, miss.id))
    return Report(
        items=len(items),
        rules_version=rules.version,
        relevance=relevance,
        signals=signals,
        relevance_by_lang=dict(sorted(relevance_by_lang.items())),
        signals_by_lang=dict(sorted(signals_by_lang.items())),
        per_signal=per_signal,
        language_detected_correctly=detected_right,
        worst_misses=tuple(misses[:worst]),
        confusions=_confusions(misses),
    )
