"""Given years of news, when folded, then the dyad's state stays small and still exact.

The state is a snapshot written to a changelog and restored from it: its size
must not depend on how long the service has run, and folding old stories into
the summary must not change what the index says.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.escalation.escalate import breakdown_at, escalate
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.state import DyadState, state_from, table_records
from schemas import DYAD_AZ_RU, SIGNAL_IDS, ClockTicked, ItemTagged
from tests.escalation import fold
from tests.factories import item_tagged

CONFIG = ScoringConfig.load()
START = datetime(2024, 1, 1, tzinfo=UTC)
RECORD_LIMIT = 64 * 1024
OUTLETS = [f"Outlet {n}" for n in range(12)]
PLACES = ["Yekaterinburg", "Baku", "Moscow", "Grozny", "Aktau", "Ganja", "Sumgait", "Tula"]


def relevant_item(n: int, at: datetime, rng: random.Random) -> ItemTagged:
    """A relevant item; about a third retell an earlier headline of the day."""
    signals = rng.sample(SIGNAL_IDS, rng.choice([1, 1, 2]))
    story = rng.randrange(8)
    title = (
        f"{rng.choice(PLACES)} {' '.join(signals)} report number {story} "
        f"on {at:%B %d} with {rng.choice(PLACES)}"
    )
    return item_tagged(
        f"item-{n}",
        signals,
        at,
        title=title,
        source=rng.choice(OUTLETS),
        lang=rng.choice(["en", "ru", "az"]),
    )


def stream(days: int, per_day: int, seed: int = 3) -> list[ItemTagged | ClockTicked]:
    """`per_day` relevant items a day, in log order, with an hourly tick from the collector."""
    rng = random.Random(seed)
    records: list[ItemTagged | ClockTicked] = []
    n = 0
    for day in range(days):
        times = sorted(
            START + timedelta(days=day, minutes=rng.randrange(24 * 60)) for _ in range(per_day)
        )
        for hour in range(24):
            tick_at = START + timedelta(days=day, hours=hour)
            while times and times[0] < tick_at:
                records.append(relevant_item(n, times.pop(0), rng))
                n += 1
            records.append(ClockTicked(at=tick_at))
        records.extend(relevant_item(n + k, at, rng) for k, at in enumerate(times))
        n += len(times)
    return records


def largest_record(state: DyadState) -> int:
    return max(len(value) for value in table_records(state).values())


def test_two_years_of_news_keep_every_table_record_under_64_kb() -> None:
    state = DyadState(dyad=DYAD_AZ_RU)
    largest = 0
    sizes_by_quarter = []
    for position, record in enumerate(stream(days=730, per_day=40)):
        state = escalate(state, record, CONFIG).state
        if position % 500 == 0:
            largest = max(largest, largest_record(state))
        if position % 8000 == 0:
            sizes_by_quarter.append(sum(len(v) for v in table_records(state).values()))
    largest = max(largest, largest_record(state))
    assert largest <= RECORD_LIMIT
    assert state.folded.stories > 3_000, "two years of stories went into the summary"
    # Bounded by design: the whole state after two years is no bigger than after months.
    assert sizes_by_quarter[-1] <= 2 * max(sizes_by_quarter[1:4])


def test_a_flood_of_distinct_stories_is_capped_by_folding_the_oldest_early() -> None:
    state, _ = fold(stream(days=2, per_day=2000))
    assert len(state.stories) <= CONFIG.max_live_stories
    assert largest_record(state) <= RECORD_LIMIT


def test_a_story_keeps_its_first_items_in_full_and_counts_the_rest() -> None:
    rng = random.Random(1)
    copies = [
        item_tagged(
            f"copy-{n}",
            ["detentions"],
            START + timedelta(minutes=n),
            title="FSB detains Azerbaijanis in Yekaterinburg",
            source=rng.choice(OUTLETS),
        )
        for n in range(100)
    ]
    state, _ = fold(copies)
    [story] = state.stories.values()
    assert len(story.items) == CONFIG.stories.max_items
    assert story.items_total == len(copies)


def test_folding_closed_stories_leaves_the_index_as_it_was() -> None:
    """The summary is exact for decay and settlements: folded or kept whole, same index."""
    records = stream(days=60, per_day=15, seed=11)
    kept_whole = replace(
        CONFIG,
        stories=replace(CONFIG.stories, fold_after=timedelta(days=10_000)),
        max_live_stories=1_000_000,
    )
    folded, _ = fold(records)
    whole, _ = fold(records, kept_whole)
    assert folded.folded.stories > 100
    assert whole.folded.stories == 0
    end = folded.clock
    assert end is not None
    folded_index = breakdown_at(folded, end, CONFIG)
    whole_index = breakdown_at(whole, end, kept_whole)
    assert folded_index.keys() == whole_index.keys()
    for signal, value in whole_index.items():
        assert folded_index[signal] == pytest.approx(value, rel=1e-6, abs=1e-3), signal


def test_the_table_records_restore_the_same_state() -> None:
    state, _ = fold(stream(days=10, per_day=30))
    records = table_records(state)
    restored = state_from(DYAD_AZ_RU, records[DYAD_AZ_RU.encode()], records)
    assert restored == state
    assert restored.item_story == state.item_story


def test_the_forecast_spares_hours_without_changing_a_single_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Judging only the hours the forecast cannot rule out gives what judging every hour
    in full gives, notice for notice and byte for byte."""
    import monitor.escalation.escalate as escalation

    def notices_of(records: list[ItemTagged | ClockTicked]) -> list[str]:
        _, notices = fold(records)
        return [notice.model_dump_json() for notice in notices]

    # Episodes of news with quiet months between: many falls, judged across long gaps.
    rng = random.Random(5)
    episode = [["armed_incident"], ["detentions"], ["diplomatic_protest", "hostile_rhetoric"]]
    records: list[ItemTagged | ClockTicked] = []
    for number in range(8):
        start = START + timedelta(days=90 * number)
        for step, signals in enumerate(episode):
            item = relevant_item(10 * number + step, start + timedelta(hours=5 * step), rng)
            records.append(item.model_copy(update={"signals": signals}))
        if number % 2:
            apology = relevant_item(10 * number + 5, start + timedelta(days=4), rng)
            records.append(apology.model_copy(update={"signals": ["conciliation"]}))
    spared = notices_of(records)
    monkeypatch.setattr(escalation, "FORECAST_MARGIN", float("inf"))  # every hour in full
    judged_in_full = notices_of(records)
    assert sum('"kind":"lowered"' in notice for notice in spared) >= 10
    assert spared == judged_in_full


