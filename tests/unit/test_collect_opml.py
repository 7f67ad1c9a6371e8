"""OPML subscription lists in and out: users bring the list they already have in their reader.

The real lists are other readers' test data (tests/data/opml/README.md): every
outline with a feed URL in them is imported, noted as a duplicate, or skipped
with its line and reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from monitor.cli import main
from monitor.collect.catalogue import LANGUAGES, CatalogueError, FeedSpec, load_catalogue
from monitor.collect.opml import (
    OpmlError,
    OpmlList,
    add_to_catalogue,
    catalogue_toml,
    read_opml,
    write_opml,
)

ROOT = Path(__file__).resolve().parents[2]
LISTS = ROOT / "tests" / "data" / "opml"
BUNDLED = ROOT / "monitor" / "feeds.toml"
# An outline's feed URL, however the reader capitalised the attribute.
FEED_URL = re.compile(rb"""\bxmlUrl\s*=\s*["']\s*([^"'\s][^"']*)["']""", re.IGNORECASE)
# What listparser's own test files say its reader finds.
LISTPARSER_COUNT = re.compile(rb"Eval: len\(result\['feeds'\]\) == (\d+)")
LISTPARSER_TITLE = re.compile(rb"Eval: result\['feeds'\]\[0\]\['title'\] == '([^']*)'")


def opml(outlines: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><opml version="2.0"><head><title>t</title>'
        f"</head><body>{outlines}</body></opml>"
    ).encode()


def read_or_refuse(document: bytes) -> OpmlList | OpmlError:
    try:
        return read_opml(document)
    except OpmlError as error:
        return error


def real_lists() -> list[Path]:
    return sorted(path for path in LISTS.rglob("*") if path.suffix in {".opml", ".xml"})


def test_the_real_lists_are_there() -> None:
    readers = {path.relative_to(LISTS).parts[0] for path in real_lists()}
    assert readers == {"listparser", "netnewswire", "newsboat"}
    assert len(real_lists()) > 80


@pytest.mark.parametrize("path", real_lists(), ids=lambda path: str(path.relative_to(LISTS)))
def test_every_feed_outline_of_a_real_list_is_imported_or_says_why_not(path: Path) -> None:
    document = path.read_bytes()
    imported = read_or_refuse(document)
    if isinstance(imported, OpmlError):
        # Refused as a whole: a list with no feed in it, or a document that is no OPML
        # (newsboat refuses that one too).
        assert not FEED_URL.search(document) or b"<opml" not in document, f"{path}: {imported}"
        return
    duplicates = [note for note in imported.notes if "same feed as line" in note]
    outlines_with_a_feed_url = len(FEED_URL.findall(document))
    accounted = len(imported.feeds) + len(duplicates) + len(imported.skipped)
    assert accounted >= outlines_with_a_feed_url
    if expected := LISTPARSER_COUNT.search(document):
        assert len(imported.feeds) == int(expected.group(1))
    if title := LISTPARSER_TITLE.search(document):
        assert imported.feeds[0].name == title.group(1).decode()


def test_a_real_reader_export_gives_its_feeds_with_their_names() -> None:
    imported = read_opml((LISTS / "netnewswire" / "Subs.opml").read_bytes())

    assert len(imported.feeds) == 206
    assert imported.feeds[0] == FeedSpec(
        url="http://daringfireball.net/feeds/main", name="Daring Fireball"
    )
    assert (
        FeedSpec(url="http://corinnekrych.blogspot.com/feeds/posts/default", name="chat & code")
        in imported.feeds
    )
    assert imported.skipped == ()


def test_a_list_without_title_attributes_takes_the_text_attribute() -> None:
    with_titles = read_opml((LISTS / "netnewswire" / "Subs.opml").read_bytes())
    without = read_opml((LISTS / "netnewswire" / "SubsNoTitleAttributes.opml").read_bytes())

    assert [feed.name for feed in without.feeds] == [feed.name for feed in with_titles.feeds]


def test_a_command_instead_of_a_url_is_skipped_with_its_line_and_the_rest_imported() -> None:
    imported = read_opml((LISTS / "newsboat" / "piped.opml").read_bytes())

    assert [feed.url for feed in imported.feeds] == ["https://example.com/feed.atom"]
    assert [str(skipped) for skipped in imported.skipped] == [
        "line 8: 'Birdsite search': xmlUrl '|~/fetch_tweets.py' is not an http(s) URL"
    ]


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("file:///etc/passwd", "file"), ("javascript:alert(1)", "javascript"), ("feed", "none")],
)
def test_only_http_feeds_are_imported(url: str, scheme: str) -> None:
    imported = read_opml(
        opml(
            f'<outline text="Bad" xmlUrl="{url}"/><outline text="Good" xmlUrl="https://good.example/rss"/>'
        )
    )

    assert [feed.name for feed in imported.feeds] == ["Good"]
    (skipped,) = imported.skipped
    assert skipped.outline == "'Bad'"
    assert skipped.reason == f"xmlUrl {url!r} is not an http(s) URL"


