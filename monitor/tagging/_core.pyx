# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, infer_types=True
# distutils: language = c++
"""The tagger, compiled: `tag()` with exactly the results of `monitor.tagging.matcher.tag`.

`matcher.py` is the specification, written to be read; this is the same
algorithm step by step, with the per-item work in C: a check that spares clean
text the normalising, the folded scan form in one pass, the language vote over
a table of stop words, automaton hits, mentions and evidence rows in C++
vectors instead of tuples, nearness by binary search over sentence ends and
spaces, and rows sorted as packed 64-bit keys. Rare paths (text that needs
normalising, a phrase with inner stems, a capital sigma, a truncated field)
call the reference functions themselves, so there is one definition of each.

A differential test (tests/unit/test_tagging_compiled.py) holds the two equal
on the corpora, hostile input and generated text.
"""

from cpython.object cimport PyObject, PyObject_GenericSetAttr, PyTypeObject
from cpython.unicode cimport PyUnicode_FromKindAndData, PyUnicode_4BYTE_KIND
from libc.stdint cimport uint64_t
from libcpp.algorithm cimport sort
from libcpp.vector cimport vector

cdef extern from "Python.h":
    # The simple lower-case mapping, which str.lower() applies to all but İ and Σ.
    Py_UCS4 Py_UNICODE_TOLOWER(Py_UCS4 ch)
    # A str's code units, read in place: one byte, two or four each.
    int PyUnicode_KIND(object text)
    void* PyUnicode_DATA(object text)
    enum:
        PyUnicode_1BYTE_KIND
        PyUnicode_2BYTE_KIND
    ctypedef unsigned char Py_UCS1
    ctypedef unsigned short Py_UCS2

import unicodedata as _unicodedata

from monitor.tagging import matcher as _reference
from monitor.tagging.rules import (
    ACTOR_KINDS,
    FIELD_SEPARATOR,
    ROLE_ACTOR,
    ROLE_COUNTRY,
    ROLE_EXCLUSION,
    ROLE_NEAR,
    ROLE_TRIGGER,
    ROLE_UNLESS,
    TURKIC_LANGS,
    fold,
)
from schemas import SIGNAL_IDS, Evidence

cdef object _normalise = _reference._normalise
cdef object _as_text = _reference._as_text
cdef object _extend = _reference._extend
cdef object _TagResult = _reference.TagResult
cdef object _evidence_object = _reference.evidence_record
cdef tuple _NO_ARGUMENTS = ()
cdef tuple _NO_BACKGROUND = ()  # TagResult.background: set by monitor.tagging.background
# Evidence's tp_new is object's (a pydantic model sets no __new__): called
# directly, as object.__new__(Evidence) does, without a Python-level call.
cdef PyTypeObject* _EVIDENCE_TYPE = <PyTypeObject*>Evidence
cdef object _new_tuple = tuple.__new__
cdef object _EVIDENCE_FIELDS = _reference._EVIDENCE_FIELDS
# One fields set shared by every Evidence built here, where pydantic's
# model_construct makes one each: the objects are frozen, nothing adds to the
# set, and model_copy copies it before an update. A set apiece cost 5 % of the
# tagger's time.
cdef object _ALL_FIELDS_SET = set(_EVIDENCE_FIELDS)
cdef int _MAX_EVIDENCE_PER_RULE = _reference.MAX_EVIDENCE_PER_RULE
cdef Py_ssize_t _MAX_FIELD_CHARS = _reference.MAX_FIELD_CHARS
cdef Py_ssize_t _SAMPLE_CHARS = _reference._SAMPLE_CHARS
cdef Py_ssize_t _SEPARATOR_LENGTH = len(FIELD_SEPARATOR)
cdef str _SEPARATOR = FIELD_SEPARATOR
cdef object _TURKIC = TURKIC_LANGS
cdef tuple _SIGNALS = tuple(SIGNAL_IDS)

cdef int _R_ACTOR = ROLE_ACTOR
cdef int _R_TRIGGER = ROLE_TRIGGER
cdef int _R_NEAR = ROLE_NEAR
cdef int _R_UNLESS = ROLE_UNLESS
cdef int _R_EXCLUSION = ROLE_EXCLUSION
cdef int _R_COUNTRY = ROLE_COUNTRY
cdef enum:
    _ROLES = 6  # rules.ROLE_ACTOR .. ROLE_COUNTRY
if max(ROLE_ACTOR, ROLE_TRIGGER, ROLE_NEAR, ROLE_UNLESS, ROLE_EXCLUSION, ROLE_COUNTRY) >= _ROLES:
    raise ImportError("a rule role no longer fits the compiled tagger's table of roles")

# Evidence row kinds, in the reference's sort order (note, exclusion, actor, signal).
cdef int _ORDER_EXCLUSION = 1
cdef int _ORDER_ACTOR = 2
cdef int _ORDER_SIGNAL = 3


cdef struct Hit:
    int start
    int end
    int rule


