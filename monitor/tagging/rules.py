"""The tagging rules: TOML files an analyst can read and edit, loaded and checked here.

Layout of a rules directory (the bundled one is `monitor/tagging/rules/`):

    matching.toml         window_tokens: how close a trigger must be to an actor
    actors.toml           [[actor]]: who counts as the AZ or the RU side
    exclusions.toml       [[exclusion]]: false friends (Moscow, Idaho; football; F1…)
                          [[enumeration]]: lists of countries that name a side in passing
    countries.toml        [[country]]: third countries, members of such lists
    background.toml       [[precedence]], [[cue]]: what an item recalls, not reports
    signals/<id>.toml     [signal] polarity and weight, [[trigger]] terms for it

A term is a word or phrase, lower case, with `*` marking an open end:
`задержа*` is a prefix stem (задержан, задержали, задержание), `*karabach`
also matches inside a German compound (Bergkarabach), a bare word matches
only as a whole word. Every rule has an id, unique across all files.

`load_rules` reads the files, checks them, and builds the single multi-pattern
automaton the matcher scans with. The rules version is a hash of the files'
bytes, so a tagged item can say exactly which rules produced it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import ahocorasick_rs

from monitor.errors import MonitorError
from schemas import SIGNAL_IDS

BUNDLED_RULES = Path(__file__).parent / "rules"

Side = Literal["AZ", "RU"]
SIDES: tuple[Side, ...] = ("AZ", "RU")
ACTOR_KINDS = ("state", "place", "person", "institution", "outlet", "company", "people")
NearSides = Literal["any", "both"]

# Roles a literal can play in the automaton; a literal may play several.
ROLE_ACTOR = 0
ROLE_TRIGGER = 1
ROLE_NEAR = 2
ROLE_UNLESS = 3
ROLE_EXCLUSION = 4
ROLE_COUNTRY = 5
# Roles the matcher reads for every item; the others only for relevant items.
FIRST_ROLES = (ROLE_ACTOR, ROLE_EXCLUSION, ROLE_COUNTRY)


class RuleFileError(MonitorError, ValueError):
    """A rule file cannot be read or breaks a rule; the message names file, line and reason."""

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Term:
    """One pattern as written, compiled for the automaton.

    `literal` is what the automaton looks for: the folded pattern up to its
    first inner `*`. A phrase with inner stems (`военн* баз*`) keeps the rest
    as `tail`, a regular expression checked where the literal ends, so the
    automaton stays one pass and only its rare hits pay for a regex.
    """

    pattern: str
    literal: str
    open_left: bool
    open_right: bool
    tail: str = ""

    def as_regex(self) -> str:
        """The whole term as one regular expression (for baselines and reports)."""
        left = r"\w*" if self.open_left else r"(?<!\w)"
        right = r"\w*" if self.open_right else r"(?!\w)"
        return left + re.escape(self.literal) + self.tail + right


@dataclass(frozen=True)
class ActorRule:
    id: str
    side: Side
    kind: str
    label: str
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class SignalDefinition:
    id: str
    polarity: int
    weight: float
    description: str


@dataclass(frozen=True)
class TriggerRule:
    """Terms that give `signal` when found near an actor mention.

    `near`: if set, one of these must also be within the window (e.g. "summoned"
    needs "ambassador"). `unless`: none of these may be in the same sentence
    (e.g. an apology that is demanded is not an apology given).
    `near_sides`: "both" when the trigger only counts with both sides close by
    (a meeting between the two, not with a third country).
    """

    id: str
    signal: str
    terms: tuple[Term, ...]
    near: tuple[Term, ...] = ()
    unless: tuple[Term, ...] = ()
    near_sides: NearSides = "any"


@dataclass(frozen=True)
class ExclusionRule:
    """A false friend: when it matches, it explains away mentions of these sides and kinds.

    Mentions that lie inside the exclusion's own match ("Moscow, Idaho") are
    explained whatever their kind.
    """

    id: str
    label: str
    terms: tuple[Term, ...]
    explains_sides: tuple[Side, ...]
    explains_kinds: tuple[str, ...]


@dataclass(frozen=True)
class CountryRule:
    """A third country (or its capital): not a side, but a member of a list of countries."""

    id: str
    label: str
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class EnumerationRule:
    """A list of at least `min_items` countries joined by commas or `joiners`.

    Mentions of a side that are members of such a list ("prices rose in
    Kazakhstan, Russia, Azerbaijan and Georgia") name it in passing and are
    explained away, like a false friend.
    """

    id: str
    label: str
    min_items: int
    gap: re.Pattern[str]
    # The most words a gap that `gap` matches can have: an inflection after an
    # apostrophe, a comma and the longest joiner. Longer gaps need no regex.
    gap_words: int = 0


# One automaton entry: (role, rule index, tail regex or None, open_right). A key
# is stored once with (leading space?, trailing space?, its actor and exclusion
# entries, its trigger, near and unless entries). The matcher reads the
# first group for every item and the second only for items found relevant, which
# most news is not.
Entry = tuple[int, int, "re.Pattern[str] | None", bool]
Payload = tuple[int, int, tuple[Entry, ...], tuple[Entry, ...]]


class Automaton:
    """Every key of every rule in one Aho–Corasick automaton, each key with its payload.

    ahocorasick-rs (the Rust `aho-corasick` crate) finds all matches,
    overlapping ones included, in one call that returns a list: no Python
    iteration while scanning, about twice as fast as pyahocorasick on news text.
    As a contiguous NFA rather than a DFA: the same matches from 0.5 MiB instead
    of 10, a table that stays in cache, which made the scan twice as fast on a
    busy machine (BENCHMARKS.md).
    """

    def __init__(self, keys: list[str], payloads: list[Payload]) -> None:
        self.keys = keys
        self.payloads = payloads
        self._automaton = ahocorasick_rs.AhoCorasick(
            keys,
            matchkind=ahocorasick_rs.MatchKind.Standard,
            implementation=ahocorasick_rs.Implementation.ContiguousNFA,
        )
        # The automaton's own method: `find_all(text, True)` is `find(text)` without
        # a call through Python, for the matcher's hot path.
        self.find_all = self._automaton.find_matches_as_indexes

    def find(self, text: str) -> list[tuple[int, int, int]]:
        """(key index, start, end) of every match, by end, in character offsets."""
        return self._automaton.find_matches_as_indexes(text, overlapping=True)


# Title and summary are scanned as one text joined by this separator. Its "_"
# is a word character that no term may contain, so no match can span the two
# fields; its spaces keep word boundaries on both sides.
FIELD_SEPARATOR = " _ "


@dataclass(frozen=True)
class PrecedenceRule:
    """An item that reports one of `reports` (trigger ids) only recalls its `recalls` signals.

    An apology, a release or a flight suspension is told with the incident it
    answers; that incident is the item's background, not its news.
    """

    id: str
    reports: tuple[str, ...]  # sorted: the first one found is named in the note
    recalls: frozenset[str]
    # Only when the headline reports the answer and names none of `recalls`:
    # "Baku demands an apology" over a summary that retells the shoot-down.
    headline: bool = False


@dataclass(frozen=True)
class CueRule:
    """Words that introduce what an item recalls: "over the arrests", "tutuklamaların ardından".

    A match of a `recalls` signal with a cue among the `window_tokens` words
    before it (`before`: prepositions) or after it (`after`: postpositions), in
    the same sentence, is background when the item reports something else.
    Each is one pattern over folded words joined by single spaces; a word
    written with a trailing "*" is a prefix.
    """

    id: str
    before: re.Pattern[str] | None
    after: re.Pattern[str] | None
    recalls: frozenset[str]
    window_tokens: int


@dataclass(frozen=True)
class Rules:
    """Everything the matcher needs, checked and compiled. Build it with `load_rules`."""

    actors: tuple[ActorRule, ...]
    triggers: tuple[TriggerRule, ...]
    exclusions: tuple[ExclusionRule, ...]
    signals: Mapping[str, SignalDefinition]
    window_tokens: int
    version: str
    directory: Path
    automaton: Automaton = field(repr=False, compare=False)
    countries: tuple[CountryRule, ...] = ()
    enumerations: tuple[EnumerationRule, ...] = ()
    precedences: tuple[PrecedenceRule, ...] = ()
    cues: tuple[CueRule, ...] = ()

    @cached_property
    def recallable(self) -> frozenset[str]:
        """The signals that background rules may set aside: most items need no look."""
        recalls = [rule.recalls for rule in self.precedences] + [cue.recalls for cue in self.cues]
        return frozenset[str]().union(*recalls)

    def all_terms(self) -> Iterator[Term]:
        """Every term of every rule, for baselines and reports."""
        for actor in self.actors:
            yield from actor.terms
        for trigger in self.triggers:
            yield from trigger.terms
            yield from trigger.near
            yield from trigger.unless
        for exclusion in self.exclusions:
            yield from exclusion.terms
        for country in self.countries:
            yield from country.terms


# --- folding, shared with the matcher so rules and text are folded alike -----

TURKIC_LANGS = frozenset({"tr", "az"})


def fold(text: str, lang: str | None = None) -> str:
    """Lower-case `text` without changing its length, right for the Turkish i.

    Python lowers İ to "i" + a combining dot (two characters), so İ→i first;
    in Turkish and Azerbaijani dotless I is the capital of ı; ё is written е
    in most Russian text. str.replace is used because str.translate with a
    table is ten times slower on the hot path.
    """
    if not text.isascii():
        if "İ" in text:
            text = text.replace("İ", "i")
        if "ё" in text or "Ё" in text:
            text = text.replace("ё", "е").replace("Ё", "е")
    if lang in TURKIC_LANGS and "I" in text:
        text = text.replace("I", "ı")
    return text.lower()


_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w ]")


def parse_term(pattern: str) -> Term:
    """Turn `задержа*` or `военн* баз*` into a Term; ValueError for a pattern that cannot match."""
    if not isinstance(pattern, str):
        raise ValueError(f"term {pattern!r} is not a string")
    stripped = _SPACES.sub(" ", pattern.strip())
    open_left = stripped.startswith("*")
    open_right = stripped.endswith("*")
    core = stripped.strip("*").strip()
    if not any(ch.isalnum() for ch in core):
        raise ValueError(f"term {pattern!r} has no letters or digits")
    if "**" in core:
        raise ValueError(f"term {pattern!r}: '**' means nothing")
    if "_" in core:
        raise ValueError(f"term {pattern!r}: '_' is reserved (it separates title and summary)")
    # Rule terms are folded the standard way; analysts write Turkish terms in
    # lower case with ı and i as they are, which folding leaves alone.
    head, *rest = fold(core).split("*")
    if not any(ch.isalnum() for ch in head):
        raise ValueError(f"term {pattern!r}: the part before the first inner '*' needs a letter")
    # The tail runs on the scan form of the text (see scan_form), so its
    # literal chunks get punctuation turned into spaces the same way.
    tail = "".join(r"\w*" + re.escape(_NOT_WORD.sub(" ", chunk)) for chunk in rest)
    return Term(
        pattern=pattern, literal=head, open_left=open_left, open_right=open_right, tail=tail
    )


# --- loading -------------------------------------------------------------------


def rule_files(directory: Path) -> list[Path]:
    """The rule files in the fixed order the version hash uses."""
    return sorted(directory.rglob("*.toml"), key=lambda p: p.relative_to(directory).as_posix())


def rules_version(directory: Path) -> str:
    """sha256 over every rule file's relative path and bytes, first 16 hex digits."""
    digest = hashlib.sha256()
    for path in rule_files(directory):
        digest.update(path.relative_to(directory).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


_TOML_LINE = re.compile(r"at line (\d+)")


class _Source:
    """One rule file being read: its path, text and parsed data, for pinpointed errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleFileError(path, f"cannot read: {exc}") from exc
        try:
            self.data: dict[str, Any] = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            found = _TOML_LINE.search(str(exc))
            line = int(found.group(1)) if found else None
            raise RuleFileError(path, f"not valid TOML: {exc}", line) from exc

    def line_of(self, rule_id: str | None) -> int | None:
        """Best effort: the line where `id = "<rule_id>"` is written (the last one: a duplicate)."""
        if not rule_id:
            return None
        pattern = r"""^\s*id\s*=\s*["']""" + re.escape(rule_id) + "[\"']"
        found = list(re.finditer(pattern, self.text, re.M))
        return self.text.count("\n", 0, found[-1].start()) + 1 if found else None

    def fail(self, reason: str, rule_id: str | None = None) -> RuleFileError:
        return RuleFileError(self.path, reason, self.line_of(rule_id))

    def tables(self, key: str) -> list[dict[str, Any]]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"'{key}' must be an array of tables ([[{key}]])")
        return value


def _text(src: _Source, table: dict[str, Any], key: str, rule_id: str | None) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise src.fail(f"rule {rule_id or '?'}: '{key}' must be a non-empty string", rule_id)
    return value.strip()


def _terms(
    src: _Source, table: dict[str, Any], key: str, rule_id: str, *, required: bool
) -> tuple[Term, ...]:
    value = table.get(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or (required and not value):
        raise src.fail(f"rule {rule_id}: '{key}' must be a non-empty list of terms", rule_id)
    terms: dict[tuple[str, bool, bool, str], Term] = {}
    for raw in value:
        try:
            term = parse_term(raw)
        except ValueError as exc:
            raise src.fail(f"rule {rule_id}: {exc}", rule_id) from exc
        terms.setdefault((term.literal, term.open_left, term.open_right, term.tail), term)
    return tuple(terms.values())


def _check_unknown_keys(
    src: _Source, table: dict[str, Any], allowed: set[str], rule_id: str
) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise src.fail(f"rule {rule_id}: unknown key(s) {', '.join(unknown)}", rule_id)


class _Registry:
    """Rule ids seen so far, so that a duplicate names both places."""

    def __init__(self) -> None:
        self.seen: dict[str, Path] = {}

    def claim(self, src: _Source, rule_id: str) -> None:
        if rule_id in self.seen:
            raise src.fail(f"duplicate rule id {rule_id!r} (also in {self.seen[rule_id]})", rule_id)
        self.seen[rule_id] = src.path


def _load_actors(src: _Source, ids: _Registry) -> list[ActorRule]:
    actors = []
    for table in src.tables("actor"):
        rule_id = _text(src, table, "id", None)
        ids.claim(src, rule_id)
        _check_unknown_keys(src, table, {"id", "side", "kind", "label", "terms"}, rule_id)
        side = table.get("side")
        if side not in SIDES:
            raise src.fail(f"rule {rule_id}: side must be one of {', '.join(SIDES)}", rule_id)
        kind = table.get("kind")
        if kind not in ACTOR_KINDS:
            raise src.fail(f"rule {rule_id}: kind must be one of {', '.join(ACTOR_KINDS)}", rule_id)
        actors.append(
            ActorRule(
                id=rule_id,
                side=side,
                kind=kind,
                label=str(table.get("label", rule_id)),
                terms=_terms(src, table, "terms", rule_id, required=True),
            )
        )
    return actors


def _load_exclusions(src: _Source, ids: _Registry) -> list[ExclusionRule]:
    exclusions = []
    allowed = {"id", "label", "terms", "explains_sides", "explains_kinds"}
    for table in src.tables("exclusion"):
        rule_id = _text(src, table, "id", None)
        ids.claim(src, rule_id)
        _check_unknown_keys(src, table, allowed, rule_id)
        sides = table.get("explains_sides", [])
        if not isinstance(sides, list) or any(s not in SIDES for s in sides):
            raise src.fail(f"rule {rule_id}: explains_sides must list AZ and/or RU", rule_id)
        kinds = table.get("explains_kinds", [])
        if not isinstance(kinds, list) or any(k not in ACTOR_KINDS for k in kinds):
            raise src.fail(
                f"rule {rule_id}: explains_kinds must be among {', '.join(ACTOR_KINDS)}", rule_id
            )
        exclusions.append(
            ExclusionRule(
                id=rule_id,
                label=_text(src, table, "label", rule_id),
                terms=_terms(src, table, "terms", rule_id, required=True),
                explains_sides=tuple(sides),
                explains_kinds=tuple(kinds),
            )
        )
    return exclusions


def _load_countries(src: _Source, ids: _Registry) -> list[CountryRule]:
    countries = []
    for table in src.tables("country"):
        rule_id = _text(src, table, "id", None)
        ids.claim(src, rule_id)
        _check_unknown_keys(src, table, {"id", "label", "terms"}, rule_id)
        countries.append(
            CountryRule(
                id=rule_id,
                label=str(table.get("label", rule_id)),
                terms=_terms(src, table, "terms", rule_id, required=True),
            )
        )
    return countries


def _load_enumerations(src: _Source, ids: _Registry) -> list[EnumerationRule]:
    enumerations = []
    for table in src.tables("enumeration"):
        rule_id = _text(src, table, "id", None)
        ids.claim(src, rule_id)
        _check_unknown_keys(src, table, {"id", "label", "min_items", "joiners"}, rule_id)
        min_items = table.get("min_items", 3)
        if not isinstance(min_items, int) or isinstance(min_items, bool) or min_items < 2:
            raise src.fail(f"rule {rule_id}: min_items must be an integer of at least 2", rule_id)
        joiners = table.get("joiners")
        if (
            not isinstance(joiners, list)
            or not joiners
            or not all(isinstance(j, str) and j.strip() for j in joiners)
        ):
            raise src.fail(f"rule {rule_id}: 'joiners' must be a non-empty list of words", rule_id)
        words = sorted({fold(j.strip()) for j in joiners}, key=lambda w: (-len(w), w))
        # What may stand between two members: an inflection after an apostrophe
        # (Kazakistan'dan), a comma, and one joining word.
        gap = re.compile(
            r"(?:['’]\w+)?\s*,?\s*(?:(?:" + "|".join(map(re.escape, words)) + r")\s+)?"
        )
        enumerations.append(
            EnumerationRule(
                id=rule_id,
                label=_text(src, table, "label", rule_id),
                min_items=min_items,
                gap=gap,
                gap_words=2 + max(len(word.split()) for word in words),
            )
        )
    return enumerations


def _load_signal(src: _Source, ids: _Registry) -> tuple[SignalDefinition | None, list[TriggerRule]]:
    header = src.data.get("signal")
    if header is None:
        if src.tables("trigger"):
            raise src.fail("[[trigger]] rules need a [signal] table naming their signal")
        return None, []
    if not isinstance(header, dict):
        raise src.fail("[signal] must be a table")
    signal_id = _text(src, header, "id", None)
    if signal_id not in SIGNAL_IDS:
        raise src.fail(
            f"unknown signal id {signal_id!r}; known: {', '.join(SIGNAL_IDS)}", signal_id
        )
    ids.claim(src, signal_id)
    _check_unknown_keys(src, header, {"id", "polarity", "weight", "description"}, signal_id)
    polarity = header.get("polarity")
    if polarity not in (1, -1) or isinstance(polarity, bool):
        raise src.fail(f"signal {signal_id}: polarity must be 1 or -1", signal_id)
    weight = header.get("weight")
    if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
        raise src.fail(f"signal {signal_id}: weight must be a positive number", signal_id)
    definition = SignalDefinition(
        id=signal_id,
        polarity=int(polarity),
        weight=float(weight),
        description=str(header.get("description", "")),
    )
    triggers = []
    allowed = {"id", "terms", "near", "unless", "near_sides", "signal"}
    for table in src.tables("trigger"):
        rule_id = _text(src, table, "id", None)
        ids.claim(src, rule_id)
        _check_unknown_keys(src, table, allowed, rule_id)
        if table.get("signal", signal_id) != signal_id:
            raise src.fail(
                f"rule {rule_id}: signal {table['signal']!r} differs from the file's {signal_id!r}",
                rule_id,
            )
        near_sides = table.get("near_sides", "any")
        if near_sides not in ("any", "both"):
            raise src.fail(f"rule {rule_id}: near_sides must be 'any' or 'both'", rule_id)
        triggers.append(
            TriggerRule(
                id=rule_id,
                signal=signal_id,
                terms=_terms(src, table, "terms", rule_id, required=True),
                near=_terms(src, table, "near", rule_id, required=False),
                unless=_terms(src, table, "unless", rule_id, required=False),
                near_sides=near_sides,
            )
        )
    return definition, triggers


# Word boundaries are built into the automaton: the text is scanned as
# " " + text with every non-word character turned into a space + " ", and a
# closed end of a term is a space in its key. So the automaton only reports
# matches that sit on word boundaries and no match needs checking in Python.
# The ASCII characters that are not word characters, each mapped to a space.
_ASCII_NOT_WORD = bytes(c for c in range(128) if _NOT_WORD.match(chr(c)))
_ASCII_TO_SPACE = bytes.maketrans(_ASCII_NOT_WORD, b" " * len(_ASCII_NOT_WORD))


def scan_form(folded: str) -> str:
    """The text the automaton scans: padded, punctuation as spaces, same offsets plus one."""
    if folded.isascii():
        # The same result as the regex, twenty times faster: bytes.translate is
        # one table look-up a byte (English items, a good part of the news).
        return " " + folded.encode("ascii").translate(_ASCII_TO_SPACE).decode("ascii") + " "
    return " " + _NOT_WORD.sub(" ", folded) + " "


def automaton_key(term: Term) -> str:
    """The automaton key of a term: its literal in scan form, a space for each closed end."""
    key = _NOT_WORD.sub(" ", term.literal)
    if not term.open_left:
        key = " " + key
    if not term.open_right and not term.tail:
        key = key + " "
    return key


def _build_automaton(
    actors: list[ActorRule],
    triggers: list[TriggerRule],
    exclusions: list[ExclusionRule],
    countries: list[CountryRule],
) -> Automaton:
    entries: dict[str, list[Entry]] = {}

    def add(role: int, index: int, terms: tuple[Term, ...]) -> None:
        for term in terms:
            tail = re.compile(term.tail) if term.tail else None
            entries.setdefault(automaton_key(term), []).append((role, index, tail, term.open_right))

    for index, actor in enumerate(actors):
        add(ROLE_ACTOR, index, actor.terms)
    for index, trigger in enumerate(triggers):
        add(ROLE_TRIGGER, index, trigger.terms)
        add(ROLE_NEAR, index, trigger.near)
        add(ROLE_UNLESS, index, trigger.unless)
    for index, exclusion in enumerate(exclusions):
        add(ROLE_EXCLUSION, index, exclusion.terms)
    for index, country in enumerate(countries):
        add(ROLE_COUNTRY, index, country.terms)

    payloads: list[Payload] = []
    for key, key_entries in entries.items():
        lead = int(key.startswith(" "))
        trail = int(key.endswith(" ") and len(key) > lead)
        unique = tuple(dict.fromkeys(key_entries))
        first = tuple(e for e in unique if e[0] in FIRST_ROLES)
        later = tuple(e for e in unique if e[0] not in FIRST_ROLES)
        payloads.append((lead, trail, first, later))
    return Automaton(list(entries), payloads)


def load_rules(directory: Path | None = None) -> Rules:
    """Read, check and compile the rule files of `directory` (default: the bundled rules).

    Raises RuleFileError, naming the file (and the line when known), for a file
    that is not valid TOML, an unknown signal id, an empty or malformed term,
    a duplicate rule id or a missing part.
    """
    directory = BUNDLED_RULES if directory is None else Path(directory)
    if not directory.is_dir():
        raise RuleFileError(directory, "rules directory does not exist")
    ids = _Registry()
    actors: list[ActorRule] = []
    exclusions: list[ExclusionRule] = []
    triggers: list[TriggerRule] = []
    countries: list[CountryRule] = []
    enumerations: list[EnumerationRule] = []
    signals: dict[str, SignalDefinition] = {}
    precedences: list[tuple[_Source, dict[str, Any]]] = []
    cues: list[tuple[_Source, dict[str, Any]]] = []
    window_tokens = 15
    for path in rule_files(directory):
        src = _Source(path)
        known = {
            "actor",
            "country",
            "cue",
            "enumeration",
            "exclusion",
            "precedence",
            "signal",
            "trigger",
            "window_tokens",
        }
        unknown = sorted(set(src.data) - known)
        if unknown:
            raise src.fail(f"unknown top-level key(s) {', '.join(unknown)}")
        if "window_tokens" in src.data:
            value = src.data["window_tokens"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise src.fail("window_tokens must be a positive integer")
            window_tokens = value
        actors.extend(_load_actors(src, ids))
        exclusions.extend(_load_exclusions(src, ids))
        countries.extend(_load_countries(src, ids))
        enumerations.extend(_load_enumerations(src, ids))
        definition, file_triggers = _load_signal(src, ids)
        if definition is not None:
            signals[definition.id] = definition
        triggers.extend(file_triggers)
        precedences.extend((src, table) for table in src.tables("precedence"))
        cues.extend((src, table) for table in src.tables("cue"))
    for side in SIDES:
        if not any(actor.side == side for actor in actors):
            raise RuleFileError(directory, f"no [[actor]] rule for side {side}")
    return Rules(
        actors=tuple(actors),
        triggers=tuple(triggers),
        exclusions=tuple(exclusions),
        signals=signals,
        window_tokens=window_tokens,
        version=rules_version(directory),
        directory=directory,
        automaton=_build_automaton(actors, triggers, exclusions, countries),
        countries=tuple(countries),
        enumerations=tuple(enumerations),
        precedences=tuple(
            _load_precedence(src, table, ids, signals, triggers) for src, table in precedences
        ),
        cues=tuple(_load_cue(src, table, ids, signals) for src, table in cues),
    )


def _signal_ids(
    src: _Source, table: dict[str, Any], key: str, rule_id: str, known: Mapping[str, object]
) -> frozenset[str]:
    value = table.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise src.fail(f"rule {rule_id}: '{key}' must be a non-empty list of ids", rule_id)
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise src.fail(f"rule {rule_id}: '{key}' names unknown id(s) {', '.join(unknown)}", rule_id)
    return frozenset(value)


def _load_precedence(
    src: _Source,
    table: dict[str, Any],
    ids: _Registry,
    signals: Mapping[str, SignalDefinition],
    triggers: Sequence[TriggerRule],
) -> PrecedenceRule:
    rule_id = _text(src, table, "id", None)
    ids.claim(src, rule_id)
    _check_unknown_keys(src, table, {"id", "reports", "recalls", "headline"}, rule_id)
    headline = table.get("headline", False)
    if not isinstance(headline, bool):
        raise src.fail(f"rule {rule_id}: 'headline' must be true or false", rule_id)
    return PrecedenceRule(
        headline=headline,
        id=rule_id,
        reports=tuple(
            sorted(_signal_ids(src, table, "reports", rule_id, {t.id: t for t in triggers}))
        ),
        recalls=_signal_ids(src, table, "recalls", rule_id, signals),
    )


def _cue_words(
    src: _Source, table: dict[str, Any], key: str, rule_id: str
) -> re.Pattern[str] | None:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise src.fail(f"rule {rule_id}: '{key}' must be a list of words or phrases", rule_id)
    if not value:
        return None
    phrases = sorted({fold(phrase).strip() for phrase in value}, key=len, reverse=True)
    alternatives = (
        " ".join(
            re.escape(word[:-1]) + r"\w*" if word.endswith("*") else re.escape(word)
            for word in phrase.split()
        )
        for phrase in phrases
    )
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def _load_cue(
    src: _Source, table: dict[str, Any], ids: _Registry, signals: Mapping[str, SignalDefinition]
) -> CueRule:
    rule_id = _text(src, table, "id", None)
    ids.claim(src, rule_id)
    _check_unknown_keys(src, table, {"id", "before", "after", "recalls", "window_tokens"}, rule_id)
    window = table.get("window_tokens", 6)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise src.fail(f"rule {rule_id}: window_tokens must be a positive integer", rule_id)
    cue = CueRule(
        id=rule_id,
        before=_cue_words(src, table, "before", rule_id),
        after=_cue_words(src, table, "after", rule_id),
        recalls=_signal_ids(src, table, "recalls", rule_id, signals),
        window_tokens=window,
    )
    if not cue.before and not cue.after:
        raise src.fail(f"rule {rule_id}: a cue needs 'before' or 'after' words", rule_id)
    return cue
