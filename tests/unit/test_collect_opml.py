"""OPML subscription lists in and out: users bring the list they already have in their reader.

The real lists are other projects' test data and a reader's default lists, as
their packages ship them (tests/data/opml-real/README.md): every outline with a
feed URL in them is imported, noted as a duplicate, or skipped with its line and
reason. The cases those lists lack (a newsboat `|command`, a missing <body>…)
are small documents written here.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

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
from tests.feeds_corpus import OPML_REAL

ROOT = Path(__file__).resolve().parents[2]
LISTS = OPML_REAL
BUNDLED = ROOT / "monitor" / "feeds.toml"
# A Bloglines export, 11 feeds in a folder and a subfolder (ROME's test data).
BLOGLINES_EXPORT = LISTS / "rome" / "test__resources__opml_2.0.xml"
# An outline's feed URL, however the reader capitalised the attribute.
FEED_URL = re.compile(rb"""\bxmlUrl\s*=\s*["']\s*([^"'\s][^"']*)["']""", re.IGNORECASE)
# What listparser's own test files say its reader finds (its 0.18 files write the
# count both as len(result['feeds']) and as len(result.feeds)).
LISTPARSER_COUNT = re.compile(rb"Eval: len\(result(?:\['feeds'\]|\.feeds)\) == (\d+)")
LISTPARSER_FIRST = re.compile(rb"Eval: result\['feeds'\]\[0\]\['(title|url)'\] == '([^']*)'")


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


# Small lists for what the real ones lack. A terminal reader (newsboat) lets a
# command stand for a feed and reads its output.
WITH_A_COMMAND = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Exported by a terminal reader</title></head>
  <body>
    <outline type="rss" title="Channel digest" xmlUrl="|~/bin/channel-to-rss news_az"/>
    <outline title="Caucasus">
      <outline type="rss" title="APA in English" xmlUrl="https://apa.example/en/rss"/>
    </outline>
  </body>
</opml>
"""
NESTED_FOLDERS = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Folders in folders</title></head>
  <body>
    <outline text="Caucasus" title="the text wins">
      <outline text="Azerbaijan">
        <outline text="Report" type="rss" xmlUrl="https://report.example/rss"
                 category="politics,energy"/>
      </outline>
      <outline text="Armenia"/>
      <outline text="Wire" type="rss" xmlUrl="https://wire.example/rss"/>
    </outline>
    <outline title="Russia">
      <outline title="TASS" type="rss" xmlUrl="https://tass.example/rss"/>
    </outline>
    <outline text="Loose" type="rss" xmlUrl="https://loose.example/rss" category="/agencies/wire"/>
  </body>
</opml>
"""
WITHOUT_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="1.0">\n'
    b"  <head><title>A head, and nothing else</title></head>\n</opml>\n"
)
NOT_OPML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<subscriptions version="1.0">\n  <body>\n'
    b'    <outline text="Report" type="rss" xmlUrl="https://report.example/rss"/>\n'
    b"  </body>\n</subscriptions>\n"
)


def real_lists() -> list[Path]:
    return sorted(path for path in LISTS.rglob("*") if path.suffix in {".opml", ".xml"})


def test_the_real_lists_are_there() -> None:
    sources = {path.relative_to(LISTS).parts[0] for path in real_lists()}
    assert sources == {"listparser", "rome", "liferea"}
    assert len(real_lists()) > 75


