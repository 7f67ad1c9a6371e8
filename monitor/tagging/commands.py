"""`monitor tag` and `monitor evaluate`: the tagger from the command line, no broker needed.

    monitor tag "Baku summons Russia's ambassador" ["summary"]   # one item, JSON out
    monitor tag --explain "Baku summons Russia's ambassador"     # the same, for a person
    monitor tag --jsonl < items.jsonl                            # one JSON object a line
    monitor evaluate tests/data/dev.jsonl --min-f1 0.9           # scores; exit 1 below 0.9

Exit codes: 0 done; 1 `evaluate` scored below a threshold, or `tag --jsonl`
rejected some lines (each rejected line still gets an output line with its
reason); 2 the rules or the corpus cannot be read (the message names file,
line and reason; never a traceback).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from monitor.tagging import TagResult, normalise_field, tag
from monitor.tagging.evaluate import CorpusError, Report, evaluate, load_corpus
from monitor.tagging.rules import RuleFileError, Rules, load_rules

LANGS = ("en", "ru", "de", "az", "tr")
# A JSON line longer than this is rejected unread: no feed item is that long,
# and reading it whole could exhaust memory.
MAX_LINE_BYTES = 4 * 1024 * 1024

EXIT_BELOW_THRESHOLD = 1
EXIT_REJECTED_LINES = 1
EXIT_UNUSABLE_INPUT = 2


class _Unusable(click.ClickException):
    """Rules or corpus that cannot be read: a one-line message, exit code 2, no traceback."""

    exit_code = EXIT_UNUSABLE_INPUT


def _rules(directory: Path | None) -> Rules:
    try:
        return load_rules(directory)
    except RuleFileError as error:
        raise _Unusable(f"broken rules: {error}") from error


rules_option = click.option(
    "--rules",
    "rules_dir",
    envvar="MONITOR_RULES_DIR",
    show_envvar=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory of rule files (default: the bundled rules).",
)


# --- monitor tag ----------------------------------------------------------------


def result_record(item_id: str, result: TagResult) -> dict[str, Any]:
    """The JSON object `monitor tag` prints for one item."""
    return {
        "id": item_id,
        "relevant": result.relevant,
        "sides": list(result.sides),
        "signals": list(result.signals),
        "lang": result.lang,
        "rules_version": result.rules_version,
        "evidence": [e.model_dump(mode="json") for e in result.evidence],
    }


def _marked(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each matched span in ⟦ ⟧; nested or overlapping spans are merged."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, position = [], 0
    for start, end in merged:
        out += [text[position:start], "⟦", text[start:end], "⟧"]
        position = end
    out.append(text[position:])
    return "".join(out)


def _verdict(result: TagResult) -> str:
    if result.relevant:
        return "RELEVANT: both sides are mentioned (AZ and RU)"
    explained = {e.label for e in result.evidence if e.kind == "exclusion"}
    # Mentions a false friend explains are not listed as actors, so say so.
    because = f" once false friends are set aside ({', '.join(sorted(explained))})"
    because = because if explained else ""
    if not result.sides:
        return f"NOT RELEVANT: no mention of either side{because}"
    return f"NOT RELEVANT: only the {result.sides[0]} side is mentioned{because}"


def explanation(
    item_id: str, title: str, summary: str, result: TagResult, *, declared: bool
) -> str:
    """A person's view of one decision: verdict, signals, the text with matches marked, why."""
    texts = {"title": normalise_field(title), "summary": normalise_field(summary)}
    how = "declared" if declared else "detected"
    lines = [
        f"── {item_id}  (lang {result.lang or '?'}, {how}; rules {result.rules_version})",
        _verdict(result),
        f"signals: {', '.join(result.signals) if result.signals else 'none'}",
    ]
    for field_name, text in texts.items():
        if text:
            spans = [
                (e.start, e.end)
                for e in result.evidence
                if e.field == field_name and e.kind != "note"
            ]
            lines.append(f"{field_name:>7}: {_marked(text, spans)}")
    if result.evidence:
        lines.append("   why:")
    for e in result.evidence:
        if e.kind == "note":
            lines.append(f"     note       {e.text}")
            continue
        what = {"actor": "side", "signal": "signal", "exclusion": "false friend"}[e.kind]
        lines.append(
            f"     {e.kind:<10} {e.text!r:<24} {what} {e.label}  "
            f"(rule {e.rule_id}, {e.field} {e.start}-{e.end})"
        )
    return "\n".join(lines)


def _read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line; None for a line longer than MAX_LINE_BYTES (skipped)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # drain the rest of the line
                line = stream.readline(MAX_LINE_BYTES)
            yield number, None
            continue
        yield number, line


class _Rejected(ValueError):
    """A JSON line that cannot be tagged; the message is the reason given to the user."""


