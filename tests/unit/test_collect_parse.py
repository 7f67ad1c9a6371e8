"""Parsing feed bytes into items: plain text, absolute links, clamped times, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.collect.catalogue import FeedSpec
from monitor.collect.identity import item_id
from monitor.collect.parse import MAX_TITLE_CHARS, parse_feed
from tests.factories import rss_document

FEED = FeedSpec(
    url="https://news.example.az/feeds/main.xml",
    name="Example News",
    lang="az",
    country="AZ",
    kind="independent",
)
COLLECTED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_rss_item_becomes_an_item_collected_with_the_catalogue_facts() -> None:
    body = rss_document(
        "<item><title>Bakı və Moskva danışıqlar aparır</title>"
        "<link>https://news.example.az/a/1</link>"
        "<guid>https://news.example.az/a/1</guid>"
        "<description>Xarici işlər nazirləri görüşdü.</description>"
        "<pubDate>Tue, 30 Apr 2024 09:15:00 +0400</pubDate></item>"
    ).encode()

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    assert parsed.error is None
    assert parsed.warning is None
    (item,) = parsed.items
    assert item.title == "Bakı və Moskva danışıqlar aparır"
    assert item.summary == "Xarici işlər nazirləri görüşdü."
    assert item.link == "https://news.example.az/a/1"
    assert item.guid == "https://news.example.az/a/1"
    assert item.item_id == item_id(item.guid, item.link, item.title, item.summary, FEED.url)
    assert (item.feed_url, item.source, item.source_lang) == (FEED.url, "Example News", "az")
    assert (item.source_country, item.source_kind) == ("AZ", "independent")
    assert item.published == datetime(2024, 4, 30, 5, 15, tzinfo=UTC)
    assert item.event_time == item.published
    assert item.collected_at == COLLECTED_AT


def test_atom_entry_with_only_content_uses_the_content_as_summary() -> None:
    body = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom</title>
  <entry>
    <id>tag:example.ru,2024:1</id>
    <title type="html">&lt;b&gt;Кремль&lt;/b&gt; ответил</title>
    <link rel="alternate" href="https://example.ru/news/1"/>
    <updated>2024-04-30T10:00:00Z</updated>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>First.</p><p>Second.</p></div></content>
  </entry>
</feed>""".encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == "Кремль ответил"
    assert item.summary == "First. Second."
    assert item.guid == "tag:example.ru,2024:1"
    # Only <updated> is given: it is the best publication time there is.
    assert item.published == datetime(2024, 4, 30, 10, 0, tzinfo=UTC)


def test_windows_1251_declared_in_the_xml_declaration_is_decoded() -> None:
    body = rss_document(
        "<item><title>Азербайджан вызвал посла России</title>"
        "<link>https://example.ru/1</link></item>",
        encoding="windows-1251",
    ).encode("windows-1251")

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == "Азербайджан вызвал посла России"


def test_charset_from_the_http_content_type_header_is_used() -> None:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
        "<item><title>Москва и Баку</title><link>https://example.ru/2</link></item>"
        "</channel></rss>"
    ).encode("koi8-r")

    parsed = parse_feed(
        body, FEED, COLLECTED_AT, response_headers={"Content-Type": "text/xml; charset=koi8-r"}
    )

    assert [item.title for item in parsed.items] == ["Москва и Баку"]


def test_turkish_and_azerbaijani_letters_survive_in_utf8() -> None:
    body = rss_document(
        "<item><title>İlham Əliyev: şəhər, ğ, ç, ö, ü</title><link>https://x.az/1</link></item>"
    ).encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == "İlham Əliyev: şəhər, ğ, ç, ö, ü"


def test_html_is_reduced_to_plain_text() -> None:
    body = rss_document(
        "<item><title>Talks &amp;amp; &lt;em&gt;tension&lt;/em&gt;</title>"
        "<link>https://x.az/1</link>"
        "<description><![CDATA[<p>Line one<br/>line&nbsp;two</p>"
        "<script>alert(1)</script><ul><li>a</li><li>b</li></ul>"
        "<a href='https://x.az' onclick='evil()'>B<b>ak</b>u</a>   &#8212; end]]></description>"
        "</item>"
    ).encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.title == "Talks & tension"
    assert item.summary == "Line one line two a b Baku — end"


