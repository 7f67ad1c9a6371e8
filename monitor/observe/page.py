"""The dashboard page: HTML, CSS and a little JavaScript, all inline.

Nothing is loaded from elsewhere (no CDN: an operator's browser may have no
internet). The script asks /api/snapshot every __REFRESH_MS__ ms and redraws;
the chart is an SVG it draws itself. Text from the topics is set with
textContent, never as HTML, so a headline cannot inject markup.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Baku–Moscow tension monitor</title>
<style>
  :root { --calm: #2e7d32; --elevated: #f9a825; --high: #ef6c00; --severe: #c62828;
          --ink: #1d232b; --muted: #5f6b7a; --line: #dde2e8; --bg: #f5f7fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--ink);
         background: var(--bg); }
  header { display: flex; align-items: center; gap: 16px; padding: 14px 24px;
           background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; flex: 1; }
  .badge { padding: 4px 12px; border-radius: 14px; color: #fff; font-weight: 600;
           text-transform: uppercase; letter-spacing: .04em; }
  .calm { background: var(--calm); } .elevated { background: var(--elevated); color: #222; }
  .high { background: var(--high); } .severe { background: var(--severe); }
  .unknown { background: var(--muted); }
  main { display: grid; grid-template-columns: 3fr 2fr; gap: 16px; padding: 16px 24px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
            padding: 12px 16px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted);
       margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line);
           vertical-align: top; }
  th { color: var(--muted); font-weight: 500; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .stale { color: var(--severe); font-weight: 600; }
  .fine { color: var(--calm); }
  .notice { border-left: 4px solid var(--line); padding: 4px 10px; margin-bottom: 10px; }
  .notice.calm, .notice.elevated, .notice.high, .notice.severe { background: none; color: inherit; }
  .notice.calm { border-color: var(--calm); } .notice.elevated { border-color: var(--elevated); }
  .notice.high { border-color: var(--high); } .notice.severe { border-color: var(--severe); }
  .notice .head { font-weight: 600; }
  .notice ul { margin: 4px 0 0; padding-left: 18px; }
  .muted { color: var(--muted); }
  #attention { margin: 0; padding-left: 18px; color: var(--severe); }
  #attention.ok { color: var(--calm); list-style: none; padding-left: 0; }
  svg text { font-size: 11px; fill: var(--muted); }
  a { color: #1565c0; }
</style>
</head>
<body>
<header>
  <h1>Baku–Moscow tension monitor</h1>
  <span id="index" class="muted"></span>
  <span id="level" class="badge unknown">…</span>
  <span id="updated" class="muted"></span>
</header>
<main>
  <section class="wide">
    <h2>Tension index and levels over time</h2>
    <svg id="chart" width="100%" height="260" role="img"
         aria-label="tension index over time"></svg>
  </section>
  <section>
    <h2>Latest notices</h2>
    <div id="notices"><p class="muted">No notice yet.</p></div>
  </section>
  <section>
    <h2>Needs attention</h2>
    <ul id="attention"></ul>
    <h2 style="margin-top:14px">Feeds</h2>
    <table><thead><tr><th>feed</th><th>last success</th><th class="num">errors</th>
      <th>state</th></tr></thead><tbody id="feeds"></tbody></table>
    <h2 style="margin-top:14px">Streams</h2>
    <table><thead><tr><th>topic</th><th class="num">records</th><th class="num">per min</th>
      </tr></thead><tbody id="streams"></tbody></table>
    <h2 style="margin-top:14px">Consumer lag</h2>
    <table><tbody id="lag"></tbody></table>
    <p id="deadletters" class="muted"></p>
    <p id="skipped" class="muted"></p>
  </section>
</main>
<script>
"use strict";
const REFRESH_MS = __REFRESH_MS__;
const COLORS = {calm: "#2e7d32", elevated: "#f9a825", high: "#ef6c00", severe: "#c62828"};
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                      : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}
function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 16) + " UTC" : "never";
}
function ago(iso, now) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.parse(now) - Date.parse(iso)) / 1000);
  if (s < 120) return Math.round(s) + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}

function drawChart(svg, timeline, thresholds) {
  svg.replaceChildren();
  const width = svg.clientWidth || 900, height = 260, left = 40, right = 12, top = 10;
  const bottom = 24, plotW = width - left - right, plotH = height - top - bottom;
  if (!timeline.length) {
    svg.append(el("svg:text", {x: left, y: height / 2}, "No tension state yet."));
    return;
  }
  const times = timeline.map(p => Date.parse(p.t));
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 3600e3);
  const top_ = Math.max(...timeline.map(p => p.index), (thresholds.high || 8) * 1.15);
  const x = t => left + (t - t0) / (t1 - t0) * plotW;
  const y = v => top + plotH - v / top_ * plotH;
  for (const [level, value] of Object.entries(thresholds)) {
    svg.append(el("svg:line", {x1: left, x2: width - right, y1: y(value), y2: y(value),
      stroke: COLORS[level], "stroke-dasharray": "4 4", "stroke-width": 1}));
    svg.append(el("svg:text", {x: left + 6, y: y(value) - 3}, level + " " + value));
  }
  svg.append(el("svg:line", {x1: left, x2: left, y1: top, y2: top + plotH, stroke: "#aab"}));
  svg.append(el("svg:line", {x1: left, x2: width - right, y1: top + plotH, y2: top + plotH,
    stroke: "#aab"}));
  for (let i = 0; i <= 4; i++) {
    const v = top_ * i / 4;
    svg.append(el("svg:text", {x: left - 6, y: y(v) + 4, "text-anchor": "end"}, v.toFixed(0)));
    const t = t0 + (t1 - t0) * i / 4;
    svg.append(el("svg:text", {x: x(t), y: height - 6, "text-anchor": "middle"},
      new Date(t).toISOString().slice(0, 10)));
  }
  // A step line: the index holds its value until the next state.
  let d = "";
  timeline.forEach((p, i) => {
    const px = x(times[i]), py = y(p.index);
    d += i === 0 ? `M${px},${py}` : `H${px}V${py}`;
  });
  svg.append(el("svg:path", {d: d, fill: "none", stroke: "#33414f", "stroke-width": 1.5}));
  timeline.forEach((p, i) => {
    const dot = el("svg:circle", {cx: x(times[i]), cy: y(p.index), r: 3.5,
      fill: COLORS[p.level] || "#888"});
    dot.append(el("svg:title", {}, `${when(p.t)}: ${p.level}, index ${p.index}`));
    svg.append(dot);
  });
}

function drawNotices(box, notices) {
  if (!notices.length) return;
  box.replaceChildren(...notices.map(n => {
    const div = el("div", {class: "notice " + n.level, "data-notice": n.notice_id});
    const arrow = {raised: "▲", lowered: "▼", burst: "◆"}[n.kind] || "•";
    div.append(el("div", {class: "head"},
      `${arrow} ${n.kind} ${n.dyad}: ${n.previous_level} → ${n.level}` +
      ` (index ${n.index.toFixed(1)})`));
    div.append(el("div", {class: "muted"}, when(n.event_time) + " · " + n.notice_id));
    const list = el("ul");
    for (const e of n.evidence) {
      const li = el("li");
      if (e.link) li.append(el("a", {href: e.link, rel: "noopener"}, e.headline));
      else li.append(document.createTextNode(e.headline));
      li.append(el("span", {class: "muted"}, ` — ${e.source} [${e.signals.join(", ")}]`));
      list.append(li);
    }
    div.append(list);
    return div;
  }));
}

function draw(s) {
  const current = s.current[0];
  const badge = document.getElementById("level");
  badge.textContent = current ? current.level : "no state";
  badge.className = "badge " + (current ? current.level : "unknown");
  document.getElementById("index").textContent =
    current ? `${current.dyad} index ${current.index.toFixed(1)}` : "";
  document.getElementById("updated").textContent = "updated " + when(s.generated_at);
  drawChart(document.getElementById("chart"), s.timeline, s.thresholds);
  drawNotices(document.getElementById("notices"), s.notices);
  const attention = document.getElementById("attention");
  attention.className = s.attention.length ? "" : "ok";
  attention.replaceChildren(...(s.attention.length ? s.attention : ["All is well."])
    .map(r => el("li", {}, r)));
  document.getElementById("feeds").replaceChildren(...s.feeds.map(f => {
    const tr = el("tr");
    tr.append(el("td", {title: f.feed_url}, f.source),
      el("td", {}, ago(f.last_success, s.generated_at)),
      el("td", {class: "num"}, String(f.errors)),
      el("td", {class: f.stale ? "stale" : "fine", title: f.last_error || ""},
        f.stale ? "stale" : f.last_status));
    return tr;
  }));
  document.getElementById("streams").replaceChildren(...s.streams.map(t => {
    const tr = el("tr");
    tr.append(el("td", {}, t.topic), el("td", {class: "num"}, String(t.records)),
      el("td", {class: "num"}, t.per_min.toFixed(1)));
    return tr;
  }));
  const lags = Object.entries(s.consumer_lag);
  document.getElementById("lag").replaceChildren(...(lags.length ? lags.map(([g, l]) => {
    const tr = el("tr");
    tr.append(el("td", {}, g), el("td", {class: "num"}, String(l.total)));
    return tr;
  }) : [el("tr", {}, "no consumer group yet")]));
  const dl = s.dead_letters;
  document.getElementById("deadletters").textContent =
    `Dead letters: ${dl.total} (${dl.recent} recent)` +
    (Object.keys(dl.by_reason).length ? " — " + Object.entries(dl.by_reason)
      .map(([r, n]) => `${r} ×${n}`).join(", ") : "");
  const sk = s.skipped;
  document.getElementById("skipped").textContent = sk.total ?
    `Records skipped (unreadable here): ${sk.total} — ` + Object.entries(sk.by_reason)
      .map(([r, n]) => `${r} ×${n}`).join(", ") : "";
}

async function refresh() {
  try {
    const response = await fetch("api/snapshot", {cache: "no-store"});
    if (response.ok) draw(await response.json());
  } catch (error) {
    document.getElementById("updated").textContent = "cannot reach the server: " + error;
  }
  setTimeout(refresh, REFRESH_MS);
}
refresh();
</script>
</body>
</html>
"""
