"""The tagger: a pure function from a headline and summary to relevance, signals and evidence.

    tag(title, summary, rules, lang=None) -> TagResult

How an item is read:

1. Each field is normalised (`normalise_field`): HTML tags stripped and entities
   unescaped, Unicode NFKC, control characters and runs of white space turned
   into one space, soft hyphens and zero-width characters removed, cut to
   MAX_FIELD_CHARS. **Evidence offsets refer to this normalised text**:
   `normalise_field(title)[e.start:e.end] == e.text`.
2. The language is the declared one, or guessed offline (`detect_language`).
3. The text is folded to lower case without changing its length (`rules.fold`):
   İ→i always, I→ı only for Turkish and Azerbaijani, ё→е.
4. One Aho–Corasick automaton finds every term of every rule in one pass; a
   match counts when its closed ends sit on word boundaries.
5. Actor mentions explained by a matching exclusion (Moscow, Idaho; a football
   fixture) are dropped. The item is relevant when mentions of both sides
   remain: an asset, outlet or official of the other side is itself an actor
   (Sputnik is RU, SOCAR is AZ), so "Baku raids Sputnik" has both.
6. On a relevant item, a trigger gives its signal when an actor mention is in
   the same sentence or within the rules' window of tokens, and its `near` and
   `unless` conditions hold.

Nothing here raises on odd input: empty, binary or huge text gives an answer.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Literal

from monitor.tagging.rules import (
    ROLE_ACTOR,
    ROLE_EXCLUSION,
    ROLE_NEAR,
    ROLE_TRIGGER,
    ROLE_UNLESS,
    Rules,
    fold,
    scan_form,
)
from schemas import SIGNAL_IDS, Evidence

# Matches listed per rule in the evidence; the rest are counted in a note.
MAX_EVIDENCE_PER_RULE = 3
MAX_FIELD_CHARS = 20_000
# Raw text beyond this is not even normalised: markup rarely shrinks text 8-fold.
_RAW_LIMIT = MAX_FIELD_CHARS * 8

Field = Literal["title", "summary"]
FIELDS: tuple[Field, Field] = ("title", "summary")
_SIGNAL_ORDER = {signal: position for position, signal in enumerate(SIGNAL_IDS)}
_KIND_ORDER = {"note": 0, "exclusion": 1, "actor": 2, "signal": 3}


@dataclass(frozen=True)
class TagResult:
    """What the tagger found in one item.

    `signals` follow the order of SIGNAL_IDS; `sides` are a subset of ("AZ", "RU");
    evidence offsets refer to the normalised field text (see `normalise_field`).
    """

    relevant: bool
    sides: tuple[str, ...]
    signals: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    lang: str | None
    rules_version: str


# --- normalisation -----------------------------------------------------------

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[!/?]?[A-Za-z][^<>]{0,2000}>|<!--.*?-->", re.S)
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# Control characters and white space of every kind become one plain space.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return ""


def _normalise(text: str) -> tuple[str, int]:
    """The normalised text, cut to MAX_FIELD_CHARS, and its length before the cut."""
    text = text[:_RAW_LIMIT]
    if "<" in text:
        text = _SCRIPT_OR_STYLE.sub(" ", text)
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    # isprintable() is False for any control character and any space but " ":
    # a cheap test that spares the regex on clean text.
    if not text.isprintable() or "  " in text:
        text = _SPACE_OR_CONTROL.sub(" ", text)
    text = text.strip()
    return text[:MAX_FIELD_CHARS].rstrip(), len(text)


def normalise_field(text: str) -> str:
    """The text that evidence offsets refer to."""
    return _normalise(_as_text(text))[0]


# --- language ----------------------------------------------------------------

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_TURKISH_LETTERS = re.compile(r"[ğĞşŞıİ]")
_GERMAN_LETTERS = re.compile(r"[äÄß]")
# fmt: off
_STOPWORDS = {
    "en": ("the", "a", "an", "and", "of", "to", "for", "with", "on", "is", "was", "are", "after",
           "from", "by", "that", "has", "have", "said", "its", "at"),
    "de": ("der", "die", "das", "und", "nicht", "mit", "ein", "eine", "im", "zu", "von", "den",
           "dem", "des", "sich", "auf", "ist", "wird", "nach", "bei", "für", "über", "aus", "hat",
           "sei", "auch"),
    "tr": ("ve", "bir", "ile", "için", "bu", "olarak", "ise", "da", "de", "daha", "çok", "sonra",
           "olan", "etti", "ettiği", "ancak"),
}
# fmt: on
_STOPWORD_SETS = {lang: frozenset(words) for lang, words in _STOPWORDS.items()}
_CYRILLIC_RUN = re.compile(r"[\u0400-\u04ff]+")
_LATIN_RUN = re.compile(r"[A-Za-z]+")


def detect_language(text: str) -> str:
    """Guess en, ru, de, az or tr from letters and stop words; offline and cheap.

    ə is Azerbaijani; mostly Cyrillic is Russian; otherwise stop words vote,
    with ğ ş ı counting for Turkish and ä ß for German (names such as Qarabağ
    or Erdoğan in an English text are outvoted by its "the" and "of").
    """
    sample = text[:600]
    if not sample.isascii():
        if "ə" in sample or "Ə" in sample:
            return "az"
        if _CYRILLIC.search(sample):
            cyrillic = len(sample) - len(_CYRILLIC_RUN.sub("", sample))
            if cyrillic >= len(sample) - len(_LATIN_RUN.sub("", sample)):
                return "ru"
    words = sample.lower().split()
    votes = {
        lang: float(sum(map(stopwords.__contains__, words)))
        for lang, stopwords in _STOPWORD_SETS.items()
    }
    votes["en"] += 0.5  # a tie goes to English
    if not sample.isascii():
        votes["tr"] += 2 * len(_TURKISH_LETTERS.findall(sample))
        votes["de"] += len(_GERMAN_LETTERS.findall(sample))
    return max(votes, key=votes.__getitem__)


# --- matching ----------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…]+[\"'»”’)\]]*\s")

# A hit: (field index, start, end, role, rule index).
_Hit = tuple[int, int, int, int, int]


def _scan(folded: str, field_index: int, rules: Rules, hits: list[_Hit]) -> None:
    """Append every rule match in `folded`; a stem's match covers its whole word."""
    scanned = scan_form(folded)
    # scanned[i] is folded[i - 1]: the pad shifts offsets by one, and every
    # non-word character is a space, so str.find locates word edges.
    for last, (length, lead, trail, entries) in rules.automaton.iter(scanned):
        key_start = last - length + 1
        start = key_start if lead else scanned.rfind(" ", 0, key_start)
        for role, index, tail, open_right in entries:
            if tail is None:
                end = last - 1 if trail else scanned.find(" ", last) - 1
                hits.append((field_index, start, end, role, index))
                continue
            # A phrase with inner stems: the regex picks up where the literal ends.
            extended = tail.match(scanned, last + 1)
            if extended is None:
                continue
            if open_right:
                hits.append(
                    (field_index, start, scanned.find(" ", extended.end()) - 1, role, index)
                )
            elif scanned[extended.end()] == " ":
                hits.append((field_index, start, extended.end() - 1, role, index))