class CrashAfter(dict[bytes, bytes]):
    """A table whose process dies (SIGKILL) after `writes` more writes or deletions."""

    def __init__(self, records: dict[bytes, bytes], writes: int) -> None:
        super().__init__(records)
        self.writes_left = writes

    def _one_more(self) -> None:
        if self.writes_left == 0:
            raise SystemExit("killed")
        self.writes_left -= 1

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._one_more()
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self._one_more()
        super().__delitem__(key)


def test_a_change_cut_short_at_any_write_leaves_a_table_that_loads_to_before_or_after() -> None:
    from monitor.escalation.agent import DyadStates

    records = stream(days=6, per_day=25, seed=9)
    table: dict[bytes, bytes] = {}
    states = DyadStates(table)
    cut_short = 0
    for record in records:
        before = states.load(DYAD_AZ_RU)
        result = escalate(before, record, CONFIG)
        # What a restart would find: the clock's moves that changed nothing are not written.
        persisted = DyadStates(dict(table)).load(DYAD_AZ_RU)
        # Every story written and deleted, the summary, the header, and the run that finishes.
        operations = len(result.change.stories_written) + 2 * len(result.change.stories_removed) + 2
        for writes in range(operations + 2):
            crashed = CrashAfter(dict(table), writes=-1)
            dying = DyadStates(crashed)
            dying.load(DYAD_AZ_RU)
            crashed.writes_left = writes
            with contextlib.suppress(SystemExit):
                dying.save(result)
            crashed.writes_left = -1  # the restarted worker writes freely
            restored = DyadStates(crashed).load(DYAD_AZ_RU)
            assert restored in (persisted, result.state)
            cut_short += restored == persisted != result.state
        states.save(result)
    assert cut_short > 100, "many changes were cut short and loaded back to before"
