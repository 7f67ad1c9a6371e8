"""OPML subscription lists ↔ the feed catalogue: `monitor feeds import` and `feeds export`.

Reading takes OPML 1.0 and 2.0 as feed readers write them. An <outline> with
an `xmlUrl` is a feed (attribute names in any case: readers differ); its name
is its `text`, else its `title`; its `language` is kept when it is one the
tagger reads. An outline without `xmlUrl` is a folder: the catalogue has no
folders (nor categories), so they are named in a note and dropped. `htmlUrl`, `description`
and the readers' own attributes are not kept either. An outline that cannot
become a feed (a `file:` or `|command` URL, a link to another list, a web page
without a feed) is skipped with its reason and line.

Writing gives OPML 2.0 that any reader imports, with the catalogue's own facts
(`country`, `kind`, `stale_after_hours`) in attributes of this project's
namespace, which readers ignore and `feeds import` reads back: export then
import gives the same catalogue.

listparser, feedparser's sibling for OPML, was the candidate reader; it keeps
only url, title and categories of a feed, not `language` nor other attributes,
so the round trip would lose them. The stdlib's expat reads the file instead,
with entity declarations refused (an OPML list has no use for them).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from pyexpat import ExpatError, ParserCreate
from typing import Any
from urllib.parse import urlsplit

import tomli_w
from pydantic import ValidationError

from monitor.collect.catalogue import (
    ALLOWED_SCHEMES,
    LANGUAGES,
    CatalogueError,
    FeedSpec,
    load_catalogue,
    validation_reason,
)
from monitor.collect.dates import language_of
from monitor.collect.identity import normalise_url
from monitor.errors import MonitorError

# The catalogue's facts that OPML has no attribute for.
NAMESPACE = "urn:baku-moscow-monitor:catalogue"
_PREFIX = "monitor"
_OWN_ATTRIBUTES = {"country": "country", "kind": "kind", "staleAfterHours": "stale_after_hours"}
# Outline types that point somewhere by `url`: OPML 2.0 makes "include" another
# subscription list, and "link" one too when its url ends in .opml, else a web page.
# (WordPress writes type="link" for feeds too, but those have an xmlUrl;
# type="source" with an xmlUrl is a list.)
_LIST_TYPES = frozenset({"link", "include"})
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class OpmlError(MonitorError):
    """The file cannot be read as an OPML subscription list; the message says why."""


@dataclass(frozen=True)
class Skipped:
    """An outline that did not become a feed, and why."""

    line: int
    outline: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.outline}: {self.reason}"


@dataclass(frozen=True)
class OpmlList:
    """What one OPML file gave: its feeds, what was skipped, and what was left out."""

    feeds: tuple[FeedSpec, ...]
    skipped: tuple[Skipped, ...] = ()
    # Imported, but something of it was not kept (a language, the folders).
    notes: tuple[str, ...] = ()


@dataclass
class _Reader:
    feeds: list[FeedSpec] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_line: dict[str, int] = field(default_factory=dict)
    # The open outlines: a folder's name, or None for a feed (its children are not folders).
    open_outlines: list[str | None] = field(default_factory=list)
    folders: dict[str, None] = field(default_factory=dict)
    root: str | None = None
    seen_body: bool = False

    def start(self, name: str, attributes: dict[str, str], line: int) -> None:
        # OPML has no namespace, but a file may declare a default one: read local names.
        tag = name.rsplit(" ", 1)[-1]
        if self.root is None:
            self.root = tag
            return
        if tag == "body":
            self.seen_body = True
        if tag != "outline":
            return
        plain = {name.lower(): value for name, value in attributes.items() if " " not in name}
        own = {
            name.split(" ", 1)[1]: value
            for name, value in attributes.items()
            if name.startswith(f"{NAMESPACE} ")
        }
        label = plain.get("text", "").strip() or plain.get("title", "").strip()
        url = plain.get("xmlurl", "").strip()
        kind = plain.get("type", "").strip().lower()
        if not url:
            self._not_a_feed(plain, label, kind, line)
            return
        self.open_outlines.append(None)
        where = repr(label) if label else "outline"
        if kind == "source":
            self.skipped.append(
                Skipped(line, where, "another subscription list (source), not a feed")
            )
            return
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ALLOWED_SCHEMES:
            self.skipped.append(Skipped(line, where, f"xmlUrl {url!r} is not an http(s) URL"))
            return
        entry: dict[str, Any] = {"url": url, "name": label or None}
        lang = self._language(plain.get("language"), where, line)
        if lang is not None:
            entry["lang"] = lang
        for attribute, key in _OWN_ATTRIBUTES.items():
            if attribute in own:
                entry[key] = own[attribute]
        try:
            feed = FeedSpec.model_validate(entry)
        except ValidationError as error:
            self.skipped.append(Skipped(line, where, validation_reason(error)))
            return
        key = normalise_url(feed.url)
        if key in self.first_line:
            self.notes.append(f"line {line}: {where}: same feed as line {self.first_line[key]}")
            return
        self.first_line[key] = line
        self.feeds.append(feed)
        folder = "/".join(name for name in self.open_outlines if name)
        for category in [folder, *plain.get("category", "").split(",")]:
            if category.strip():
                self.folders[category.strip()] = None

    def _not_a_feed(self, plain: dict[str, str], label: str, kind: str, line: int) -> None:
        where = repr(label) if label else "outline"
        if kind in _LIST_TYPES and (target := plain.get("url", "").strip()):
            if kind == "include" or urlsplit(target).path.lower().endswith(".opml"):
                reason = f"a link to another subscription list ({kind}), not followed"
            else:
                reason = "a link to a web page (type link), not a feed"
            self.skipped.append(Skipped(line, where, reason))
        elif plain.get("htmlurl", "").strip():
            reason = "an htmlUrl but no xmlUrl: a web page, not a feed"
            self.skipped.append(Skipped(line, where, reason))
        elif kind == "rss":
            self.skipped.append(Skipped(line, where, "type rss but no xmlUrl"))
        # Anything else is a folder (or an empty outline), named by its label.
        self.open_outlines.append(label)

    def _language(self, tag: str | None, where: str, line: int) -> str | None:
        if tag is None or not tag.strip():
            return None
        lang = language_of(tag)
        if lang in LANGUAGES:
            return lang
        self.notes.append(
            f"line {line}: {where}: language {tag.strip()!r} is not one the tagger reads"
            f" ({', '.join(LANGUAGES)}); left unset, the tagger will detect it"
        )
        return None

    def end(self, name: str) -> None:
        if name.rsplit(" ", 1)[-1] == "outline" and self.open_outlines:
            self.open_outlines.pop()


def _refuse_entities(*_: object) -> None:
    raise OpmlError("declares XML entities, which a subscription list has no use for")


def read_opml(document: bytes) -> OpmlList:
    """The feeds of an OPML document; raises OpmlError when it is not one."""
    reader = _Reader()
    parser = ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = lambda tag, attributes: reader.start(
        tag, attributes, parser.CurrentLineNumber
    )
    parser.EndElementHandler = reader.end
    parser.EntityDeclHandler = _refuse_entities
    try:
        parser.Parse(document, True)
    except ExpatError as error:
        raise OpmlError(f"not well-formed XML: {error}") from None
    if reader.root is None or reader.root.lower() != "opml":
        raise OpmlError(f"not an OPML document: its root element is <{reader.root}>, not <opml>")
    if not reader.feeds and not reader.skipped:
        where = "no <body>" if not reader.seen_body else "no <outline> with an xmlUrl"
        raise OpmlError(f"no feeds in it ({where})")
    notes = list(reader.notes)
    if reader.folders:
        notes.append(
            "folders and categories are not kept (the catalogue has none): "
            + ", ".join(reader.folders)
        )
    return OpmlList(tuple(reader.feeds), tuple(reader.skipped), tuple(notes))


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def write_opml(feeds: Sequence[FeedSpec], title: str) -> bytes:
    """The catalogue as an OPML 2.0 document (UTF-8), one outline a feed, in order."""
    ElementTree.register_namespace(_PREFIX, NAMESPACE)
    root = ElementTree.Element("opml", {"version": "2.0"})
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = _xml_text(title)
    body = ElementTree.SubElement(root, "body")
    for feed in feeds:
        name = _xml_text(feed.name)
        attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": _xml_text(feed.url)}
        if feed.lang is not None:
            attributes["language"] = feed.lang
        for attribute, key in _OWN_ATTRIBUTES.items():
            value = getattr(feed, key)
            if value is not None:
                attributes[f"{{{NAMESPACE}}}{attribute}"] = _xml_text(str(value))
        ElementTree.SubElement(body, "outline", attributes)
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def catalogue_toml(feeds: Sequence[FeedSpec]) -> str:
    """[[feeds]] tables for `feeds`, with only the keys that are set."""
    # One table at a time: given the whole list, tomli-w may write a short one as an
    # inline array, which a later [[feeds]] table could not extend.
    return "\n".join(
        "[[feeds]]\n" + tomli_w.dumps(feed.model_dump(exclude_none=True)) for feed in feeds
    )


@dataclass(frozen=True)
class Added:
    """What adding feeds to a catalogue file did."""

    added: tuple[FeedSpec, ...]
    # Already in the catalogue (the same normalised URL): left as they were.
    present: tuple[FeedSpec, ...]


def add_to_catalogue(path: Path, feeds: Sequence[FeedSpec], header: str = "") -> Added:
    """Append the feeds `path` does not hold yet as [[feeds]] tables; create it if missing.

    The file's own text (comments, order, other tables) is kept as written. The
    result is validated as a catalogue before it replaces the file, which is
    left untouched on any error.
    """
    existing = load_catalogue(path) if path.exists() else ()
    known = {normalise_url(feed.url) for feed in existing}
    added = tuple(feed for feed in feeds if normalise_url(feed.url) not in known)
    present = tuple(feed for feed in feeds if normalise_url(feed.url) in known)
    if not added:
        return Added(added, present)
    text = path.read_text(encoding="utf-8").rstrip() if path.exists() else header.rstrip()
    combined = (text + "\n\n" if text else "") + catalogue_toml(added)
    staged = path.with_name(f".{path.name}.importing")
    staged.write_text(combined, encoding="utf-8")
    try:
        load_catalogue(staged)
    except CatalogueError as error:
        staged.unlink()
        raise CatalogueError(path, f"cannot add the feeds: {error.reason}") from None
    os.replace(staged, path)
    return Added(added, present)
