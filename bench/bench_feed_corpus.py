"""One `monitor collect --once` over the real-world feed corpus, as a new user would run it.

    .venv/bin/python bench/bench_feed_corpus.py [--details] [--against REV] [--rounds 2]

Every file of tests/data/feeds-real is served over local HTTP with the
Content-Type its extension suggests, a catalogue lists them all, and one
`monitor collect --once` runs in a child process against an embedded broker
this script starts. Then news.items and feeds.health are read back and set
against a reference reader (feedparser for XML, plain `json` for JSON Feed):

- entries found (distinct) against items published;
- feeds failed, split into "not a feed" (the reference finds no feed either)
  and "good feed failed", with the errors grouped;
- the wall time of the child process and its peak resident memory.

With `--against REV`, the same run is made with the collector's code as of git
revision REV (its `monitor` and `schemas`, put in a temporary folder and
imported instead of the installed ones), alternating with the current code for
`--rounds` rounds each, so that the two are measured side by side on the same
noisy machine; the counts are reported for both, the time as the best round.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the corpus and its file server live with the tests

from monitor.broker import EmbeddedBroker  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.kafka import read_topic  # noqa: E402
from monitor.topics import FEEDS_HEALTH, NEWS_ITEMS, ensure_topics  # noqa: E402
from schemas import FeedPolled, ItemCollected, decode, decode_news_item  # noqa: E402
from tests.feed_server import serve_files  # noqa: E402
from tests.feeds_corpus import (  # noqa: E402
    FEEDS_REAL,
    Reference,
    catalogue_toml,
    content_type_of,
    corpus_files,
    references,
)

# Where an error names a file, line or position, the class of error is what counts.
_DETAIL = re.compile(r"(line|column|position|char) \d+|\d+")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mib: float
    exit_code: int
    output: str
    polls: dict[str, FeedPolled]
    published: Counter[str]


# The child runs `monitor.cli` from `root` when given (the installed package's import
# hook removed, so that the older code is what runs), and writes its own peak
# resident set size on exit: the broker and the file server are not counted.
_CHILD = """
import atexit, resource, runpy, sys
out, root = sys.argv.pop(1), sys.argv.pop(1)
if root:
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
    sys.path.insert(0, root)
def peak():
    with open(out, "w") as f:
        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
atexit.register(peak)
sys.argv[0] = "monitor"
runpy.run_module("monitor.cli", run_name="__main__")
"""


async def collect_once(urls: list[str], workdir: Path, code: Path | None = None) -> Run:
    catalogue = workdir / "feeds.toml"
    catalogue.write_text(catalogue_toml(urls), encoding="utf-8")
    peak_file = workdir / "peak-rss-kib"
    async with EmbeddedBroker() as broker:
        settings = Settings(bootstrap=broker.bootstrap)
        await ensure_topics(settings)
        started = time.perf_counter()
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, str(peak_file), str(code or ""),
            "collect", "--once", "--feeds", str(catalogue), "--bootstrap", broker.bootstrap,
            "--allow-network", "127.0.0.1/32",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await child.communicate()
        seconds = time.perf_counter() - started
        polls = {poll.feed_url: poll async for poll in _decoded_polls(settings)}
        published: Counter[str] = Counter()
        async for record in read_topic(settings, NEWS_ITEMS):
            item = decode_news_item(record.value)
            if isinstance(item, ItemCollected):
                published[item.feed_url] += 1
    peak_kib = int(peak_file.read_text()) if peak_file.exists() else 0
    return Run(seconds, peak_kib / 1024, child.returncode or 0, output.decode(), polls, published)


def checkout(revision: str, into: Path) -> Path:
    """The collector's code (monitor, schemas) as of `revision`, in `into`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "monitor", "schemas"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


async def _decoded_polls(settings: Settings) -> AsyncIterator[FeedPolled]:
    async for record in read_topic(settings, FEEDS_HEALTH):
        try:
            yield decode(FeedPolled, record.value)
        except ValueError:
            continue  # a FeedStale


