"""The feed catalogue: a TOML file of [[feeds]] tables, with errors a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.collect.catalogue import CatalogueError, FeedSpec, load_catalogue
from monitor.errors import MonitorError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_feeds_are_read_in_order_with_their_facts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[feeds]]
url = "https://news.example.az/rss"
name = "Example AZ"
lang = "az"
country = "AZ"
kind = "independent"

[[feeds]]
url = "http://example.ru/export/rss2/index.xml"
""",
    )

    feeds = load_catalogue(path)

    assert feeds == (
        FeedSpec(
            url="https://news.example.az/rss",
            name="Example AZ",
            lang="az",
            country="AZ",
            kind="independent",
        ),
        FeedSpec(url="http://example.ru/export/rss2/index.xml", name="example.ru"),
    )


def test_name_defaults_to_the_host() -> None:
    assert FeedSpec(url="https://Report.AZ:8443/rss").name == "report.az"
    assert FeedSpec(url="https://report.az/rss", name="  ").name == "report.az"


def test_a_language_is_read_in_any_case() -> None:
    assert FeedSpec(url="https://report.az/rss", lang="AZ").lang == "az"


def test_feed_spec_is_frozen() -> None:
    feed = FeedSpec(url="https://report.az/rss")
    with pytest.raises(ValidationError):
        feed.name = "changed"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ('url = "ftp://example.az/rss"', "url must be http or https, not 'ftp'"),
        ('url = "file:///etc/passwd"', "url must be http or https, not 'file'"),
        ('url = "example.az/rss"', "url must be http or https, not 'missing'"),
        ('url = "https:///rss"', "url has no host"),
        ('name = "No url"', "url: Field required"),
        ('url = "https://example.az/rss"\ncontry = "AZ"', "contry: Extra inputs are not permitted"),
        ("url = 42", "url: Input should be a valid string"),
        (
            'url = "https://example.fr/rss"\nlang = "fr"',
            "lang: Value error, lang must be one of en, ru, de, az, tr (the tagger's languages),"
            " not 'fr'",
        ),
    ],
)
def test_a_bad_entry_is_named_by_file_index_and_reason(
    tmp_path: Path, entry: str, reason: str
) -> None:
    path = write(tmp_path, f'[[feeds]]\nurl = "https://fine.example/rss"\n\n[[feeds]]\n{entry}\n')

    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)

    assert str(caught.value).startswith(f"{path}: feed #2: ")
    assert reason in str(caught.value)
    assert (caught.value.path, caught.value.index) == (path, 2)


def test_duplicate_urls_are_rejected_even_when_written_differently(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[feeds]]\nurl = "https://report.az/rss"\n\n'
        '[[feeds]]\nurl = "https://REPORT.az:443/rss#latest"\n',
    )

    with pytest.raises(CatalogueError, match=r"feed #2: duplicate url .* \(already feed #1\)"):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[[feeds]\nurl=", "not valid TOML"),
        ('title = "no feeds here"', "no [[feeds]] tables"),
        ('feeds = "https://report.az/rss"', "must be an array of tables"),
        ("feeds = [1]", "feed #1: must be a table"),
    ],
)
def test_a_bad_file_is_named_with_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(CatalogueError, match=str(path)) as caught:
        load_catalogue(path)

    assert reason in str(caught.value)


def test_a_missing_file_is_a_catalogue_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "absent.toml")


def test_catalogue_errors_share_the_project_root() -> None:
    assert issubclass(CatalogueError, MonitorError)


def test_a_feed_may_allow_itself_a_longer_silence_before_it_counts_as_stale(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        '[[feeds]]\nurl = "https://weekly.example/rss"\nstale_after_hours = 200\n',
    )

    (feed,) = load_catalogue(path)

    assert feed.stale_after_hours == 200


def test_a_silence_allowance_must_be_positive(tmp_path: Path) -> None:
    path = write(tmp_path, '[[feeds]]\nurl = "https://weekly.example/rss"\nstale_after_hours = 0\n')

    with pytest.raises(CatalogueError, match="stale_after_hours"):
        load_catalogue(path)
