"""The tagger: a pure function from a headline and summary to relevance, signals and evidence.

    tag(title, summary, rules, lang=None) -> TagResult    # scan, then the background step
    scan(title, summary, rules, lang=None) -> TagResult   # steps 1-6 alone

This file is the tagger's only definition: where a compiler was at hand,
Cython built it into the extension module that imports find first (C types in
matcher.pxd), and elsewhere it runs as it is. The text passes of steps 1-3
and the sentence and token numbers of step 6 are kernels (`text.py`, in C in
`_text.pyx`); step 7, background, is `background.py`.

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
   (Moscow, Idaho; a football fixture) are dropped. The item is relevant when
   mentions of both sides remain: an asset, outlet or official of the other side is itself an actor
   (Sputnik is RU, SOCAR is AZ), so "Baku raids Sputnik" has both.
6. On a relevant item, a trigger gives its signal when an actor mention is in
   the same sentence or within the rules' window of tokens, and its `near` and
   `unless` conditions hold.
7. Matches the item only recalls are set aside (`background.set_aside`).

Nothing here raises on odd input: empty, binary or huge text gives an answer.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from importlib.machinery import EXTENSION_SUFFIXES

from monitor.tagging.background import set_aside
from monitor.tagging.result import EvidenceKind, Field, TagResult
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
    Payload,
    Rules,
)
from monitor.tagging.text import MAX_FIELD_CHARS
from schemas import SIGNAL_IDS, Evidence

try:  # the text kernels in C (setup.py builds them), or their definitions in text.py
    from monitor.tagging._text import (
        evidence,
        language_of,
        normalised,
        places,
        scan_form_of,
    )
except ImportError:
    from monitor.tagging.text import (
        evidence,
        language_of,
        normalised,
        places,
        scan_form_of,
    )

# Whether this module runs compiled: setup.py builds it with Cython from this very
# file (types in matcher.pxd) where a compiler is at hand.
COMPILED = __file__.endswith(tuple(EXTENSION_SUFFIXES))

# Matches listed per rule in the evidence; the rest are counted in a note.
MAX_EVIDENCE_PER_RULE = 3


# --- the rules as the matcher reads them ---------------------------------------

_LISTABLE_KINDS = frozenset({"state", "place"})
_SIDE_NUMBER = {"AZ": 0, "RU": 1}
_SIDES_OF_MASK = ((), ("AZ",), ("RU",), ("AZ", "RU"))
_SIGNAL_NUMBER = {signal: number for number, signal in enumerate(SIGNAL_IDS)}
# Evidence in reading order: at one place notes first, then exclusions, actors, signals.
_ORDER_EXCLUSION = 1
_ORDER_ACTOR = 2
_ORDER_SIGNAL = 3


class _Tables:
    """What the matcher reads per hit, in lists indexed by rule number, built once per Rules.

    Every rule that can give evidence has a rank, its id's place among all of
    them in sorted order, so that an evidence row sorts as one integer (see
    `_row`) in the order of (start, kind, end, rule id).
    """

    def __init__(self, rules: Rules) -> None:
        ids = sorted(
            [rule.id for rule in rules.actors]
            + [rule.id for rule in rules.triggers]
            + [rule.id for rule in rules.exclusions]
            + [rule.id for rule in rules.enumerations]
        )
        rank = {rule_id: position for position, rule_id in enumerate(ids)}
        self.rule_id: list[str] = ids
        self.kind: list[EvidenceKind] = ["note"] * len(ids)
        self.label: list[str] = [""] * len(ids)
        for actor in rules.actors:
            self.kind[rank[actor.id]], self.label[rank[actor.id]] = "actor", actor.side
        for trigger in rules.triggers:
            self.kind[rank[trigger.id]], self.label[rank[trigger.id]] = "signal", trigger.signal
        for exclusion in rules.exclusions:
            self.kind[rank[exclusion.id]] = "exclusion"
            self.label[rank[exclusion.id]] = exclusion.label
        for enumeration in rules.enumerations:
            self.kind[rank[enumeration.id]] = "exclusion"
            self.label[rank[enumeration.id]] = enumeration.label
        self.actor_rank = [rank[actor.id] for actor in rules.actors]
        self.actor_side = [_SIDE_NUMBER[actor.side] for actor in rules.actors]
        self.actor_kind = [actor.kind for actor in rules.actors]
        self.actor_listable = [actor.kind in _LISTABLE_KINDS for actor in rules.actors]
        self.exclusion_rank = [rank[exclusion.id] for exclusion in rules.exclusions]
        self.exclusion_sides = [
            sum(1 << _SIDE_NUMBER[side] for side in set(exclusion.explains_sides))
            for exclusion in rules.exclusions
        ]
        self.exclusion_kinds = [
            frozenset(exclusion.explains_kinds) for exclusion in rules.exclusions
        ]
        self.trigger_rank = [rank[trigger.id] for trigger in rules.triggers]
        self.trigger_signal = [_SIGNAL_NUMBER[trigger.signal] for trigger in rules.triggers]
        self.trigger_has_near = [bool(trigger.near) for trigger in rules.triggers]
        # How many sides must be near: "both" for a meeting between the two.
        self.trigger_sides = [2 if t.near_sides == "both" else 1 for t in rules.triggers]
        self.enumerations = [
            (rank[e.id], e.gap.fullmatch, e.min_items, e.gap_words) for e in rules.enumerations
        ]
        self.window = rules.window_tokens


# A few Rules objects per process at most (the bundled ones, a test's own).
_TABLES: dict[int, tuple[Rules, _Tables]] = {}


def _tables(rules: Rules) -> _Tables:
    cached = _TABLES.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    if len(_TABLES) >= 16:
        _TABLES.clear()
    tables = _Tables(rules)
    _TABLES[id(rules)] = (rules, tables)
    return tables


# --- matching ----------------------------------------------------------------

# A hit: (start, end, rule number), offsets in the folded joined text
# (title + FIELD_SEPARATOR + summary, the same length as the normalised one).
_Hit = tuple[int, int, int]
# A key's match whose trigger, near and unless entries wait for a relevant item.
_Later = tuple[int, int, Payload]
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


def _read_entries(
    scanned: str,
    key_start: int,
    last: int,
    lead: int,
    trail: int,
    entries: tuple[Entry, ...],
    by_role: list[list[_Hit] | None],
) -> None:
    """The hits of one automaton match: its key's word edges, then each entry's end (a
    tail regex may extend or reject it), added to the list of its role where there is one.

    scanned[i] is folded[i - 1]: the pad shifts offsets by one, and every
    non-word character is a space, so str.find locates word edges.
    """
    start = key_start if lead else scanned.rfind(" ", 0, key_start)
    plain_end = last - 1 if trail else scanned.find(" ", last) - 1
    for entry in entries:
        end = plain_end if entry[2] is None else _extend(scanned, last, trail, entry)
        hits = by_role[entry[0]]
        if end >= 0 and hits is not None:
            hits.append((start, end, entry[1]))


def _scan_matches(
    scanned: str,
    rules: Rules,
    actors: list[_Hit],
    exclusions: list[_Hit],
    countries: list[_Hit],
    later: list[_Later],
) -> None:
    """Every rule match in one item: actors, exclusions and countries into their lists,
    the keys with trigger, near or unless entries into `later` (read for relevant items)."""
    by_role: list[list[_Hit] | None] = [None] * _ROLES
    by_role[ROLE_ACTOR] = actors
    by_role[ROLE_EXCLUSION] = exclusions
    by_role[ROLE_COUNTRY] = countries
    automaton = rules.automaton
    payloads = automaton.payloads
    for match in automaton.find_all(scanned, True):
        payload = payloads[match[0]]
        key_start = match[1]
        last = match[2] - 1
        if payload[3]:
            later.append((key_start, last, payload))
        if payload[2]:
            _read_entries(scanned, key_start, last, payload[0], payload[1], payload[2], by_role)


_ROLES = 1 + max(ROLE_ACTOR, ROLE_TRIGGER, ROLE_NEAR, ROLE_UNLESS, ROLE_EXCLUSION, ROLE_COUNTRY)


def scan(title: str, summary: str, rules: Rules, lang: str | None = None) -> TagResult:
    """Relevance, sides, signals and evidence of one item as the rules match it, before the
    background step (`tag` adds it); pure, and never raises on odd input."""
    return _scan(title, summary, rules, lang)[0]


def tag(title: str, summary: str, rules: Rules, lang: str | None = None) -> TagResult:
    """Decide relevance and signals of one item; pure, and never raises on odd input.

    `scan` finds what the rules match; `set_aside` then tells the item's news
    from the background it recalls (monitor.tagging.background).
    """
    result, title_text, summary_text = _scan(title, summary, rules, lang)
    return set_aside(result, title_text, summary_text, rules)


def _scan(
    title: object, summary: object, rules: Rules, lang: str | None
) -> tuple[TagResult, str, str]:
    """The scan's result, and the normalised title and summary its offsets refer to."""
    tables = _tables(rules)
    title_text, title_length = normalised(title)
    summary_text, summary_length = normalised(summary)
    # Both fields are read as one text; the separator keeps matches apart.
    joined = title_text + FIELD_SEPARATOR + summary_text
    scanned = scan_form_of(joined, lang)
    if lang is None and (title_text or summary_text):
        lang = language_of(scanned)
        # Only Turkish and Azerbaijani fold differently (I is the capital of ı).
        if lang in TURKIC_LANGS and "I" in joined:
            scanned = scan_form_of(joined, lang)
    summary_start = len(title_text) + _SEPARATOR_LENGTH

    actor_hits: list[_Hit] = []
    exclusion_hits: list[_Hit] = []
    country_hits: list[_Hit] = []
    later: list[_Later] = []
    _scan_matches(scanned, rules, actor_hits, exclusion_hits, country_hits, later)
    # Evidence rows as integers (see _row), made objects only when kept.
    rows: list[int] = []
    if country_hits and tables.enumerations:
        actor_hits = _unlisted(actor_hits, country_hits, joined, tables, rows)
    counted = _explain(actor_hits, exclusion_hits, tables, rows)
    side_mask = 0
    for hit in counted:
        side_mask |= 1 << tables.actor_side[hit[2]]
        rows.append(_row(hit[0], _ORDER_ACTOR, hit[1], tables.actor_rank[hit[2]]))
    relevant = side_mask == 3

    signals: tuple[str, ...] = ()
    if relevant and later:
        signal_mask = 0
        for hit in _accepted_triggers(scanned, later, counted, joined, summary_start - 1, tables):
            signal_mask |= 1 << tables.trigger_signal[hit[2]]
            rows.append(_row(hit[0], _ORDER_SIGNAL, hit[1], tables.trigger_rank[hit[2]]))
        if signal_mask:
            signals = tuple(
                [SIGNAL_IDS[n] for n in range(len(SIGNAL_IDS)) if signal_mask & (1 << n)]
            )

    notes: list[Evidence] = []
    if title_length > MAX_FIELD_CHARS or summary_length > MAX_FIELD_CHARS:
        fields: tuple[tuple[Field, int], ...] = (
            ("title", title_length),
            ("summary", summary_length),
        )
        for field, full_length in fields:
            if full_length > MAX_FIELD_CHARS:
                notes.append(
                    evidence(
                        "note.truncated",
                        "note",
                        "truncated",
                        field,
                        MAX_FIELD_CHARS,
                        full_length,
                        f"only the first {MAX_FIELD_CHARS} of {full_length} characters"
                        " were scanned",
                    )
                )
    ordered = _ordered(rows, notes, tables, joined, summary_start)
    # tuple.__new__ skips the named tuple's Python-level __new__.
    result: TagResult = _new_tuple(
        TagResult,
        (relevant, _SIDES_OF_MASK[side_mask], signals, ordered, lang, rules.version, ()),
    )
    return result, title_text, summary_text


