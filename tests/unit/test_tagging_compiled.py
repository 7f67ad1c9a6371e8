"""One tagging algorithm, run two ways: compiled by Cython, and as plain Python.

matcher.py and background.py are the tagger; setup.py compiles those very files
(types in the .pxd files beside them), and the text kernels they use
(normalising, the scan form, the language, sentence and token numbers,
evidence objects) have a C version (`_text.pyx`) beside their definitions
(`text.py`). `monitor.tagging.pure.pure_matcher()` runs the same files as
plain Python with text.py's kernels: what a user without a compiler gets.
Every case here tags one input both ways and requires the same result: every
field of the TagResult equal and of the same type, every Evidence equal, of
the same type and in the same order. A failure names the case (corpus item
id, feed file, or the input itself) and the first field or evidence index
that differs. A stale build (matcher.py changed, not rebuilt) fails here too.

The cases: the corpora (languages detected and declared, title only, summary
only, swapped, in capitals), the texts of feedparser's test feeds (parsed, and
raw bytes and chunks), hostile input (markup, control characters, lone
surrogates, bytes, non-strings, invisible and NFKC-affected characters,
Turkish I, ё, huge texts, lists of countries, exclusions), and generated text
(hypothesis): the input the kernels must read alike.

The compiled modules are not guarded: CI builds them, and a build that is
missing must fail this module, not skip it.
"""

from __future__ import annotations

import functools
import importlib.machinery
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import monitor.tagging
from monitor.tagging import _text as kernels
from monitor.tagging import background, matcher
from monitor.tagging.pure import pure_matcher
from monitor.tagging.result import TagResult
from monitor.tagging.rules import Rules, load_rules
from monitor.tagging.text import MAX_FIELD_CHARS
from schemas import Evidence

DATA = Path(__file__).resolve().parents[1] / "data"
CORPORA = {
    "dev": DATA / "dev.jsonl",
    "heldout": DATA / "heldout.jsonl",
    "fresh": DATA / "fresh.jsonl",
}
FEEDS = DATA / "feedparser-tests"
LANGS: tuple[str | None, ...] = (None, "en", "ru", "de", "az", "tr")
RULES = load_rules()  # module level: the property test's vocabulary is made of its terms
PURE = pure_matcher()
# A relevant item with signals, to put odd text next to.
RELEVANT = "Moscow summons Azerbaijan's ambassador after police detain Russian journalists in Baku."
# How many differing cases a failure lists in full.
SHOWN = 8


@pytest.fixture(scope="module")
def rules() -> Rules:
    return RULES


# --- comparing -------------------------------------------------------------------


class Case(NamedTuple):
    """One input to tag with both taggers; `label` says where it comes from."""

    label: str
    title: object
    summary: object
    lang: str | None = None


def _clip(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters in repr)"


def _same(expected: object, actual: object) -> bool:
    """Equal and of the same type, tuples element by element (True is not 1, a list no tuple)."""
    if type(expected) is not type(actual) or expected != actual:
        return False
    if isinstance(expected, tuple) and isinstance(actual, tuple):
        return all(_same(e, a) for e, a in zip(expected, actual, strict=True))
    return True