cdef struct Later:
    # A key whose payload has trigger, near or unless entries, read for relevant items only.
    int key_start
    int last
    PyObject* payload  # borrowed: the automaton's payloads outlive the call


cdef struct Mention:
    int sentence
    int token
    int label


# --- the scan form and the language guess ------------------------------------

cdef inline uint64_t _hash_step(uint64_t value, Py_UCS4 ch):
    return (value ^ <uint64_t>ch) * <uint64_t>1099511628211ULL


cdef uint64_t _FNV_OFFSET = 14695981039346656037ULL

# Stop words in an open-addressed table by hash, each with its letters to confirm a hit.
cdef enum:
    _STOPWORD_SLOTS = 1024
    _STOPWORD_LETTERS = 16

cdef struct _Stopword:
    uint64_t hash
    int length   # 0: an empty slot
    int lang     # 0 en, 1 de, 2 tr
    Py_UCS4 letters[_STOPWORD_LETTERS]

cdef _Stopword _stopwords[_STOPWORD_SLOTS]
cdef Py_ssize_t _stopword_longest = 0


cdef void _load_stopwords() except *:
    global _stopword_longest
    cdef uint64_t value
    cdef Py_UCS4 ch
    cdef Py_ssize_t slot, k
    if len(_reference._STOPWORD_LANG) > _STOPWORD_SLOTS // 2:
        raise ValueError(f"more than {_STOPWORD_SLOTS // 2} stop words: enlarge the table")
    for word, lang in _reference._STOPWORD_LANG.items():
        if not 0 < len(word) <= _STOPWORD_LETTERS:
            raise ValueError(f"stop word {word!r} is longer than {_STOPWORD_LETTERS} letters")
        value = _FNV_OFFSET
        for ch in word:
            value = _hash_step(value, ch)
        slot = value & (_STOPWORD_SLOTS - 1)
        while _stopwords[slot].length:
            slot = (slot + 1) & (_STOPWORD_SLOTS - 1)
        _stopwords[slot].hash = value
        _stopwords[slot].length = len(word)
        _stopwords[slot].lang = ("en", "de", "tr").index(lang)
        for k in range(len(word)):
            _stopwords[slot].letters[k] = word[k]
        _stopword_longest = max(_stopword_longest, len(word))


_load_stopwords()


# Character facts for the scripts of the five languages (Latin, Latin
# extended, IPA for ə, Cyrillic), looked up instead of asked per character.
cdef enum:
    _TABLED = 0x500
cdef bint _WORD[_TABLED]       # what `\w` matches in a str pattern (sre: alnum or "_")
cdef bint _PRINTABLE[_TABLED]  # str.isprintable()
cdef Py_UCS4 _LOWER[_TABLED]   # the simple lower-case mapping
for _code in range(_TABLED):
    _WORD[_code] = chr(_code).isalnum() or _code == ord("_")
    _PRINTABLE[_code] = chr(_code).isprintable()
    _LOWER[_code] = ord(chr(_code).lower()) if len(chr(_code).lower()) == 1 else _code


cdef inline bint _is_word(Py_UCS4 ch):
    if ch < _TABLED:
        return _WORD[ch]
    return ch.isalnum()


cdef inline bint _is_printable(Py_UCS4 ch):
    if ch < _TABLED:
        return _PRINTABLE[ch]
    return ch.isprintable()


cdef object _is_normalized = _unicodedata.is_normalized


ctypedef fused code_unit:
    Py_UCS1
    Py_UCS2
    Py_UCS4


# ASCII characters that send a text to the reference normaliser: controls, markup, entities.
cdef bint _ASCII_UNCLEAN[128]
for _code in range(128):
    _ASCII_UNCLEAN[_code] = _code < 0x20 or _code == 0x7F or chr(_code) in "<&"


cdef bint _is_clean(const code_unit* data, Py_ssize_t length, bint* ascii) noexcept:
    """No markup, entity, unprintable character, double space or edge space."""
    cdef Py_ssize_t i
    cdef Py_UCS4 ch, previous = u' '
    for i in range(length):
        ch = data[i]
        if ch < 128:
            if _ASCII_UNCLEAN[ch] or (ch == u' ' and previous == u' '):
                return False
        else:
            ascii[0] = False
            if not _is_printable(ch):
                return False
        previous = ch
    return previous != u' '


cdef tuple _normalised(object value):
    """matcher._normalise(matcher._as_text(value)), with a C check for text that is clean already.

    Clean: no markup or entity, printable (so no control, invisible or
    surrogate character and no space but " "), no double or edge space, in
    NFKC, short enough. Such text is its own normal form; the rest takes
    the reference function.
    """
    cdef str text
    cdef Py_ssize_t length
    cdef bint ascii = True, clean
    cdef int kind
    if type(value) is not str:
        return _normalise(_as_text(value))
    text = <str>value
    length = len(text)
    if length == 0 or length > _MAX_FIELD_CHARS:
        return _normalise(text)
    kind = PyUnicode_KIND(text)
    if kind == PyUnicode_1BYTE_KIND:
        clean = _is_clean(<Py_UCS1*>PyUnicode_DATA(text), length, &ascii)
    elif kind == PyUnicode_2BYTE_KIND:
        clean = _is_clean(<Py_UCS2*>PyUnicode_DATA(text), length, &ascii)
    else:
        clean = _is_clean(<Py_UCS4*>PyUnicode_DATA(text), length, &ascii)
    if not clean or (not ascii and not _is_normalized("NFKC", text)):
        return _normalise(text)
    return text, length


