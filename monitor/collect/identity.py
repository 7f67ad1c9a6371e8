"""Stable identity of a news item: the same item gets the same id on every poll.

The id is what makes redelivery and re-polling harmless downstream (every effect
is keyed by it), so it must not depend on anything that changes between polls:
not the poll time, not the order of entries, not cosmetic URL differences. The
rule in full is in docs/collectors.md ("Identity and updates").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

_ID_PREFIX = "i-"
_REVISION_PREFIX = "r-"
_HEX_CHARS = 32
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """The URL with cosmetic differences removed, for comparing and hashing.

    Scheme and host are case-insensitive, a default port is the same as none, an
    empty path is "/", and the fragment never reaches the server. Path and query
    stay as they are: servers may treat them case-sensitively.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        # A malformed URL (bad port, bad IPv6 literal) still needs a stable key.
        return text
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host
    if parts.username is not None or parts.password is not None:
        userinfo = parts.username or ""
        if parts.password is not None:
            userinfo += f":{parts.password}"
        netloc = f"{userinfo}@{host}"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    path = parts.path or ("/" if netloc else "")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def _digest(parts: list[str]) -> str:
    # JSON keeps the parts unambiguous: ("ab", "c") and ("a", "bc") hash differently.
    encoded = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:_HEX_CHARS]


def item_id(
    guid: str | None,
    link: str | None,
    title: str,
    summary: str,
    feed_url: str,
) -> str:
    """The item's key in its feed: from the guid, else the link, else its content.

    Every key is scoped by the feed URL: a guid is only unique within its feed,
    a link may be shared by unrelated items of two feeds (a radio station's
    every item links to its home page), and two feeds' generic headlines ("Live
    updates") must not collide. The same article syndicated by two feeds is
    recognised by its content instead (see `monitor.collect.state.classify`).

    Usually the key is the id; when entries of one document share it, each
    gets `shared_id(key, its revision)` instead (see `distinguish`).
    """
    feed = normalise_url(feed_url)
    guid_text = (guid or "").strip()
    if guid_text:
        return _ID_PREFIX + _digest(["guid", feed, guid_text])
    link_text = (link or "").strip()
    if link_text:
        return _ID_PREFIX + _digest(["link", feed, normalise_url(link_text)])
    return _ID_PREFIX + _digest(["content", feed, title, summary])


def shared_id(key: str, revision_of_item: str) -> str:
    """The id of one of several different entries of a feed that share `key` (a guid
    or link reused for every episode): the key and what the entry says. It depends
    on nothing else in the document, so it is the same on every poll."""
    return _ID_PREFIX + _digest(["shared", key, revision_of_item])


def legacy_link_id(link: str) -> str:
    """The id a guid-less item with this link had before ids were scoped by feed:
    recognised so that an upgrade does not publish every such item again."""
    return _ID_PREFIX + _digest(["link", normalise_url(link)])


class Identified(Protocol):
    """What identity needs of an item (ItemCollected has it)."""

    @property
    def item_id(self) -> str: ...
    @property
    def revision(self) -> str: ...
    @property
    def guid(self) -> str | None: ...
    @property
    def link(self) -> str | None: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def feed_url(self) -> str: ...


def key_of(item: Identified) -> str:
    return item_id(item.guid, item.link, item.title, item.summary, item.feed_url)


def distinguish(keys_and_revisions: Sequence[tuple[str, str]]) -> list[str]:
    """The id of each entry of one document, given its key and revision.

    Entries that share a key but say different things are different items (a
    podcast that reuses its guid): each gets `shared_id`. Entries that share a
    key and say the same are one item served twice and keep the key.
    """
    revisions: dict[str, set[str]] = {}
    for key, revision_of_item in keys_and_revisions:
        revisions.setdefault(key, set()).add(revision_of_item)
    return [
        shared_id(key, revision_of_item) if len(revisions[key]) > 1 else key
        for key, revision_of_item in keys_and_revisions
    ]


def former_ids(item: Identified) -> tuple[str, ...]:
    """Other ids this same item (same key, same revision) may have been published under:
    its plain key or its shared id (whether its key was shared then or not), and the
    id of a guid-less item before ids were scoped by feed."""
    key = key_of(item)
    candidates = [key, shared_id(key, item.revision)]
    if not (item.guid or "").strip() and item.link:
        candidates.append(legacy_link_id(item.link))
    return tuple(candidate for candidate in candidates if candidate != item.item_id)


def revision(title: str, summary: str, link: str | None) -> str:
    """A hash of what the item says: an edited item keeps its id, gets a new revision."""
    return _REVISION_PREFIX + _digest([title, summary, link or ""])
