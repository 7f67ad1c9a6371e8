"""Throughput of the tagger against a plain `re` alternation over the same terms.

    .venv/bin/python bench/bench_tagger.py [--rounds 5] [--seconds 1.0] [--before DIR]

Items are the labelled corpus (tests/data/dev.jsonl: headlines and summaries in
en, ru, de, az and tr). The contestants run side by side in one process, in
alternating rounds, on one core; the best round of each is reported, since the
machine is shared and noisy. Rates are items per second of this process's CPU
time (time.process_time): time the scheduler gives to other processes on the
shared machine does not count, their use of the caches still does.

- `tag()`: the tagger the service runs, `monitor.tagging.tag`: compiled where it
  was built (Cython builds matcher.py and background.py themselves, and the
  text kernels of _text.pyx). The whole of it: normalise, detect the language,
  fold, one Aho–Corasick pass, exclusions, nearness, evidence objects, and the
  background step.
- `scan()`: the same without the background step (`monitor.tagging.scan`): the
  ratio is what telling news from background costs.
- `tag(lang=...)`: the same with the language declared, as the agent runs it
  (the feed catalogue names each feed's language), so none is detected.
- `pure tag()`: the same source files run as plain Python
  (`monitor.tagging.pure.pure_matcher()`), what runs where no compiler was at
  hand; the same results.
- `re alternation`: the same normalisation and folding, then ONE compiled
  regular expression with every term of every rule as an alternative, and
  `finditer` collecting the matches. It does strictly less than `tag()` (no
  rule attribution, no overlapping matches, no evidence), so the ratio is a
  floor.

Rule loading (read + check the TOML files) and the automaton build are timed
separately.

`--before DIR` measures another checkout of the project too (say, `git archive`
of an earlier commit, built with `setup.py build_ext --inplace`): its `tag()`,
`scan()` and `re` alternation run in a child process whose rounds alternate
with this one's, so both see the machine in the same state; each side's ratio
to its own `re` baseline is what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# Only what every version of the package has: `--before` runs this file against an
# older checkout too.
from monitor.tagging import COMPILED, detect_language, normalise_field, scan, tag
from monitor.tagging.rules import Rules, fold, load_rules, scan_form

CORPUS = Path(__file__).parents[1] / "tests" / "data" / "dev.jsonl"

Item = tuple[str, str]


def load_items(path: Path) -> tuple[list[Item], list[str]]:
    with path.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    items = [(record["title"], record.get("summary", "")) for record in records]
    return items, [record["lang"] for record in records]


def stretched(items: Sequence[Item], langs: Sequence[str], size: int) -> list[Item]:
    """Each item with its summary continued by the next summaries in its language, cut at
    the last word that keeps title + summary within `size` UTF-8 bytes: longer items in the
    same languages and the same mix, as feeds with fuller summaries send them."""
    stretched_items = []
    for position, ((title, summary), lang) in enumerate(zip(items, langs, strict=True)):
        others = [
            other_summary
            for (_, other_summary), other_lang in zip(
                [*items[position + 1 :], *items[:position]],
                [*langs[position + 1 :], *langs[:position]],
                strict=True,
            )
            if other_lang == lang
        ]
        words = " ".join([summary, *others]).split(" ")
        kept: list[str] = []
        budget = size - len(title.encode("utf-8"))
        for word in words:
            if len(" ".join([*kept, word]).encode("utf-8")) > budget:
                break
            kept.append(word)
        stretched_items.append((title, " ".join(kept) if kept else summary))
    return stretched_items


def build_alternation(rules: Rules) -> re.Pattern[str]:
    """One regex over every term; longest alternatives first so stems do not shadow phrases."""
    alternatives = sorted(
        {term.as_regex() for term in rules.all_terms()}, key=lambda regex: (-len(regex), regex)
    )
    return re.compile("|".join(alternatives))


def alternation_scan(items: Sequence[Item], pattern: re.Pattern[str]) -> int:
    found = 0
    for title, summary in items:
        title, summary = normalise_field(title), normalise_field(summary)
        lang = detect_language(title + " " + summary)
        for text in (title, summary):
            found += len([match.span() for match in pattern.finditer(scan_form(fold(text, lang)))])
    return found


def tag_all(items: Sequence[Item], rules: Rules) -> int:
    return sum(len(tag(title, summary, rules).evidence) for title, summary in items)


def scan_all(items: Sequence[Item], rules: Rules) -> int:
    return sum(len(scan(title, summary, rules).evidence) for title, summary in items)


def pure_tag_all(items: Sequence[Item], rules: Rules) -> int:
    from monitor.tagging.pure import pure_matcher

    pure_tag = pure_matcher().tag
    return sum(len(pure_tag(title, summary, rules).evidence) for title, summary in items)


def tag_all_declared(items: Sequence[Item], langs: Sequence[str], rules: Rules) -> int:
    """As the agent runs: the feed catalogue declares the language, so none is detected."""
    return sum(
        len(tag(title, summary, rules, lang=lang).evidence)
        for (title, summary), lang in zip(items, langs, strict=True)
    )


def items_per_second(run: Callable[[], object], count: int, seconds: float) -> float:
    """Repeat `run` for at least `seconds` of CPU time; items per CPU second."""
    repeats = 0
    started = time.process_time()
    while True:
        run()
        repeats += 1
        elapsed = time.process_time() - started
        if elapsed >= seconds:
            return repeats * count / elapsed


def child_rounds(args: argparse.Namespace) -> None:
    """The `--before` side: one round each time the parent sends a line; rates as JSON."""
    rules = load_rules()
    items, _ = load_items(args.corpus)
    alternation = build_alternation(rules)
    print(json.dumps({"compiled": COMPILED}), flush=True)
    for _ in sys.stdin:
        rates = {
            "tag": items_per_second(lambda: tag_all(items, rules), len(items), args.seconds),
            "scan": items_per_second(lambda: scan_all(items, rules), len(items), args.seconds),
            "re": items_per_second(
                lambda: alternation_scan(items, alternation), len(items), args.seconds
            ),
        }
        print(json.dumps(rates), flush=True)


def start_before(directory: Path, args: argparse.Namespace) -> subprocess.Popen[str]:
    """This file run against the checkout in `directory`, waiting for rounds."""
    command = [sys.executable, __file__, "--child", "--seconds", str(args.seconds)]
    command += ["--corpus", str(args.corpus)]
    environment = {**os.environ, "PYTHONPATH": str(directory.resolve()), "PYTHONSAFEPATH": "1"}
    child = subprocess.Popen(
        command,
        cwd=directory,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ready = json.loads(child.stdout.readline())
    print(f"--before {directory}: tag() is {'compiled' if ready['compiled'] else 'pure'}")
    return child


def before_round(child: subprocess.Popen[str]) -> dict[str, float]:
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("round\n")
    child.stdin.flush()
    rates: dict[str, float] = json.loads(child.stdout.readline())
    return rates


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per round per contestant")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--stretch",
        type=int,
        metavar="BYTES",
        help="continue each summary with others in its language up to about BYTES (e.g. 500)",
    )
    parser.add_argument(
        "--before", type=Path, metavar="DIR", help="another checkout, measured in the same run"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_rounds(args)
        return
    before = start_before(args.before, args) if args.before else None

    load_times = []
    for _ in range(5):
        started = time.perf_counter()
        rules = load_rules()
        load_times.append(time.perf_counter() - started)
    terms = sum(1 for _ in rules.all_terms())
    started = time.perf_counter()
    alternation = build_alternation(rules)
    compile_time = time.perf_counter() - started

    items, langs = load_items(args.corpus)
    if args.stretch:
        items = stretched(items, langs, args.stretch)
    utf8_bytes = statistics.mean(len((t + s).encode("utf-8")) for t, s in items)
    chars = statistics.mean(len(t + s) for t, s in items)
    print(f"python {sys.version.split()[0]}, rules {rules.version}, {terms} terms")
    print(f"tag() is the {'compiled' if COMPILED else 'pure-Python (extension not built)'} tagger")
    load_ms = statistics.median(load_times) * 1e3
    print(f"load_rules (read, check, build automaton): median {load_ms:.1f} ms")
    print(f"re alternation compile: {compile_time * 1e3:.1f} ms")
    print(
        f"items: {len(items)} from {args.corpus.name}"
        f"{f', stretched to {args.stretch} bytes' if args.stretch else ''}, "
        f"mean {chars:.0f} chars / {utf8_bytes:.0f} UTF-8 bytes (title + summary)"
    )

    tagger_rates, scan_rates, declared_rates, pure_rates, regex_rates = [], [], [], [], []
    before_rates: list[dict[str, float]] = []
    for round_number in range(1, args.rounds + 1):
        if before is not None:
            before_rates.append(before_round(before))
            print(
                f"  round {round_number}, before: tag() {before_rates[-1]['tag']:>8,.0f} items/s"
                f"   scan() {before_rates[-1]['scan']:>8,.0f} items/s"
                f"   re alternation {before_rates[-1]['re']:>5,.0f} items/s"
            )
        tagger_rates.append(
            items_per_second(lambda: tag_all(items, rules), len(items), args.seconds)
        )
        scan_rates.append(
            items_per_second(lambda: scan_all(items, rules), len(items), args.seconds)
        )
        declared_rates.append(
            items_per_second(
                lambda: tag_all_declared(items, langs, rules), len(items), args.seconds
            )
        )
        pure_rates.append(
            items_per_second(lambda: pure_tag_all(items, rules), len(items), args.seconds)
        )
        regex_rates.append(
            items_per_second(lambda: alternation_scan(items, alternation), len(items), args.seconds)
        )
        print(
            f"  round {round_number}: tag() {tagger_rates[-1]:>8,.0f} items/s"
            f"   scan() {scan_rates[-1]:>8,.0f} items/s"
            f"   tag(lang=...) {declared_rates[-1]:>8,.0f} items/s"
            f"   pure tag() {pure_rates[-1]:>8,.0f} items/s"
            f"   re alternation {regex_rates[-1]:>5,.0f} items/s"
        )
    best_tagger, best_regex = max(tagger_rates), max(regex_rates)
    print(f"tag()            best {best_tagger:>10,.0f} items/s ({1e6 / best_tagger:.1f} µs/item)")
    best_scan = max(scan_rates)
    print(f"scan()           best {best_scan:>10,.0f} items/s ({1e6 / best_scan:.1f} µs/item)")
    best_declared = max(declared_rates)
    print(
        f"tag(lang=...)    best {best_declared:>10,.0f} items/s ({1e6 / best_declared:.1f} µs/item)"
    )
    best_pure = max(pure_rates)
    print(f"pure tag()       best {best_pure:>10,.0f} items/s ({1e6 / best_pure:.1f} µs/item)")
    print(f"re alternation   best {best_regex:>10,.0f} items/s ({1e6 / best_regex:.1f} µs/item)")
    print(f"ratio tag() / re alternation: {best_tagger / best_regex:,.1f}x")
    print(f"ratio tag() / pure tag(): {best_tagger / best_pure:,.1f}x")
    print(f"ratio scan() / tag(): {best_scan / best_tagger:,.2f}x (the background step's cost)")
    if before is not None:
        assert before.stdin is not None
        before.stdin.close()
        before.wait()
        old = {name: max(rates[name] for rates in before_rates) for name in ("tag", "scan", "re")}
        print(
            f"before: tag() best {old['tag']:,.0f} items/s, scan() {old['scan']:,.0f},"
            f" re alternation {old['re']:,.0f}"
        )
        print(
            f"ratio to its own re alternation: tag() now {best_tagger / best_regex:,.0f}x,"
            f" before {old['tag'] / old['re']:,.0f}x; scan() now {best_scan / best_regex:,.0f}x,"
            f" before {old['scan'] / old['re']:,.0f}x"
        )
        print(
            f"now / before, same run: tag() {best_tagger / old['tag']:.2f}x,"
            f" scan() {best_scan / old['scan']:.2f}x"
        )


if __name__ == "__main__":
    main()