cdef object _fold = fold
cdef object _scan_form_reference = _reference.scan_form

# The scan form of each tabled character: folded, then a space unless a word character.
# 0 marks the capital sigma, whose lower case depends on its neighbours.
cdef Py_UCS4 _SCAN[_TABLED]
for _code in range(_TABLED):
    _folded = chr(_code).replace("İ", "i").replace("ё", "е").replace("Ё", "е").lower()
    _SCAN[_code] = (
        ord(_folded) if (_folded == " " or _folded.isalnum() or _folded == "_") else ord(" ")
    )
_SCAN[0x3A3] = 0


cdef bint _fill_scan_form(
    const code_unit* data, Py_ssize_t length, bint turkic, Py_UCS4* out
) noexcept:
    """The scan form of the folded text into out[1:length + 1]; False at a capital sigma."""
    cdef Py_ssize_t i
    cdef Py_UCS4 ch, folded
    for i in range(length):
        ch = data[i]
        if ch < _TABLED:
            folded = _SCAN[ch]
            if folded == 0:
                return False
            if turkic and ch == u'I':
                folded = u'ı'
        else:
            folded = Py_UNICODE_TOLOWER(ch)
            if not _is_word(folded):
                folded = u' '
        out[i + 1] = folded
    return True


cdef str _folded_scan_form(str joined, object lang, bint turkic, vector[Py_UCS4]& buffer):
    """rules.scan_form(rules.fold(joined, lang)) in one pass, kept in `buffer` too.

    fold is str.lower() with İ→i, ё→е and, in Turkish and Azerbaijani, I→ı.
    Per character, str.lower() is the simple lower-case mapping except for İ
    (handled first) and a capital sigma, whose final form depends on its
    neighbours: such a text takes the reference functions.
    """
    cdef Py_ssize_t length = len(joined)
    cdef int kind = PyUnicode_KIND(joined)
    cdef bint done
    buffer.resize(length + 2)
    buffer[0] = u' '
    buffer[length + 1] = u' '
    if kind == PyUnicode_1BYTE_KIND:
        done = _fill_scan_form(<Py_UCS1*>PyUnicode_DATA(joined), length, turkic, buffer.data())
    elif kind == PyUnicode_2BYTE_KIND:
        done = _fill_scan_form(<Py_UCS2*>PyUnicode_DATA(joined), length, turkic, buffer.data())
    else:
        done = _fill_scan_form(<Py_UCS4*>PyUnicode_DATA(joined), length, turkic, buffer.data())
    if not done:
        return _scan_form_buffer(_scan_form_reference(_fold(joined, lang)), buffer)
    return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buffer.data(), length + 2)


cdef str _scan_form_buffer(str scanned, vector[Py_UCS4]& buffer):
    cdef Py_ssize_t length = len(scanned), i
    buffer.resize(length)
    for i in range(length):
        buffer[i] = scanned[i]
    return scanned


cdef inline int _stopword_lang(const Py_UCS4* word, Py_ssize_t length, uint64_t value) noexcept:
    """The language of a stop word, or -1."""
    cdef Py_ssize_t slot = value & (_STOPWORD_SLOTS - 1), k
    while _stopwords[slot].length:
        if _stopwords[slot].hash == value and _stopwords[slot].length == length:
            for k in range(length):
                if _stopwords[slot].letters[k] != word[k]:
                    return -1
            return _stopwords[slot].lang
        slot = (slot + 1) & (_STOPWORD_SLOTS - 1)
    return -1