_new_tuple = tuple.__new__


def _unlisted(
    actor_hits: list[_Hit], country_hits: list[_Hit], joined: str, tables: _Tables, rows: list[int]
) -> list[_Hit]:
    """The mentions of a side that are not members of a list of countries; a row for each list.

    Members are countries and capitals, of a side or a third country, in the
    order they appear; two are in one list when only a comma or a joining word
    ("and", "и", "və"...) stands between them.
    """
    # (start, end, 0 for a mention of a side or 1 for a third country, rule): sides first.
    members = sorted(
        [(hit[0], hit[1], 0, hit[2]) for hit in actor_hits if tables.actor_listable[hit[2]]]
        + [(hit[0], hit[1], 1, hit[2]) for hit in country_hits]
    )
    members.append((len(joined) + 1, 0, 1, -1))  # the end of the text closes the last run
    listed: set[_Hit] = set()
    for rank, gap_matches, min_items, gap_words in tables.enumerations:
        run: list[tuple[int, int, int, int]] = []
        for member in members:
            if run:
                gap_start, gap_end = run[-1][1], member[0]
                # More spaces than a gap the regex matches has words: no need to ask it.
                if gap_end >= gap_start and joined.count(" ", gap_start, gap_end) <= gap_words + 1:
                    gap = joined[gap_start:gap_end].lower()
                    if gap.strip() and gap_matches(gap) is not None:
                        run.append(member)
                        continue
                if len(run) >= min_items:
                    for start, end, country, rule in run:
                        if not country:
                            listed.add((start, end, rule))
                    rows.append(_row(run[0][0], _ORDER_EXCLUSION, run[-1][1], rank))
            run = [member]
    if not listed:
        return actor_hits
    return [hit for hit in actor_hits if hit not in listed]


