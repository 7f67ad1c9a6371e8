"""A feed's text fields → the plain text a reader sees: markup gone, what was text kept.

feedparser gives each field with its content type. `text/plain` is text
already: an RSS title "the <title> tag" is three words and a tag's name, not
markup. `text/html` (and XHTML) is markup, sanitised by feedparser, whose
visible text an HTML5 parser extracts, entities decoded once.

What is left can still hold markup or entities, because publishers escape
twice: `&amp;lt;p&amp;gt;` is a paragraph, `&amp;#769;` an accent. The text is
read again only when it shows evidence of markup that was meant as markup (an
element opened and closed, a tag with attributes, a self-closing tag, a
comment); otherwise its remaining character references are decoded as text.
So "<nick> hello" and "5 < 6" stay, "<b>Baku</b>" becomes "Baku". A lone
tag of an element that runs code ("the <script> tag") keeps its word and loses
its brackets: some consumers render HTML, and none should be handed a script.

Pure; never raises on its input.
"""

from __future__ import annotations

import html
import re

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLParserException

# Content types feedparser gives that hold markup, not text.
_PLAIN_TYPES = frozenset({"text/plain"})
# Text still showing markup after this many readings was escaped on purpose to
# get past filters: keep its words, drop every bracket.
_MAX_READINGS = 4
# C0 and C1 control characters are never meant to be shown. Format characters
# (zero-width joiners, soft hyphens) stay: Persian and other scripts need them.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_TAG_NAME = r"[A-Za-z][A-Za-z0-9]*"
_START_TAG = re.compile(rf"<({_TAG_NAME})[\s/>]")
_END_TAG = re.compile(rf"</({_TAG_NAME})\s*>")
# A tag with an attribute (`<a href=`, `<img src=x onerror=`) or self-closing
# (`<br/>`): prose does not write these.
_TAG_WITH_ATTRIBUTE = re.compile(rf"<{_TAG_NAME}\s[^<>]*=[^<>]*>")
_SELF_CLOSING_TAG = re.compile(rf"<{_TAG_NAME}\s*/>")
# Only complete references (with their semicolon): "AT&T" and "a=1&copy=2" are text.
_CHARACTER_REFERENCE = re.compile(
    r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
)
# Elements whose content is code; alone, their tag loses its brackets.
_CODE_TAG = re.compile(
    r"<(\s*/?\s*(?:script|style|iframe|frame|frameset|object|embed|applet|svg|math|template"
    r"|noscript|base|link|meta|form)\b[^<>]*)>?",
    re.IGNORECASE,
)


def html_text(fragment: str) -> str:
    """The visible text of an HTML fragment, entities decoded once, spaces collapsed.

    Script, style, template, iframe and object content is dropped; block
    elements (p, br, li, div…) separate words and inline ones (b, a, span)
    join, so "<b>Ba</b>ku" stays "Baku".
    """
    try:
        return _visible_text(fragment)
    except TypeError:
        # Lone surrogates (from a numeric reference) cannot be handed over as UTF-8.
        return _visible_text(fragment.encode("utf-8", "replace").decode("utf-8"))
    except HTMLParserException:
        # The parser gave up (it does not on anything seen so far): keep the words.
        return html.unescape(fragment).replace("<", " ").replace(">", " ")


def _visible_text(fragment: str) -> str:
    return extract_plain_text(
        fragment,
        preserve_formatting=False,
        main_content=False,
        list_bullets=False,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
    )


def _shows_markup(text: str) -> bool:
    if "<" not in text:
        return False
    if "<!--" in text or _TAG_WITH_ATTRIBUTE.search(text) or _SELF_CLOSING_TAG.search(text):
        return True
    closed = {name.lower() for name in _END_TAG.findall(text)}
    return bool(closed) and any(name.lower() in closed for name in _START_TAG.findall(text))


def _decode_references(text: str) -> str:
    return _CHARACTER_REFERENCE.sub(lambda match: html.unescape(match.group()), text)


def feed_text(value: str, content_type: str | None = "text/html") -> str:
    """Plain text of one feed field, as feedparser gives its value and content type.

    A type of None counts as HTML, the assumption feedparser itself makes.
    """
    # Without a tag or a reference, HTML is its own text: no parser needed (most titles).
    is_markup = content_type not in _PLAIN_TYPES and ("<" in value or "&" in value)
    text = html_text(value) if is_markup else value
    for _ in range(_MAX_READINGS):
        if _shows_markup(text):
            text = html_text(text)
        elif _CHARACTER_REFERENCE.search(text):
            text = _decode_references(text)
        else:
            break
    else:
        if _shows_markup(text):
            text = text.replace("<", " ").replace(">", " ")
    if "<" in text:
        text = _CODE_TAG.sub(r"\1", text)
    text = " ".join(text.split())
    # Most text has no control character; only text with something unprintable is scanned.
    return text if text.isprintable() else " ".join(_CONTROLS.sub(" ", text).split())