cdef str _detect(vector[Py_UCS4]& scanned):
    """matcher._detect over the scan form, in one pass over its first _SAMPLE_CHARS."""
    cdef Py_ssize_t size = min(<Py_ssize_t>scanned.size(), _SAMPLE_CHARS), i, word_start = -1
    cdef const Py_UCS4* sample = scanned.data()
    cdef Py_UCS4 ch
    cdef bint ascii_only = True, cyrillic = False, has_schwa = False
    cdef Py_ssize_t extra = 0, spaces = 0, turkish_letters = 0, german_letters = 0
    cdef double votes[3]
    cdef uint64_t value = _FNV_OFFSET
    cdef int lang
    votes[0] = 0.5  # a tie goes to English
    votes[1] = 0.0
    votes[2] = 0.0
    for i in range(size + 1):
        # In the scan form every white space character is a plain space; one
        # more space after the sample ends its last word.
        ch = sample[i] if i < size else u' '
        if ch == u' ':
            spaces += 1
            if word_start >= 0:
                if i - word_start <= _stopword_longest:
                    lang = _stopword_lang(sample + word_start, i - word_start, value)
                    if lang >= 0:
                        votes[lang] += 1
                word_start = -1
            continue
        if word_start < 0:
            word_start = i
            value = _FNV_OFFSET
        value = _hash_step(value, ch)
        if ch >= 0x80:
            ascii_only = False
            extra += 1 if ch < 0x800 else (2 if ch < 0x10000 else 3)
            if 0x400 <= ch <= 0x4FF:
                cyrillic = True
            elif ch == u'ə':
                has_schwa = True
            elif ch == u'ğ' or ch == u'ş' or ch == u'ı':
                turkish_letters += 1
            elif ch == u'ä' or ch == u'ß':
                german_letters += 1
    spaces -= 1  # the one after the sample
    if not ascii_only:
        if has_schwa:
            return "az"
        if 2 * extra >= size - spaces and cyrillic:
            return "ru"
        votes[2] += 2 * turkish_letters
        votes[1] += german_letters
    if votes[0] >= votes[1] and votes[0] >= votes[2]:
        return "en"
    return "de" if votes[1] >= votes[2] else "tr"


cdef inline Py_ssize_t _space_before(vector[Py_UCS4]& scanned, Py_ssize_t before):
    """scanned.rfind(" ", 0, before)."""
    cdef Py_ssize_t i = before - 1
    while i >= 0 and scanned[i] != u' ':
        i -= 1
    return i


cdef inline Py_ssize_t _space_from(vector[Py_UCS4]& scanned, Py_ssize_t start):
    """scanned.find(" ", start)."""
    cdef Py_ssize_t i = start, size = scanned.size()
    while i < size and scanned[i] != u' ':
        i += 1
    return i if i < size else -1


# --- the rules, compiled once per Rules object --------------------------------

cdef class _Compiled:
    """Per-rule facts as C arrays, and each rule's rank among all rule ids (the evidence order)."""

    cdef vector[int] actor_side      # 0 AZ, 1 RU
    cdef vector[int] actor_kind      # bit of ACTOR_KINDS
    cdef vector[int] actor_rank
    cdef vector[char] actor_listable  # a state or place: can be a member of a list of countries
    cdef vector[int] exclusion_sides  # bit mask over sides
    cdef vector[int] exclusion_kinds  # bit mask over ACTOR_KINDS
    cdef vector[int] exclusion_rank
    cdef vector[int] trigger_signal  # index into SIGNAL_IDS
    cdef vector[int] trigger_needs   # 1, or 2 when both sides must be near
    cdef vector[char] trigger_has_near
    cdef vector[int] trigger_rank
    cdef list enumerations  # (rank, gap.fullmatch, min_items, gap_words)
    cdef list rank_rule_id
    cdef list rank_kind
    cdef list rank_label
    cdef int window
    cdef bint has_enumerations

    def __init__(self, rules):
        cdef int needs
        cdef char has_near, listable
        sides = ("AZ", "RU")
        kinds = list(ACTOR_KINDS)
        ids = sorted(
            [a.id for a in rules.actors]
            + [t.id for t in rules.triggers]
            + [e.id for e in rules.exclusions]
            + [e.id for e in rules.enumerations]
        )
        rank = {rule_id: position for position, rule_id in enumerate(ids)}
        self.rank_rule_id = ids
        self.rank_kind = [None] * len(ids)
        self.rank_label = [None] * len(ids)
        for actor in rules.actors:
            self.actor_side.push_back(sides.index(actor.side))
            self.actor_kind.push_back(1 << kinds.index(actor.kind))
            self.actor_rank.push_back(rank[actor.id])
            listable = actor.kind in _reference._LISTABLE_KINDS
            self.actor_listable.push_back(listable)
            self.rank_kind[rank[actor.id]] = "actor"
            self.rank_label[rank[actor.id]] = actor.side
        for exclusion in rules.exclusions:
            self.exclusion_sides.push_back(
                sum(1 << sides.index(s) for s in set(exclusion.explains_sides))
            )
            self.exclusion_kinds.push_back(
                sum(1 << kinds.index(k) for k in set(exclusion.explains_kinds))
            )
            self.exclusion_rank.push_back(rank[exclusion.id])
            self.rank_kind[rank[exclusion.id]] = "exclusion"
            self.rank_label[rank[exclusion.id]] = exclusion.label
        for trigger in rules.triggers:
            self.trigger_signal.push_back(_SIGNALS.index(trigger.signal))
            # (Cython binds a conditional expression passed to push_back to a
            # reference to a temporary: give it a variable.)
            needs = 2 if trigger.near_sides == "both" else 1
            self.trigger_needs.push_back(needs)
            has_near = 1 if trigger.near else 0
            self.trigger_has_near.push_back(has_near)
            self.trigger_rank.push_back(rank[trigger.id])
            self.rank_kind[rank[trigger.id]] = "signal"
            self.rank_label[rank[trigger.id]] = trigger.signal
        self.enumerations = [
            (rank[e.id], e.gap.fullmatch, e.min_items, e.gap_words) for e in rules.enumerations
        ]
        for enumeration in rules.enumerations:
            self.rank_kind[rank[enumeration.id]] = "exclusion"
            self.rank_label[rank[enumeration.id]] = enumeration.label
        self.window = rules.window_tokens
        self.has_enumerations = bool(rules.enumerations)


