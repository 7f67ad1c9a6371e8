"""Stories, not articles: near-duplicate and same-event items grouped, sources counted once.

The same event reported by ten outlets is one story with ten sources. Two
rules put an item into an existing story:

- its text is a near-duplicate of an item of the story in the same language
  (64-bit SimHash over its words, within a Hamming distance), or
- it is in a language the story does not have yet, carries the same kind of
  signals (by Jaccard overlap) and was published within a short window of
  the story's start: the same event told in another language. (Within one
  language, only similar text joins: two different arrests reported the
  same day are two stories.)

Independent sources corroborate a story with diminishing returns; a copy of
the same wire text (SimHash within a much smaller distance) or another item
from the same outlet is not independent.

The fingerprint (a 64-bit SimHash, `monitor.fingerprint`) is computed by the
tagger for each relevant item and compared here.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from monitor.fingerprint import FINGERPRINT_BITS, distance
from schemas.events import UtcDatetime

_TOKEN = re.compile(r"\w+")
# Stems shorter than this are not names (articles, "AZ", "RU" are kept by being acronyms).
_NAME_STEM = 5


def names_in(headline: str, sides: Iterable[str] = ()) -> tuple[str, ...]:
    """The names a headline gives: its capitalised words and acronyms (a headline's
    first word is as often a name as not: it counts), less the mentions of the two
    sides (`sides`: the words the tagger took for them), which nearly every relevant
    item shares.

    Crudely stemmed to their first five letters, so that inflected forms meet
    ("Екатеринбурге", "Екатеринбург"; "Putin'den", "Putin"). Within one language,
    two reports of one event in other words still share their names.
    """
    excluded = {word.casefold()[:_NAME_STEM] for side in sides for word in _TOKEN.findall(side)}
    names = set()
    for word in _TOKEN.findall(headline):
        acronym = len(word) >= 2 and word.isupper() and word.isalpha()
        if acronym or (word[0].isupper() and len(word) >= 3):
            names.add(word.casefold()[:_NAME_STEM])
    return tuple(sorted(names - excluded))


@dataclass(frozen=True)
class StoryRules:
    join_window: timedelta
    cluster_window: timedelta
    text_distance: int
    copy_distance: int
    signal_overlap: float
    corroboration: float
    # A story keeps this many items in full; later ones only count (bounded state).
    max_items: int = 24
    # Same language, other words: joins when the signals overlap and the names do.
    reworded_overlap: float = 0.4
    # When a story closes and is folded into the summary (None: at the join window's end).
    fold_after: timedelta | None = None

    @property
    def closes_after(self) -> timedelta:
        return self.fold_after if self.fold_after is not None else self.join_window


class StoryItem(BaseModel):
    """What a story keeps of each of its items."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    revision: str
    source: str
    lang: str | None
    signals: tuple[str, ...]
    fingerprint: int
    event_time: UtcDatetime
    headline: str
    link: str | None
    # The names the headline gives (see `names_in`): what survives rewording.
    names: tuple[str, ...] = ()
    # Signals it names as background (an apology names the crash): they tie the
    # item to the story of what it recalls, and weigh nothing.
    recalled: tuple[str, ...] = ()

    @property
    def named(self) -> frozenset[str]:
        return frozenset(self.signals) | frozenset(self.recalled)


class Story(BaseModel):
    """A group of items about one event, with what the index needs kept beside it.

    `sources` and `context` are derived from the items (and the rules) whenever
    an item joins or leaves, so that evaluating the index does not redo them.
    """

    model_config = ConfigDict(frozen=True)

    story_id: str
    first_seen: UtcDatetime
    items: dict[str, StoryItem]
    sources: dict[str, int] = {}  # signal → independent origins reporting it
    context: tuple[str, ...] = ()  # escalatory signals named only beside de-escalatory ones
    # Every item that joined, also those beyond `max_items` that are counted but not kept.
    items_total: int = 0

    @classmethod
    def of(
        cls,
        story_id: str,
        items: Mapping[str, StoryItem],
        rules: StoryRules,
        deescalatory: frozenset[str],
        items_total: int = 0,
    ) -> Story:
        values = list(items.values())
        # Built from validated items: no need to validate them again.
        return cls.model_construct(
            story_id=story_id,
            first_seen=min(item.event_time for item in values),
            items=dict(items),
            sources=sources_per_signal(values, rules),
            context=tuple(sorted(context_only(values, deescalatory))),
            items_total=max(items_total, len(values)),
        )

    @property
    def signals(self) -> frozenset[str]:
        return frozenset(self.sources)

    @property
    def named(self) -> frozenset[str]:
        """Its signals and those its items recall: what a newcomer is compared with."""
        return self.signals.union(*(item.recalled for item in self.items.values()))

    @property
    def lead(self) -> StoryItem:
        """The earliest item: its headline and link stand for the story."""
        return min(self.items.values(), key=lambda item: (item.event_time, item.item_id))

    def with_item(self, item: StoryItem, rules: StoryRules, deescalatory: frozenset[str]) -> Story:
        """The story with `item` added, or replaced when it is a new revision of one of its own.

        Past `max_items` a new item is counted but not kept: the story's weight has
        all the corroboration it can get by then, and its record stays small.
        """
        revision = item.item_id in self.items
        if not revision and len(self.items) >= rules.max_items:
            return self.model_copy(update={"items_total": self.items_total + 1})
        total = self.items_total if revision else self.items_total + 1
        return Story.of(
            self.story_id, {**self.items, item.item_id: item}, rules, deescalatory, total
        )

    def without_item(
        self, item_id: str, rules: StoryRules, deescalatory: frozenset[str]
    ) -> Story | None:
        items = {key: value for key, value in self.items.items() if key != item_id}
        if not items:
            return None
        return Story.of(self.story_id, items, rules, deescalatory, self.items_total - 1)