def _explain(
    actor_hits: list[_Hit], exclusion_hits: list[_Hit], tables: _Tables, rows: list[int]
) -> list[_Hit]:
    """The actor mentions no matched exclusion explains; a row for each exclusion used."""
    if not exclusion_hits:
        return actor_hits
    counted: list[_Hit] = []
    used = [False] * len(exclusion_hits)
    for hit in actor_hits:
        side_bit = 1 << tables.actor_side[hit[2]]
        kind = tables.actor_kind[hit[2]]
        explained = False
        for number in range(len(exclusion_hits)):
            exclusion = exclusion_hits[number]
            rule = exclusion[2]
            if (exclusion[0] <= hit[0] and hit[1] <= exclusion[1]) or (
                tables.exclusion_sides[rule] & side_bit and kind in tables.exclusion_kinds[rule]
            ):
                used[number] = True
                explained = True
                break
        if not explained:
            counted.append(hit)
    for number in range(len(exclusion_hits)):
        if used[number]:
            exclusion = exclusion_hits[number]
            rank = tables.exclusion_rank[exclusion[2]]
            rows.append(_row(exclusion[0], _ORDER_EXCLUSION, exclusion[1], rank))
    return counted


# More mentions than this are indexed (see _Mentions).
_INDEX_ABOVE = 24


