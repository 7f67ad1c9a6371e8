"""HTML → plain text for feed fields: the collector's choice against the alternatives.

    .venv/bin/python bench/bench_html_text.py [--rounds 5]

Every contestant turns an HTML fragment into the text a reader sees, followed
by the same whitespace collapse. Side by side in one run (alternating rounds,
best of each), in fragments per second and as a ratio to the stdlib loop the
collector used before:

- `stdlib html.parser (before)`: the hand-written loop over `html.parser` that
  `monitor/collect/parse.py` had, re-parsing text that still looked like markup;
- `resiliparse` (lexbor): `extract_plain_text`, what `monitor/collect/text.py`
  uses (`html_text`); `feed_text` is the whole path (the extraction plus the
  escaped-twice handling);
- `selectolax` (lexbor): its parser, script/style removed, spaces put around
  block elements by hand (it has no notion of block and inline);
- `html-text` (lxml and lxml_html_clean), `inscriptis` (lxml);
- `nh3` (ammonia, Rust) with no tag allowed, then `html.unescape`: a sanitiser,
  not an extractor (words in adjacent blocks run together), as a speed reference.

Contestants that are not installed are reported as such; the comparison ones
are not dependencies of the project: `pip install selectolax html-text
inscriptis nh3` to run them all.

Workloads: every title, summary and content value feedparser gives for the
files of `tests/data/feedparser-tests` (short, odd, hostile fragments); news
summaries as WordPress serves them (the 240 texts of `tests/data/dev.jsonl`
with an image, a link and entities, ~0.5 kB); and whole articles in
`content:encoded` (~5 kB each). A correctness table gives each contestant's
answer to the cases that matter (block and inline elements, hidden content,
entities, escaped text). Last, the cost of importing each one (time and peak
memory of a fresh interpreter that imports it and converts one fragment).
"""

from __future__ import annotations

import argparse
import html
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import feedparser

from monitor.collect.text import feed_text, html_text

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "feedparser-tests"
NEWS = ROOT / "tests" / "data" / "dev.jsonl"

Convert = Callable[[str], str]


