"""A deterministic synthetic news stream made from the labelled corpus, for benchmarks.

Each day of the stream takes `relevant_per_day` relevant corpus items and
`per_day - relevant_per_day` irrelevant ones (gold.relevant decides), re-dated
at random moments of that day, each with an id and link of its own so that no
two items of the stream are the same item. The same arguments always give
the same stream.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.escalation.archive import ArchivedItem, collected_from
from schemas import ItemCollected

CORPUS = Path(__file__).parents[1] / "tests" / "data" / "dev.jsonl"
START = datetime(2025, 1, 1, tzinfo=UTC)
DAY_S = 24 * 3600


def _corpus(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The corpus's relevant and irrelevant items, in file order."""
    relevant: list[dict[str, Any]] = []
    irrelevant: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            (relevant if item["gold"]["relevant"] else irrelevant).append(item)
    return relevant, irrelevant


def _cycle(pool: Sequence[dict[str, Any]], rng: random.Random) -> Iterator[dict[str, Any]]:
    """Every item once per pass, in a fresh shuffled order each pass: all corpus items
    are used equally often, without the stream repeating with a fixed period."""
    order = list(pool)
    while True:
        rng.shuffle(order)
        yield from order


def synthetic_stream(
    days: int,
    per_day: int = 300,
    relevant_per_day: int = 40,
    start: datetime = START,
    seed: int = 7,
    corpus: Path = CORPUS,
) -> list[ItemCollected]:
    """`days` days of `per_day` items each, sorted by (event_time, item_id)."""
    if not 0 <= relevant_per_day <= per_day:
        raise ValueError("relevant_per_day must be between 0 and per_day")
    rng = random.Random(seed)
    relevant, irrelevant = _corpus(corpus)
    pools = (_cycle(relevant, rng), _cycle(irrelevant, rng))
    items: list[ItemCollected] = []
    for day in range(days):
        midnight = start + timedelta(days=day)
        picks = [next(pools[0]) for _ in range(relevant_per_day)]
        picks += [next(pools[1]) for _ in range(per_day - relevant_per_day)]
        for n, source in enumerate(picks):
            published = midnight + timedelta(seconds=rng.randrange(DAY_S))
            suffix = f"-d{day}-{n}"
            archived = ArchivedItem.model_validate(
                {
                    **source,
                    "id": f"{source['id']}{suffix}",
                    "link": f"{source['link']}{suffix}" if source.get("link") else None,
                    "published": published,
                }
            )
            # Collected when published, so that event_time is the published time.
            items.append(collected_from(archived, published))
    items.sort(key=lambda item: (item.event_time, item.item_id))
    return items


def redated(
    items: Iterable[ItemCollected], start: datetime, step: timedelta
) -> list[ItemCollected]:
    """The items in their order, the n-th at `start + n * step` of event time
    (to compress or stretch a stream's event time; ids and revisions are kept)."""
    out = []
    for n, item in enumerate(items):
        at = start + n * step
        # Validated again: the contract checks event time against collection time.
        fields = {**item.model_dump(), "published": at, "collected_at": at, "event_time": at}
        out.append(ItemCollected.model_validate(fields))
    return out


def write_jsonl(items: Iterable[ItemCollected], path: Path) -> Path:
    """As ItemCollected JSON lines, the archive format `monitor ingest` and `backtest` read."""
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(item.model_dump_json())
            out.write("\n")
    return path