def story_id_for(item: StoryItem) -> str:
    return "s-" + hashlib.sha256(item.item_id.encode("utf-8")).hexdigest()[:20]


def _overlap(a: Iterable[str], b: Iterable[str]) -> float:
    first, second = set(a), set(b)
    union = first | second
    return len(first & second) / len(union) if union else 0.0


def find_story(stories: Mapping[str, Story], item: StoryItem, rules: StoryRules) -> str | None:
    """The story `item` belongs to, or None for a new one. Deterministic: ties by id."""
    best: tuple[int, float, str] | None = None
    for story in stories.values():
        gap = abs(item.event_time - story.first_seen)
        if gap > rules.join_window:
            continue
        text_match = min(
            (
                distance(item.fingerprint, other.fingerprint)
                for other in story.items.values()
                if other.lang == item.lang
            ),
            default=FINGERPRINT_BITS,
        )
        if text_match <= rules.text_distance:
            rank = (0, float(text_match), story.story_id)
        elif gap > rules.cluster_window or _overlap(item.named, story.named) < (
            rules.signal_overlap
        ):
            continue
        elif all(other.lang != item.lang for other in story.items.values()):
            # The same kind of event, soon after, in a language the story lacks.
            rank = (1, gap.total_seconds(), story.story_id)
        elif _same_names(item, story, rules.reworded_overlap):
            # The same kind of event in the same language in other words: the names meet.
            rank = (2, gap.total_seconds(), story.story_id)
        else:
            continue
        if best is None or rank < best:
            best = rank
    return best[2] if best is not None else None


def _same_names(item: StoryItem, story: Story, threshold: float) -> bool:
    if not item.names:
        return False
    return any(
        other.lang == item.lang and _overlap(item.names, other.names) >= threshold
        for other in story.items.values()
    )


def origins(items: Iterable[StoryItem], rules: StoryRules) -> list[list[StoryItem]]:
    """Items grouped by independent origin: one outlet, or copies of one wire text."""
    ordered = sorted(items, key=lambda item: (item.event_time, item.item_id))
    groups: list[list[StoryItem]] = []
    for item in ordered:
        for group in groups:
            if any(
                other.source == item.source
                or distance(other.fingerprint, item.fingerprint) <= rules.copy_distance
                for other in group
            ):
                group.append(item)
                break
        else:
            groups.append([item])
    return groups


def sources_per_signal(items: Iterable[StoryItem], rules: StoryRules) -> dict[str, int]:
    """For each signal, how many independent origins report it."""
    counts: dict[str, int] = {}
    for group in origins(items, rules):
        for signal in {s for item in group for s in item.signals}:
            counts[signal] = counts.get(signal, 0) + 1
    return counts


def context_only(items: Iterable[StoryItem], deescalatory: frozenset[str]) -> frozenset[str]:
    """Escalatory signals that every item reporting them mentions beside a de-escalatory one.

    "Putin admits air defence hit the jet and promises compensation" is about
    reconciliation; the shoot-down it names is context, not a new incident.
    """
    plain: set[str] = set()
    mentioned: set[str] = set()
    for item in items:
        escalatory = set(item.signals) - deescalatory
        mentioned |= escalatory
        if not set(item.signals) & deescalatory:
            plain |= escalatory
    return frozenset(mentioned - plain)


def corroboration(independent_sources: int, factor: float) -> float:
    """1 for one source, then diminishing returns: 1 + factor × log2(n)."""
    return 1.0 + factor * math.log2(independent_sources) if independent_sources > 0 else 0.0


@dataclass(frozen=True)
class ClusteringScore:
    """Pairwise agreement of a grouping with labelled stories: of the pairs of items
    put together, how many belong together (precision); of those that belong
    together, how many were put together (recall)."""

    items: int
    precision: float
    recall: float


def pairwise_agreement(
    predicted: Mapping[str, str], labelled: Mapping[str, str]
) -> ClusteringScore:
    """`predicted` and `labelled` map item ids to story ids; items in both are scored."""
    common = sorted(predicted.keys() & labelled.keys())
    together = both = belong = 0
    for position, first in enumerate(common):
        for second in common[position + 1 :]:
            grouped = predicted[first] == predicted[second]
            same = labelled[first] == labelled[second]
            together += grouped
            belong += same
            both += grouped and same
    return ClusteringScore(
        items=len(common),
        precision=both / together if together else 1.0,
        recall=both / belong if belong else 1.0,
    )
