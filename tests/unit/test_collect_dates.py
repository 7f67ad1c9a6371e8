"""Dates in other languages are read, not replaced by the time the item was collected."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.collect.catalogue import FeedSpec
from monitor.collect.dates import language_of, localised_date
from monitor.collect.parse import MAX_UNREAD_DATES_IN_A_ROW, parse_feed
from tests.factories import rss_document

FEED = FeedSpec(url="https://news.example.az/feeds/main.xml", name="Example News")
COLLECTED_AT = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


def channel(items: str, language: str | None = None) -> bytes:
    document = rss_document(items)
    if language is not None:
        document = document.replace("<channel>", f"<channel><language>{language}</language>", 1)
    return document.encode()


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("Seg, 24 Set 2018 19:32:00 -0300", datetime(2018, 9, 24, 22, 32, tzinfo=UTC)),
        ("mer, 16 nov 2022", datetime(2022, 11, 16, tzinfo=UTC)),
        ("7 декабря 2026 г. 14:05", datetime(2026, 12, 7, 14, 5, tzinfo=UTC)),
        ("Пн, 07 дек 2026 14:05:00 +0300", datetime(2026, 12, 7, 11, 5, tzinfo=UTC)),
        ("Mo, 07 Dez 2026 14:05:00 +0100", datetime(2026, 12, 7, 13, 5, tzinfo=UTC)),
        ("07 Aralık 2026 14:05", datetime(2026, 12, 7, 14, 5, tzinfo=UTC)),
        ("Pzt, 07 Ara 2026 14:05:00 +0300", datetime(2026, 12, 7, 11, 5, tzinfo=UTC)),
        ("7 dekabr 2026 14:05", datetime(2026, 12, 7, 14, 5, tzinfo=UTC)),
    ],
    ids=["pt", "fr", "ru", "ru-rfc822", "de", "tr", "tr-rfc822", "az"],
)
def test_a_date_in_another_language_is_the_item_published_time(
    written: str, meant: datetime
) -> None:
    body = channel(f"<item><title>T</title><pubDate>{written}</pubDate></item>")

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    (item,) = parsed.items
    assert item.published == meant
    assert item.event_time == meant
    assert parsed.warning is None


def test_the_feed_language_decides_what_a_numeric_date_means() -> None:
    date = "<pubDate>03.04.2026 10:00</pubDate>"
    english = parse_feed(
        channel(f"<item><title>T</title>{date}</item>", "en-US"), FEED, COLLECTED_AT
    )
    russian = parse_feed(
        channel(f"<item><title>T</title>{date}</item>", "ru-RU"), FEED, COLLECTED_AT
    )

    assert english.items[0].published == datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    assert russian.items[0].published == datetime(2026, 4, 3, 10, 0, tzinfo=UTC)


def test_the_catalogue_language_comes_before_the_feed_own_claim() -> None:
    body = channel("<item><title>T</title><pubDate>03.04.2026 10:00</pubDate></item>", "en")
    russian_outlet = FEED.model_copy(update={"lang": "ru"})

    (item,) = parse_feed(body, russian_outlet, COLLECTED_AT).items

    assert item.published == datetime(2026, 4, 3, 10, 0, tzinfo=UTC)


def test_rfc822_dates_still_take_feedparser_reading() -> None:
    body = channel(
        "<item><title>T</title><pubDate>Tue, 30 Apr 2024 09:15:00 +0400</pubDate></item>"
    )

    (item,) = parse_feed(body, FEED, COLLECTED_AT).items

    assert item.published == datetime(2024, 4, 30, 5, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "written", ["next Tuesday-ish", "Dezember 2026", "31.13.2026", "yesterday at noon"]
)
def test_a_date_that_names_no_day_is_reported_on_the_feed_health(written: str) -> None:
    body = channel(
        f"<item><title>Undated</title><pubDate>{written}</pubDate></item>"
        "<item><title>Dated</title><pubDate>Tue, 30 Apr 2024 09:15:00 +0400</pubDate></item>"
    )

    parsed = parse_feed(body, FEED, COLLECTED_AT)

    undated, dated = parsed.items
    assert undated.published is None
    assert undated.event_time == COLLECTED_AT
    assert dated.published is not None
    assert parsed.warning == (
        f"1 entries with a date that could not be read (first: {written!r}),"
        " timed when collected instead"
    )


def test_the_same_date_text_gives_the_same_time_whatever_was_read_before() -> None:
    first = localised_date("03.04.2026")
    localised_date("Mo, 07 Dez 2026 14:05:00 +0100")
    localised_date("12/31/2026")

    assert localised_date("03.04.2026") == first == datetime(2026, 4, 3, tzinfo=UTC)


def test_an_unknown_language_hint_is_passed_over() -> None:
    assert localised_date("7 декабря 2026", ["xx", "zz"]) == datetime(2026, 12, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tag", "language"),
    [("pt-BR", "pt"), ("ru_RU", "ru"), ("EN", "en"), ("az-Latn-AZ", "az"), ("unknown", None),
     ("", None), (None, None)],
)  # fmt: skip
def test_language_tags_are_read_as_their_primary_language(
    tag: str | None, language: str | None
) -> None:
    assert language_of(tag) == language


def test_a_feed_of_unreadable_dates_stops_being_tried_but_says_how_many() -> None:
    garbage = "".join(
        f"<item><title>T{n}</title><pubDate>sometime around noon #{n}</pubDate></item>"
        for n in range(MAX_UNREAD_DATES_IN_A_ROW + 5)
    )
    readable = "<item><title>Last</title><pubDate>7 декабря 2026 г. 14:05</pubDate></item>"

    parsed = parse_feed(channel(garbage + readable), FEED, COLLECTED_AT)

    assert [item.published for item in parsed.items[:-1]] == [None] * (
        MAX_UNREAD_DATES_IN_A_ROW + 5
    )
    # Not tried either: once given up, the document's other dates stay unread.
    assert parsed.items[-1].published is None
    assert parsed.warning == (
        f"{MAX_UNREAD_DATES_IN_A_ROW + 6} entries with a date that could not be read"
        " (first: 'sometime around noon #0'), timed when collected instead;"
        " 6 not tried after 10 failures in a row"
    )