# A few Rules objects per process at most (the bundled ones, a test's own).
cdef dict _compiled_rules = {}


cdef _Compiled _compiled(object rules):
    cached = _compiled_rules.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    compiled = _Compiled(rules)
    if len(_compiled_rules) >= 16:
        _compiled_rules.clear()
    _compiled_rules[id(rules)] = (rules, compiled)
    return compiled


# --- evidence ------------------------------------------------------------------

if 2 * _MAX_FIELD_CHARS + _SEPARATOR_LENGTH >= 1 << 17:
    raise ImportError("MAX_FIELD_CHARS no longer fits the packed evidence rows of _row_key")


cdef inline uint64_t _row_key(int start, int order, int end, int rank):
    # start and end < 2**17 (two fields of at most 20,000 characters and the
    # separator), order < 4, rank < 2**28: sorted as the reference sorts its tuples.
    return (
        ((<uint64_t>start) << 47) | ((<uint64_t>order) << 45) | ((<uint64_t>end) << 28)
        | <uint64_t>rank
    )


cdef object _new_evidence(
    str rule_id, str kind, str label, str field, int start, int end, str text
):
    """matcher._evidence: an Evidence built without validating values valid by construction."""
    evidence = _EVIDENCE_TYPE.tp_new(<type>Evidence, <PyObject*>_NO_ARGUMENTS, NULL)
    PyObject_GenericSetAttr(
        evidence,
        "__dict__",
        {
            "rule_id": rule_id,
            "kind": kind,
            "label": label,
            "field": field,
            "start": start,
            "end": end,
            "text": text,
        },
    )
    PyObject_GenericSetAttr(evidence, "__pydantic_fields_set__", _ALL_FIELDS_SET)
    PyObject_GenericSetAttr(evidence, "__pydantic_extra__", None)
    PyObject_GenericSetAttr(evidence, "__pydantic_private__", None)
    return evidence


cdef tuple _ordered(
    vector[uint64_t]& rows, list kept, _Compiled compiled, str joined, int summary_start
):
    """matcher._ordered over packed rows."""
    cdef uint64_t key, previous = <uint64_t>(-1), place
    cdef int start, end, rank, omitted = 0
    cdef vector[int] seen
    seen.resize(len(compiled.rank_rule_id), 0)
    sort(rows.begin(), rows.end())
    for key in rows:
        place = key & ~((<uint64_t>3) << 45)
        if place == previous:
            continue
        previous = place
        start = <int>(key >> 47)
        end = <int>((key >> 28) & 0x1FFFF)
        rank = <int>(key & 0xFFFFFFF)
        seen[rank] += 1
        if seen[rank] > _MAX_EVIDENCE_PER_RULE:
            omitted += 1
            continue
        text = joined[start:end]
        if start < summary_start:
            kept.append(
                _new_evidence(
                    compiled.rank_rule_id[rank], compiled.rank_kind[rank],
                    compiled.rank_label[rank], "title", start, end, text,
                )
            )
        else:
            kept.append(
                _new_evidence(
                    compiled.rank_rule_id[rank], compiled.rank_kind[rank],
                    compiled.rank_label[rank], "summary", start - summary_start,
                    end - summary_start, text,
                )
            )
    if omitted:
        kept.append(
            _new_evidence(
                "note.evidence_capped", "note", "evidence_capped", kept[len(kept) - 1].field, 0, 0,
                f"{omitted} further matches of rules already listed are not shown",
            )
        )
    return tuple(kept)


# --- nearness --------------------------------------------------------------------

cdef class _Positions:
    """Sentence ends and spaces of the joined text, for relevant items only."""

    cdef vector[int] sentence_ends
    cdef vector[int] spaces

    def __init__(self, str text, int separator_at):
        cdef int kind = PyUnicode_KIND(text)
        cdef void* data = PyUnicode_DATA(text)
        cdef Py_ssize_t size = len(text)
        if kind == PyUnicode_1BYTE_KIND:
            _find_positions(<Py_UCS1*>data, size, self.sentence_ends, self.spaces)
        elif kind == PyUnicode_2BYTE_KIND:
            _find_positions(<Py_UCS2*>data, size, self.sentence_ends, self.spaces)
        else:
            _find_positions(<Py_UCS4*>data, size, self.sentence_ends, self.spaces)
        # insort(ends, separator_at)
        self.sentence_ends.insert(
            self.sentence_ends.begin() + _upper_bound(self.sentence_ends, separator_at),
            separator_at,
        )

    cdef inline int sentence(self, int position):
        return _upper_bound(self.sentence_ends, position)

    cdef inline int token(self, int position):
        """The number of spaces before `position`: text.count(" ", 0, position)."""
        return _lower_bound(self.spaces, position)