def test_every_real_list_has_its_origin_licence_and_checksum_in_the_manifest() -> None:
    with (LISTS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as manifest:
        rows = {row["file"]: row for row in csv.DictReader(manifest, delimiter="\t")}

    assert sorted(rows) == [str(path.relative_to(LISTS)) for path in real_lists()]
    for name, row in rows.items():
        assert hashlib.sha256((LISTS / name).read_bytes()).hexdigest() == row["sha256"], name
        assert all(row[key] for key in ("obtained_from", "upstream", "path_in_package")), name
        assert (LISTS / "LICENSES" / row["licence"]).is_file(), name


@pytest.mark.parametrize("path", real_lists(), ids=lambda path: str(path.relative_to(LISTS)))
def test_every_feed_outline_of_a_real_list_is_imported_or_says_why_not(path: Path) -> None:
    document = path.read_bytes()
    imported = read_or_refuse(document)
    expected_count = LISTPARSER_COUNT.search(document)
    if isinstance(imported, OpmlError):
        # Refused as a whole: a list with no feed in it, or a document that is no OPML.
        assert not FEED_URL.search(document) or b"<opml" not in document, f"{path}: {imported}"
        assert expected_count is None or expected_count.group(1) == b"0", f"{path}: {imported}"
        return
    duplicates = [note for note in imported.notes if "same feed as line" in note]
    outlines_with_a_feed_url = len(FEED_URL.findall(document))
    accounted = len(imported.feeds) + len(duplicates) + len(imported.skipped)
    assert accounted >= outlines_with_a_feed_url
    if expected_count is not None:
        assert len(imported.feeds) == int(expected_count.group(1))
    for field, value in LISTPARSER_FIRST.findall(document):
        first = imported.feeds[0]
        assert (first.name if field == b"title" else first.url) == value.decode()


def test_a_real_reader_export_gives_its_feeds_with_their_names() -> None:
    imported = read_opml(BLOGLINES_EXPORT.read_bytes())

    assert len(imported.feeds) == 11
    assert imported.feeds[0] == FeedSpec(
        url="http://www.bloglines.com/rss/about/news", name="Bloglines | News"
    )
    assert FeedSpec(url="http://rss.slashdot.org/slashdot/eqWf", name="Slashdot") in imported.feeds
    assert imported.skipped == ()
    assert imported.notes == (
        "folders and categories are not kept (the catalogue has none):"
        " Subscriptions, Subscriptions/nerdy, foo, bar, baz",
    )


def test_a_reader_default_list_gives_its_feeds_and_skips_its_search_folders() -> None:
    # Liferea keeps its search folders in the list, with xmlUrl="vfolder".
    imported = read_opml((LISTS / "liferea" / "feedlist_en.opml").read_bytes())

    assert len(imported.feeds) == 15
    assert imported.feeds[0] == FeedSpec(
        url="https://feeds.arstechnica.com/arstechnica/index", name="Ars Technica"
    )
    assert [str(skipped) for skipped in imported.skipped] == [
        "line 41: 'Unread': xmlUrl 'vfolder' is not an http(s) URL",
        "line 44: 'Important': xmlUrl 'vfolder' is not an http(s) URL",
    ]


def test_names_written_as_character_references_are_read_as_their_letters() -> None:
    imported = read_opml((LISTS / "liferea" / "feedlist_he.opml").read_bytes())

    assert imported.feeds[0] == FeedSpec(
        url="http://www.ynet.co.il/Integration/StoryRss2.xml", name="ynet - חדשות היום"
    )


def test_a_mistyped_feed_url_in_a_real_list_is_skipped_with_its_line() -> None:
    imported = read_opml((LISTS / "liferea" / "feedlist_fa.opml").read_bytes())

    assert (
        "line 10: 'بیگ بنگ': xmlUrl 'hhttps://bigbangpage.com/?feed=rss2' is not an http(s) URL"
        in [str(skipped) for skipped in imported.skipped]
    )


def test_a_link_outline_is_another_list_when_it_names_an_opml_file_and_a_page_otherwise() -> None:
    # ROME's OPML 1.0 test list links podcast episodes and pages; listparser's, a list.
    pages = read_opml((LISTS / "rome" / "test__resources__opml_1.0_links.xml").read_bytes())
    sublist = read_opml((LISTS / "listparser" / "link__outline_url.xml").read_bytes())

    assert pages.feeds == ()
    assert len(pages.skipped) == 40
    assert {skipped.reason for skipped in pages.skipped} == {
        "a link to a web page (type link), not a feed"
    }
    assert str(pages.skipped[0]) == (
        "line 17: 'TopTenSources: podcasting': a link to a web page (type link), not a feed"
    )
    assert [skipped.reason for skipped in sublist.skipped] == [
        "a link to another subscription list (link), not followed"
    ]


def names_as(attributes: str, names: list[str]) -> bytes:
    """A list whose outlines carry each name in `attributes` ("text", "title" or both)."""
    return opml(
        "".join(
            f"<outline {' '.join(f'{key}={quoteattr(name)}' for key in attributes.split())}"
            f' type="rss" xmlUrl="https://feeds.example/{number}"/>'
            for number, name in enumerate(names)
        )
    )


def test_a_list_without_title_attributes_takes_the_text_attribute() -> None:
    names = ["Report", "Trend & Co", "Бакинский рабочий", "<Turan>"]

    read = {
        attributes: [feed.name for feed in read_opml(names_as(attributes, names)).feeds]
        for attributes in ("text title", "text", "title")
    }

    assert read == {"text title": names, "text": names, "title": names}


def test_a_command_instead_of_a_url_is_skipped_with_its_line_and_the_rest_imported() -> None:
    imported = read_opml(WITH_A_COMMAND)

    assert [feed.url for feed in imported.feeds] == ["https://apa.example/en/rss"]
    assert [str(skipped) for skipped in imported.skipped] == [
        "line 5: 'Channel digest': xmlUrl '|~/bin/channel-to-rss news_az' is not an http(s) URL"
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
    imported = read_opml(NESTED_FOLDERS)

    assert imported.feeds == (
        FeedSpec(url="https://report.example/rss", name="Report"),
        FeedSpec(url="https://wire.example/rss", name="Wire"),
        FeedSpec(url="https://tass.example/rss", name="TASS"),
        FeedSpec(url="https://loose.example/rss", name="Loose"),
    )
    assert imported.skipped == ()
    assert imported.notes == (
        "folders and categories are not kept (the catalogue has none): Caucasus/Azerbaijan,"
        " politics, energy, Caucasus, Russia, /agencies/wire",
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
    ("document", "reason"),
    [
        (NOT_OPML, "not an OPML document: its root element is <subscriptions>, not <opml>"),
        (WITHOUT_BODY, "no feeds in it (no <body>)"),
        (
            (LISTS / "listparser" / "opml__head_title.xml").read_bytes(),
            "no feeds in it (no <outline> with an xmlUrl)",
        ),
    ],
    ids=["root-not-opml", "no-body", "listparser-head-only"],
)
def test_a_file_that_is_no_subscription_list_is_refused_with_the_reason(
    document: bytes, reason: str
) -> None:
    with pytest.raises(OpmlError, match=re.escape(reason)):
        read_opml(document)


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


@pytest.mark.parametrize(
    "path",
    [BLOGLINES_EXPORT, *sorted((LISTS / "liferea").glob("*.opml"))],
    ids=lambda path: str(path.relative_to(LISTS)),
)
def test_imported_feeds_as_toml_are_a_valid_catalogue_of_the_same_feeds(
    path: Path, tmp_path: Path
) -> None:
    imported = read_opml(path.read_bytes())
    catalogue = tmp_path / "feeds.toml"
    catalogue.write_text(catalogue_toml(imported.feeds), encoding="utf-8")

    assert imported.feeds
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


def test_feeds_import_prints_toml_and_names_each_skipped_outline(tmp_path: Path) -> None:
    source = tmp_path / "terminal-reader.opml"
    source.write_bytes(WITH_A_COMMAND)

    result = CliRunner().invoke(main, ["feeds", "import", str(source)])

    assert result.exit_code == 2
    assert (
        result.stdout == '[[feeds]]\nurl = "https://apa.example/en/rss"\nname = "APA in English"\n'
    )
    assert (
        "skipped line 5: 'Channel digest': xmlUrl '|~/bin/channel-to-rss news_az'"
        " is not an http(s) URL" in result.stderr
    )
    assert "1 feeds read, 1 outlines skipped" in result.stderr


def test_feeds_import_into_a_catalogue_then_export_gives_the_list_back(tmp_path: Path) -> None:
    catalogue = tmp_path / "feeds.toml"
    runner = CliRunner()
    source = BLOGLINES_EXPORT

    imported = runner.invoke(main, ["feeds", "import", str(source), "--output", str(catalogue)])
    again = runner.invoke(main, ["feeds", "import", str(source), "--output", str(catalogue)])
    exported = runner.invoke(main, ["feeds", "export", "--feeds", str(catalogue)])

    assert (imported.exit_code, again.exit_code, exported.exit_code) == (0, 0, 0)
    assert f"{catalogue}: 11 feeds added" in imported.stderr
    assert f"{catalogue}: 0 feeds added, 11 already there" in again.stderr
    assert read_opml(exported.stdout_bytes).feeds == read_opml(source.read_bytes()).feeds


def test_feeds_import_of_something_else_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "subscriptions.xml"
    source.write_bytes(NOT_OPML)

    result = CliRunner().invoke(main, ["feeds", "import", str(source)])

    assert result.exit_code == 1
    assert "not an OPML document" in result.stderr


def test_feeds_export_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "subscriptions.opml"

    result = CliRunner().invoke(main, ["feeds", "export", "--output", str(target)])

    assert result.exit_code == 0
    assert read_opml(target.read_bytes()).feeds == load_catalogue(BUNDLED)
