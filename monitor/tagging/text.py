"""How the tagger reads text: normalised fields, their scan form, the language, sentence ends.

These are the definitions, in plain Python. `_text.pyx` computes the very same
in C where the package was built with a compiler, reading each text once per
step instead of calling a str method or a regular expression per question;
the tagger (`matcher.py`) imports that one when it is there. They are kernels
with one answer each for one text, and no rule in them: what the rules mean is
in `matcher.py` and `background.py` alone. `tests/unit/test_tagging_compiled.py`
holds the two equal.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right

from monitor.tagging.result import evidence_record
from monitor.tagging.rules import fold, scan_form

MAX_FIELD_CHARS = 20_000
# Raw text beyond this is not even normalised: markup rarely shrinks text 8-fold.
_RAW_LIMIT = MAX_FIELD_CHARS * 8


# --- normalisation -----------------------------------------------------------

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[!/?]?[A-Za-z][^<>]{0,2000}>|<!--.*?-->", re.S)
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# Control characters and white space of every kind become one plain space.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def as_text(value: object) -> str:
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


def normalised(value: object) -> tuple[str, int]:
    """The normalised text of a field (any value: bytes are decoded, the rest is no text),
    cut to MAX_FIELD_CHARS, and its length before the cut."""
    return _normalise(as_text(value))


def normalise_field(text: str) -> str:
    """The text that evidence offsets refer to."""
    return _normalise(as_text(text))[0]


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
    return language_of(scan_form(fold(text[:_SAMPLE_CHARS])))


def language_of(scanned: str) -> str:
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


def scan_form_of(joined: str, lang: str | None) -> str:
    """The text the automaton scans: `joined` folded for `lang`, in scan form (rules.py)."""
    return scan_form(fold(joined, lang))


# --- sentences -----------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…]+[\"'»”’)\]]*\s")


def places(text: str, separator_at: int, offsets: list[int]) -> tuple[list[int], list[int]]:
    """The sentence number and the token number of each offset into `text`.

    Sentences end after the white space that follows their punctuation, and
    at `separator_at`, where the title ends; a token number is the count of
    spaces before the offset (the text is normalised: one space between words).
    """
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    ends.insert(bisect_right(ends, separator_at), separator_at)
    return (
        [bisect_right(ends, offset) for offset in offsets],
        [text.count(" ", 0, offset) for offset in offsets],
    )


# --- evidence ------------------------------------------------------------------


# Where `_text` is not built, the tagger builds evidence with the definition itself.
evidence = evidence_record
