"""Archived items as JSON lines: the labelled-corpus format, or ItemCollected records.

One object a line. Either the corpus format of SIGNALS.md (`id`, `title`,
`summary`, `published`, `source`, `lang`, `link`; `gold` is ignored here) or
an `ItemCollected` as it appears on news.items. Used by `monitor ingest`
(a backfill) and `monitor backtest`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.clock import event_time_of, utc_now
from monitor.collect.identity import item_id as derive_item_id
from monitor.collect.identity import revision as derive_revision
from monitor.errors import MonitorError
from monitor.records import MAX_RECORD_BYTES
from schemas import EARLIEST_EVENT_TIME, ItemCollected, encode, untrusted_time
from schemas.events import UtcDatetime, WebLink


class ArchiveError(MonitorError):
    """A line of an archive file cannot be read; the message names file, line and reason."""


class ArchivedItem(BaseModel):
    """The corpus format of SIGNALS.md (unknown keys such as `gold` are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    title: str
    summary: str = ""
    published: UtcDatetime | None = None
    source: str = "archive"
    lang: str | None = None
    link: WebLink | None = None  # http(s) only, as on the wire: it becomes a link on pages
    country: str | None = None
    kind: str | None = None


def collected_from(archived: ArchivedItem, collected_at: datetime) -> ItemCollected:
    """As a collector would have published it; the archive's id stands in for a guid."""
    feed_url = f"archive:{archived.source}"
    published = archived.published
    event_time = event_time_of(published, collected_at)
    return ItemCollected(
        item_id=derive_item_id(
            archived.id, archived.link, archived.title, archived.summary, feed_url
        ),
        revision=derive_revision(archived.title, archived.summary, archived.link),
        feed_url=feed_url,
        source=archived.source,
        source_lang=archived.lang,
        source_country=archived.country,
        source_kind=archived.kind,
        guid=archived.id,
        link=archived.link,
        title=archived.title,
        summary=archived.summary,
        published=published,
        collected_at=collected_at,
        event_time=event_time,
    )


@dataclass(frozen=True)
class RejectedLine:
    """A line of an archive that is not an item: `monitor ingest` dead-letters it."""

    number: int
    line: bytes
    reason: str


def _objects(path: Path) -> Iterator[tuple[int, bytes, dict[str, Any] | str]]:
    """Each non-blank line with its object, or with the reason it is not one."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            line = line.rstrip(b"\r\n")
            try:
                value = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as error:
                yield number, line, f"not UTF-8 (byte {error.start})"
                continue
            except json.JSONDecodeError as error:
                yield number, line, f"not JSON: {error.msg}"
                continue
            yield number, line, value if isinstance(value, dict) else "expected a JSON object"


def load_archive(path: Path, now: datetime | None = None) -> list[ItemCollected]:
    """Every item of the file, in file order; a line that is not one is an error."""
    items, rejected = read_archive(path, now)
    if rejected:
        raise ArchiveError(f"{path}:{rejected[0].number}: {rejected[0].reason}")
    return items


def read_archive(
    path: Path, now: datetime | None = None
) -> tuple[list[ItemCollected], list[RejectedLine]]:
    """Every item of the file, in file order, and the lines that are not items.

    An archive has no collection time of its own: its items count as collected
    at the archive's latest trustworthy date (a fixed time keeps backtests
    repeatable), which is also where an undated item is placed. A date before
    2000 or more than a day after `now` (the wall clock by default) is a broken
    feed's, and is clamped to that time like a collector would.
    """
    now = now if now is not None else utc_now()
    records: list[tuple[int, bytes, ItemCollected | ArchivedItem]] = []
    rejected: list[RejectedLine] = []
    for number, line, value in _objects(path):
        if isinstance(value, str):
            rejected.append(RejectedLine(number, line, value))
            continue
        try:
            model = ItemCollected if "item_id" in value else ArchivedItem
            records.append((number, line, model.model_validate(value)))
        except ValidationError as error:
            reason = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in error.errors()
            )
            rejected.append(RejectedLine(number, line, reason))
    dates = [r.event_time if isinstance(r, ItemCollected) else r.published for _, _, r in records]
    known = [d for d in dates if d is not None and untrusted_time(d, now) is None]
    if not known and records:
        raise ArchiveError(f"{path}: no item has a trustworthy date; an archive needs at least one")
    latest = max(known) if known else None
    items = []
    for number, line, record in records:
        if isinstance(record, ArchivedItem):
            assert latest is not None
            record = collected_from(record, latest)
        if (size_problem := too_large(record)) is not None:
            rejected.append(RejectedLine(number, line, size_problem))
        else:
            items.append(record)
    rejected.sort(key=lambda line: line.number)
    return items, rejected


def too_large(item: ItemCollected) -> str | None:
    """Why `item` cannot be a record on news.items, if its size is the reason."""
    size = len(encode(item))
    if size <= MAX_RECORD_BYTES:
        return None
    return f"an item of {size:,} bytes is larger than a record may be ({MAX_RECORD_BYTES:,})"


def retold(source: Path, copies: int, destination: Path, years_apart: int = 3) -> Path:
    """A longer timeline: the archive told again `copies` times, `years_apart` years
    earlier each time (later would be in the future, which is not time), with ids and
    links of its own (for soak tests and benchmarks)."""
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for copy in range(copies):
        for line in lines:
            item = json.loads(line)
            if item.get("published"):
                year = int(item["published"][:4]) - years_apart * copy
                if year < EARLIEST_EVENT_TIME.year:
                    raise ArchiveError(
                        f"{copies} copies {years_apart} years apart reach back to {year}:"
                        f" dates before {EARLIEST_EVENT_TIME.year} are not trusted"
                    )
                item["published"] = f"{year}{item['published'][4:]}"
            item["id"] = f"{item['id']}-{copy}"
            if item.get("link"):
                item["link"] = f"{item['link']}?copy={copy}"
            out.append(json.dumps(item, ensure_ascii=False))
    destination.write_text("\n".join(out) + "\n", encoding="utf-8")
    return destination