class _Mentions:
    """Where the hits of one group are (actors, or one rule's `near` terms), for nearness queries.

    A mention is near a place in the same sentence, in the sentence before it,
    or within `window` tokens. Labels are bits (a side's, or 1 for a `near`
    term); a query gives the labels near a place as a mask. A few mentions (the
    usual case) are searched one by one; many (a long text) are indexed by
    sentence and token.
    """

    def __init__(self) -> None:
        self.sentences: list[int] = []
        self.tokens: list[int] = []
        self.labels: list[int] = []
        self.indexed = False
        self.by_sentence: dict[int, int] = {}

    def add(self, sentence: int, token: int, label: int) -> None:
        self.sentences.append(sentence)
        self.tokens.append(token)
        self.labels.append(label)

    def index(self) -> None:
        """Index the mentions if there are many; call once, after the last `add`."""
        if len(self.labels) <= _INDEX_ABOVE:
            return
        self.indexed = True
        for sentence, label in zip(self.sentences, self.labels, strict=True):
            self.by_sentence[sentence] = self.by_sentence.get(sentence, 0) | label
        by_token = sorted(zip(self.tokens, self.labels, strict=True))
        self.tokens = [token for token, _ in by_token]
        self.labels = [label for _, label in by_token]

    def near(self, sentence: int, token: int, window: int) -> int:
        found = 0
        if not self.indexed:
            for number in range(len(self.labels)):
                other = self.sentences[number]
                if (
                    other == sentence
                    or other == sentence - 1
                    or abs(self.tokens[number] - token) <= window
                ):
                    found |= self.labels[number]
            return found
        found = self.by_sentence.get(sentence, 0) | self.by_sentence.get(sentence - 1, 0)
        high = bisect_right(self.tokens, token + window)
        for number in range(bisect_left(self.tokens, token - window), high):
            found |= self.labels[number]
        return found


