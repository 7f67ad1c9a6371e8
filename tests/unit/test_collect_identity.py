"""Item identity: the same item gets the same id on every poll, an edit gets a new revision."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitor.collect.identity import (
    distinguish,
    former_ids,
    item_id,
    legacy_link_id,
    normalise_url,
    revision,
    shared_id,
)

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


def test_link_is_used_without_guid_and_is_scoped_by_feed() -> None:
    first = item_id(None, "https://example.az/news/1", "Title", "", FEED)
    assert first == item_id(None, "https://example.az/news/1", "Other title", "x", FEED)
    assert first != item_id(None, "https://example.az/news/2", "Title", "", FEED)
    # Two feeds linking one page (a station's home page) do not share an item: the
    # same article syndicated is recognised by its words instead (test_collect_state).
    assert first != item_id(None, "https://example.az/news/1", "Title", "", OTHER_FEED)


def test_ids_of_guidless_items_from_before_feed_scoping_are_still_known() -> None:
    # Golden value: the id such an item was published under before ids were scoped by
    # feed. The collector recognises it, so an upgrade republishes nothing.
    assert legacy_link_id("https://EXAMPLE.az/news/1") == "i-9ef2e3afc29e5004597aa411706fd37c"


def test_entries_that_share_a_key_but_differ_get_ids_of_their_own() -> None:
    key, other = item_id("ep", None, "", "", FEED), item_id("solo", None, "", "", FEED)

    ids = distinguish([(key, "r-1"), (other, "r-9"), (key, "r-2")])

    assert ids == [shared_id(key, "r-1"), other, shared_id(key, "r-2")]
    assert len(set(ids)) == 3


def test_a_shared_key_gives_the_same_ids_whatever_the_order_and_the_other_entries() -> None:
    key = item_id("ep", None, "", "", FEED)

    first = distinguish([(key, "r-1"), (key, "r-2")])
    reordered = distinguish([(key, "r-3"), (key, "r-2"), (key, "r-1")])

    assert first == [shared_id(key, "r-1"), shared_id(key, "r-2")]
    assert reordered[1:] == first[::-1]


def test_an_entry_served_twice_the_same_keeps_its_key() -> None:
    key = item_id("g", None, "", "", FEED)

    assert distinguish([(key, "r-1"), (key, "r-1")]) == [key, key]


@dataclass(frozen=True)
class Entry:
    item_id: str
    revision: str
    guid: str | None
    link: str | None
    title: str = "Title"
    summary: str = ""
    feed_url: str = FEED


def test_former_ids_are_the_key_the_shared_id_and_the_unscoped_link_id() -> None:
    link = "https://example.az/news/1"
    key = item_id(None, link, "Title", "", FEED)

    assert set(former_ids(Entry(key, "r-1", None, link))) == {
        shared_id(key, "r-1"),
        legacy_link_id(link),
    }
    assert set(former_ids(Entry(shared_id(key, "r-1"), "r-1", None, link))) == {
        key,
        legacy_link_id(link),
    }
    guid_key = item_id("g", link, "Title", "", FEED)
    assert former_ids(Entry(guid_key, "r-1", "g", link)) == (shared_id(guid_key, "r-1"),)


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
