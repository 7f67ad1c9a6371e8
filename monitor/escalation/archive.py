"""Archived items as JSON lines: the labelled-corpus format, or ItemCollected records.

One object a line. Either the corpus format of SIGNALS.md (`id`, `title`,
`summary`, `published`, `source`, `lang`, `link`; `gold` is ignored here) or
an `ItemCollected` as it appears on news.items. Used by `monitor ingest`
(a backfill) and `monitor backtest`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.clock import event_time_of, utc_now
from monitor.collect.identity import item_id as derive_item_id
from monitor.collect.identity import revision as derive_revision
from monitor.errors import MonitorError
from schemas import EARLIEST_EVENT_TIME, ItemCollected, untrusted_time
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


def _objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise ArchiveError(f"{path}:{number}: not JSON: {error.msg}") from error
            if not isinstance(value, dict):
                raise ArchiveError(f"{path}:{number}: expected a JSON object")
            yield number, value


def load_archive(path: Path, now: datetime | None = None) -> list[ItemCollected]:
    """Every item of the file, in file order.

    An archive has no collection time of its own: its items count as collected
    at the archive's latest trustworthy date (a fixed time keeps backtests
    repeatable), which is also where an undated item is placed. A date before
    2000 or more than a day after `now` (the wall clock by default) is a broken
    feed's, and is clamped to that time like a collector would.
    """
    now = now if now is not None else utc_now()
    records: list[ItemCollected | tuple[int, ArchivedItem]] = []
    for number, value in _objects(path):
        try:
            if "item_id" in value:
                records.append(ItemCollected.model_validate(value))
            else:
                records.append((number, ArchivedItem.model_validate(value)))
        except ValidationError as error:
            reason = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in error.errors()
            )
            raise ArchiveError(f"{path}:{number}: {reason}") from error
    dates = [r.event_time if isinstance(r, ItemCollected) else r[1].published for r in records]
    known = [d for d in dates if d is not None and untrusted_time(d, now) is None]
    if not known and records:
        raise ArchiveError(f"{path}: no item has a trustworthy date; an archive needs at least one")
    latest = max(known) if known else None
    items = []
    for record in records:
        if isinstance(record, ItemCollected):
            items.append(record)
        else:
            assert latest is not None
            items.append(collected_from(record[1], latest))
    return items


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
