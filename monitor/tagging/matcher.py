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
4. One Aho–Corasick automaton finds every term of every rule in one pass over
   title + " _ " + summary (no term may contain "_", so no match spans the
   two); a match counts when its closed ends sit on word boundaries. Trigger
   matches are only read further for items found relevant.
5. Actor mentions that are members of a list of countries ("Kazakhstan,
   Russia, Azerbaijan and Georgia") or explained by a matching exclusion
   (Moscow, Idaho; a football fixture) are dropped. The item is relevant when mentions of both sides
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
from bisect import bisect_left, bisect_right, insort

from monitor.tagging.result import EvidenceKind, Field, TagResult, evidence_record
from monitor.tagging.rules import (
    FIELD_SEPARATOR,
    ROLE_ACTOR,
    ROLE_COUNTRY,
    ROLE_EXCLUSION,
    ROLE_NEAR,
    ROLE_TRIGGER,
    ROLE_UNLESS,
    TURKIC_LANGS,
    Entry,
    EnumerationRule,
    Payload,
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

FIELDS: tuple[Field, Field] = ("title", "summary")
_SIGNAL_ORDER = {signal: position for position, signal in enumerate(SIGNAL_IDS)}
_KIND_ORDER = {"note": 0, "exclusion": 1, "actor": 2, "signal": 3}


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
    # isprintable() is False for every character the regexes below remove or
    # replace (surrogates, soft hyphen, zero-width and control characters, any
    # space but " "), so clean text, nearly all of it, skips them: a C-speed test.
    clean = text.isprintable()
    if not clean:
        text = _SURROGATE.sub("\ufffd", text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if not clean or "  " in text or not text.isprintable():
        text = _INVISIBLE.sub("", text)
        text = _SPACE_OR_CONTROL.sub(" ", text)
    text = text.strip()
    return text[:MAX_FIELD_CHARS].rstrip(), len(text)


def normalise_field(text: str) -> str:
    """The text that evidence offsets refer to."""
    return _normalise(_as_text(text))[0]


# --- language ----------------------------------------------------------------

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# fmt: off
_STOPWORDS = {
    "en": ("the", "a", "an", "and", "of", "to", "for", "with", "on", "is", "was", "are", "after",
           "from", "by", "that", "has", "have", "said", "its", "at", "as", "over", "will", "be",
           "his", "their", "it", "were", "been", "into", "than", "amid", "says", "but", "not"),
    "de": ("der", "die", "das", "und", "nicht", "mit", "ein", "eine", "im", "zu", "von", "den",
           "dem", "des", "sich", "auf", "ist", "wird", "nach", "bei", "für", "über", "aus", "hat",
           "sei", "auch", "zur", "zum", "wurde", "werden", "einen", "einer", "gegen", "seit"),
    "tr": ("ve", "bir", "ile", "için", "bu", "olarak", "ise", "da", "de", "daha", "çok", "sonra",
           "olan", "etti", "ettiği", "ancak", "göre", "gibi", "kadar", "arasında", "üzere", "iki"),
}
# fmt: on
_STOPWORD_LANG = {word: lang for lang, words in _STOPWORDS.items() for word in words}
_SAMPLE_CHARS = 600


def detect_language(text: str) -> str:
    """Guess en, ru, de, az or tr from letters and stop words; offline and cheap."""
    return _detect(scan_form(fold(text[:_SAMPLE_CHARS])))


def _detect(scanned: str) -> str:
    """The language of `scanned`: text folded without a language, in scan form.

    ə is Azerbaijani; mostly Cyrillic is Russian; otherwise stop words vote,
    with ğ ş ı counting for Turkish and ä ß for German (names such as Qarabağ
    or Erdoğan in an English text are outvoted by its "the" and "of").
    """
    sample = scanned[:_SAMPLE_CHARS]
    ascii_only = sample.isascii()
    if not ascii_only:
        if "ə" in sample:
            return "az"
        # A Cyrillic letter takes two bytes in UTF-8, a Latin one one: the extra
        # bytes count the letters beyond ASCII without a Python loop. German
        # or Turkish text has a few; Russian text has them in most words.
        extra = len(sample.encode("utf-8")) - len(sample)
        if 2 * extra >= len(sample) - sample.count(" ") and _CYRILLIC.search(sample):
            return "ru"
    voters = list(filter(None, map(_STOPWORD_LANG.get, sample.split())))
    votes = {
        "en": voters.count("en") + 0.5,  # a tie goes to English
        "de": float(voters.count("de")),
        "tr": float(voters.count("tr")),
    }
    if not ascii_only:
        votes["tr"] += 2 * (sample.count("ğ") + sample.count("ş") + sample.count("ı"))
        votes["de"] += sample.count("ä") + sample.count("ß")
    return max(votes, key=votes.__getitem__)


# --- matching ----------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…]+[\"'»”’)\]]*\s")

# A hit: (start, end, rule index), offsets in the folded joined text
# (title + FIELD_SEPARATOR + summary, the same length as the normalised one).
_Hit = tuple[int, int, int]
_SEPARATOR_LENGTH = len(FIELD_SEPARATOR)


def _extend(scanned: str, last: int, trail: int, entry: Entry) -> int:
    """The end of an entry's match whose key ends at `last`, or -1 when its tail fails."""
    tail = entry[2]
    if tail is None:
        return last - 1 if trail else scanned.find(" ", last) - 1
    # A phrase with inner stems: the regex picks up where the literal ends.
    extended = tail.match(scanned, last + 1)
    if extended is None:
        return -1
    if entry[3]:
        return scanned.find(" ", extended.end()) - 1
    return extended.end() - 1 if scanned[extended.end()] == " " else -1


class _Scan:
    """Every rule match in one item, actors and exclusions at once, the rest on demand.

    scanned[i] is folded[i - 1]: the pad shifts offsets by one, and every
    non-word character is a space, so str.find locates word edges.
    """

    def __init__(self, scanned: str, rules: Rules) -> None:
        self.scanned = scanned
        self.actors: list[_Hit] = []
        self.exclusions: list[_Hit] = []
        self.countries: list[_Hit] = []
        self.later: list[tuple[int, int, Payload]] = []
        actors, later = self.actors, self.later
        other = {ROLE_EXCLUSION: self.exclusions, ROLE_COUNTRY: self.countries}
        payloads = rules.automaton.payloads
        for key, key_start, key_end in rules.automaton.find(scanned):
            payload = payloads[key]
            lead, trail, first, rest = payload
            last = key_end - 1
            if rest:
                later.append((key_start, last, payload))
            if not first:
                continue
            start = key_start if lead else scanned.rfind(" ", 0, key_start)
            plain_end = last - 1 if trail else scanned.find(" ", last) - 1
            for entry in first:
                end = plain_end if entry[2] is None else _extend(scanned, last, trail, entry)
                if end >= 0:
                    (actors if entry[0] == ROLE_ACTOR else other[entry[0]]).append(
                        (start, end, entry[1])
                    )

    def by_role(self) -> dict[int, list[_Hit]]:
        """The trigger, near and unless hits, read only for relevant items."""
        found: dict[int, list[_Hit]] = {ROLE_TRIGGER: [], ROLE_NEAR: [], ROLE_UNLESS: []}
        scanned = self.scanned
        for key_start, last, (lead, trail, _, rest) in self.later:
            start = key_start if lead else scanned.rfind(" ", 0, key_start)
            plain_end = last - 1 if trail else scanned.find(" ", last) - 1
            for entry in rest:
                end = plain_end if entry[2] is None else _extend(scanned, last, trail, entry)
                if end >= 0:
                    found[entry[0]].append((start, end, entry[1]))
        return found


_Place = tuple[int, int, int]  # sentence, the sentence before it, token number


class _Positions:
    """Sentence and token positions of hits, computed only for relevant items.

    The title is a sentence of its own (or several), and the summary's first
    sentence follows the title's last, so "He said..." in the summary is near
    the name in the title.
    """

    def __init__(self, text: str, separator_at: int) -> None:
        self.text = text
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        insort(ends, separator_at)
        self.sentence_ends = ends
        # One word often carries several rules (a trigger and another's `near`).
        self.located: dict[int, _Place] = {}

    def sentence(self, position: int) -> int:
        return bisect_right(self.sentence_ends, position)

    def locate(self, position: int) -> _Place:
        place = self.located.get(position)
        if place is None:
            number = bisect_right(self.sentence_ends, position)
            place = number, number - 1, self.text.count(" ", 0, position)
            self.located[position] = place
        return place


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
            self.by_sentence: dict[int, set[str]] = {}
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


# Evidence rows before they become objects: (start, kind order, end, rule id, kind, label).
_Row = tuple[int, int, int, str, EvidenceKind, str]
_EVIDENCE_FIELDS = frozenset(Evidence.model_fields)


def tag(title: str, summary: str, rules: Rules, lang: str | None = None) -> TagResult:
    """Decide relevance and signals of one item; pure, and never raises on odd input."""
    title_text, title_length = _normalise(_as_text(title))
    summary_text, summary_length = _normalise(_as_text(summary))
    # Both fields are read as one text; the separator keeps matches apart.
    joined = title_text + FIELD_SEPARATOR + summary_text
    scanned = scan_form(fold(joined, lang))
    if lang is None and (title_text or summary_text):
        lang = _detect(scanned)
        # Only Turkish and Azerbaijani fold differently (I is the capital of ı).
        if lang in TURKIC_LANGS and "I" in joined:
            scanned = scan_form(fold(joined, lang))
    summary_start = len(title_text) + _SEPARATOR_LENGTH

    scan = _Scan(scanned, rules)
    actor_hits = scan.actors
    lists: list[tuple[int, int, EnumerationRule]] = []
    if scan.countries and rules.enumerations:
        actor_hits, lists = _unlisted(actor_hits, scan.countries, joined, rules)
    counted, used_exclusions = _explain(actor_hits, scan.exclusions, rules)
    actor_rules = rules.actors
    sides = tuple(sorted({actor_rules[hit[2]].side for hit in counted}))
    relevant = len(sides) == 2

    # start, kind order (note, exclusion, actor, signal), end, rule id, kind, label
    rows: list[_Row] = []
    for start, end, enumeration in lists:
        rows.append((start, 1, end, enumeration.id, "exclusion", enumeration.label))
    for hit in used_exclusions:
        exclusion = rules.exclusions[hit[2]]
        rows.append((hit[0], 1, hit[1], exclusion.id, "exclusion", exclusion.label))
    for hit in counted:
        actor = actor_rules[hit[2]]
        rows.append((hit[0], 2, hit[1], actor.id, "actor", actor.side))

    signals: tuple[str, ...] = ()
    if relevant:
        accepted = _accept_triggers(scan, counted, joined, summary_start - 1, rules)
        if accepted:
            triggers = rules.triggers
            signals = tuple(
                sorted({triggers[hit[2]].signal for hit in accepted}, key=_SIGNAL_ORDER.__getitem__)
            )
            for hit in accepted:
                trigger = triggers[hit[2]]
                rows.append((hit[0], 3, hit[1], trigger.id, "signal", trigger.signal))

    notes = (
        []
        if title_length <= MAX_FIELD_CHARS and summary_length <= MAX_FIELD_CHARS
        else [
            evidence_record(
                "note.truncated",
                "note",
                "truncated",
                field,
                MAX_FIELD_CHARS,
                full_length,
                f"only the first {MAX_FIELD_CHARS} of {full_length} characters were scanned",
            )
            for field, full_length in zip(FIELDS, (title_length, summary_length), strict=True)
            if full_length > MAX_FIELD_CHARS
        ]
    )
    return TagResult(
        relevant=relevant,
        sides=sides,
        signals=signals,
        evidence=_ordered(rows, notes, joined, summary_start),
        lang=lang,
        rules_version=rules.version,
    )


_LISTABLE_KINDS = frozenset({"state", "place"})


def _unlisted(
    actor_hits: list[_Hit], country_hits: list[_Hit], joined: str, rules: Rules
) -> tuple[list[_Hit], list[tuple[int, int, EnumerationRule]]]:
    """Drop mentions of a side that are members of a list of countries; return the rest and
    the lists (start, end, rule).

    Members are countries and capitals, of a side or a third country, in the
    order they appear; two are in one list when only a comma or a joining word
    ("and", "и", "və"...) stands between them.
    """
    actors = rules.actors
    # (start, end, mention of a side or None for a third country); sides first at one place.
    members = sorted(
        [(hit[0], hit[1], hit) for hit in actor_hits if actors[hit[2]].kind in _LISTABLE_KINDS]
        + [(hit[0], hit[1], None) for hit in country_hits],
        key=lambda member: (member[0], member[1], member[2] is None, member[2] or ()),
    )
    listed: set[_Hit] = set()
    lists: list[tuple[int, int, EnumerationRule]] = []
    for enumeration in rules.enumerations:
        run: list[tuple[int, int, _Hit | None]] = []
        for member in [*members, (len(joined) + 1, 0, None)]:
            if run:
                gap = joined[run[-1][1] : member[0]].lower()
                if member[0] >= run[-1][1] and gap.strip() and enumeration.gap.fullmatch(gap):
                    run.append(member)
                    continue
                if len(run) >= enumeration.min_items:
                    listed.update(hit for _, _, hit in run if hit is not None)
                    lists.append((run[0][0], run[-1][1], enumeration))
            run = [member]
    if not listed:
        return actor_hits, lists
    return [hit for hit in actor_hits if hit not in listed], lists


def _explain(
    actor_hits: list[_Hit], exclusion_hits: list[_Hit], rules: Rules
) -> tuple[list[_Hit], list[_Hit]]:
    """Drop actor mentions a matched exclusion explains; return the rest and the exclusions used."""
    if not exclusion_hits:
        return actor_hits, []
    counted: list[_Hit] = []
    used: dict[_Hit, None] = {}
    for hit in actor_hits:
        actor = rules.actors[hit[2]]
        explained_by = None
        for exclusion_hit in exclusion_hits:
            exclusion = rules.exclusions[exclusion_hit[2]]
            inside = exclusion_hit[0] <= hit[0] and hit[1] <= exclusion_hit[1]
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
    scan: _Scan, actor_hits: list[_Hit], joined: str, separator_at: int, rules: Rules
) -> list[_Hit]:
    """The trigger hits whose `unless`, `near` and actor-nearness conditions hold."""
    if not scan.later:
        return []
    found = scan.by_role()
    trigger_hits = found[ROLE_TRIGGER]
    if not trigger_hits:
        return []
    # Sentence punctuation is gone from the scan form; the normalised text has
    # it, and the same offsets.
    positions = _Positions(joined, separator_at)
    window = rules.window_tokens
    actor_rules = rules.actors
    actors = _Mentions(
        list(
            dict.fromkeys(
                (positions.locate(hit[0]), actor_rules[hit[2]].side) for hit in actor_hits
            )
        )
    )
    sides_near: dict[_Place, int] = {}

    wanted = {hit[2] for hit in trigger_hits}
    near_places: dict[int, list[tuple[_Place, str]]] = {}
    for hit in found[ROLE_NEAR]:
        if hit[2] in wanted:
            near_places.setdefault(hit[2], []).append((positions.locate(hit[0]), "near"))
    unless_sentences: dict[int, set[int]] = {}
    for hit in found[ROLE_UNLESS]:
        if hit[2] in wanted:
            unless_sentences.setdefault(hit[2], set()).add(positions.sentence(hit[0]))
    near_mentions = {index: _Mentions(located) for index, located in near_places.items()}

    accepted = []
    for hit in trigger_hits:
        trigger = rules.triggers[hit[2]]
        place = positions.locate(hit[0])
        if place[0] in unless_sentences.get(hit[2], ()):
            continue
        if trigger.near:
            mentions = near_mentions.get(hit[2])
            if mentions is None or not mentions.near(place, window):
                continue
        count = sides_near.get(place)
        if count is None:
            count = sides_near[place] = len(actors.near(place, window))
        if count >= (2 if trigger.near_sides == "both" else 1):
            accepted.append(hit)
    return accepted


def _ordered(
    rows: list[_Row], notes: list[Evidence], joined: str, summary_start: int
) -> tuple[Evidence, ...]:
    """Evidence in reading order, each (rule, place) once, each rule at most a few times.

    A long text can repeat a name hundreds of times; the first mentions explain
    the decision as well as all of them, and keep the record small on the wire.
    Rows are sorted, de-duplicated and capped as plain tuples; only the ones
    kept become Evidence objects.
    """
    rows.sort()
    kept: list[Evidence] = list(notes)
    per_rule: dict[str, int] = {}
    omitted = 0
    previous = None
    for row in rows:
        start, _, end, rule_id, kind, label = row
        if (start, end, rule_id) == previous:
            continue
        previous = (start, end, rule_id)
        seen = per_rule.get(rule_id, 0) + 1
        per_rule[rule_id] = seen
        if seen > MAX_EVIDENCE_PER_RULE:
            omitted += 1
            continue
        text = joined[start:end]
        if start < summary_start:
            kept.append(evidence_record(rule_id, kind, label, "title", start, end, text))
        else:
            offset = summary_start
            kept.append(
                evidence_record(rule_id, kind, label, "summary", start - offset, end - offset, text)
            )
    if omitted:
        kept.append(
            evidence_record(
                "note.evidence_capped",
                "note",
                "evidence_capped",
                kept[-1].field,
                0,
                0,
                f"{omitted} further matches of rules already listed are not shown",
            )
        )
    return tuple(kept)