def _accepted_triggers(
    scanned: str,
    later: list[_Later],
    actor_hits: list[_Hit],
    joined: str,
    separator_at: int,
    tables: _Tables,
) -> list[_Hit]:
    """The trigger hits whose `unless`, `near` and actor-nearness conditions hold.

    The title is a sentence of its own (or several), and the summary's first
    sentence follows the title's last, so "He said..." in the summary is near
    the name in the title. Sentence punctuation is gone from the scan form;
    the joined normalised text has it, and the same offsets.
    """
    trigger_hits: list[_Hit] = []
    near_hits: list[_Hit] = []
    unless_hits: list[_Hit] = []
    by_role: list[list[_Hit] | None] = [None] * _ROLES
    by_role[ROLE_TRIGGER] = trigger_hits
    by_role[ROLE_NEAR] = near_hits
    by_role[ROLE_UNLESS] = unless_hits
    for key_start, last, payload in later:
        _read_entries(scanned, key_start, last, payload[0], payload[1], payload[3], by_role)
    if not trigger_hits:
        return []
    wanted = {hit[2] for hit in trigger_hits}
    near_hits = [hit for hit in near_hits if hit[2] in wanted]
    unless_hits = [hit for hit in unless_hits if hit[2] in wanted]
    # Sentence and token numbers of every hit that is read, in this order.
    located = actor_hits + near_hits + unless_hits + trigger_hits
    sentences, tokens = places(joined, separator_at, [hit[0] for hit in located])
    window = tables.window
    actors = _Mentions()
    for number in range(len(actor_hits)):
        side = tables.actor_side[actor_hits[number][2]]
        actors.add(sentences[number], tokens[number], 1 << side)
    actors.index()
    nears: dict[int, _Mentions] = {}
    number = len(actor_hits)
    for hit in near_hits:
        mentions = nears.get(hit[2])
        if mentions is None:
            mentions = nears[hit[2]] = _Mentions()
        mentions.add(sentences[number], tokens[number], 1)
        number += 1
    for mentions in nears.values():
        mentions.index()
    # (rule, sentence) of each `unless` hit: none may share a trigger's sentence.
    unless: set[tuple[int, int]] = set()
    for hit in unless_hits:
        unless.add((hit[2], sentences[number]))
        number += 1

    accepted: list[_Hit] = []
    for hit in trigger_hits:
        rule = hit[2]
        sentence = sentences[number]
        token = tokens[number]
        number += 1
        if unless and (rule, sentence) in unless:
            continue
        if tables.trigger_has_near[rule]:
            mentions = nears.get(rule)
            if mentions is None or not mentions.near(sentence, token, window):
                continue
        sides = actors.near(sentence, token, window)
        if (sides & 1) + (sides >> 1) >= tables.trigger_sides[rule]:
            accepted.append(hit)
    return accepted


# --- evidence ------------------------------------------------------------------

# A row packs (start, kind order, end, rule rank) into one integer that sorts
# as the tuple would: start and end below 2**17 (two fields of MAX_FIELD_CHARS
# and the separator), the order below 4, the rank below 2**28.
_END_BITS = 17
_RANK_BITS = 28
_PLACE_MASK = ~(3 << (_END_BITS + _RANK_BITS))
if 2 * MAX_FIELD_CHARS + _SEPARATOR_LENGTH >= 1 << _END_BITS:
    raise ImportError("MAX_FIELD_CHARS no longer fits the packed evidence rows of _row")


def _row(start: int, order: int, end: int, rank: int) -> int:
    return (
        (start << (_END_BITS + _RANK_BITS + 2))
        | (order << (_END_BITS + _RANK_BITS))
        | (end << _RANK_BITS)
        | rank
    )


def _ordered(
    rows: list[int], notes: list[Evidence], tables: _Tables, joined: str, summary_start: int
) -> tuple[Evidence, ...]:
    """Evidence in reading order, each (rule, place) once, each rule at most a few times.

    A long text can repeat a name hundreds of times; the first mentions explain
    the decision as well as all of them, and keep the record small on the wire.
    Rows are sorted, de-duplicated and capped as integers; only the ones kept
    become Evidence objects.
    """
    rows.sort()
    kept = notes
    seen: dict[int, int] = {}
    omitted = 0
    previous = -1
    for row in rows:
        place = row & _PLACE_MASK
        if place == previous:
            continue
        previous = place
        rank = row & ((1 << _RANK_BITS) - 1)
        count = seen.get(rank, 0) + 1
        seen[rank] = count
        if count > MAX_EVIDENCE_PER_RULE:
            omitted += 1
            continue
        start = row >> (_END_BITS + _RANK_BITS + 2)
        end = (row >> _RANK_BITS) & ((1 << _END_BITS) - 1)
        rule_id, kind, label = tables.rule_id[rank], tables.kind[rank], tables.label[rank]
        text = joined[start:end]
        if start < summary_start:
            kept.append(evidence(rule_id, kind, label, "title", start, end, text))
        else:
            start -= summary_start
            end -= summary_start
            kept.append(evidence(rule_id, kind, label, "summary", start, end, text))
    if omitted:
        kept.append(
            evidence(
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