def test_relative_links_resolve_against_the_url_the_feed_was_read_from() -> None:
    body = rss_document(
        "<item><title>One</title><link>/news/1</link></item>"
        "<item><title>Two</title><link>2.html</link></item>"
    ).encode()

    from_feed_url = parse_feed(body, FEED, COLLECTED_AT)
    after_redirect = parse_feed(
        body, FEED, COLLECTED_AT, base_url="https://mirror.example.az/rss/all.xml"
    )

    assert [item.link for item in from_feed_url.items] == [
        "https://news.example.az/news/1",
        "https://news.example.az/feeds/2.html",
    ]
    assert [item.link for item in after_redirect.items] == [
        "https://mirror.example.az/news/1",
        "https://mirror.example.az/rss/2.html",
    ]


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html,hi", "ftp://example.az/x", "mailto:a@b.az"]
)
def test_links_other_than_http_are_dropped(link: str) -> None:
    body = rss_document(f"<item><title>T</title><link>{link}</link></item>").encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.link is None


def test_a_missing_date_takes_the_collection_time_as_event_time() -> None:
    body = rss_document("<item><title>Undated</title></item>").encode()

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    (item,) = parsed.items
    assert item.published is None
    assert item.event_time == COLLECTED_AT
    assert parsed.warning is None


def test_future_date_is_kept_as_published_but_clamped_as_event_time() -> None:
    body = rss_document(
        "<item><title>From the future</title><pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate>"
        "</item>"
    ).encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.published == datetime(2100, 1, 1, tzinfo=UTC)
    assert item.event_time == COLLECTED_AT


def test_collection_time_in_another_zone_is_stored_as_utc() -> None:
    from datetime import timedelta, timezone

    baku_time = COLLECTED_AT.astimezone(timezone(timedelta(hours=4)))
    body = rss_document("<item><title>T</title></item>").encode()

    (item,) = parse_feed(body, FEED, baku_time).items

    assert item.collected_at == COLLECTED_AT
    assert item.collected_at.tzinfo == UTC


def test_naive_collection_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_feed(rss_document("").encode(), FEED, datetime(2024, 5, 1))


def test_entries_without_title_and_summary_are_skipped_and_counted() -> None:
    body = rss_document(
        "<item><link>https://x.az/1</link></item>"
        "<item><guid>only-a-guid</guid></item>"
        "<item><description>Only a summary</description></item>"
    ).encode()

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    assert [(item.title, item.summary) for item in parsed.items] == [("", "Only a summary")]
    assert parsed.warning == "skipped 2 entries without title or summary"
    assert parsed.error is None


def test_only_max_items_entries_are_kept() -> None:
    body = rss_document("".join(f"<item><title>N{n}</title></item>" for n in range(10))).encode()

    parsed = parse_feed(body, FEED, COLLECTED_AT, max_items=3)

    assert [item.title for item in parsed.items] == ["N0", "N1", "N2"]
    assert parsed.warning == "kept the first 3 of 10 entries"


def test_overlong_titles_are_shortened() -> None:
    body = rss_document(f"<item><title>{'word ' * 1000}</title></item>").encode()

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert len(item.title) <= MAX_TITLE_CHARS
    assert item.title.endswith("…")


def test_the_same_bytes_give_the_same_items() -> None:
    body = rss_document("<item><title>T</title><description>S</description></item>").encode()

    assert parse_feed(body, FEED, COLLECTED_AT) == parse_feed(body, FEED, COLLECTED_AT)


def test_a_feed_with_no_entries_is_not_an_error_but_says_so() -> None:
    parsed = parse_feed(rss_document("").encode(), FEED, COLLECTED_AT)

    assert parsed.items == ()
    assert parsed.error is None
    assert parsed.warning == "no entries"


