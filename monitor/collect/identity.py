"""Stable identity of a news item: the same item gets the same id on every poll.

The id is what makes redelivery and re-polling harmless downstream (every effect
is keyed by it), so it must not depend on anything that changes between polls:
not the poll time, not the order of entries, not cosmetic URL differences.
"""

from __future__ import annotations

import hashlib
import json
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
    """The item's stable id: from the guid, else the link, else its content.

    A guid is only unique within its feed, so it is scoped by the feed URL. A link
    names the article itself, so the same article reached through two feeds gets
    one id. Without either, the content is all there is; it is scoped by feed so
    two feeds' generic headlines ("Live updates") do not collide.
    """
    guid_text = (guid or "").strip()
    if guid_text:
        return _ID_PREFIX + _digest(["guid", normalise_url(feed_url), guid_text])
    link_text = (link or "").strip()
    if link_text:
        return _ID_PREFIX + _digest(["link", normalise_url(link_text)])
    return _ID_PREFIX + _digest(["content", normalise_url(feed_url), title, summary])


def revision(title: str, summary: str, link: str | None) -> str:
    """A hash of what the item says: an edited item keeps its id, gets a new revision."""
    return _REVISION_PREFIX + _digest([title, summary, link or ""])
