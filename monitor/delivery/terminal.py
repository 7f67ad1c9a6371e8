"""Escalation notices for people reading a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import EscalationNotice

if TYPE_CHECKING:
    from monitor.escalation.backtest import BacktestResult
    from monitor.escalation.replay import ReplayReport

ARROWS = {"raised": "▲", "lowered": "▼", "burst": "◆"}


def _when(notice_time: object) -> str:
    return f"{notice_time:%Y-%m-%d %H:%M} UTC"


def format_notice(notice: EscalationNotice) -> str:
    """A few lines: what changed, why (index by signal), and the evidence."""
    arrow = ARROWS.get(notice.kind, "•")
    if notice.burst is not None:
        burst = notice.burst
        change = (
            f"{burst.signal}: {burst.stories} stories in {burst.window_hours:g} h from"
            f" {burst.sources} sources (usually {burst.baseline:.1f}); level {notice.level}"
        )
    else:
        change = f"{notice.previous_level} → {notice.level}"
    head = (
        f"{arrow} {notice.kind.upper()} {notice.dyad}: {change}"
        f"  (index {notice.index:.1f}, {_when(notice.event_time)})"
    )
    movers = sorted(notice.breakdown.items(), key=lambda kv: -abs(kv[1]))
    why = ", ".join(f"{signal} {value:+.1f}" for signal, value in movers if value) or "—"
    lines = [head, f"  why: {why}"]
    for item in notice.evidence:
        signals = ", ".join(item.signals)
        sources = ", ".join(item.sources) if item.sources else item.source
        lines.append(f"  • {item.published:%Y-%m-%d} {item.headline} — {sources} [{signals}]")
        if item.link:
            lines.append(f"    {item.link}")
    lines.append(f"  notice {notice.notice_id}")
    return "\n".join(lines)


def format_backtest_summary(result: BacktestResult) -> str:
    """What a backtest found: counts, notices per month, and each episode's delay."""
    kinds: dict[str, int] = {}
    for notice in result.notices:
        kinds[notice.kind] = kinds.get(notice.kind, 0) + 1
    lines = [
        "Backtest",
        f"  items: {len(result.tagged)} ({result.relevant} relevant)",
        f"  notices: {len(result.notices)} ("
        + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        + ")",
        f"  final level: {result.state.level}",
        "  notices per month:",
    ]
    for month, counts in result.notices_per_month().items():
        lines.append(
            f"    {month}: " + ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
        )
    lines.append("  episodes (first escalatory item → first notice):")
    for episode in result.episodes():
        hours = episode.delay.total_seconds() / 3600
        end = f"{episode.calm_again_at:%Y-%m-%d}" if episode.calm_again_at else "not over"
        lines.append(
            f"    {episode.first_item_time:%Y-%m-%d %H:%M} → {episode.raised_at:%Y-%m-%d %H:%M}"
            f" ({hours:.1f} h), peak {episode.peak}, calm again {end}: {episode.first_item[:60]}"
        )
    return "\n".join(lines)


def format_replay_report(report: ReplayReport) -> str:
    """What a replay with the current rules changes against the notices published."""
    lines = [
        "Replay",
        f"  news.items: {report.items} records ({report.undecodable} undecodable, skipped)",
        f"  notices: {len(report.current)} derived now, {len(report.previous)} published before",
        f"  kept {report.kept}, new {len(report.added)}, withdrawn {len(report.withdrawn)}",
    ]
    for label, notices in (("new", report.added), ("withdrawn", report.withdrawn)):
        for notice in sorted(notices, key=lambda n: n.event_time):
            what = notice.burst.signal if notice.burst else notice.level
            lines.append(
                f"    {label:>9} {notice.event_time:%Y-%m-%d %H:%M} {notice.kind} {what}"
                f" ({notice.notice_id})"
            )
    return "\n".join(lines)