def test_a_malformed_feed_that_still_gives_entries_is_read_with_a_warning() -> None:
    body = b'<rss version="2.0"><channel><item><title>Kept &amp; read</title></item>'

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    assert [item.title for item in parsed.items] == ["Kept & read"]
    assert parsed.warning is not None
    assert "SAXParseException" in parsed.warning


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty document"),
        (b"   \n", "empty document"),
        (bytes(range(256)) * 4, "not"),
        (b"\x1f\x8b\x08\x00garbage-gzip", "not a feed: gzip-compressed bytes"),
        (b"<html><body><p>Not a feed</p></body></html>", "HTML page, not a feed"),
        (b'{"items": []}', "JSON that is not a JSON Feed"),
        (b'["a", "list"]', "JSON that is not a JSON Feed"),
        (b'{"version": "1", "items": [', "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b"<rss><channel><item><title>unclosed", "not a usable feed"),
    ],
)
def test_garbage_is_an_error_result_not_an_exception(body: bytes, reason: str) -> None:
    parsed = parse_feed(body, FEED, COLLECTED_AT)

    assert parsed.items == ()
    assert parsed.error is not None
    assert parsed.error.startswith(reason)


def test_bytes_that_name_a_file_are_parsed_as_a_document_not_opened(tmp_path: Path) -> None:
    # feedparser opens a bytes argument as a path if it can; a body must never be one.
    local_feed = tmp_path / "local.xml"
    local_feed.write_text(rss_document("<item><title>Read from the local disk</title></item>"))

    parsed = parse_feed(str(local_feed).encode(), FEED, COLLECTED_AT)

    assert parsed.items == ()
    assert parsed.error is not None


def json_feed(
    *items: object, version: str = "https://jsonfeed.org/version/1.1", **top: object
) -> bytes:
    document = {"version": version, "title": "JSON news", **top, "items": list(items)}
    return json.dumps(document).encode()


def test_a_json_feed_item_is_read_like_an_rss_item() -> None:
    body = json_feed(
        {
            "id": "https://news.example.az/a/1",
            "url": "/a/1",
            "title": "Bakı &amp; Moskva",
            "content_html": "<p>Xarici işlər <b>nazirləri</b> görüşdü.</p><script>x()</script>",
            "date_published": "2024-04-30T09:15:00+04:00",
        }
    )

    parsed = parse_feed(body, FEED, COLLECTED_AT, response_headers={"Content-Type": "text/plain"})

    assert (parsed.error, parsed.warning) == (None, None)
    (item,) = parsed.items
    assert (item.title, item.summary) == ("Bakı & Moskva", "Xarici işlər nazirləri görüşdü.")
    assert item.link == "https://news.example.az/a/1"
    assert item.guid == "https://news.example.az/a/1"
    assert item.item_id == item_id(item.guid, item.link, item.title, item.summary, FEED.url)
    assert item.published == datetime(2024, 4, 30, 5, 15, tzinfo=UTC)


@pytest.mark.parametrize("version", ["https://jsonfeed.org/version/1", "1.0"])
def test_json_feed_1_and_feeds_with_an_odd_version_are_read(version: str) -> None:
    body = json_feed({"id": 7, "content_text": "Plain text only"}, version=version)

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    assert [(item.guid, item.summary) for item in parsed.items] == [("7", "Plain text only")]
    assert (parsed.warning is None) == version.startswith("https://")