_Sentence = tuple[int, int]  # (field index, sentence number in the field)
_Place = tuple[_Sentence, _Sentence, int]  # sentence, the sentence before it, token number


class _Positions:
    """Sentence and token positions of hits, computed only for relevant items."""

    def __init__(self, folded: tuple[str, str]) -> None:
        self.folded = folded
        self.sentence_ends = [
            [m.end() for m in _SENTENCE_END.finditer(text)] if text else [] for text in folded
        ]
        # Summary tokens are counted after the title's, so a title trigger can
        # be near a mention at the start of the summary.
        self.token_offset = (0, folded[0].count(" ") + 2 if folded[0] else 0)

    def sentence(self, hit: _Hit) -> _Sentence:
        return hit[0], bisect_right(self.sentence_ends[hit[0]], hit[1])

    def locate(self, hit: _Hit) -> _Place:
        field, number = self.sentence(hit)
        # The sentence before counts as near too: "He said..." follows the
        # sentence that names him; before the summary's first comes the title's last.
        before = (field, number - 1) if number or not field else (0, len(self.sentence_ends[0]))
        token = self.token_offset[field] + self.folded[field].count(" ", 0, hit[1])
        return (field, number), before, token


class _Mentions:
    """Where the hits of one group are (actors, or one rule's `near` terms), for nearness queries.

    A mention is near a place in the same sentence, in the sentence before it,
    or within `window` tokens. A few mentions (the usual case) are searched
    one by one; many (a long text) are indexed by sentence and token.
    """

    _INDEX_ABOVE = 24

    def __init__(self, located: list[tuple[_Place, str]]) -> None:
        self.located = located
        self.indexed = len(located) > self._INDEX_ABOVE
        if self.indexed:
            self.by_sentence: dict[_Sentence, set[str]] = {}
            for (sentence, _, _), label in located:
                self.by_sentence.setdefault(sentence, set()).add(label)
            by_token = sorted((token, label) for (_, _, token), label in located)
            self.tokens = [token for token, _ in by_token]
            self.labels = [label for _, label in by_token]

    def near(self, place: _Place, window: int) -> set[str]:
        sentence, before, token = place
        if not self.indexed:
            return {
                label
                for (other, _, other_token), label in self.located
                if other in (sentence, before) or abs(other_token - token) <= window
            }
        found = set(self.by_sentence.get(sentence, ()))
        found.update(self.by_sentence.get(before, ()))
        low = bisect_left(self.tokens, token - window)
        high = bisect_right(self.tokens, token + window)
        found.update(self.labels[low:high])
        return found