def test_nested_folders_are_read_through_and_named_as_not_kept() -> None:
    imported = read_opml((LISTS / "newsboat" / "example.opml").read_bytes())

    assert len(imported.feeds) == 7
    assert (
        FeedSpec(url="https://blogs.example.com/~mike/.rss", name="Notes by Mike") in imported.feeds
    )
    assert imported.notes == (
        "folders and categories are not kept (the catalogue has none): Blogs, Blogs/friends,"
        " eloquent",
    )


def test_languages_become_the_tagger_languages_or_are_left_unset_with_a_note() -> None:
    imported = read_opml(
        opml(
            '<outline text="A" xmlUrl="https://a.example/rss" language="en-US"/>'
            '<outline text="B" xmlUrl="https://b.example/rss" language="ru_RU"/>'
            '<outline text="C" xmlUrl="https://c.example/rss" language="AZ"/>'
            '<outline text="D" xmlUrl="https://d.example/rss" language="fr-FR"/>'
            '<outline text="E" xmlUrl="https://e.example/rss" language="unknown"/>'
        )
    )

    assert [feed.lang for feed in imported.feeds] == ["en", "ru", "az", None, None]
    assert imported.notes == (
        "line 1: 'D': language 'fr-FR' is not one the tagger reads (en, ru, de, az, tr);"
        " left unset, the tagger will detect it",
        "line 1: 'E': language 'unknown' is not one the tagger reads (en, ru, de, az, tr);"
        " left unset, the tagger will detect it",
    )


def test_the_same_feed_twice_is_imported_once() -> None:
    imported = read_opml(
        opml(
            '<outline text="A">\n<outline text="Feed" xmlUrl="https://a.example/rss"/></outline>\n'
            '<outline text="B">\n<outline text="Again" xmlUrl="https://A.example:443/rss"/></outline>'
        )
    )

    assert [feed.name for feed in imported.feeds] == ["Feed"]
    assert "line 4: 'Again': same feed as line 2" in imported.notes


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (
            "newsboat/opml-element-missing.opml",
            "not an OPML document: its root element is <not-opml>",
        ),
        ("newsboat/body-element-missing.opml", "no feeds in it (no <body>)"),
        ("listparser/head_title.xml", "no feeds in it (no <outline> with an xmlUrl)"),
    ],
)
def test_a_file_that_is_no_subscription_list_is_refused_with_the_reason(
    path: str, reason: str
) -> None:
    with pytest.raises(OpmlError, match=re.escape(reason)):
        read_opml((LISTS / path).read_bytes())


def test_a_list_that_declares_entities_is_refused() -> None:
    document = (
        b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<opml version="2.0"><body><outline text="&b;" xmlUrl="https://a.example/rss"/></body></opml>'
    )

    with pytest.raises(OpmlError, match="declares XML entities"):
        read_opml(document)


def test_broken_xml_is_refused_with_the_parser_position() -> None:
    with pytest.raises(OpmlError, match=r"not well-formed XML: .*line 1"):
        read_opml(b'<opml version="2.0"><body><outline xmlUrl="https://a.example/rss"></body>')


# --- export, and back ------------------------------------------------------------


def test_the_bundled_catalogue_goes_to_opml_and_back_unchanged() -> None:
    feeds = load_catalogue(BUNDLED)

    assert read_opml(write_opml(feeds, "Feeds")).feeds == feeds
    assert any(feed.country and feed.kind for feed in feeds)  # so the facts are carried


XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=40,
)
FEEDS = st.lists(
    st.builds(
        FeedSpec,
        url=st.from_regex(r"https?://[a-z]{1,12}\.example/[a-z0-9/?=&._-]{0,30}", fullmatch=True),
        name=XML_TEXT,
        lang=st.sampled_from([None, *LANGUAGES]),
        country=st.one_of(st.none(), XML_TEXT),
        kind=st.one_of(st.none(), XML_TEXT),
        stale_after_hours=st.one_of(st.none(), st.floats(min_value=0.01, max_value=1e6)),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda feed: feed.url,
)


@given(FEEDS)
def test_any_catalogue_survives_export_then_import(feeds: list[FeedSpec]) -> None:
    assert read_opml(write_opml(feeds, "Feeds")).feeds == tuple(feeds)


def test_imported_feeds_as_toml_are_a_valid_catalogue_of_the_same_feeds(tmp_path: Path) -> None:
    imported = read_opml((LISTS / "netnewswire" / "Subs.opml").read_bytes())
    catalogue = tmp_path / "feeds.toml"
    catalogue.write_text(catalogue_toml(imported.feeds), encoding="utf-8")

    assert load_catalogue(catalogue) == imported.feeds


# --- adding to a catalogue file -------------------------------------------------------

EXISTING = """# My outlets, by hand.
[[feeds]]
url = "https://report.az/rss"   # the one I trust
name = "Report"
lang = "az"
"""


def test_adding_keeps_the_file_as_written_and_skips_what_it_holds(tmp_path: Path) -> None:
    catalogue = tmp_path / "feeds.toml"
    catalogue.write_text(EXISTING, encoding="utf-8")
    feeds = [
        FeedSpec(url="https://REPORT.az/rss", name="Report again"),
        FeedSpec(url="https://new.example/rss", name="New", lang="ru", stale_after_hours=72),
    ]

    result = add_to_catalogue(catalogue, feeds)

    assert [feed.name for feed in result.added] == ["New"]
    assert [feed.name for feed in result.present] == ["Report again"]
    text = catalogue.read_text(encoding="utf-8")
    assert text.startswith(EXISTING.rstrip())
    assert load_catalogue(catalogue) == (
        FeedSpec(url="https://report.az/rss", name="Report", lang="az"),
        FeedSpec(url="https://new.example/rss", name="New", lang="ru", stale_after_hours=72),
    )
    assert add_to_catalogue(catalogue, feeds).added == ()
    assert catalogue.read_text(encoding="utf-8") == text


def test_a_catalogue_written_as_an_inline_array_is_left_untouched(tmp_path: Path) -> None:
    catalogue = tmp_path / "feeds.toml"
    inline = 'feeds = [{ url = "https://report.az/rss" }]\n'
    catalogue.write_text(inline, encoding="utf-8")

    with pytest.raises(CatalogueError, match="cannot add the feeds: not valid TOML"):
        add_to_catalogue(catalogue, [FeedSpec(url="https://new.example/rss")])

    assert catalogue.read_text(encoding="utf-8") == inline
    assert [path.name for path in tmp_path.iterdir()] == ["feeds.toml"]


# --- the commands ---------------------------------------------------------------------


def test_feeds_import_prints_toml_and_names_each_skipped_outline() -> None:
    result = CliRunner().invoke(main, ["feeds", "import", str(LISTS / "newsboat" / "piped.opml")])

    assert result.exit_code == 2
    assert result.stdout == (
        '[[feeds]]\nurl = "https://example.com/feed.atom"\n'
        'name = "example.com website (Atom feed)"\n'
    )
    assert (
        "skipped line 8: 'Birdsite search': xmlUrl '|~/fetch_tweets.py' is not an http(s) URL"
        in result.stderr
    )
    assert "1 feeds read, 1 outlines skipped" in result.stderr


def test_feeds_import_into_a_catalogue_then_export_gives_the_list_back(tmp_path: Path) -> None:
    catalogue = tmp_path / "feeds.toml"
    runner = CliRunner()
    source = LISTS / "netnewswire" / "DefaultFeeds.opml"

    imported = runner.invoke(main, ["feeds", "import", str(source), "--output", str(catalogue)])
    again = runner.invoke(main, ["feeds", "import", str(source), "--output", str(catalogue)])
    exported = runner.invoke(main, ["feeds", "export", "--feeds", str(catalogue)])

    assert (imported.exit_code, again.exit_code, exported.exit_code) == (0, 0, 0)
    assert f"{catalogue}: 10 feeds added" in imported.stderr
    assert f"{catalogue}: 0 feeds added, 10 already there" in again.stderr
    assert read_opml(exported.stdout_bytes).feeds == read_opml(source.read_bytes()).feeds


def test_feeds_import_of_something_else_is_an_error() -> None:
    result = CliRunner().invoke(
        main, ["feeds", "import", str(LISTS / "newsboat" / "opml-element-missing.opml")]
    )

    assert result.exit_code == 1
    assert "not an OPML document" in result.stderr


def test_feeds_export_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "subscriptions.opml"

    result = CliRunner().invoke(main, ["feeds", "export", "--output", str(target)])

    assert result.exit_code == 0
    assert read_opml(target.read_bytes()).feeds == load_catalogue(BUNDLED)