def test_a_json_feed_item_of_the_wrong_shape_costs_only_itself_and_says_so() -> None:
    body = json_feed(
        "not an object",
        {"id": "bad-title", "title": ["a", "list"], "summary": "Kept, without its title"},
        {"id": "no-text", "date_published": "2024-04-30T09:15:00Z"},
        {"id": "undated", "title": "Undated", "date_published": "not a date"},
        {"id": "good", "title": "Good", "date_published": "Tue, 30 Apr 2024 09:15:00 +0000"},
    )

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    assert [(item.guid, item.title) for item in parsed.items] == [
        ("bad-title", ""),
        ("undated", "Undated"),
        ("good", "Good"),
    ]
    assert [item.published for item in parsed.items] == [
        None,
        None,
        datetime(2024, 4, 30, 9, 15, tzinfo=UTC),
    ]
    assert parsed.items[1].event_time == COLLECTED_AT
    assert parsed.warning is not None
    for reason in (
        "skipped 1 entries that are not JSON objects",
        "ignored fields of the wrong type: title (1)",
        "skipped 1 entries without title or summary",
        # The same note as for an RSS date, and only that one.
        "1 entries with a date that could not be read (first: 'not a date'),"
        " timed when collected instead",
    ):
        assert reason in parsed.warning
    assert parsed.warning.count("could not be read") == 1


@pytest.mark.parametrize(
    ("language", "meant"),
    [
        ("en-US", datetime(2026, 3, 4, 10, 0, tzinfo=UTC)),
        ("ru", datetime(2026, 4, 3, 10, 0, tzinfo=UTC)),
    ],
)
def test_a_json_feed_date_feedparser_would_not_read_is_read_in_the_feed_language(
    language: str, meant: datetime
) -> None:
    body = json_feed(
        {"id": "1", "title": "Numeric", "date_published": "03.04.2026 10:00"},
        {"id": "2", "title": "Portuguese", "date_published": "Seg, 24 Set 2018 19:32:00 -0300"},
        language=language,
    )
    # An outlet whose catalogue entry names no language: the feed's own claim decides.
    outlet = FEED.model_copy(update={"lang": None})

    parsed = parse_feed(body, outlet, COLLECTED_AT)

    assert [item.published for item in parsed.items] == [
        meant,
        datetime(2018, 9, 24, 22, 32, tzinfo=UTC),
    ]
    assert parsed.warning is None


def test_json_feed_text_fields_are_plain_text_and_content_html_is_markup() -> None:
    body = json_feed(
        {"id": "1", "title": "The <title> tag", "content_text": "<nick> hello"},
        {"id": "2", "title": "Markup", "content_html": "<p><nick>hello</nick> <b>there</b></p>"},
    )

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    assert [(item.title, item.summary) for item in parsed.items] == [
        ("The <title> tag", "<nick> hello"),
        ("Markup", "hello there"),
    ]


def test_a_json_feed_is_capped_like_any_feed() -> None:
    body = json_feed(*({"id": str(n), "title": f"Item {n}"} for n in range(30)))

    parsed = parse_feed(body, FEED, COLLECTED_AT, max_items=10)

    assert [item.guid for item in parsed.items] == [str(n) for n in range(10)]
    assert parsed.warning == "kept the first 10 of 30 entries"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("declared", ["utf-16", "utf-8"])
def test_a_utf16_feed_is_read_whatever_the_header_claims(codec: str, declared: str) -> None:
    body = rss_document(
        "<item><guid>1</guid><title>Баку и Москва</title></item>", encoding="utf-16"
    ).encode(codec)

    parsed = parse_feed(
        body, FEED, COLLECTED_AT, response_headers={"Content-Type": f"text/xml; charset={declared}"}
    )

    assert [item.title for item in parsed.items] == ["Баку и Москва"]


def test_a_feed_served_as_html_is_read() -> None:
    body = rss_document("<item><guid>1</guid><title>Read anyway</title></item>").encode()

    parsed = parse_feed(body, FEED, COLLECTED_AT, response_headers={"Content-Type": "text/html"})

    assert [item.title for item in parsed.items] == ["Read anyway"]


def test_an_html_page_says_so_and_names_the_feed_it_links_to() -> None:
    page = (
        b"<!DOCTYPE html>\n<html><head><title>News</title>"
        b'<link rel="alternate" type="application/rss+xml" href="/rss/main.xml">'
        b"</head><body><p>Today's news</p></body></html>"
    )

    parsed = parse_feed(page, FEED, COLLECTED_AT, response_headers={"Content-Type": "text/html"})

    assert parsed.error == (
        "HTML page, not a feed (it names a feed: https://news.example.az/rss/main.xml)"
    )