cdef inline bint _is_terminator(Py_UCS4 ch) noexcept:
    return ch == u'.' or ch == u'!' or ch == u'?' or ch == u'…'


cdef void _find_positions(
    const code_unit* text, Py_ssize_t size, vector[int]& sentence_ends, vector[int]& spaces
):
    """Sentence ends as matcher._SENTENCE_END finds them ([.!?…]+["'»”’)\\]]*\\s, left
    to right), and where the spaces are, in one pass."""
    cdef Py_ssize_t i = 0, j
    cdef Py_UCS4 ch
    while i < size:
        ch = text[i]
        if ch == u' ':
            spaces.push_back(i)
        elif _is_terminator(ch):
            j = i + 1
            while j < size and _is_terminator(text[j]):
                j += 1
            i = j
            while j < size and _is_closer(text[j]):
                j += 1
            if j < size and (<Py_UCS4>text[j]).isspace():
                sentence_ends.push_back(j + 1)
                if text[j] == u' ':
                    spaces.push_back(j)
                i = j + 1
            continue
        i += 1


cdef inline bint _is_closer(Py_UCS4 ch):
    return (
        ch == u'"' or ch == u"'" or ch == u'»' or ch == u'”' or ch == u'’' or ch == u')'
        or ch == u']'
    )