# --- the code before: monitor/collect/parse.py's html_to_text as it was ------------
_BREAKING_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "img", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_HIDDEN_TAGS = frozenset({"script", "style", "template", "noscript", "iframe", "object"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        elif tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def _looks_like_markup(text: str) -> bool:
    start = text.find("<")
    while start != -1 and start + 1 < len(text):
        if text[start + 1].isalpha() or text[start + 1] in "/!?":
            return True
        start = text.find("<", start + 1)
    return False


_CONTROLS_TO_SPACE = {code: " " for code in [*range(0x20), *range(0x7F, 0xA0)]}


def stdlib_before(fragment: str) -> str:
    text = fragment
    for _ in range(3):
        extractor = _TextExtractor()
        try:
            extractor.feed(text)
            extractor.close()
        except AssertionError:
            text = text.replace("<", " ").replace(">", " ")
            break
        text = "".join(extractor.parts)
        if not _looks_like_markup(text):
            break
    else:
        text = text.replace("<", " ").replace(">", " ")
    return " ".join(text.translate(_CONTROLS_TO_SPACE).split())


# --- the alternatives -----------------------------------------------------------------
_BLOCKS = ",".join(sorted(_BREAKING_TAGS))
_HIDDEN = sorted(_HIDDEN_TAGS)


def selectolax_text(fragment: str) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(fragment)
    tree.strip_tags(_HIDDEN)
    for node in tree.css(_BLOCKS):
        node.insert_before(" ")
        node.insert_after(" ")
    return tree.text()


def html_text_lib(fragment: str) -> str:
    import html_text as html_text_package

    return str(html_text_package.extract_text(fragment, guess_layout=False))


def inscriptis_text(fragment: str) -> str:
    import inscriptis

    return str(inscriptis.get_text(fragment)) if fragment.strip() else ""


def nh3_text(fragment: str) -> str:
    import nh3

    return html.unescape(nh3.clean(fragment, tags=set(), clean_content_tags=set(_HIDDEN)))


CONTESTANTS: dict[str, tuple[str, Convert]] = {
    "stdlib html.parser (before)": ("html.parser", stdlib_before),
    "resiliparse: html_text": ("resiliparse", html_text),
    "resiliparse + escapes: feed_text": ("resiliparse", feed_text),
    "selectolax (lexbor)": ("selectolax", selectolax_text),
    "html-text (lxml)": ("html_text", html_text_lib),
    "inscriptis (lxml)": ("inscriptis", inscriptis_text),
    "nh3 + html.unescape": ("nh3", nh3_text),
}

# Input, what the collector needs from it (after the whitespace collapse).
CASES: list[tuple[str, str]] = [
    ("B<b>ak</b>u <a href='/x'>news</a>", "Baku news"),
    ("<p>one</p><p>two</p>a<br>b<ul><li>c</li><li>d</li></ul>", "one two a b c d"),
    ("a<script>evil()</script><style>p{}</style><iframe>i</iframe><template>t</template>b", "ab"),
    ("x &#8212; &amp; &laquo;y&raquo;&nbsp;z", "x — & «y» z"),
    ("the &lt;title&gt; tag, &lt;nick&gt; hello", "the <title> tag, <nick> hello"),
    ("5 &lt; 6 and 7 > 3", "5 < 6 and 7 > 3"),
    ("Baku <![foo[ x ]]> Moscow", "Baku Moscow"),
    ("<img src=x alt='photo'>caption", "caption"),
]


def collapse(text: str) -> str:
    return " ".join(text.split())


def corpus_fragments() -> list[str]:
    fragments = []
    for path in sorted(CORPUS.rglob("*.xml")):
        document = feedparser.parse(io.BytesIO(path.read_bytes()), sanitize_html=True)
        for entry in document.entries:
            for key in ("title", "summary"):
                if isinstance(entry.get(key), str):
                    fragments.append(entry[key])
            for content in entry.get("content") or ():
                if isinstance(content.get("value"), str):
                    fragments.append(content["value"])
    return fragments


def news_fragments() -> list[str]:
    rows = [json.loads(line) for line in NEWS.read_text(encoding="utf-8").splitlines()]
    return [
        f'<p><img src="https://outlet.example/{n}.jpg" alt="" width="300" /></p>'
        f"<p>&#8220;{html.escape(row['summary'])}&#8221;&nbsp;<a href='https://outlet.example/{n}'>"
        f"Read more&hellip;</a></p>"
        for n, row in enumerate(rows)
    ]


def article_fragments(news: list[str]) -> list[str]:
    articles = []
    for start in range(0, len(news), 6):
        paragraphs = "".join(news[start : start + 10])
        articles.append(
            f"<div class='entry'><h2>Report {start}</h2>{paragraphs}"
            "<figure><img src='https://outlet.example/a.jpg'><figcaption>Baku, <em>today</em>"
            "</figcaption></figure><ul><li>one</li><li>two</li></ul>"
            "<script>window.ads = 1;</script><blockquote>Quoted &mdash; words</blockquote></div>"
        )
    return articles


def rate(convert: Convert, fragments: list[str], at_least_s: float = 0.25) -> float:
    """Fragments per second, over whole passes for at least `at_least_s`."""
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < at_least_s:
        for fragment in fragments:
            collapse(convert(fragment))
        done += len(fragments)
    return done / elapsed


def available(contestants: dict[str, tuple[str, Convert]]) -> dict[str, Convert]:
    usable = {}
    for name, (module, convert) in contestants.items():
        try:
            convert("<p>x</p>")
        except ImportError:
            print(f"  {name}: not installed (pip install {module.replace('_', '-')})")
            continue
        usable[name] = convert
    return usable


def import_cost(call: str) -> tuple[float, float]:
    """Seconds to import and convert once in a fresh interpreter, and the memory it adds (MB)."""
    script = (
        "import re, time\n"
        "def rss():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmRSS:\\s+(\\d+)', status).group(1))\n"
        "before = rss()\n"
        "started = time.perf_counter()\n"
        f"{call}\n"
        "took = time.perf_counter() - started\n"
        "print(took, rss() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    return float(out[0]), float(out[1]) / 1024


IMPORTS = {
    "stdlib html.parser (before)": (
        "import html.parser; p = html.parser.HTMLParser(); p.feed('<p>x</p>'); p.close()"
    ),
    "resiliparse: html_text": (
        "from resiliparse.extract.html2text import extract_plain_text as f; f('<p>x</p>')"
    ),
    "selectolax (lexbor)": (
        "from selectolax.lexbor import LexborHTMLParser as P; P('<p>x</p>').text()"
    ),
    "html-text (lxml)": "import html_text; html_text.extract_text('<p>x</p>')",
    "inscriptis (lxml)": "import inscriptis; inscriptis.get_text('<p>x</p>')",
    "nh3 + html.unescape": "import nh3; nh3.clean('<p>x</p>', tags=set())",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    contestants = available(CONTESTANTS)
    news = news_fragments()
    workloads = {
        "feedparser corpus": corpus_fragments(),
        "news summaries": news,
        "articles": article_fragments(news),
    }
    for label, fragments in workloads.items():
        size = sum(len(fragment) for fragment in fragments) / len(fragments)
        print(f"\n{label}: {len(fragments)} fragments, mean {size:,.0f} chars")
        best = dict.fromkeys(contestants, 0.0)
        for _ in range(args.rounds):
            for name, convert in contestants.items():
                best[name] = max(best[name], rate(convert, fragments))
        baseline = best.get("stdlib html.parser (before)")
        for name, per_second in best.items():
            ratio = f"{per_second / baseline:6.2f}×" if baseline else ""
            print(f"  {name:<34} {per_second:11,.0f} fragments/s  {ratio}")

    print("\ncorrectness: each contestant's answer (✓ when it is what the collector needs)")
    for fragment, wanted in CASES:
        print(f"  {fragment!r} → {wanted!r}")
        for name, convert in contestants.items():
            got = collapse(convert(fragment))
            print(f"    {'✓' if got == wanted else '✗'} {name:<34} {got!r}")
    print(f"\nscore (cases right of {len(CASES)}):")
    for name, convert in contestants.items():
        right = sum(collapse(convert(fragment)) == wanted for fragment, wanted in CASES)
        print(f"  {name:<34} {right}")

    print("\nimport + first conversion, fresh interpreter (best of 3):")
    for name, call in IMPORTS.items():
        if name not in contestants:
            continue
        costs = [import_cost(call) for _ in range(3)]
        seconds = min(cost[0] for cost in costs)
        megabytes = min(cost[1] for cost in costs)
        print(f"  {name:<34} {seconds * 1000:7.1f} ms  +{megabytes:5.1f} MB resident")


if __name__ == "__main__":
    main()