EvidenceKind = Literal["actor", "signal", "exclusion", "note"]


def _evidence(
    rule_id: str, kind: EvidenceKind, label: str, hit: _Hit, texts: tuple[str, str]
) -> Evidence:
    # Validated construction is faster in pydantic v2 than model_construct.
    return Evidence(
        rule_id=rule_id,
        kind=kind,
        label=label,
        field=FIELDS[hit[0]],
        start=hit[1],
        end=hit[2],
        text=texts[hit[0]][hit[1] : hit[2]],
    )


def tag(title: str, summary: str, rules: Rules, lang: str | None = None) -> TagResult:
    """Decide relevance and signals of one item; pure, and never raises on odd input."""
    raw = (_as_text(title), _as_text(summary))
    normalised = tuple(_normalise(text) for text in raw)
    texts = (normalised[0][0], normalised[1][0])
    if lang is None:
        lang = detect_language(texts[0] + " " + texts[1]) if texts[0] or texts[1] else None
    folded = (fold(texts[0], lang), fold(texts[1], lang))

    hits: list[_Hit] = []
    for field_index, text in enumerate(folded):
        if text:
            _scan(text, field_index, rules, hits)

    notes = [
        Evidence(
            rule_id="note.truncated",
            kind="note",
            label="truncated",
            field=FIELDS[field_index],
            start=MAX_FIELD_CHARS,
            end=full_length,
            text=f"only the first {MAX_FIELD_CHARS} of {full_length} characters were scanned",
        )
        for field_index, (_, full_length) in enumerate(normalised)
        if full_length > MAX_FIELD_CHARS
    ]

    actor_hits = [hit for hit in hits if hit[3] == ROLE_ACTOR]
    exclusion_hits = [hit for hit in hits if hit[3] == ROLE_EXCLUSION]
    counted, used_exclusions = _explain(actor_hits, exclusion_hits, rules)
    sides = tuple(sorted({rules.actors[hit[4]].side for hit in counted}))
    relevant = len(sides) == 2

    evidence = list(notes)
    evidence.extend(
        _evidence(
            rules.exclusions[hit[4]].id, "exclusion", rules.exclusions[hit[4]].label, hit, texts
        )
        for hit in used_exclusions
    )
    evidence.extend(
        _evidence(rules.actors[hit[4]].id, "actor", rules.actors[hit[4]].side, hit, texts)
        for hit in counted
    )

    signals: tuple[str, ...] = ()
    if relevant:
        accepted = _accept_triggers(hits, counted, folded, rules)
        signals = tuple(
            sorted(
                {rules.triggers[hit[4]].signal for hit in accepted}, key=_SIGNAL_ORDER.__getitem__
            )
        )
        evidence.extend(
            _evidence(
                rules.triggers[hit[4]].id, "signal", rules.triggers[hit[4]].signal, hit, texts
            )
            for hit in accepted
        )

    return TagResult(
        relevant=relevant,
        sides=sides,
        signals=signals,
        evidence=_ordered(evidence),
        lang=lang,
        rules_version=rules.version,
    )


