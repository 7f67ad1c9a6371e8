"""Feed fields become the text a reader sees: markup goes, text that looks like it stays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.collect.catalogue import FeedSpec
from monitor.collect.parse import parse_feed
from monitor.collect.text import feed_text, html_text
from tests.factories import rss_document

FEED = FeedSpec(url="https://news.example.az/feeds/main.xml", name="Example News")
COLLECTED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ACUTE = "\u0301"  # combining acute accent, as "&#769;" writes it


def atom_document(entry: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Atom</title><entry><id>tag:example.az,2024:1</id>{entry}</entry></feed>"
    ).encode()


# --- through a feed, as the collector reads it ---------------------------------------


def test_an_rss_title_naming_a_tag_keeps_the_tag_as_text() -> None:
    body = rss_document(
        "<item><title>Why the &lt;title&gt; tag matters</title>"
        "<description>&amp;lt;nick&amp;gt; hello, said the log</description></item>"
    ).encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == "Why the <title> tag matters"
    assert item.summary == "<nick> hello, said the log"


def test_an_atom_html_title_with_an_escaped_tag_keeps_it_as_text() -> None:
    body = atom_document('<title type="html">the &amp;lt;title&amp;gt; tag</title>')

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == "the <title> tag"


def test_an_atom_text_title_is_text_whatever_it_contains() -> None:
    body = atom_document('<title type="text">&lt;nick&gt; 5 &lt; 6 &amp; 7 &gt; 3</title>')

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == "<nick> 5 < 6 & 7 > 3"


@pytest.mark.parametrize(
    "title",
    ["Cafe&amp;#769; Baku", "Cafe&amp;amp;#769; Baku"],
    ids=["escaped once", "escaped twice"],
)
def test_an_escaped_character_reference_ends_as_its_character(title: str) -> None:
    body = rss_document(f"<item><title>{title}</title></item>").encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == f"Cafe{ACUTE} Baku"


def test_markup_escaped_twice_is_still_markup() -> None:
    body = rss_document(
        "<item><title>T</title><description>&amp;lt;p&amp;gt;Baku &amp;lt;b&amp;gt;and"
        "&amp;lt;/b&amp;gt; Moscow&amp;lt;/p&amp;gt;&amp;lt;p&amp;gt;talk&amp;lt;/p&amp;gt;"
        "</description></item>"
    ).encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.summary == "Baku and Moscow talk"


def test_a_plain_text_title_with_a_script_loses_the_script() -> None:
    # feedparser calls this RSS title text (a script is not HTML it recognises).
    body = rss_document(
        "<item><title>&lt;script&gt;alert(1)&lt;/script&gt;Baku "
        '&lt;img src=x onerror="alert(2)"&gt;talks</title></item>'
    ).encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == "Baku talks"


# --- the text function itself ----------------------------------------------------


def test_html_is_read_as_a_browser_shows_it() -> None:
    fragment = (
        "<p>Line one<br/>line&nbsp;two</p><script>alert(1)</script><style>p{}</style>"
        "<ul><li>a</li><li>b</li></ul><iframe>frame</iframe><template>t</template>"
        "<a href='https://x.az' onclick='evil()'>B<b>ak</b>u</a>   &#8212; end"
    )

    assert feed_text(fragment) == "Line one line two a b Baku — end"


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("&lt;nick&gt; hello", "<nick> hello"),
        ("5 &lt; 6 and 7 > 3", "5 < 6 and 7 > 3"),
        ("AT&amp;T, a=1&amp;copy=2", "AT&T, a=1&copy=2"),
        ("&lt;b&gt;Baku&lt;/b&gt; talks", "Baku talks"),
        ("line&lt;br/&gt;break", "line break"),
        ("&lt;a href='https://x.az'&gt;link&lt;/a&gt;", "link"),
        ("&lt;!-- hidden --&gt;shown", "shown"),
    ],
)
def test_decoded_text_is_read_again_only_when_it_is_markup(fragment: str, text: str) -> None:
    assert feed_text(fragment) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("&lt;script&gt;alert(1)&lt;/script&gt;Hello", "Hello"),
        ("the &lt;script&gt; tag", "the script tag"),
        ("&lt;/style&gt;&lt;img src=x onerror=alert(1)&gt;end", "end"),
    ],
)
def test_code_never_survives_as_a_tag(value: str, text: str) -> None:
    assert feed_text(value) == text


def test_markup_escaped_beyond_reason_keeps_its_words_without_brackets() -> None:
    nested = "<b>x</b>"
    for _ in range(8):
        nested = nested.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    assert "<" not in feed_text(nested)


def test_plain_text_is_not_parsed_as_html() -> None:
    assert feed_text("a <b and c=d is <nick>", "text/plain") == "a <b and c=d is <nick>"
    assert feed_text("Cafe&#769;", "text/plain") == f"Cafe{ACUTE}"


def test_control_characters_go_but_joiners_that_scripts_need_stay() -> None:
    assert feed_text("Tehran\x00\x1b[31m red\x85line") == "Tehran [31m red line"
    assert feed_text("می\u200cخواهم") == "می\u200cخواهم"
    assert feed_text("a\x07b", "text/plain") == "a b"


def test_malformed_markup_declarations_are_read_as_a_browser_reads_them() -> None:
    # The stdlib HTML parser raised AssertionError on this; HTML5 makes it a comment.
    assert feed_text("Baku <![foo[ x ]]> Moscow") == "Baku Moscow"


def test_lone_surrogates_from_numeric_references_do_not_break_extraction() -> None:
    assert html_text("a\ud800b <b>c</b>") == "a?b c"
