"""The tension timeline as a self-contained HTML page (inline SVG, no scripts, no network).

The index over time as a line, the level as coloured bands behind it, each
notice as a marker with its reason on hover, and below, the notices with
their evidence and links, notices per month and the episodes.
"""

from __future__ import annotations

import html
import itertools
from datetime import datetime

from monitor.escalation.backtest import BacktestResult, TimelinePoint
from schemas import LEVELS, EscalationNotice

WIDTH, HEIGHT = 1100, 320
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 50, 20, 20, 40
LEVEL_COLOURS = {
    "calm": "#e8f3e8",
    "elevated": "#fff3c4",
    "high": "#ffd2a6",
    "severe": "#f7a8a8",
}
MARKERS = {"raised": "▲", "lowered": "▼", "burst": "◆"}


def _escape(text: object) -> str:
    return html.escape(str(text), quote=True)


class _Scale:
    def __init__(self, points: list[TimelinePoint], top: float) -> None:
        self.start = points[0].time
        self.span = max((points[-1].time - self.start).total_seconds(), 1.0)
        self.top = max(top, 1.0)

    def x(self, when: datetime) -> float:
        share = (when - self.start).total_seconds() / self.span
        return MARGIN_LEFT + share * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)

    def y(self, index: float) -> float:
        share = min(index, self.top) / self.top
        return HEIGHT - MARGIN_BOTTOM - share * (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)


def _bands(points: list[TimelinePoint], scale: _Scale) -> list[str]:
    bands = []
    for current, following in itertools.pairwise(points):
        x0, x1 = scale.x(current.time), scale.x(following.time)
        if x1 - x0 < 0.01:
            continue
        bands.append(
            f'<rect x="{x0:.1f}" y="{MARGIN_TOP}" width="{x1 - x0 + 0.5:.2f}" '
            f'height="{HEIGHT - MARGIN_TOP - MARGIN_BOTTOM}" '
            f'fill="{LEVEL_COLOURS[current.level]}"/>'
        )
    return bands


def _axis(scale: _Scale, thresholds: dict[str, float]) -> list[str]:
    parts = []
    for level, value in thresholds.items():
        y = scale.y(value)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#888" stroke-dasharray="4 4"/>'
            f'<text x="{WIDTH - MARGIN_RIGHT - 4}" y="{y - 3:.1f}" text-anchor="end" '
            f'class="small">{level} ≥ {value:g}</text>'
        )
    first_year = scale.start.year
    end = datetime.fromtimestamp(scale.start.timestamp() + scale.span, scale.start.tzinfo)
    for year in range(first_year, end.year + 1):
        for month in (1, 4, 7, 10):
            tick = scale.start.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
            if not scale.start <= tick <= end:
                continue
            x = scale.x(tick)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{HEIGHT - MARGIN_BOTTOM}" '
                f'y2="{HEIGHT - MARGIN_BOTTOM + 5}" stroke="#444"/>'
                f'<text x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 18}" text-anchor="middle" '
                f'class="small">{tick:%Y-%m}</text>'
            )
    return parts


def _marker(notice: EscalationNotice, scale: _Scale) -> str:
    why = notice.burst.signal if notice.burst else f"{notice.previous_level} → {notice.level}"
    lead = notice.evidence[0].headline if notice.evidence else ""
    tip = f"{notice.event_time:%Y-%m-%d %H:%M} {notice.kind} {why} (index {notice.index:.1f})"
    return (
        f'<text x="{scale.x(notice.event_time):.1f}" y="{scale.y(notice.index) - 6:.1f}" '
        f'text-anchor="middle" class="marker {notice.kind}">{MARKERS[notice.kind]}'
        f"<title>{_escape(tip)}\n{_escape(lead)}</title></text>"
    )