def _show(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def _brief(evidence: object) -> str:
    if type(evidence) is not Evidence:
        return _clip(evidence)
    values = vars(evidence)
    return (
        f"{values.get('kind')} {values.get('rule_id')} label={values.get('label')!r} "
        f"{values.get('field')}[{values.get('start')}:{values.get('end')}] "
        f"{_clip(values.get('text'), 80)}"
    )


_EVIDENCE_FIELDS = tuple(Evidence.model_fields)


def _evidence_difference(expected: Evidence, actual: object) -> str | None:
    if type(actual) is not Evidence:
        return f"type: reference Evidence, compiled {type(actual).__qualname__}"
    values = vars(actual)
    if set(values) != set(_EVIDENCE_FIELDS):
        return f"attributes: reference {sorted(_EVIDENCE_FIELDS)}, compiled {sorted(values)}"
    for name in _EVIDENCE_FIELDS:
        want, got = getattr(expected, name), values[name]
        if not _same(want, got):
            return f"{name}: reference {_show(want)}, compiled {_show(got)}"
    for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        want, got = getattr(expected, name, None), getattr(actual, name, None)
        if want != got:
            return f"{name}: reference {want!r}, compiled {got!r}"
    if expected != actual or hash(expected) != hash(actual):
        return "the objects are not == (or hash differently) though every field is equal"
    return None


def first_difference(expected: TagResult, actual: object) -> str | None:
    """Where `actual` (the compiled result) first departs from `expected`; None if nowhere."""
    if type(actual) is not TagResult:
        return f"result type: reference TagResult, compiled {type(actual).__qualname__}"
    for name in TagResult._fields:
        if name == "evidence":
            continue
        want, got = getattr(expected, name), getattr(actual, name)
        if not _same(want, got):
            return f"{name}: reference {_show(want)}, compiled {_show(got)}"
    want_all, got_all = expected.evidence, actual.evidence
    if type(got_all) is not tuple:
        return f"evidence: reference a tuple, compiled a {type(got_all).__qualname__}"
    for index, (want, got) in enumerate(zip(want_all, got_all, strict=False)):
        difference = _evidence_difference(want, got)
        if difference is not None:
            return (
                f"evidence[{index}].{difference}\n"
                f"      reference evidence[{index}]: {_brief(want)}\n"
                f"      compiled  evidence[{index}]: {_brief(got)}"
            )
    if len(want_all) != len(got_all):
        shorter = min(len(want_all), len(got_all))
        extra = want_all[shorter:] if len(want_all) > shorter else got_all[shorter:]
        owner = "reference" if len(want_all) > shorter else "compiled"
        return (
            f"evidence length: reference {len(want_all)}, compiled {len(got_all)}; "
            f"first extra in {owner}: evidence[{shorter}] {_brief(extra[0])}"
        )
    return None


def _reference(title: object, summary: object, rules: Rules, lang: str | None) -> TagResult:
    result: TagResult = PURE.tag(title, summary, rules, lang)
    return result


def _compiled(title: object, summary: object, rules: Rules, lang: str | None) -> object:
    return matcher.tag(title, summary, rules, lang)  # type: ignore[arg-type]  # odd input on purpose


def compare(case: Case, rules: Rules) -> tuple[str | None, TagResult]:
    """(None or what differs, the reference result) for one case."""
    expected = _reference(case.title, case.summary, rules, case.lang)
    try:
        actual = _compiled(case.title, case.summary, rules, case.lang)
    except Exception as exc:  # the pure run never raises; the compiled one must not either
        difference: str | None = f"compiled raised {type(exc).__name__}: {exc}"
    else:
        difference = first_difference(expected, actual)
    if difference is None:
        return None, expected
    where = (
        f"{case.label} [lang={case.lang!r}]\n"
        f"    title={_clip(case.title)}\n    summary={_clip(case.summary)}\n    "
    )
    return where + difference, expected


class Tally(NamedTuple):
    cases: int
    relevant: int
    with_signals: int
    with_notes: int


def assert_all_agree(cases: Iterable[Case], rules: Rules) -> Tally:
    """Compare every case; fail listing the first few that differ. Returns what was covered."""
    failures: list[str] = []
    total = relevant = with_signals = with_notes = 0
    for case in cases:
        difference, expected = compare(case, rules)
        total += 1
        relevant += expected.relevant
        with_signals += bool(expected.signals)
        with_notes += any(e.kind == "note" for e in expected.evidence)
        if difference is not None:
            failures.append(difference)
    if failures:
        pytest.fail(
            f"{len(failures)} of {total} cases differ between the compiled and the pure tag; "
            f"the first {min(len(failures), SHOWN)}:\n\n" + "\n\n".join(failures[:SHOWN]),
            pytrace=False,
        )
    return Tally(total, relevant, with_signals, with_notes)


# --- what runs, and the signature -----------------------------------------------------


def test_the_package_runs_the_compiled_modules() -> None:
    # The comparisons below mean something only against the built extensions,
    # not the .py files imported under their names.
    for module in (matcher, background, kernels):
        path = module.__file__ or ""
        assert path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), path
    assert monitor.tagging.COMPILED
    assert monitor.tagging.tag is matcher.tag
    assert monitor.tagging.scan is matcher.scan


