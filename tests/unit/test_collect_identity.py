"""Item identity: the same item gets the same id on every poll, an edit gets a new revision."""

from __future__ import annotations

import pytest

from monitor.collect.identity import item_id, normalise_url, revision

FEED = "https://example.az/rss"
OTHER_FEED = "https://other.example/feed"


def test_ids_are_stable_across_runs_and_versions() -> None:
    # Golden values: if these change, every item already on news.items would be
    # republished under a new id. Change them only with a migration plan.
    assert item_id("urn:uuid:1", None, "t", "s", FEED) == "i-384d704d02540c50224d7f47e017bc4b"
    assert revision("Title", "Summary", "https://example.az/a") == (
        "r-15fec21e82d38db6b715e7152c1a2f48"
    )


def test_id_format_is_prefixed_hex_of_32_chars() -> None:
    value = item_id(None, None, "A title", "", FEED)
    assert value.startswith("i-")
    assert len(value) == 34
    int(value[2:], 16)


def test_guid_wins_over_link_and_content() -> None:
    with_guid = item_id("guid-1", "https://example.az/a", "Title", "Summary", FEED)
    assert with_guid == item_id("guid-1", "https://example.az/other", "Edited", "", FEED)
    assert with_guid != item_id(None, "https://example.az/a", "Title", "Summary", FEED)


def test_guid_is_scoped_by_feed_because_guids_are_only_unique_per_feed() -> None:
    assert item_id("42", None, "t", "", FEED) != item_id("42", None, "t", "", OTHER_FEED)


def test_guid_scope_ignores_cosmetic_differences_in_the_feed_url() -> None:
    assert item_id("42", None, "t", "", "https://EXAMPLE.az:443/rss#top") == item_id(
        "42", None, "t", "", FEED
    )


def test_link_is_used_without_guid_and_names_the_article_across_feeds() -> None:
    first = item_id(None, "https://example.az/news/1", "Title", "", FEED)
    assert first == item_id(None, "https://example.az/news/1", "Other title", "x", OTHER_FEED)
    assert first != item_id(None, "https://example.az/news/2", "Title", "", FEED)


@pytest.mark.parametrize(
    "variant",
    [
        "HTTPS://Example.AZ/news/1",
        "https://example.az:443/news/1",
        "https://example.az/news/1#comments",
        "  https://example.az/news/1  ",
    ],
)
def test_link_is_normalised_before_hashing(variant: str) -> None:
    assert item_id(None, variant, "t", "", FEED) == item_id(
        None, "https://example.az/news/1", "t", "", FEED
    )


def test_link_path_and_query_keep_their_case_and_order() -> None:
    assert normalise_url("https://example.az/News?b=1&a=2") == "https://example.az/News?b=1&a=2"
    assert normalise_url("http://example.az") == "http://example.az/"
    assert normalise_url("http://example.az:8080/x") == "http://example.az:8080/x"


def test_content_hash_is_the_last_resort() -> None:
    first = item_id(None, None, "Title", "Summary", FEED)
    assert first == item_id("", "  ", "Title", "Summary", FEED)
    assert first != item_id(None, None, "Title", "Other summary", FEED)
    assert first != item_id(None, None, "Title", "Summary", OTHER_FEED)


def test_content_hash_keeps_fields_apart() -> None:
    assert item_id(None, None, "ab", "c", FEED) != item_id(None, None, "a", "bc", FEED)


def test_an_edited_item_keeps_its_id_and_gets_a_new_revision() -> None:
    before = ("Troops moved", "First report", "https://example.az/a")
    after = ("Troops moved", "Updated report", "https://example.az/a")
    assert item_id("g1", before[2], before[0], before[1], FEED) == item_id(
        "g1", after[2], after[0], after[1], FEED
    )
    assert revision(*before) != revision(*after)
    assert revision(*before) == revision(*before)


@pytest.mark.parametrize(
    "changed",
    [
        ("Other title", "Summary", "https://example.az/a"),
        ("Title", "Other summary", "https://example.az/a"),
        ("Title", "Summary", "https://example.az/b"),
        ("Title", "Summary", None),
    ],
)
def test_revision_changes_with_any_part_of_the_content(
    changed: tuple[str, str, str | None],
) -> None:
    assert revision(*changed) != revision("Title", "Summary", "https://example.az/a")
