"""Escalation notices for people reading a terminal."""

from __future__ import annotations

from schemas import EscalationNotice

ARROWS = {"raised": "▲", "lowered": "▼", "burst": "◆"}


def _when(notice_time: object) -> str:
    return f"{notice_time:%Y-%m-%d %H:%M} UTC"


def format_notice(notice: EscalationNotice) -> str:
    """A few lines: what changed, why (index by signal), and the evidence."""
    arrow = ARROWS.get(notice.kind, "•")
    head = (
        f"{arrow} {notice.kind.upper()} {notice.dyad}: {notice.previous_level} → {notice.level}"
        f"  (index {notice.index:.1f}, {_when(notice.event_time)})"
    )
    movers = sorted(notice.breakdown.items(), key=lambda kv: -abs(kv[1]))
    why = ", ".join(f"{signal} {value:+.1f}" for signal, value in movers if value) or "—"
    lines = [head, f"  why: {why}"]
    for item in notice.evidence:
        signals = ", ".join(item.signals)
        lines.append(f"  • {item.published:%Y-%m-%d} {item.headline} — {item.source} [{signals}]")
        if item.link:
            lines.append(f"    {item.link}")
    lines.append(f"  notice {notice.notice_id}")
    return "\n".join(lines)