def test_the_pure_run_is_the_source_files_as_python() -> None:
    assert (PURE.__file__ or "").endswith("matcher.py")
    assert not PURE.COMPILED
    assert PURE.tag is not matcher.tag
    assert PURE.normalised.__module__ == "monitor.tagging.text"
    assert PURE.set_aside.__module__ == "monitor.tagging.background"
    assert PURE.set_aside is not background.set_aside
    # Loading it leaves the imported (compiled) modules in place.
    assert monitor.tagging.matcher is matcher


def test_the_compiled_tagger_takes_the_same_arguments(rules: Rules) -> None:
    title, summary = "Putin phones Aliyev", "The Kremlin said the call was warm."
    expected = PURE.tag(title, summary, rules)
    calls: list[tuple[str, Callable[[], TagResult]]] = [
        ("positional, no lang", lambda: matcher.tag(title, summary, rules)),
        ("lang by keyword", lambda: matcher.tag(title, summary, rules, lang=None)),
        (
            "all by keyword",
            lambda: matcher.tag(summary=summary, rules=rules, lang=None, title=title),
        ),
    ]
    for label, call in calls:
        difference = first_difference(expected, call())
        assert difference is None, f"{label}: {difference}"
    declared = PURE.tag(title, summary, rules, lang="tr")
    assert first_difference(declared, matcher.tag(title, summary, rules, lang="tr")) is None
    scanned = PURE.scan(title, summary, rules)
    assert first_difference(scanned, matcher.scan(title, summary, rules)) is None


# --- the corpora -------------------------------------------------------------------


@functools.cache
def corpus_items(name: str) -> tuple[dict[str, Any], ...]:
    with CORPORA[name].open(encoding="utf-8") as lines:
        return tuple(json.loads(line) for line in lines if line.strip())


def _variants(item: dict[str, Any], variant: str) -> Iterator[Case]:
    title, summary, lang, label = item["title"], item["summary"], item["lang"], item["id"]
    fields = {
        "whole": (title, summary),
        "title-only": (title, ""),
        "summary-only": ("", summary),
        "swapped": (summary, title),
        "capitals": (title.upper(), summary.upper()),
    }[variant]
    yield Case(f"{label} ({variant}, detected)", *fields, None)
    yield Case(f"{label} ({variant}, declared)", *fields, lang)


@pytest.mark.parametrize("variant", ["whole", "title-only", "summary-only", "swapped", "capitals"])
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_corpus_items_agree(rules: Rules, corpus: str, variant: str) -> None:
    items = corpus_items(corpus)
    tally = assert_all_agree((case for item in items for case in _variants(item, variant)), rules)
    # Guards against agreeing on nothing: a missing corpus, or no relevant item.
    assert tally.cases == 2 * len(items) > 300
    if variant in ("whole", "swapped"):
        assert tally.with_signals > 100


def test_corpus_items_agree_under_every_declared_language(rules: Rules) -> None:
    items = corpus_items("dev")[::4]
    cases = (
        Case(f"{item['id']} (declared {lang})", item["title"], item["summary"], lang)
        for item in items
        for lang in ("en", "ru", "de", "az", "tr", "", "xx", "TR")
    )
    assert assert_all_agree(cases, rules).cases == 8 * len(items)


# --- feedparser's test feeds -----------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


@functools.cache
def feed_files() -> tuple[Path, ...]:
    return tuple(sorted(path for path in FEEDS.rglob("*.xml") if path.is_file()))


@functools.cache
def feed_texts() -> tuple[tuple[str, str, str], ...]:
    """(label, title, summary) of every feed and entry feedparser reads from the corpus."""
    texts: list[tuple[str, str, str]] = []
    for path in feed_files():
        name = path.relative_to(FEEDS).as_posix()
        parsed = feedparser.parse(path.read_bytes())
        feed = parsed.get("feed", {})
        title, subtitle = _text(feed.get("title")), _text(feed.get("subtitle"))
        if title or subtitle:
            texts.append((f"{name} (feed)", title, subtitle))
        for number, entry in enumerate(parsed.get("entries", [])):
            summary = _text(entry.get("summary"))
            contents = " ".join(_text(c.get("value")) for c in entry.get("content", []))
            texts.append((f"{name} entry {number}", _text(entry.get("title")), summary))
            if contents:
                texts.append((f"{name} entry {number} content", "", contents))
    return tuple(texts)


