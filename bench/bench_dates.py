"""What reading dates in other languages costs: dateparser behind feedparser's fast path.

    .venv/bin/python bench/bench_dates.py [--rounds 3]

Side by side in one run (best of alternating rounds), per date:

- feedparser's own reading of an RFC 822 date (the fast path every feed takes);
- `localised_date` on dates in Portuguese, French, Russian, German, Turkish and
  Azerbaijani, uncached: with the feed's language known (the catalogue's
  `lang`, the feed's <language> or xml:lang), and without (the fallback list);
- the same, cached: a feed serves the same dates poll after poll;

then `parse_feed` on one 50-item feed dated in RFC 822 and the same feed dated
in Portuguese (first poll, then a re-poll), and in a fresh interpreter the
time and memory that importing dateparser and loading its languages take.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from feedparser.datetimes import _parse_date as feedparser_date

from monitor.collect import dates
from monitor.collect.catalogue import FeedSpec
from monitor.collect.parse import parse_feed

ROOT = Path(__file__).resolve().parents[1]
RFC822 = [f"Mon, {day:02d} Dec 2026 14:05:00 +0300" for day in range(1, 29)]
# (language, dates) as CMSs write them.
LOCALISED = {
    "pt": [f"Seg, {day:02d} Set 2018 19:32:00 -0300" for day in range(1, 29)],
    "fr": [f"mer, {day:02d} nov 2022" for day in range(1, 29)],
    "ru": [f"{day} декабря 2026 г. 14:05" for day in range(1, 29)],
    "de": [f"Mo, {day:02d} Dez 2026 14:05:00 +0100" for day in range(1, 29)],
    "tr": [f"{day:02d} Aralık 2026 14:05" for day in range(1, 29)],
    "az": [f"{day} dekabr 2026 14:05" for day in range(1, 29)],
}


def per_call(read: Callable[[str], object], texts: list[str], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for text in texts:
            read(text)
        best = min(best, (time.perf_counter() - started) / len(texts))
    return best


def uncached(text: str, languages: tuple[str, ...]) -> object:
    dates._read.cache_clear()
    return dates.localised_date(text, languages)


def feed(pub_dates: list[str], language: str = "") -> bytes:
    items = "".join(
        f"<item><guid>g{n}</guid><title>Item {n}</title><pubDate>{date}</pubDate></item>"
        for n, date in enumerate(pub_dates)
    )
    declared = f"<language>{language}</language>" if language else ""
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"{declared}{items}</channel></rss>"
    ).encode()


def import_cost() -> tuple[float, float, float]:
    script = (
        "import re, time\n"
        "def rss():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmRSS:\\s+(\\d+)', status).group(1))\n"
        "before = rss(); started = time.perf_counter()\n"
        "from monitor.collect.dates import localised_date, FALLBACK_LANGUAGES\n"
        "import dateparser.date\n"
        "imported = time.perf_counter() - started\n"
        "localised_date('Seg, 24 Set 2018 19:32:00 -0300')\n"
        "print(imported, time.perf_counter() - started, (rss() - before) / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    imported, first, megabytes = import_cost()
    print("fresh interpreter:")
    print(f"  import dateparser                 {imported * 1000:8.0f} ms")
    print(f"  + first date (all languages)      {first * 1000:8.0f} ms   +{megabytes:.0f} MB")

    every_language = [text for texts in LOCALISED.values() for text in texts]
    dates.localised_date(every_language[0])  # languages loaded once, outside the timing
    fast = per_call(feedparser_date, RFC822, args.rounds)
    print("\nper date (best of rounds):")
    print(f"  feedparser, RFC 822               {fast * 1e6:10.1f} µs      1×")
    rows = []
    for lang, texts in LOCALISED.items():
        known = per_call(lambda text, lang=lang: uncached(text, (lang,)), texts, args.rounds)
        unknown = per_call(lambda text: uncached(text, ()), texts, args.rounds)
        rows.append((lang, known, unknown))
        print(
            f"  dateparser, {lang}: language known   {known * 1e6:10.1f} µs {known / fast:6.0f}×"
            f"   not known {unknown * 1e6:10.1f} µs {unknown / fast:6.0f}×"
        )
    for text in every_language:
        dates.localised_date(text)
    cached = per_call(dates.localised_date, every_language, args.rounds)
    print(f"  cached (a date seen before)       {cached * 1e6:10.1f} µs {cached / fast:6.1f}×")

    spec = FeedSpec(url="http://127.0.0.1/feed.xml", name="bench")
    now = datetime(2027, 1, 1, tzinfo=UTC)
    fifty = LOCALISED["pt"] + LOCALISED["pt"][:22]
    english, declared, undeclared = feed(RFC822 + RFC822[:22]), feed(fifty, "pt-BR"), feed(fifty)

    def first_poll(body: bytes) -> object:
        dates._read.cache_clear()
        return parse_feed(body, spec, now)

    def repoll(body: bytes) -> object:
        return parse_feed(body, spec, now)

    contestants = {
        "dated in RFC 822": (first_poll, english),
        "Portuguese, no <language>, first poll": (first_poll, undeclared),
        "Portuguese, <language>pt-BR, first poll": (first_poll, declared),
        # Right after the first poll of the same feed, whose dates are then cached.
        "Portuguese, re-poll (dates cached)": (repoll, declared),
    }
    best = dict.fromkeys(contestants, float("inf"))
    for _ in range(args.rounds):
        for label, (poll, body) in contestants.items():
            best[label] = min(best[label], per_call(poll, [body], 1))
    print("\nparse_feed, one feed of 50 items (alternating rounds):")
    for label, took in best.items():
        ratio = took / best["dated in RFC 822"]
        print(f"  {label:<40} {took * 1000:8.1f} ms {ratio:6.1f}×")


if __name__ == "__main__":
    main()