def report(refs: dict[Path, Reference], urls: dict[Path, str], run: Run, details: bool) -> None:
    feeds = [path for path, ref in refs.items() if ref.is_feed]
    found = sum(ref.distinct_entries for ref in refs.values())
    without_text = sum(ref.without_text for ref in refs.values())
    published = sum(run.published.values())
    failed = {path: run.polls[urls[path]] for path in refs if run.polls[urls[path]].error}
    good_failed = {path: poll for path, poll in failed.items() if refs[path].is_feed}
    json_feeds = [path for path in feeds if refs[path].kind == "json-feed"]
    short = {
        path: (refs[path].distinct_entries - refs[path].without_text, run.published[urls[path]])
        for path in feeds
        if run.published[urls[path]] < refs[path].distinct_entries - refs[path].without_text
    }
    print(f"corpus: {len(refs)} files in {FEEDS_REAL.relative_to(REPO)}")
    print(f"  feeds (reference reader): {len(feeds)}, of which JSON Feed {len(json_feeds)}")
    print(f"  entries found (distinct): {found}, of which {without_text} without any text")
    print(
        f"collect --once: exit {run.exit_code}, {run.seconds:.1f} s,"
        f" peak RSS {run.peak_rss_mib:.0f} MiB"
    )
    print(f"  items published: {published} of {found} entries found")
    print(
        f"  feeds failed: {len(failed)}: not a feed {len(failed) - len(good_failed)},"
        f" good feed failed {len(good_failed)}"
    )
    print(f"  feeds publishing fewer items than their entries with text: {len(short)}")
    reasons = Counter(_DETAIL.sub("N", poll.error or "")[:90] for poll in failed.values())
    print("  errors:")
    for reason, count in reasons.most_common():
        print(f"    {count:4d}  {reason}")
    warned = Counter(
        _DETAIL.sub("N", poll.parse_warning or "")[:90]
        for poll in run.polls.values()
        if poll.parse_warning and not poll.error
    )
    print(f"  parse warnings on {sum(warned.values())} feeds read:")
    for reason, count in warned.most_common(12):
        print(f"    {count:4d}  {reason}")
    if details:
        for title, group in (
            ("good feeds failed:", good_failed),
            ("not feeds, failed:", {p: poll for p, poll in failed.items() if p not in good_failed}),
        ):
            print(title)
            for path, poll in sorted(group.items()):
                print(f"  {path.relative_to(FEEDS_REAL)}: {poll.error}")
        print("feeds publishing fewer items than their entries with text (expected, published):")
        for path, (expected, got) in sorted(short.items()):
            warning = run.polls[urls[path]].parse_warning
            print(f"  {path.relative_to(FEEDS_REAL)}: {expected}, {got}  [{warning}]")
    if run.exit_code:
        print(run.output[-2000:])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true", help="list the feeds behind each count")
    parser.add_argument("--against", metavar="REV", help="also run the code of git revision REV")
    parser.add_argument("--rounds", type=int, default=2, help="rounds each, with --against")
    args = parser.parse_args()
    files = corpus_files()
    refs = references(files)
    with tempfile.TemporaryDirectory() as workdir:
        contestants: dict[str, Path | None] = {"current code": None}
        if args.against:
            baseline = checkout(args.against, Path(workdir) / "baseline")
            contestants = {f"at {args.against}": baseline, **contestants}
        rounds = args.rounds if args.against else 1
        runs: dict[str, list[Run]] = {name: [] for name in contestants}
        async with serve_files(FEEDS_REAL, files, content_type_of) as base:
            urls = {path: f"{base}/{path.relative_to(FEEDS_REAL).as_posix()}" for path in files}
            for _ in range(rounds):
                for name, code in contestants.items():
                    runs[name].append(await collect_once(list(urls.values()), Path(workdir), code))
    for name, measured in runs.items():
        print(f"== {name}")
        best = min(measured, key=lambda run: run.seconds)
        report(refs, urls, best, args.details)
    if args.against:
        (before, *_), (after, *_) = (
            sorted(measured, key=lambda run: run.seconds) for measured in runs.values()
        )
        print(
            f"time ratio current / baseline: {after.seconds / before.seconds:.2f}"
            f" (best of {rounds} rounds each), peak RSS ratio:"
            f" {after.peak_rss_mib / before.peak_rss_mib:.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