def test_feed_entries_agree(rules: Rules) -> None:
    texts = feed_texts()
    assert len(texts) > 700
    cases = (
        case
        for label, title, summary in texts
        for case in (
            Case(label, title, summary),
            # Between and around a relevant text, so their markup meets the signal logic.
            Case(f"{label} (after a relevant title)", RELEVANT, f"{title} {summary}"),
            Case(f"{label} (around Baku, tr)", f"{title} Baku", f"Moscow {summary} detained", "tr"),
        )
    )
    assert_all_agree(cases, rules)


def _raw_cases(path: Path) -> Iterator[Case]:
    name = path.relative_to(FEEDS).as_posix()
    document = path.read_bytes()
    half = len(document) // 2
    # As bytes: the tagger decodes them itself (UTF-8, errors replaced).
    yield Case(f"{name} (bytes)", document[:half], bytearray(document[half:]))
    text = document.decode("latin-1")  # every byte a character: C1 controls included
    for start in range(0, len(text), 3000):
        chunk = text[start : start + 3000]
        yield Case(f"{name} chars {start}+3000", chunk[:1000], chunk[1000:])
        yield Case(f"{name} chars {start}+3000 (after a relevant title)", RELEVANT, chunk)
    if len(text) > MAX_FIELD_CHARS:
        yield Case(f"{name} (whole, truncated)", RELEVANT, text)


def test_raw_feed_files_agree(rules: Rules) -> None:
    files = feed_files()
    assert len(files) > 1700
    tally = assert_all_agree((case for path in files for case in _raw_cases(path)), rules)
    assert tally.with_notes > 0  # a whole file longer than MAX_FIELD_CHARS


# --- hostile and odd input ---------------------------------------------------------------


class _Str(str):
    """A str subclass: the reference takes it as text."""


class _Bytes(bytes):
    """A bytes subclass: the reference decodes it."""


_LIST = "Kazakhstan, Russia, Azerbaijan and Georgia"
_REPEATED = "Baku detained Russian journalists. Moscow protested and summoned the ambassador. "
_LONG_TEXT = "Azerbaijan and Russia. " * 1000

