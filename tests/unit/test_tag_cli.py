"""`monitor tag` and `monitor evaluate`: the tagger from a shell, without a broker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.tagging.commands import MAX_LINE_BYTES
from monitor.tagging.rules import BUNDLED_RULES
from tests.corpus import DEV_CORPUS
from tests.corpus import json_lines as corpus_lines


def run(*args: str, stdin: bytes | str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- monitor tag ----------------------------------------------------------------------


def test_given_a_headline_on_the_command_line_then_one_json_object_with_the_decision() -> None:
    code, out, _ = run("tag", "Moscow summons Azerbaijan's ambassador")
    assert code == 0
    [record] = json_lines(out)
    assert record["id"] == "arg"
    assert record["relevant"] is True
    assert record["signals"] == ["diplomatic_protest"]
    assert record["lang"] == "en"
    evidence = record["evidence"]
    assert isinstance(evidence, list)
    assert {"rule_id": "protest.summon", "kind": "signal", "label": "diplomatic_protest",
            "field": "title", "start": 7, "end": 14, "text": "summons"} in evidence  # fmt: skip


def test_a_summary_may_follow_the_title() -> None:
    _, out, _ = run("tag", "Police raid an office in Baku", "Sputnik's director was detained.")
    [record] = json_lines(out)
    assert record["relevant"] is True
    assert "detentions" in record["signals"]  # type: ignore[operator]


def test_given_json_lines_on_stdin_then_one_output_line_per_item_in_order() -> None:
    lines = [
        {"id": "a", "title": "Putin phones Aliyev", "summary": ""},
        {"id": "b", "title": "Путин и Алиев провели переговоры", "summary": "", "lang": "ru"},
        {"id": "c", "title": "Qarabağ host Spartak Moscow in the Champions League"},
    ]
    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    code, out, _ = run("tag", "--jsonl", stdin=stdin)
    assert code == 0
    records = json_lines(out)
    assert [r["id"] for r in records] == ["a", "b", "c"]
    assert [r["relevant"] for r in records] == [True, True, False]
    assert records[1]["lang"] == "ru"
    assert set(records[0]) >= {"id", "relevant", "signals", "lang", "evidence", "rules_version"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"title": "Baku"}', "'id' is missing"),
        (b'{"id": "x", "title": 42}', "'title' must be a string"),
        (b'{"id": "x", "title": "", "summary": null}', "both empty"),
        (b'{"id": "x", "title": "Bak\xfc"}', "not UTF-8"),
    ],
)
def test_a_bad_json_line_is_rejected_with_its_reason_and_the_rest_are_tagged(
    line: bytes, reason: str
) -> None:
    good = b'{"id": "ok", "title": "Putin phones Aliyev"}'
    code, out, err = run("tag", "--jsonl", stdin=line + b"\n" + good + b"\n")
    assert code == 1
    rejected, tagged = json_lines(out)
    assert rejected["line"] == 1
    assert reason in str(rejected["error"])
    assert tagged["id"] == "ok"
    assert "1 of 2 lines rejected" in err


def test_an_overlong_line_is_rejected_without_reading_it_whole() -> None:
    huge = b'{"id": "big", "title": "' + b"Baku " * (MAX_LINE_BYTES // 5) + b'"}'
    code, out, _ = run("tag", "--jsonl", stdin=huge + b'\n{"id": "next", "title": "Baku"}\n')
    assert code == 1
    rejected, tagged = json_lines(out)
    assert "longer than" in str(rejected["error"])
    assert tagged["id"] == "next"


def test_explain_shows_verdict_signals_marked_text_and_each_rule() -> None:
    code, out, _ = run("tag", "--explain", "Moscow summons Azerbaijan's ambassador")
    assert code == 0
    assert "RELEVANT: both sides are mentioned (AZ and RU)" in out
    assert "signals: diplomatic_protest" in out
    assert "⟦Moscow⟧ ⟦summons⟧ ⟦Azerbaijan⟧'s ambassador" in out
    assert "rule protest.summon, title 7-14" in out
    assert "rule ru.capital" in out


def test_explain_says_why_an_item_is_not_relevant() -> None:
    _, out, _ = run(
        "tag", "--explain", "--lang", "en", "Qarabağ host Spartak Moscow in the Champions League"
    )
    assert "NOT RELEVANT" in out
    assert "football and other sport" in out
    _, out, _ = run("tag", "--explain", "Russian central bank lifts key rate")
    assert "NOT RELEVANT: only the RU side is mentioned" in out


def test_tag_needs_either_text_or_jsonl() -> None:
    code, _, _ = run("tag")
    assert code == 2
    code, _, _ = run("tag", "--jsonl", "Baku")
    assert code == 2


def test_a_broken_rule_file_names_file_line_and_reason_without_a_traceback(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(BUNDLED_RULES, rules)
    broken = rules / "signals" / "detentions.toml"
    broken.write_text(broken.read_text(encoding="utf-8") + "\n[[trigger]\n", encoding="utf-8")
    for command in (["tag", "Baku"], ["evaluate", str(DEV_CORPUS)]):
        code, _, err = run(*command, "--rules", str(rules))
        assert code == 2
        assert "broken rules:" in err
        assert "detentions.toml:" in err
        assert "not valid TOML" in err


def test_the_rules_directory_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_RULES_DIR", str(tmp_path / "nowhere"))
    code, _, err = run("tag", "Baku")
    assert code == 2
    assert "does not exist" in err


# --- monitor evaluate ---------------------------------------------------------------------


def test_evaluate_prints_scores_overall_per_language_and_per_signal() -> None:
    code, out, _ = run("evaluate", str(DEV_CORPUS))
    assert code == 0
    for heading in ("relevance", "signals (micro", "per signal", "detentions"):
        assert heading in out
    for lang in {item["lang"] for item in corpus_lines(DEV_CORPUS)}:
        assert f"  {lang} " in out


def test_evaluate_as_json_is_one_object() -> None:
    code, out, _ = run("evaluate", "--json", str(DEV_CORPUS))
    assert code == 0
    [report] = json_lines(out)
    assert report["items"] == len(corpus_lines(DEV_CORPUS))
    assert report["below_threshold"] == []


def test_min_f1_holds_the_line_with_the_exit_code() -> None:
    assert run("evaluate", "--min-f1", "0.9", str(DEV_CORPUS))[0] == 0
    code, _, err = run("evaluate", "--min-f1", "1.0", str(DEV_CORPUS))
    assert code == 1
    assert "below threshold: signal micro-F1" in err


def test_min_f1_fails_a_corpus_the_tagger_gets_wrong(tmp_path: Path) -> None:
    corpus = tmp_path / "wrong.jsonl"
    item = {"id": "w-1", "lang": "en", "title": "Putin phones Aliyev", "summary": "",
            "gold": {"relevant": False, "signals": []}}  # fmt: skip
    corpus.write_text(json.dumps(item) + "\n", encoding="utf-8")
    code, out, err = run("evaluate", "--min-f1", "0.5", "--min-lang-f1", "0.5", str(corpus))
    assert code == 1
    assert "relevance F1 0.000 < 0.5" in err
    assert "relevance F1 [en]" in err
    assert "w-1 [en] Putin phones Aliyev" in out


def test_a_broken_corpus_names_file_and_line(tmp_path: Path) -> None:
    corpus = tmp_path / "broken.jsonl"
    corpus.write_text("{not json\n", encoding="utf-8")
    code, _, err = run("evaluate", str(corpus))
    assert code == 2
    assert "broken.jsonl:1" in err
