"""Publication dates feedparser cannot read: month and day names in other languages.

feedparser reads RFC 822, ISO 8601 and a few more, in English. Feeds written by
a CMS set to another language say "Seg, 24 Set 2018 19:32:00 -0300", "7 декабря
2026 г. 14:05" or "07 Aralık 2026 14:05". feedparser's reading stays the fast
path (parse.py asks it first); only what it leaves unread comes here, to
dateparser, which knows the month and day names of some two hundred languages.

dateparser is slow (milliseconds a call, tens when it must find the language
among many) and heavy to import (about a second, loaded on first need), so:
the feed's own language is tried first, alone; the others only if that fails;
and answers are cached by the date's text, since a feed serves the same dates
poll after poll. Only absolute dates with a day, a month and a year are read:
"next Tuesday" or "2022" would need today's date, and this module has no clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dateparser.date import DateDataParser

# Tried when the feed's own language gives nothing, in this order: the first that
# reads the date wins, so English, whose numeric dates are month first, comes last
# ("07.12.2026" is the 7th of December almost everywhere else).
FALLBACK_LANGUAGES = ("ru", "az", "tr", "de", "uk", "fr", "es", "pt", "it", "en")
# Longer than any date written by hand or by a CMS: not worth parsing.
MAX_DATE_CHARS = 120

_SETTINGS = {
    # Only dates that say when in full: no relative dates, no filling in from today.
    "PARSERS": ["absolute-time"],
    "REQUIRE_PARTS": ["day", "month", "year"],
    # A date without a zone is taken as UTC, as feedparser takes it.
    "TIMEZONE": "UTC",
    "TO_TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True,
}
# dateparser's parsers keep caches of their own; parse.py runs in worker threads.
_lock = threading.Lock()


@lru_cache(maxsize=64)
def _parser(languages: tuple[str, ...]) -> DateDataParser:
    from dateparser.date import DateDataParser

    # In the given order, and no memory of the last language that worked: the
    # same text must give the same date whatever was parsed before.
    return DateDataParser(
        languages=list(languages),
        try_previous_locales=False,
        use_given_order=True,
        settings=_SETTINGS,
    )


@lru_cache(maxsize=16_384)
def _read(text: str, languages: tuple[str, ...]) -> datetime | None:
    with _lock:
        found = _parser(languages).get_date_data(text).date_obj
    if found is None or found.tzinfo is None:
        return None
    return found.astimezone(UTC)


@lru_cache(maxsize=256)
def _knows(language: str) -> bool:
    try:
        _read("1 1 2000", (language,))
    except ValueError:  # "Unknown language(s)": a tag dateparser has no names for
        return False
    return True


def language_of(tag: object) -> str | None:
    """The primary language of a tag as feeds write it ("pt-BR", "ru_RU", "EN") or None."""
    if not isinstance(tag, str):
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


def localised_date(text: str, languages: Iterable[str] = ()) -> datetime | None:
    """The UTC time a date written in some language names, or None when it names none.

    `languages` are the feed's own (its catalogue entry, its xml:lang, its
    <language>), tried before FALLBACK_LANGUAGES.
    """
    text = " ".join(text.split())
    if not text or len(text) > MAX_DATE_CHARS:
        return None
    hints = tuple(lang for lang in dict.fromkeys(languages) if _knows(lang))
    for candidates in (hints, tuple(lang for lang in FALLBACK_LANGUAGES if lang not in hints)):
        if candidates:
            found = _read(text, candidates)
            if found is not None:
                return found
    return None