# id: (title, summary)
HOSTILE: dict[str, tuple[object, object]] = {
    # empty and white space
    "empty": ("", ""),
    "empty title": ("", RELEVANT),
    "empty summary": (RELEVANT, ""),
    "spaces": ("   ", "\n\t\r "),
    "unicode spaces": ("\u00a0\u2003\u3000\u2028\u2029\x0b\x0c\x1c\x85", "\u2009\u202f"),
    "spaces around words": ("  Baku\n\n and\tMoscow  ", "\u00a0Putin\u2003meets\u3000Aliyev "),
    "double spaces only": ("Baku  and  Moscow", "Putin  detained"),
    # punctuation
    "punctuation only": (".,!?…«»\"'()-—/:;", "!!! ??? ... ;;; --- ''' \"\" «» ()"),
    "punctuation glued": ("Baku!Moscow?Putin…Aliyev«Kremlin»", "(Baku)-[Moscow]/Putin:Aliyev;"),
    "sentence ends without space": (
        "Aliyev spoke.Putin listened!Moscow detained?",
        'He said: "Baku detained them." Russia protested.» (Moscow.) Done…',
    ),
    "underscores": ("Baku_Moscow _ Putin __ Aliyev", "_ _ _detained_ Russia_"),
    "apostrophes and hyphens": (
        "Rusya'nın Bakü'deki büyükelçisi",
        "Russian-Azerbaijani talks’ end",
    ),
    # markup
    "script and style": ("<script>Putin Aliyev</script>Baku", "<style>.Moscow{}</style>summons"),
    "script unclosed": ("<script>Putin detained in Baku", "Moscow <style>p {}"),
    "script in capitals": ("<SCRIPT type='x'>Baku</SCRIPT >Moscow", "<Style>Putin</sTyle>Aliyev"),
    "comments": ("<!-- Moscow summons --> Baku", "<!--Putin-->Aliyev <!-- unclosed Moscow"),
    "entities": (
        "Baku &amp; Moscow &quot;detain&quot; &#1041;&#1072;&#1082;&#1091; &#x41;liyev",
        "&nbsp;&lt;b&gt;Putin&lt;/b&gt; &copy; &bogus; &#xDEADBEEF; &#0; &#128; &amp",
    ),
    "double escaped": ("&amp;lt;script&amp;gt;Baku&amp;lt;/script&amp;gt;", "&amp;amp; Moscow"),
    "tags inside words": (
        "Ba<b>ku</b> and Mos<i>cow</i>",
        "<p>Putin</p><p>detained</p><br/>Aliyev",
    ),
    "attributes": (
        '<a href="https://baku.az?q=Moscow" title="Putin">link</a> Russia',
        "<img alt='Aliyev detained' src=x onerror=alert(1)> Azerbaijan",
    ),
    "lone angle brackets": ("<", "a < b > c Baku <Moscow"),
    "brackets and ampersands": ("<<<>>>&&&;;", "<" + "x" * 3000 + " Baku> Moscow"),
    "cdata": ("<![CDATA[Baku detains Russian]]>", "<?xml version='1.0'?><!DOCTYPE x>Moscow"),
    "full-width markup": ("＜b＞Baku＜/b＞ and Moscow", "＆amp; Putin ＜script＞Aliyev＜/script＞"),
    # control characters and surrogates
    "control characters": ("\x00Baku\x01and\x02Moscow\x7f", "\x85Putin\x9fdetained\x1bAliyev"),
    "every C0 and C1": ("".join(map(chr, range(32))), "".join(map(chr, range(127, 160)))),
    "every latin-1 character": (
        bytes(range(256)).decode("latin-1"),
        bytes(range(255, -1, -1)).decode("latin-1"),
    ),
    "lone surrogates": ("\ud800", "\udfff"),
    "surrogates between words": ("Baku\ud800Moscow", "Putin \udc00 detained \ud83d Aliyev"),
    "surrogate pair halves": ("\ud83d\ude00 Baku", "Moscow \udbff\udfff"),
    "replacement character": ("\ufffd Baku \ufffd", "\ufffdMoscow"),
    # bytes and other types
    "bytes": (b"Baku and Moscow", b"Putin detained Aliyev"),
    "utf-8 bytes": ("Баку".encode(), "Москва задержала граждан Азербайджана".encode()),
    "invalid utf-8": (b"\xc3\x28 Baku \xa0\xa1 Moscow", b"\xed\xa0\x80 surrogate \xff\xfe"),
    "bytes with nul": (b"\xff\xfe Baku \x00 Moscow", None),
    "bytearray": (bytearray(b"Baku and Moscow"), bytearray("Путин, Алиев".encode())),
    "empty bytes": (b"", bytearray()),
    "long bytes": ((_REPEATED * 300).encode(), b"x" * 200_000),
    "memoryview": (memoryview(b"Baku and Moscow"), RELEVANT),
    "str subclass": (_Str("Baku and Moscow"), _Str(RELEVANT)),
    "bytes subclass": (_Bytes(b"Baku and Moscow"), RELEVANT),
    "none": (None, None),
    "none title": (None, RELEVANT),
    "none summary": (RELEVANT, None),
    "integers": (0, 42),
    "int title": (12345, "Baku and Moscow"),
    "float and bool": (3.14, True),
    "containers": (["Baku"], {"Moscow": 1}),
    "tuple title": (("Baku", "Moscow"), RELEVANT),
    # invisible characters
    "zero width inside words": ("Ba\u200bku and Mos\u200ccow", "Pu\u200dtin\u2060 det\u00adained"),
    "byte order marks": ("\ufeffPutin meets Aliyev", "\ufeff\ufeffBaku\ufeff"),
    "only invisible": ("\u200b\u200c\u200d\u2060\ufeff\u00ad", "\u00ad" * 10),
    "direction marks": ("Baku\u200eMoscow", "Putin\u200f \u202aAliyev\u202c \u2066x\u2069"),
    "soft hyphen at word ends": ("\u00adBaku\u00ad \u00adMoscow\u00ad", "Azer\u00ad\u00adbaijan"),
    # NFKC
    "ligatures": ("Conﬁrmed: Baku detains Russian oﬃcials", "ﬀ ﬂ ﬃ ﬄ ﬅ ﬆ"),
    "full-width letters": (
        "ＢＡＫＵ ａｎｄ Ｍｏｓｃｏｗ",
        "Ｐｕｔｉｎ ｄｅｔａｉｎｅｄ ＡＬＩＹＥＶ",
    ),
    "compatibility signs": ("Baku² Moscow³ ½ Ⅻ ㎞ ℡ ①", "Ⓟutin ⒜ ㍻ ℃ Aliyev™"),
    "decomposed accents": (
        "Baku\u0308 Azerbaycan\u0131 Ru\u0308sya",
        "Bak\u0131\u0307 Ru\u0301sia",
    ),
    "nfkc growth past the limit": ("\ufdfa" * 1200, "Baku and Moscow"),
    "ligatures past the limit": ("Baku ", "ﬃ" * 10_000 + " Moscow"),
    # Turkish and Azerbaijani I, Russian ё
    "turkish capitals": (
        "İLHAM ALİYEV VE PUTİN GÖRÜŞTÜ",
        "RUSYA'NIN BAKÜ BÜYÜKELÇİSİ DIŞİŞLERİNE ÇAĞRILDI",
    ),
    "turkish capital I": ("ISPARTA'DA RUS VATANDAŞI GÖZALTINA ALINDI", "AZERBAYCAN TEPKİ GÖSTERDİ"),
    "every i": ("İİİ III ııı iii", "Iİıi İı Iı"),
    "azerbaijani capitals": ("RUSIYA AZƏRBAYCANI QINADI", "BAKI VƏ MOSKVA ARASINDA GƏRGİNLİK"),
    "english with I, detected turkish": (
        "ISTANBUL: Rusya ile Azerbaycan arasında bir gerginlik",
        "IRAN ve Rusya için daha çok",
    ),
    "yo": ("Алиев ждёт извинений от Москвы", "ЁЛКИ: Путин приёмом встретил Алиева; Ё ё"),
    "russian capitals": (
        "ЗАДЕРЖАНЫ СОТРУДНИКИ «СПУТНИК АЗЕРБАЙДЖАН» В БАКУ",
        "МИД РОССИИ ВЫЗВАЛ ПОСЛА",
    ),
    # long and repeated
    "title at the limit": (_LONG_TEXT[:MAX_FIELD_CHARS], "Moscow"),
    "title one over the limit": (_LONG_TEXT[: MAX_FIELD_CHARS + 1], "Moscow"),
    "title one under the limit": (_LONG_TEXT[: MAX_FIELD_CHARS - 1], "Moscow"),
    "summary at the limit": ("Baku", _LONG_TEXT[:MAX_FIELD_CHARS]),
    "summary one over the limit": ("Baku", _LONG_TEXT[: MAX_FIELD_CHARS + 1]),
    "both over the limit": (_LONG_TEXT * 2, "Azerbaijan and Russia. " * 5_000),
    "cut inside a word": ("x" * (MAX_FIELD_CHARS - 3) + " Azerbaijan", "Russia"),
    "cut at a space": ("x" * (MAX_FIELD_CHARS - 1) + "  Baku", "Moscow"),
    "spaces past the limit": ("Baku" + " " * 30_000, "Moscow" + "\n" * 30_000 + "."),
    "entity at the limit": ("x" * (MAX_FIELD_CHARS - 2) + "&amp;Baku", "Moscow"),
    "beyond the raw limit": ("Baku " * 40_000, "Moscow " * 30_000),
    "markup beyond the raw limit": ("<b>Baku</b> " * 20_000, "Moscow"),
    "a name repeated": ("Putin " * 500, "Aliyev " * 500),
    "sentences repeated": (_REPEATED * 150, "Moscow protested. " * 150),
    "triggers repeated without actors": ("Baku and Moscow", "detained. " * 2_000),
    "near and unless repeated": (
        "Moscow summons Azerbaijan's ambassador",
        "Baku demands an apology from Russia. Putin apologises to Aliyev. " * 200,
    ),
    "very long words": ("a" * 100_000, "б" * 50_000),
    "a name glued to a long word": ("Baku" + "x" * 30_000, "Moscow" * 5_000),
    "a name repeated without spaces": ("Azərbaycan" * 3_000, "Rusiya" * 4_000),
    "names joined by hyphens": ("Putin" + "-" * 50_000 + "Aliyev", "Baku-" * 3_000),
    # lists of countries
    "a list of countries": (f"Wheat prices fall in {_LIST}", ""),
    "a list next to a relevant summary": (_LIST, RELEVANT),
    "a list split between the fields": ("Kazakhstan, Russia,", "Azerbaijan and Georgia"),
    "two countries are no list": ("Russia, Azerbaijan", "Russia and Azerbaijan sign a deal"),
    "a long list": ("Russia and Azerbaijan and Georgia and Armenia", "Iran, Turkey, Baku, Moscow"),
    "a list with odd commas": ("Kazakhstan , Russia ,Azerbaijan", "Russia,,Azerbaijan,,Georgia"),
    "capitals in a list": ("Baku, Moscow, Tbilisi and Yerevan", "Putin visits Baku"),
    "lists in five languages": (
        "Цены на бензин выросли в России, Казахстане, Азербайджане и Белоруссии; "
        "Gasimporte: Norwegen, Russland, Aserbaidschan und Katar",
        "Xəzəryanı ölkələr – Azərbaycan, Rusiya, İran və Qazaxıstan – görüş keçirib. "
        "Rusya, Azerbaycan ve Kazakistan'dan gelen turist sayısı arttı",
    ),
    # exclusions
    "football fixture": (
        "Qarabağ host Spartak Moscow in the Champions League",
        "The Azerbaijani champions face the Russian side in Baku.",
    ),
    "football fixtures in four languages": (
        "ЦСКА сыграет с «Карабахом» в Баку; Zenit St Petersburg beat Neftçi Baku 2-1",
        "Qarabağ FK Rusiyanın Zenit klubu ilə qarşılaşacaq. Russischer Torwart wechselt nach Baku",
    ),
    "a leader at a football final": (
        "Putin and Aliyev watch the Champions League final together",
        "The two presidents met in Baku.",
    ),
    "moscow idaho": (
        "Azerbaijani student wins award in Moscow, Idaho",
        "Kohberger in Latah County",
    ),
    "moscow idaho in russian": ("Студент из Азербайджана в Москве (штат Айдахо)", ""),
    "grand prix": ("Russian driver crashes out of the Azerbaijan Grand Prix in Baku", "Formula 1"),
    "cop29": ("Russian delegation holds COP29 side event in Baku", "climate finance talks"),
    "iranian azerbaijan": ("Russia and East Azerbaijan province sign a deal", "Tabriz, Moscow"),
    "sport and song contests": (
        "Chess: Russian grandmaster wins the Baku Open",
        "Eurovision: Azerbaijan through to the final, Russia still barred",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_agrees(rules: Rules, name: str) -> None:
    title, summary = HOSTILE[name]
    cases = [Case(name, title, summary, lang) for lang in LANGS]
    cases.append(Case(f"{name} (swapped)", summary, title))
    assert_all_agree(cases, rules)


def test_hostile_input_covers_what_it_should(rules: Rules) -> None:
    # The cases above would agree vacuously if none reached the paths they aim at.
    results = {name: PURE.tag(*HOSTILE[name], rules) for name in HOSTILE}
    labels = {
        name: {e.label for e in result.evidence if e.kind in ("note", "exclusion")}
        for name, result in results.items()
    }
    assert "truncated" in labels["title one over the limit"]
    assert "truncated" not in labels["title at the limit"]
    assert "evidence_capped" in labels["sentences repeated"]
    assert "a list of countries" in labels["a list of countries"]
    assert "football and other sport" in labels["football fixture"]
    assert results["bytes"].sides == ("AZ", "RU")
    assert results["sentences repeated"].signals


# --- generated text ------------------------------------------------------------------


def _patterns(terms: Iterable[Any]) -> list[str]:
    return sorted({" ".join(term.pattern.split()) for term in terms})


_ACTOR_PATTERNS = _patterns(term for actor in RULES.actors for term in actor.terms)
_TRIGGER_PATTERNS = _patterns(term for trigger in RULES.triggers for term in trigger.terms)
_ALL_PATTERNS = _patterns(RULES.all_terms())
_NAMES = [
    "Baku", "Moscow", "Putin", "Aliyev", "Əliyev", "İlham", "Kremlin", "Sputnik", "SOCAR",
    "Azerbaijan's", "Russia's", "Rusya'nın", "Bakü'de", "Азербайджана", "Москвы", "Путин",
    "Алиев", "Aserbaidschans", "Moskau", "Azərbaycanın", "Rusiya", "Lavrov", "Bayramov",
]  # fmt: skip
_FILLER = [
    "the", "a", "of", "and", "said", "und", "der", "nicht", "ve", "bir", "ile", "və", "и", "в",
    "не", "after", "but", "demands", "apology", "ambassador", "Idaho", "football", "Georgia",
    "Kazakhstan", "Armenia", "Iran", "Turkey", "Champions League", "COP29", "Grand Prix",
]  # fmt: skip
_AFFIXES = ["", "", "s", "en", "'nın", "ı", "ın", "ов", "ами", "e", "də", "ler", "ые"]
_PUNCTUATION = [*".,!?…«»\"'()-—/:;", "...", "»,", '."', ".)"]
_SEPARATORS = [" ", " ", " ", " ", "", "  ", "\n", "\n\n", "\t", ". ", ", ", "! ", "? "]
_SEPARATORS += ["… ", '." ', "». ", " — ", " - ", "/", "; ", "\u00a0"]
_LETTERS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
    "İIıiƏəĞğŞşÇçÖöÜüÄäß"
)
_MARKUP = [
    "<b>", "</b>", "<p>", "</p>", "<br/>", "<a href=\"https://baku.az\">", "</a>",
    "<script>Baku Moscow</script>", "<style>p{}</style>", "<!-- Putin -->", "&amp;", "&nbsp;",
    "&#1041;", "&lt;", "&quot;", "<", ">", "&",
]  # fmt: skip
_ODD = ["\u00ad", "\u200b", "\u200d", "\ufeff", "ﬁ", "Ｂａｋｕ", "\x00", "\x85", "\ud800", "Ё"]


_CASINGS: list[Callable[[str], str]] = [str, str, str.title, str.upper, str.capitalize]


@st.composite
def _rule_word(draw: st.DrawFn, patterns: list[str]) -> str:
    word = draw(st.sampled_from(patterns)).replace("*", draw(st.sampled_from(_AFFIXES)))
    return draw(st.sampled_from(_CASINGS))(word)


_WORD = st.one_of(
    _rule_word(_ACTOR_PATTERNS),
    _rule_word(_TRIGGER_PATTERNS),
    _rule_word(_ALL_PATTERNS),
    st.sampled_from(_NAMES),
    st.sampled_from(_FILLER),
    st.sampled_from(_PUNCTUATION),
    st.text(alphabet=_LETTERS, min_size=1, max_size=12),
    st.text(alphabet="0123456789", min_size=1, max_size=5),
)


@st.composite
def _texts(draw: st.DrawFn, max_words: int) -> str:
    markup = draw(st.booleans())
    odd = draw(st.integers(0, 9)) == 0
    piece = st.one_of(_WORD, st.sampled_from(_MARKUP)) if markup else _WORD
    if odd:
        piece = st.one_of(piece, st.sampled_from(_ODD))
    parts = draw(st.lists(st.tuples(piece, st.sampled_from(_SEPARATORS)), max_size=max_words))
    return "".join(word + separator for word, separator in parts)


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    title=_texts(max_words=20),
    summary=_texts(max_words=60),
    lang=st.sampled_from(LANGS),
)
def test_generated_text_agrees(title: str, summary: str, lang: str | None) -> None:
    difference, _ = compare(Case("generated", title, summary, lang), RULES)
    if difference is not None:
        pytest.fail(difference, pytrace=False)
