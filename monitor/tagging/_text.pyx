# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The tagger's text kernels in C: each function gives what its namesake in text.py gives.

text.py holds the definitions; these read a text's code units in place, once
per step, where the definitions ask a str method or a regular expression per
question. They hold no rule: what the rules mean is in matcher.py and
background.py, written once. Tables are built at import from the definitions
themselves (rules.fold, rules.scan_form, text._STOPWORD_LANG), and anything
unusual (markup, an entity, a control or invisible character, a capital sigma,
text that NFKC would change) is handed to the definition itself.
tests/unit/test_tagging_compiled.py holds the two equal.
"""

from cpython.dict cimport PyDict_Copy
from cpython.object cimport PyObject, PyObject_GenericSetAttr, PyTypeObject
from cpython.unicode cimport PyUnicode_FromKindAndData, PyUnicode_4BYTE_KIND
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc

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

from monitor.tagging import text as _definitions
from monitor.tagging.rules import TURKIC_LANGS, fold, scan_form
from schemas import Evidence

cdef Py_ssize_t _MAX_FIELD_CHARS = _definitions.MAX_FIELD_CHARS
cdef Py_ssize_t _SAMPLE_CHARS = _definitions._SAMPLE_CHARS
cdef object _is_normalized = _unicodedata.is_normalized
cdef object _TURKIC = TURKIC_LANGS

ctypedef fused code_unit:
    Py_UCS1
    Py_UCS2
    Py_UCS4


# --- character tables ----------------------------------------------------------

# Character facts for the scripts of the five languages (Latin, Latin
# extended, IPA for ə, Cyrillic), looked up instead of asked per character.
cdef enum:
    _TABLED = 0x500
cdef bint _PRINTABLE[_TABLED]  # str.isprintable()
# Each character's scan form, folded without a language and for Turkish and
# Azerbaijani: rules.scan_form(rules.fold(ch, lang)), or 0 where folding one
# character alone is not folding it in a text (the capital sigma, whose lower
# case depends on its neighbours).
cdef Py_UCS4 _SCAN[_TABLED]
cdef Py_UCS4 _SCAN_TURKIC[_TABLED]


cdef Py_UCS4 _scanned_alone(str ch, object lang):
    folded = fold(ch, lang)
    if len(folded) != 1 or ch == "Σ":
        return 0
    return ord(scan_form(folded)[1])


for _code in range(_TABLED):
    _PRINTABLE[_code] = chr(_code).isprintable()
    _SCAN[_code] = _scanned_alone(chr(_code), None)
    _SCAN_TURKIC[_code] = _scanned_alone(chr(_code), "tr")
if any(_scanned_alone(chr(_code), lang) != _scanned_alone(chr(_code), "tr")
       for _code in range(_TABLED) for lang in _TURKIC):
    raise ImportError("the Turkic languages no longer fold alike: one table each is needed")


cdef inline bint _is_printable(Py_UCS4 ch):
    if ch < _TABLED:
        return _PRINTABLE[ch]
    return ch.isprintable()


# --- normalised fields -------------------------------------------------------------

# ASCII characters that send a text to the definition: controls, markup, entities.
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


def normalised(value):
    """text.normalised, with a C check for text that is clean already.

    Clean: a str with no markup or entity, printable (so no control, invisible
    or surrogate character and no space but " "), no double or edge space, in
    NFKC, short enough. Such text is its own normal form; the rest takes the
    definition.
    """
    cdef str text
    cdef Py_ssize_t length
    cdef bint ascii = True, clean
    cdef int kind
    if type(value) is not str:
        return _definitions.normalised(value)
    text = <str>value
    length = len(text)
    if length == 0 or length > _MAX_FIELD_CHARS:
        return _definitions.normalised(text)
    kind = PyUnicode_KIND(text)
    if kind == PyUnicode_1BYTE_KIND:
        clean = _is_clean(<Py_UCS1*>PyUnicode_DATA(text), length, &ascii)
    elif kind == PyUnicode_2BYTE_KIND:
        clean = _is_clean(<Py_UCS2*>PyUnicode_DATA(text), length, &ascii)
    else:
        clean = _is_clean(<Py_UCS4*>PyUnicode_DATA(text), length, &ascii)
    if not clean or (not ascii and not _is_normalized("NFKC", text)):
        return _definitions.normalised(text)
    return text, length


# --- the scan form -----------------------------------------------------------------


cdef bint _fill_scan_form(
    const code_unit* data, Py_ssize_t length, const Py_UCS4* table, Py_UCS4* out
) noexcept:
    """The scan form of the folded text into out[1:length + 1]; False at a capital sigma."""
    cdef Py_ssize_t i
    cdef Py_UCS4 ch, folded
    for i in range(length):
        ch = data[i]
        if ch < _TABLED:
            folded = table[ch]
            if folded == 0:
                return False
        else:
            # Above the table str.lower() is the simple mapping, and `\w` is alnum.
            folded = Py_UNICODE_TOLOWER(ch)
            if not folded.isalnum():
                folded = u' '
        out[i + 1] = folded
    return True


def scan_form_of(str joined, lang):
    """text.scan_form_of: rules.scan_form(rules.fold(joined, lang)) in one pass."""
    cdef Py_ssize_t length = len(joined)
    cdef int kind = PyUnicode_KIND(joined)
    cdef const Py_UCS4* table = &_SCAN[0]
    cdef bint done
    cdef Py_UCS4* out = <Py_UCS4*>malloc((length + 2) * sizeof(Py_UCS4))
    if out == NULL:
        raise MemoryError()
    if lang in _TURKIC:
        table = &_SCAN_TURKIC[0]
    try:
        out[0] = u' '
        out[length + 1] = u' '
        if kind == PyUnicode_1BYTE_KIND:
            done = _fill_scan_form(<Py_UCS1*>PyUnicode_DATA(joined), length, table, out)
        elif kind == PyUnicode_2BYTE_KIND:
            done = _fill_scan_form(<Py_UCS2*>PyUnicode_DATA(joined), length, table, out)
        else:
            done = _fill_scan_form(<Py_UCS4*>PyUnicode_DATA(joined), length, table, out)
        if not done:
            return _definitions.scan_form_of(joined, lang)
        # Copied into the narrowest kind that holds it, as every str must be.
        return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, length + 2)
    finally:
        free(out)


# --- the language ------------------------------------------------------------------

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
    if len(_definitions._STOPWORD_LANG) > _STOPWORD_SLOTS // 2:
        raise ValueError(f"more than {_STOPWORD_SLOTS // 2} stop words: enlarge the table")
    for word, lang in _definitions._STOPWORD_LANG.items():
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


cdef inline int _stopword_lang(
    const code_unit* word, Py_ssize_t length, uint64_t value
) noexcept:
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


cdef str _vote(const code_unit* sample, Py_ssize_t size):
    """text.language_of over the first `size` code units, in one pass."""
    cdef Py_ssize_t i, word_start = -1
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


def language_of(str scanned):
    """text.language_of: the language of a text in scan form, folded without a language."""
    cdef Py_ssize_t size = min(len(scanned), _SAMPLE_CHARS)
    cdef int kind = PyUnicode_KIND(scanned)
    if kind == PyUnicode_1BYTE_KIND:
        return _vote(<Py_UCS1*>PyUnicode_DATA(scanned), size)
    if kind == PyUnicode_2BYTE_KIND:
        return _vote(<Py_UCS2*>PyUnicode_DATA(scanned), size)
    return _vote(<Py_UCS4*>PyUnicode_DATA(scanned), size)


# --- sentences -----------------------------------------------------------------------


cdef inline bint _is_terminator(Py_UCS4 ch) noexcept:
    return ch == u'.' or ch == u'!' or ch == u'?' or ch == u'…'


cdef inline bint _is_closer(Py_UCS4 ch) noexcept:
    return (
        ch == u'"' or ch == u"'" or ch == u'»' or ch == u'”' or ch == u'’' or ch == u')'
        or ch == u']'
    )


cdef Py_ssize_t _find_ends(
    const code_unit* text, Py_ssize_t size, Py_ssize_t separator_at, Py_ssize_t* ends,
    Py_ssize_t* spaces, Py_ssize_t* space_count
) noexcept:
    """text._SENTENCE_END's ends ([.!?…]+["'»”’)\\]]*\\s, left to right), separator_at
    among them in order, into `ends` (their count returned); where the spaces are,
    into `spaces`."""
    cdef Py_ssize_t i = 0, j, count = 0, blanks = 0
    cdef bint placed = False
    cdef Py_UCS4 ch
    while i < size:
        ch = text[i]
        if ch == u' ':
            spaces[blanks] = i
            blanks += 1
        elif _is_terminator(ch):
            j = i + 1
            while j < size and _is_terminator(text[j]):
                j += 1
            i = j
            while j < size and _is_closer(text[j]):
                j += 1
            if j < size and (<Py_UCS4>text[j]).isspace():
                if not placed and separator_at < j + 1:
                    ends[count] = separator_at
                    count += 1
                    placed = True
                ends[count] = j + 1
                count += 1
                if text[j] == u' ':
                    spaces[blanks] = j
                    blanks += 1
                i = j + 1
            continue
        i += 1
    if not placed:
        ends[count] = separator_at
        count += 1
    space_count[0] = blanks
    return count


cdef inline Py_ssize_t _at_or_below(const Py_ssize_t* values, Py_ssize_t size, Py_ssize_t value):
    """bisect_right: how many of the sorted values are at most `value`."""
    cdef Py_ssize_t low = 0, high = size, middle
    while low < high:
        middle = (low + high) >> 1
        if value < values[middle]:
            high = middle
        else:
            low = middle + 1
    return low


cdef inline Py_ssize_t _below(const Py_ssize_t* values, Py_ssize_t size, Py_ssize_t value):
    """bisect_left: how many of the sorted values are below `value`."""
    cdef Py_ssize_t low = 0, high = size, middle
    while low < high:
        middle = (low + high) >> 1
        if values[middle] < value:
            low = middle + 1
        else:
            high = middle
    return low


def places(str text, Py_ssize_t separator_at, list offsets):
    """text.places: the sentence number and the token number of each offset."""
    cdef int kind = PyUnicode_KIND(text)
    cdef Py_ssize_t size = len(text), count, blanks = 0, k, offset
    # At most one sentence end per character, and the separator's.
    cdef Py_ssize_t* ends = <Py_ssize_t*>malloc((2 * size + 2) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* spaces = ends + size + 1
    cdef list sentences = [], tokens = []
    if ends == NULL:
        raise MemoryError()
    try:
        if kind == PyUnicode_1BYTE_KIND:
            count = _find_ends(
                <Py_UCS1*>PyUnicode_DATA(text), size, separator_at, ends, spaces, &blanks
            )
        elif kind == PyUnicode_2BYTE_KIND:
            count = _find_ends(
                <Py_UCS2*>PyUnicode_DATA(text), size, separator_at, ends, spaces, &blanks
            )
        else:
            count = _find_ends(
                <Py_UCS4*>PyUnicode_DATA(text), size, separator_at, ends, spaces, &blanks
            )
        for k in range(len(offsets)):
            offset = offsets[k]
            sentences.append(_at_or_below(ends, count, offset))
            tokens.append(_below(spaces, blanks, offset))
        return sentences, tokens
    finally:
        free(ends)


# --- evidence ------------------------------------------------------------------------

cdef extern from "Python.h":
    PyObject** _PyObject_GetDictPtr(object instance)
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

from cpython.ref cimport Py_INCREF, Py_XDECREF

cdef tuple _NO_ARGUMENTS = ()
# Evidence's tp_new is object's (a pydantic model sets no __new__): called
# directly, as object.__new__(Evidence) does, without a Python-level call.
cdef PyTypeObject* _EVIDENCE_TYPE = <PyTypeObject*>Evidence
# One fields set shared by every Evidence built here, where pydantic's
# model_construct makes one each: the objects are frozen, nothing adds to the
# set, and model_copy copies it before an update.
cdef object _ALL_FIELDS_SET = set(Evidence.model_fields)
# Evidence's fields in order, for `evidence` to copy.
cdef dict _FIELDS_LAID_OUT = dict.fromkeys(Evidence.model_fields)


cdef Py_ssize_t _slot_offset(str name) except -1:
    """Where a pydantic model keeps one of its __slots__ (a member descriptor's offset)."""
    descriptor = next(vars(klass)[name] for klass in Evidence.__mro__ if name in vars(klass))
    if type(descriptor).__name__ != "member_descriptor":
        raise ImportError(f"Evidence.{name} is no longer a slot: build evidence another way")
    return (<PyMemberDescrObject*>descriptor).d_member.offset


# The three slots pydantic reads besides __dict__; written in place, as
# object.__setattr__ would through their descriptors.
cdef Py_ssize_t _FIELDS_SET_AT = _slot_offset("__pydantic_fields_set__")
cdef Py_ssize_t _EXTRA_AT = _slot_offset("__pydantic_extra__")
cdef Py_ssize_t _PRIVATE_AT = _slot_offset("__pydantic_private__")


cdef inline void _set_slot(object instance, Py_ssize_t offset, object value):
    cdef PyObject** slot = <PyObject**>((<char*><PyObject*>instance) + offset)
    Py_INCREF(value)
    Py_XDECREF(slot[0])
    slot[0] = <PyObject*>value


def evidence(str rule_id, str kind, str label, str field, start, end, str text):
    """result.evidence_record: an Evidence from values valid by construction."""
    instance = _EVIDENCE_TYPE.tp_new(<type>Evidence, <PyObject*>_NO_ARGUMENTS, NULL)
    # A copy of a dict with the same keys takes them as they are laid out (no
    # hashing, no growing); setting a key it has only replaces the value.
    cdef dict values = PyDict_Copy(_FIELDS_LAID_OUT)
    values["rule_id"] = rule_id
    values["kind"] = kind
    values["label"] = label
    values["field"] = field
    values["start"] = start
    values["end"] = end
    values["text"] = text
    cdef PyObject** attributes = _PyObject_GetDictPtr(instance)
    if attributes == NULL:
        PyObject_GenericSetAttr(instance, "__dict__", values)
    else:
        Py_INCREF(values)
        Py_XDECREF(attributes[0])
        attributes[0] = <PyObject*>values
    _set_slot(instance, _FIELDS_SET_AT, _ALL_FIELDS_SET)
    _set_slot(instance, _EXTRA_AT, None)
    _set_slot(instance, _PRIVATE_AT, None)
    return instance