def _parse_item(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise _Rejected(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Rejected(f"not UTF-8 (byte {error.start}): JSON lines must be UTF-8") from error
    try:
        record = json.loads(text)
    except ValueError as error:
        raise _Rejected(f"not JSON: {error}") from error
    if not isinstance(record, dict):
        raise _Rejected("not a JSON object")
    item_id = record.get("id")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or item_id == "":
        raise _Rejected("'id' is missing or not a string")
    record["id"] = str(item_id)
    for key in ("title", "summary"):
        value = record.get(key)
        if value is None:
            record[key] = ""
        elif not isinstance(value, str):
            raise _Rejected(f"'{key}' must be a string")
    lang = record.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise _Rejected("'lang' must be a string")
    if not record["title"] and not record["summary"]:
        raise _Rejected("'title' and 'summary' are both empty")
    return record


def _emit(record: dict[str, Any]) -> None:
    click.echo(json.dumps(record, ensure_ascii=False))


@click.command(name="tag")
@click.argument("title", required=False)
@click.argument("summary", required=False, default="")
@click.option(
    "--jsonl",
    is_flag=True,
    envvar="MONITOR_TAG_JSONL",
    show_envvar=True,
    help="Read JSON lines from standard input: {id, title, summary, lang?} a line.",
)
@click.option(
    "--explain",
    is_flag=True,
    envvar="MONITOR_TAG_EXPLAIN",
    show_envvar=True,
    help="Print each decision for a person (verdict, marked text, evidence) instead of JSON.",
)
@click.option(
    "--lang",
    envvar="MONITOR_TAG_LANG",
    show_envvar=True,
    type=click.Choice(LANGS),
    default=None,
    help="Language of the text (default: detected; a JSON line's own 'lang' wins).",
)
@rules_option
def tag_command(
    title: str | None,
    summary: str,
    jsonl: bool,
    explain: bool,
    lang: str | None,
    rules_dir: Path | None,
) -> None:
    """Tag TITLE [SUMMARY], or JSON lines from standard input with --jsonl.

    Prints one JSON object a line: id, relevant, sides, signals, lang,
    rules_version and evidence (rule id, matched text, offsets in the
    normalised text). A JSON line that cannot be tagged gets {line, id,
    error} instead, and the exit code is 1.
    """
    if jsonl == (title is not None):
        raise click.UsageError("give either TITLE [SUMMARY] or --jsonl (with lines on stdin)")
    rules = _rules(rules_dir)
    if title is not None:
        result = tag(title, summary, rules, lang=lang)
        _show("arg", title, summary, result, explain=explain, declared=lang is not None)
        return
    rejected = total = 0
    for number, raw in _read_lines(click.get_binary_stream("stdin")):
        if raw is not None and not raw.strip():
            continue
        total += 1
        try:
            item = _parse_item(raw)
        except _Rejected as reason:
            rejected += 1
            _emit({"line": number, "id": None, "error": str(reason)})
            continue
        item_lang = item.get("lang") or lang
        result = tag(item["title"], item["summary"], rules, lang=item_lang)
        _show(
            item["id"],
            item["title"],
            item["summary"],
            result,
            explain=explain,
            declared=item_lang is not None,
        )
    if rejected:
        click.echo(f"{rejected} of {total} lines rejected (see their 'error')", err=True)
        sys.exit(EXIT_REJECTED_LINES)


def _show(
    item_id: str, title: str, summary: str, result: TagResult, *, explain: bool, declared: bool
) -> None:
    if explain:
        click.echo(explanation(item_id, title, summary, result, declared=declared))
        click.echo()
    else:
        _emit(result_record(item_id, result))


# --- monitor evaluate --------------------------------------------------------------


def shortfalls(report: Report, min_f1: float | None, min_lang_f1: float | None) -> list[str]:
    """Each score below its threshold, as a line for the user; empty when all hold."""
    failed = []
    if min_f1 is not None:
        for name, score in (
            ("relevance F1", report.relevance),
            ("signal micro-F1", report.signals),
        ):
            if score.f1 < min_f1:
                failed.append(f"{name} {score.f1:.3f} < {min_f1}")
    if min_lang_f1 is not None:
        for lang_name, score in report.relevance_by_lang.items():
            if score.f1 < min_lang_f1:
                failed.append(f"relevance F1 [{lang_name}] {score.f1:.3f} < {min_lang_f1}")
    return failed


@click.command(name="evaluate")
@click.argument("corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--min-f1",
    envvar="MONITOR_EVAL_MIN_F1",
    show_envvar=True,
    type=click.FloatRange(0, 1),
    default=None,
    help="Exit 1 when relevance F1 or signal micro-F1 (overall) is below this.",
)
@click.option(
    "--min-lang-f1",
    envvar="MONITOR_EVAL_MIN_LANG_F1",
    show_envvar=True,
    type=click.FloatRange(0, 1),
    default=None,
    help="Exit 1 when relevance F1 in any language is below this.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="MONITOR_EVAL_JSON",
    show_envvar=True,
    help="Print the report as one JSON object.",
)
@click.option(
    "--worst",
    envvar="MONITOR_EVAL_WORST",
    show_envvar=True,
    type=click.IntRange(min=0),
    default=15,
    show_default=True,
    help="How many of the worst misses to list.",
)
@click.option(
    "--declared-lang",
    is_flag=True,
    envvar="MONITOR_EVAL_DECLARED_LANG",
    show_envvar=True,
    help="Give the tagger each item's labelled language instead of letting it detect it.",
)
@rules_option
def evaluate_command(
    corpus: Path,
    min_f1: float | None,
    min_lang_f1: float | None,
    as_json: bool,
    worst: int,
    declared_lang: bool,
    rules_dir: Path | None,
) -> None:
    """Score the tagger on a labelled CORPUS (JSON lines, see SIGNALS.md).

    Relevance precision, recall and F1, and signal micro-F1: overall, per
    language and per signal, then the worst misses with their evidence.
    """
    rules = _rules(rules_dir)
    try:
        items = load_corpus(corpus)
    except (CorpusError, OSError, UnicodeDecodeError) as error:
        raise _Unusable(f"broken corpus: {error}") from error
    report = evaluate(items, rules, declared_lang=declared_lang, worst=worst)
    failed = shortfalls(report, min_f1, min_lang_f1)
    if as_json:
        _emit({**report.to_dict(), "below_threshold": failed})
    else:
        click.echo(report.format_text())
    if failed:
        click.echo("below threshold: " + "; ".join(failed), err=True)
        sys.exit(EXIT_BELOW_THRESHOLD)
