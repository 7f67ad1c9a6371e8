"""`monitor status`: the health report as a few lines for a terminal."""

from __future__ import annotations

from datetime import datetime

from monitor.observe.health import HealthReport

# Exit codes, for scripts and cron: 0 all is well, 1 something needs attention,
# 2 the check itself could not be made (no broker answered).
EXIT_OK = 0
EXIT_ATTENTION = 1
EXIT_UNAVAILABLE = 2


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def format_status(report: HealthReport) -> str:
    now = report.checked_at
    lines = []
    if report.states:
        for state in report.states:
            lines.append(
                f"level          {state.dyad} {state.level.upper()}, index {state.index:.1f}"
                f" (as of {state.as_of:%Y-%m-%d %H:%M} UTC)"
            )
    else:
        lines.append("level          no tension state yet")
    if report.lags:
        for lag in report.lags:
            detail = ", ".join(f"{topic} {n}" for topic, n in lag.by_topic.items())
            lines.append(f"consumer lag   {lag.group}: {lag.total}  ({detail})")
    else:
        lines.append("consumer lag   no consumer group has committed offsets")
    stale = [feed for feed in report.feeds if feed.stale]
    failing = [feed for feed in report.feeds if feed.last_status == "error"]
    lines.append(
        f"feeds          {len(report.feeds)} polled, {len(failing)} failing, {len(stale)} stale"
    )
    for feed in stale:
        why = f"; last error: {feed.last_error}" if feed.last_error else ""
        if feed.silent_since is not None:
            why += f"; nothing new since {feed.silent_since:%Y-%m-%d %H:%M} UTC"
        lines.append(
            f"  stale        {feed.source}: last success {_ago(feed.last_success, now)},"
            f" {feed.consecutive_errors} error(s) in a row{why}"
        )
    broker = report.broker
    if broker is not None:
        resets = f", {len(broker.resets)} reset(s) seen" if broker.resets else ""
        since = broker.since[:16].replace("T", " ")
        lines.append(f"broker         cluster {broker.cluster_id} since {since} UTC{resets}")
    letters = report.dead_letters
    reasons = ", ".join(f"{reason} ×{n}" for reason, n in letters.by_reason.items())
    lines.append(
        f"dead letters   {letters.total} ({letters.recent} recent)"
        + (f": {reasons}" if reasons else "")
    )
    skipped = sum(report.skipped.values())
    why = ", ".join(f"{reason} ×{n}" for reason, n in report.skipped.items())
    lines.append(
        f"skipped        {skipped} record(s) it could not use" + (f": {why}" if why else "")
    )
    attention = report.attention()
    if attention:
        lines.append("NEEDS ATTENTION")
        lines.extend(f"  - {reason}" for reason in attention)
    else:
        lines.append("OK")
    return "\n".join(lines)