def _explain(
    actor_hits: list[_Hit], exclusion_hits: list[_Hit], rules: Rules
) -> tuple[list[_Hit], list[_Hit]]:
    """Drop actor mentions a matched exclusion explains; return the rest and the exclusions used."""
    if not exclusion_hits:
        return actor_hits, []
    counted: list[_Hit] = []
    used: dict[_Hit, None] = {}
    for hit in actor_hits:
        actor = rules.actors[hit[4]]
        explained_by = None
        for exclusion_hit in exclusion_hits:
            exclusion = rules.exclusions[exclusion_hit[4]]
            inside = (
                exclusion_hit[0] == hit[0]
                and exclusion_hit[1] <= hit[1]
                and hit[2] <= exclusion_hit[2]
            )
            if inside or (
                actor.side in exclusion.explains_sides and actor.kind in exclusion.explains_kinds
            ):
                explained_by = exclusion_hit
                break
        if explained_by is None:
            counted.append(hit)
        else:
            used[explained_by] = None
    return counted, list(used)


def _accept_triggers(
    hits: list[_Hit], actor_hits: list[_Hit], folded: tuple[str, str], rules: Rules
) -> list[_Hit]:
    """The trigger hits whose `unless`, `near` and actor-nearness conditions hold."""
    trigger_hits = [hit for hit in hits if hit[3] == ROLE_TRIGGER]
    if not trigger_hits:
        return []
    positions = _Positions(folded)
    window = rules.window_tokens
    actors = _Mentions([(positions.locate(hit), rules.actors[hit[4]].side) for hit in actor_hits])

    wanted = {hit[4] for hit in trigger_hits}
    near_places: dict[int, list[tuple[_Place, str]]] = {}
    unless_sentences: dict[int, set[_Sentence]] = {}
    for hit in hits:
        if hit[4] not in wanted:
            continue
        if hit[3] == ROLE_NEAR:
            near_places.setdefault(hit[4], []).append((positions.locate(hit), "near"))
        elif hit[3] == ROLE_UNLESS:
            unless_sentences.setdefault(hit[4], set()).add(positions.sentence(hit))
    near_mentions = {index: _Mentions(located) for index, located in near_places.items()}

    accepted = []
    for hit in trigger_hits:
        trigger = rules.triggers[hit[4]]
        place = positions.locate(hit)
        if place[0] in unless_sentences.get(hit[4], ()):
            continue
        if trigger.near:
            mentions = near_mentions.get(hit[4])
            if mentions is None or not mentions.near(place, window):
                continue
        if len(actors.near(place, window)) >= (2 if trigger.near_sides == "both" else 1):
            accepted.append(hit)
    return accepted


def _ordered(evidence: list[Evidence]) -> tuple[Evidence, ...]:
    """Evidence in reading order, each (rule, place) once, each rule at most a few times.

    A long text can repeat a name hundreds of times; the first mentions explain
    the decision as well as all of them, and keep the record small on the wire.
    """
    unique = {(e.rule_id, e.field, e.start, e.end): e for e in evidence}
    ordered = sorted(
        unique.values(),
        key=lambda e: (FIELDS.index(e.field), e.start, _KIND_ORDER[e.kind], e.end, e.rule_id),
    )
    kept: list[Evidence] = []
    per_rule: dict[str, int] = {}
    for item in ordered:
        per_rule[item.rule_id] = per_rule.get(item.rule_id, 0) + 1
        if per_rule[item.rule_id] <= MAX_EVIDENCE_PER_RULE:
            kept.append(item)
    omitted = len(ordered) - len(kept)
    if omitted:
        kept.append(
            Evidence(
                rule_id="note.evidence_capped",
                kind="note",
                label="evidence_capped",
                field=kept[-1].field,
                start=0,
                end=0,
                text=f"{omitted} further matches of rules already listed are not shown",
            )
        )
    return tuple(kept)
