"""Given the dated labelled corpus, when backtested, then the episodes an analyst knows."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.escalation.archive import ArchiveError, load_archive
from monitor.escalation.backtest import BacktestResult, backtest
from monitor.escalation.scoring import ScoringConfig
from monitor.escalation.timeline import render_html
from monitor.tagging.rules import load_rules
from schemas import LEVELS, EscalationNotice, Level
from tests.corpus import DEV_CORPUS


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return backtest(load_archive(DEV_CORPUS), load_rules(), ScoringConfig.load())


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def level_at(result: BacktestResult, when: datetime) -> Level:
    """The level in force at `when`, from the notices before it."""
    level: Level = "calm"
    for notice in result.notices:
        if notice.event_time <= when and notice.kind != "burst":
            level = notice.level
    return level


def at_least(level: Level, floor: Level) -> bool:
    return LEVELS.index(level) >= LEVELS.index(floor)


def test_the_azal_shoot_down_raises_at_least_high_within_a_day(result: BacktestResult) -> None:
    shoot_down = day("2024-12-25T06:28:00")
    assert level_at(result, shoot_down) == "calm"
    # The corpus's first report of the crash is a day and a half later.
    first_report = min(
        t.event_time for t in result.tagged if t.relevant and t.event_time >= shoot_down
    )
    assert at_least(level_at(result, first_report + timedelta(days=1)), "high")


def test_the_yekaterinburg_raids_raise_the_level_to_severe_once_baku_protests(
    result: BacktestResult,
) -> None:
    # The level is already high (the Victory Day boycott, the AZAL grievance). The raids
    # are one story however many outlets report them; Baku's demands the next day
    # join it, and together they are severe.
    first_report = min(
        t.event_time
        for t in result.tagged
        if t.relevant and "detentions" in t.signals and t.event_time >= day("2025-06-27T00:00:00")
    )
    raised = [
        n
        for n in result.notices
        if n.kind == "raised" and first_report <= n.event_time <= first_report + timedelta(days=2)
    ]
    assert [n.level for n in raised] == ["severe"], "the raids raise the level"
    assert raised[0].event_time - first_report <= timedelta(hours=36)
    assert "detentions" in {s for e in raised[0].evidence for s in e.signals}


def test_the_level_falls_back_after_the_dushanbe_meeting(result: BacktestResult) -> None:
    meeting = day("2025-10-09T00:00:00")
    assert at_least(level_at(result, meeting - timedelta(hours=1)), "elevated")
    lowered = [
        n
        for n in result.notices
        if n.kind == "lowered" and meeting <= n.event_time <= meeting + timedelta(days=3)
    ]
    assert lowered, "Dushanbe lowers the level"
    assert level_at(result, meeting + timedelta(days=3)) == "calm"


def test_routine_and_cooperation_news_raise_nothing_above_elevated(
    result: BacktestResult,
) -> None:
    # 2024 before the shoot-down: peacekeepers leave, trade, visits and phone calls.
    start, end = day("2024-01-01T00:00:00"), day("2024-12-24T00:00:00")
    during = [n for n in result.notices if start <= n.event_time <= end and n.kind != "burst"]
    assert during, "the stretch is not silent: it has elevated episodes"
    assert all(not at_least(n.level, "high") for n in during)


def test_every_raise_is_noticed_by_the_item_that_tipped_it_not_later(
    result: BacktestResult,
) -> None:
    """Decided when processed: a raise is dated by its trigger (ingest order = event time)."""
    tagged = {t.item_id: t for t in result.tagged}
    raised = [n for n in result.notices if n.kind == "raised"]
    assert len(raised) >= 6
    assert all(n.event_time == tagged[n.trigger_item_id].event_time for n in raised)


def test_every_grave_episode_is_noticed_within_a_day_of_its_first_escalatory_item(
    result: BacktestResult,
) -> None:
    # A weak signal (peacekeepers leaving) needs corroboration to reach elevated, which
    # takes as long as the reports take; an episode that reaches high must not wait.
    episodes = result.episodes()
    assert len(episodes) >= 4
    grave = [e for e in episodes if LEVELS.index(e.peak) >= LEVELS.index("high")]
    assert len(grave) >= 3
    assert all(e.delay <= timedelta(days=1) for e in grave)


def test_the_backtest_is_the_same_whatever_the_order_of_the_archive(
    result: BacktestResult, tmp_path: Path
) -> None:
    lines = DEV_CORPUS.read_text(encoding="utf-8").splitlines()
    random.Random(3).shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again = backtest(load_archive(shuffled), load_rules(), ScoringConfig.load())
    assert [n.notice_id for n in again.notices] == [n.notice_id for n in result.notices]


def test_notices_per_month_count_every_notice(result: BacktestResult) -> None:
    per_month = result.notices_per_month()
    assert sum(sum(c.values()) for c in per_month.values()) == len(result.notices)
    assert "2024-12" in per_month


def test_an_archive_line_that_is_not_an_item_fails_with_file_line_and_reason(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "archive.jsonl"
    archive.write_text(
        '{"id": "a", "title": "ok", "published": "2025-01-01T00:00:00Z"}\n{"id": "b"}\n',
        encoding="utf-8",
    )
    with pytest.raises(ArchiveError, match=r"archive\.jsonl:2: title: Field required"):
        load_archive(archive)
    archive.write_text("not json\n", encoding="utf-8")
    with pytest.raises(ArchiveError, match=r"archive\.jsonl:1: not JSON"):
        load_archive(archive)
    # A link that is not http(s) would become a script on the dashboard's pages.
    archive.write_text(
        '{"id": "c", "title": "ok", "link": "javascript:alert(1)"}\n', encoding="utf-8"
    )
    with pytest.raises(ArchiveError, match=r"archive\.jsonl:1: link: String should match"):
        load_archive(archive)


def test_an_undated_archived_item_is_placed_at_the_archive_s_latest_date(tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl"
    archive.write_text(
        '{"id": "a", "title": "dated", "published": "2025-03-01T10:00:00Z"}\n'
        '{"id": "b", "title": "undated"}\n'
        '{"id": "c", "title": "future", "published": "2025-02-01T10:00:00+04:00"}\n',
        encoding="utf-8",
    )
    dated, undated, earlier = load_archive(archive)
    assert undated.event_time == dated.event_time == day("2025-03-01T10:00:00")
    assert earlier.event_time == day("2025-02-01T06:00:00")
    assert undated.item_id != dated.item_id


def test_the_timeline_page_shows_every_notice_and_links_its_evidence(
    result: BacktestResult,
) -> None:
    page = render_html(result, "dev corpus")
    assert page.startswith("<!doctype html>")
    assert "<svg" in page
    assert "<script" not in page, "a page that works offline, without scripts"
    markers = page.count('class="marker ')
    assert markers == len(result.notices)
    first: EscalationNotice = result.notices[0]
    assert first.evidence[0].link is not None
    assert f'href="{first.evidence[0].link}"' in page


def test_monitor_backtest_prints_notices_as_json_lines_and_writes_the_timeline(
    result: BacktestResult, tmp_path: Path
) -> None:
    timeline = tmp_path / "timeline.html"
    outcome = CliRunner().invoke(
        main, ["backtest", str(DEV_CORPUS), "--json", "--timeline", str(timeline)]
    )
    assert outcome.exit_code == 0, outcome.output
    notices = [json.loads(line) for line in outcome.stdout.splitlines() if line.startswith("{")]
    assert [n["notice_id"] for n in notices] == [n.notice_id for n in result.notices]
    assert "episodes" in outcome.stderr
    assert timeline.read_text(encoding="utf-8").count('class="marker ') == len(notices)