cdef inline int _lower_bound(vector[int]& values, int value):
    """bisect_left: the number of values below `value`."""
    cdef int low = 0, high = values.size(), middle
    while low < high:
        middle = (low + high) >> 1
        if values[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low


cdef inline int _upper_bound(vector[int]& values, int value):
    """bisect_right."""
    cdef int low = 0, high = values.size(), middle
    while low < high:
        middle = (low + high) >> 1
        if value < values[middle]:
            high = middle
        else:
            low = middle + 1
    return low


cdef inline bint _is_near(Mention& mention, int sentence, int token, int window):
    return (
        mention.sentence == sentence
        or mention.sentence == sentence - 1
        or abs(mention.token - token) <= window
    )


cdef void _accept_triggers(
    vector[Later]& later,
    vector[Py_UCS4]& scanned_buffer,
    str scanned,
    vector[Hit]& counted,
    str joined,
    int separator_at,
    _Compiled compiled,
    vector[Hit]& accepted,
):
    """matcher._accept_triggers: the trigger hits whose unless, near and nearness hold."""
    cdef vector[Hit] triggers, nears, unlesses
    cdef Hit hit
    cdef Mention mention
    cdef vector[Mention] actors, near_mentions
    cdef vector[int] unless_rules, unless_sentences
    cdef int sentence, token, window = compiled.window, sides
    cdef Py_ssize_t k
    cdef bint blocked, near_found
    _read_later(later, scanned_buffer, scanned, triggers, nears, unlesses)
    if triggers.empty():
        return
    positions = _Positions(joined, separator_at)
    for hit in counted:
        mention.sentence = positions.sentence(hit.start)
        mention.token = positions.token(hit.start)
        mention.label = compiled.actor_side[hit.rule]
        actors.push_back(mention)
    for hit in nears:
        mention.sentence = positions.sentence(hit.start)
        mention.token = positions.token(hit.start)
        mention.label = hit.rule
        near_mentions.push_back(mention)
    for hit in unlesses:
        unless_rules.push_back(hit.rule)
        unless_sentences.push_back(positions.sentence(hit.start))
    for hit in triggers:
        sentence = positions.sentence(hit.start)
        token = positions.token(hit.start)
        blocked = False
        for k in range(<Py_ssize_t>unless_rules.size()):
            if unless_rules[k] == hit.rule and unless_sentences[k] == sentence:
                blocked = True
                break
        if blocked:
            continue
        if compiled.trigger_has_near[hit.rule]:
            near_found = False
            for k in range(<Py_ssize_t>near_mentions.size()):
                if near_mentions[k].label == hit.rule and _is_near(
                    near_mentions[k], sentence, token, window
                ):
                    near_found = True
                    break
            if not near_found:
                continue
        sides = 0
        for k in range(<Py_ssize_t>actors.size()):
            if _is_near(actors[k], sentence, token, window):
                sides |= 1 << actors[k].label
                if sides == 3:
                    break
        if (sides & 1) + (sides >> 1) >= compiled.trigger_needs[hit.rule]:
            accepted.push_back(hit)


cdef void _read_later(
    vector[Later]& later,
    vector[Py_UCS4]& scanned_buffer,
    str scanned,
    vector[Hit]& triggers,
    vector[Hit]& nears,
    vector[Hit]& unlesses,
) except *:
    """_Scan.by_role: trigger, near and unless hits, read only for relevant items."""
    cdef vector[Hit]* by_role[_ROLES]
    cdef Py_ssize_t n
    cdef tuple payload
    for n in range(_ROLES):
        by_role[n] = NULL
    by_role[_R_TRIGGER] = &triggers
    by_role[_R_NEAR] = &nears
    by_role[_R_UNLESS] = &unlesses
    for n in range(<Py_ssize_t>later.size()):
        payload = <tuple>later[n].payload
        _read_entries(
            scanned_buffer, scanned, later[n].key_start, later[n].last, payload,
            <tuple>payload[3], by_role,
        )


cdef void _read_entries(
    vector[Py_UCS4]& buffer,
    str scanned,
    int key_start,
    int last,
    tuple payload,
    tuple entries,
    vector[Hit]** by_role,
) except *:
    """The hits of one automaton match: its key's word edges, then each entry's end
    (a tail regex may extend it or reject it), kept by role where by_role has a list."""
    cdef int lead = payload[0], trail = payload[1], start = key_start, plain_end, end
    cdef Py_ssize_t j
    cdef tuple entry
    cdef vector[Hit]* target
    if not lead:
        start = _space_before(buffer, start)
    plain_end = last - 1 if trail else _space_from(buffer, last) - 1
    for j in range(len(entries)):
        entry = entries[j]
        end = plain_end if entry[2] is None else _extend(scanned, last, trail, entry)
        target = by_role[<int>entry[0]]
        if end >= 0 and target != NULL:
            target.push_back(Hit(start, end, entry[1]))


cdef bint _words_at_most(str text, Py_ssize_t start, Py_ssize_t end, int most):
    """Whether text[start:end] splits into at most `most` words (str.split())."""
    cdef Py_ssize_t i
    cdef int words = 0
    cdef bint in_word = False
    cdef Py_UCS4 ch
    for i in range(start, min(end, len(text))):
        ch = text[i]
        if ch == u' ' or ch.isspace():
            in_word = False
        elif not in_word:
            in_word = True
            words += 1
            if words > most:
                return False
    return True


cdef struct Member:
    int start
    int end
    int country  # 0 for a mention of a side, 1 for a third country: sides sort first
    int rule


cdef bint _member_less(const Member& a, const Member& b) noexcept:
    if a.start != b.start:
        return a.start < b.start
    if a.end != b.end:
        return a.end < b.end
    if a.country != b.country:
        return a.country < b.country
    return a.rule < b.rule


cdef void _unlist(
    vector[Hit]& actors, vector[Hit]& countries, str joined, _Compiled compiled,
    vector[uint64_t]& rows,
) except *:
    """matcher._unlisted: drop mentions of a side that are members of a list of countries,
    and add a row for each list."""
    cdef vector[Member] members
    cdef vector[Member] run
    cdef vector[Hit] listed, kept
    cdef Member member
    cdef Hit hit
    cdef Py_ssize_t m, k
    cdef int size = len(joined), min_items, rank
    cdef bint in_list
    for hit in actors:
        if compiled.actor_listable[hit.rule]:
            members.push_back(Member(hit.start, hit.end, 0, hit.rule))
    for hit in countries:
        members.push_back(Member(hit.start, hit.end, 1, hit.rule))
    sort(members.begin(), members.end(), _member_less)
    members.push_back(Member(size + 1, 0, 1, -1))  # the end of the text closes the last run
    for rank, fullmatch, min_items, gap_words in compiled.enumerations:
        run.clear()
        for m in range(<Py_ssize_t>members.size()):
            member = members[m]
            if not run.empty():
                if member.start >= run.back().end and _words_at_most(
                    joined, run.back().end, member.start, gap_words
                ):
                    gap = joined[run.back().end:member.start].lower()
                    if gap.strip() and fullmatch(gap) is not None:
                        run.push_back(member)
                        continue
                if <int>run.size() >= min_items:
                    for k in range(<Py_ssize_t>run.size()):
                        if not run[k].country:
                            listed.push_back(Hit(run[k].start, run[k].end, run[k].rule))
                    rows.push_back(
                        _row_key(run.front().start, _ORDER_EXCLUSION, run.back().end, rank)
                    )
            run.clear()
            run.push_back(member)
    if listed.empty():
        return
    for hit in actors:
        in_list = False
        for k in range(<Py_ssize_t>listed.size()):
            if (
                listed[k].start == hit.start
                and listed[k].end == hit.end
                and listed[k].rule == hit.rule
            ):
                in_list = True
                break
        if not in_list:
            kept.push_back(hit)
    actors.swap(kept)


# --- the tagger ------------------------------------------------------------------

def tag(title, summary, rules, lang=None):
    """Decide relevance and signals of one item: matcher.tag, compiled."""
    cdef str title_text, summary_text, joined, scanned
    cdef Py_ssize_t title_length, summary_length
    cdef int summary_start, last, start
    cdef int sides_seen = 0, signal_bits = 0
    cdef vector[Py_UCS4] buffer
    cdef vector[Hit] actors, exclusions, countries, counted, accepted
    cdef vector[Later] later
    cdef vector[char] used
    cdef vector[uint64_t] rows
    cdef tuple payload, first
    cdef Hit hit, exclusion_hit
    cdef Py_ssize_t k, n
    cdef bint explained
    cdef _Compiled compiled = _compiled(rules)
    cdef vector[Hit]* by_role[_ROLES]
    for k in range(_ROLES):
        by_role[k] = NULL
    by_role[_R_ACTOR] = &actors
    by_role[_R_EXCLUSION] = &exclusions
    by_role[_R_COUNTRY] = &countries

    title_text, title_length = _normalised(title)
    summary_text, summary_length = _normalised(summary)
    joined = title_text + _SEPARATOR + summary_text
    scanned = _folded_scan_form(joined, lang, lang in _TURKIC, buffer)
    if lang is None and (title_text or summary_text):
        lang = _detect(buffer)
        if lang in _TURKIC and "I" in joined:
            scanned = _folded_scan_form(joined, lang, True, buffer)
    summary_start = len(title_text) + _SEPARATOR_LENGTH

    # matcher._Scan: actor, exclusion and country hits now; the rest kept for relevant items.
    automaton = rules.automaton
    cdef list matches = automaton.find(scanned)
    cdef list payloads = automaton.payloads
    cdef tuple match
    cdef Later deferred
    for n in range(len(matches)):
        match = <tuple>matches[n]
        payload = <tuple>payloads[<Py_ssize_t>match[0]]
        start = <int>match[1]
        last = <int>match[2] - 1
        if len(<tuple>payload[3]):
            deferred.key_start = start
            deferred.last = last
            deferred.payload = <PyObject*>payload
            later.push_back(deferred)
        first = payload[2]
        if len(first):
            _read_entries(buffer, scanned, start, last, payload, first, by_role)

    if not countries.empty() and compiled.has_enumerations:
        _unlist(actors, countries, joined, compiled, rows)

    # _explain: drop actor mentions a matched exclusion explains.
    used.resize(exclusions.size(), 0)
    for hit in actors:
        explained = False
        for k in range(<Py_ssize_t>exclusions.size()):
            exclusion_hit = exclusions[k]
            if (exclusion_hit.start <= hit.start and hit.end <= exclusion_hit.end) or (
                compiled.exclusion_sides[exclusion_hit.rule] & (1 << compiled.actor_side[hit.rule])
                and compiled.exclusion_kinds[exclusion_hit.rule] & compiled.actor_kind[hit.rule]
            ):
                used[k] = 1
                explained = True
                break
        if not explained:
            counted.push_back(hit)
            sides_seen |= 1 << compiled.actor_side[hit.rule]
    for k in range(<Py_ssize_t>exclusions.size()):
        if used[k]:
            exclusion_hit = exclusions[k]
            rows.push_back(
                _row_key(exclusion_hit.start, _ORDER_EXCLUSION, exclusion_hit.end,
                         compiled.exclusion_rank[exclusion_hit.rule])
            )
    for hit in counted:
        rows.push_back(_row_key(hit.start, _ORDER_ACTOR, hit.end, compiled.actor_rank[hit.rule]))
    relevant = sides_seen == 3

    signals = ()
    if relevant and not later.empty():
        _accept_triggers(
            later, buffer, scanned, counted, joined, summary_start - 1,
            compiled, accepted,
        )
        for hit in accepted:
            signal_bits |= 1 << compiled.trigger_signal[hit.rule]
            rows.push_back(
                _row_key(hit.start, _ORDER_SIGNAL, hit.end, compiled.trigger_rank[hit.rule])
            )
        if signal_bits:
            signals = tuple([_SIGNALS[k] for k in range(len(_SIGNALS)) if signal_bits & (1 << k)])

    if sides_seen == 3:
        sides = ("AZ", "RU")
    elif sides_seen == 1:
        sides = ("AZ",)
    elif sides_seen == 2:
        sides = ("RU",)
    else:
        sides = ()

    if title_length <= _MAX_FIELD_CHARS and summary_length <= _MAX_FIELD_CHARS:
        notes = []
    else:
        notes = [
            _evidence_object(
                "note.truncated", "note", "truncated", field, _MAX_FIELD_CHARS, full_length,
                f"only the first {_MAX_FIELD_CHARS} of {full_length} characters were scanned",
            )
            for field, full_length in (("title", title_length), ("summary", summary_length))
            if full_length > _MAX_FIELD_CHARS
        ]
    # tuple.__new__ skips the named tuple's Python-level __new__.
    return _new_tuple(
        _TagResult,
        (relevant, sides, signals, _ordered(rows, notes, compiled, joined, summary_start), lang,
         rules.version, _NO_BACKGROUND),
    )