def render_svg(result: BacktestResult) -> str:
    points = list(result.timeline)
    if len(points) < 2:
        return "<p>Not enough items to draw a timeline.</p>"
    thresholds: dict[str, float] = {level: result.scoring.raise_at[level] for level in LEVELS[1:]}
    # Room above "severe", but one extreme spike must not flatten the rest: clip it.
    severe = thresholds["severe"]
    top = max(severe * 1.3, min(max(p.index for p in points), severe * 2.5))
    scale = _Scale(points, top)
    line = " ".join(f"{scale.x(p.time):.1f},{scale.y(p.index):.1f}" for p in points)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="Tension index over time" shape-rendering="crispEdges">',
        *_bands(points, scale),
        *_axis(scale, thresholds),
        f'<polyline points="{line}" fill="none" stroke="#1f3b73" stroke-width="1.5" '
        f'shape-rendering="geometricPrecision"/>',
        *(_marker(notice, scale) for notice in result.notices),
        "</svg>",
    ]
    return "\n".join(parts)


def _notice_rows(result: BacktestResult) -> str:
    rows = []
    for notice in result.notices:
        what = (
            f"burst of {notice.burst.signal}: {notice.burst.stories} stories from "
            f"{notice.burst.sources} sources (usual {notice.burst.baseline:.1f})"
            if notice.burst
            else f"{notice.previous_level} → {notice.level}"
        )
        evidence = "".join(
            f"<li>{e.published:%Y-%m-%d} "
            + (
                f'<a href="{_escape(e.link)}">{_escape(e.headline)}</a>'
                if e.link
                else _escape(e.headline)
            )
            + f" <span class='small'>— {_escape(', '.join(e.sources) or e.source)}"
            f" [{_escape(', '.join(e.signals))}] {e.contribution:+.1f}</span></li>"
            for e in notice.evidence
        )
        rows.append(
            f"<tr><td>{notice.event_time:%Y-%m-%d %H:%M}</td>"
            f"<td class='{notice.kind}'>{MARKERS[notice.kind]} {notice.kind}</td>"
            f"<td>{_escape(what)}</td><td>{notice.index:.1f}</td><td><ul>{evidence}</ul></td></tr>"
        )
    return "\n".join(rows)


def render_html(result: BacktestResult, title: str) -> str:
    months = "".join(
        f"<tr><td>{month}</td><td>{_escape(', '.join(f'{k} {n}' for k, n in sorted(c.items())))}"
        "</td></tr>"
        for month, c in result.notices_per_month().items()
    )
    episodes = "".join(
        f"<tr><td>{_escape(e.first_item)}</td><td>{e.first_item_time:%Y-%m-%d %H:%M}</td>"
        f"<td>{e.raised_at:%Y-%m-%d %H:%M}</td><td>{e.delay.total_seconds() / 3600:.1f} h</td>"
        f"<td>{e.peak}</td><td>{f'{e.calm_again_at:%Y-%m-%d}' if e.calm_again_at else '—'}</td>"
        "</tr>"
        for e in result.episodes()
    )
    legend = " ".join(
        f'<span class="swatch" style="background:{colour}"></span>{level}'
        for level, colour in LEVEL_COLOURS.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{_escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .3rem .6rem; vertical-align: top;
  text-align: left; }}
.small {{ font-size: 11px; color: #555; }}
.marker {{ font-size: 13px; cursor: default; }}
.raised {{ fill: #b3261e; color: #b3261e; }} .lowered {{ fill: #1e6b35; color: #1e6b35; }}
.burst {{ fill: #6a3fb5; color: #6a3fb5; }}
.swatch {{ display: inline-block; width: 1em; height: 1em; margin: 0 .3em 0 1em;
  vertical-align: middle; border: 1px solid #ccc; }}
svg {{ width: 100%; max-width: {WIDTH}px; height: auto; }}
ul {{ margin: 0; padding-left: 1.1rem; }}
</style></head><body>
<h1>{_escape(title)}</h1>
<p>{len(result.tagged)} items, {result.relevant} relevant, {len(result.notices)} notices.
Levels: {legend}</p>
{render_svg(result)}
<h2>Episodes</h2>
<table><tr><th>first escalatory item</th><th>at</th><th>notice</th><th>delay</th><th>peak</th>
<th>calm again</th></tr>{episodes}</table>
<h2>Notices per month</h2>
<table><tr><th>month</th><th>notices</th></tr>{months}</table>
<h2>Notices</h2>
<table><tr><th>event time</th><th>kind</th><th>what</th><th>index</th><th>top stories</th></tr>
{_notice_rows(result)}</table>
</body></html>
"""
