"""The tagger against the labelled corpora, and the scoring itself.

Each threshold is what the rules reach today less a small margin, so a rule
change that loses ground fails here. docs/tagging.md gives the scores, how each
corpus was made, and the targets (relevance F1 0.95 overall and 0.90 per
language, signal micro-F1 0.90, 0.80 per signal), which every corpus now meets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.tagging.evaluate import (
    CorpusError,
    LabelledItem,
    Report,
    Score,
    evaluate,
    load_corpus,
)
from monitor.tagging.rules import Rules, load_rules
from schemas import SIGNAL_IDS

DEV_CORPUS = Path(__file__).parents[1] / "data" / "dev.jsonl"
# Corpora labelled from SIGNALS.md, not from the rules (tests/data/labelling/):
# relevance F1, its floor in each language, signal micro-F1, its floor in each language.
HELDOUT_CORPORA = {
    "heldout.jsonl": (0.98, 0.97, 0.96, 0.94),
    "fresh.jsonl": (0.98, 0.97, 0.96, 0.93),
    # Real reporting: 0.96 and 0.71 when first scored, before any rule saw it.
    "real.jsonl": (0.97, 0.95, 0.93, 0.91),
}
# On real reporting, each signal with at least this many gold occurrences keeps
# this F1 (the target is 0.80; hostile rhetoric, the lowest, is at 0.88).
REAL_SIGNAL_MIN_GOLD = 10
REAL_SIGNAL_F1 = 0.85
DATA = Path(__file__).parents[1] / "data"

RELEVANCE_F1_OVERALL = 0.98
RELEVANCE_F1_PER_LANGUAGE = 0.95
SIGNAL_MICRO_F1 = 0.96
SIGNAL_MICRO_F1_PER_LANGUAGE = 0.93


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


@pytest.fixture(scope="module")
def corpus() -> list[LabelledItem]:
    return load_corpus(DEV_CORPUS)


@pytest.fixture(scope="module")
def report(corpus: list[LabelledItem], rules: Rules) -> Report:
    return evaluate(corpus, rules)


def test_the_dev_corpus_has_every_language(corpus: list[LabelledItem]) -> None:
    assert len(corpus) == 240
    assert {item.lang for item in corpus} == {"en", "ru", "de", "az", "tr"}


def test_relevance_on_the_dev_corpus(report: Report) -> None:
    assert report.relevance.f1 >= RELEVANCE_F1_OVERALL, report.format_text()


@pytest.mark.parametrize("lang", ["en", "ru", "de", "az", "tr"])
def test_relevance_in_each_language(report: Report, lang: str) -> None:
    assert report.relevance_by_lang[lang].f1 >= RELEVANCE_F1_PER_LANGUAGE, report.format_text()


def test_signals_on_the_dev_corpus(report: Report) -> None:
    assert report.signals.f1 >= SIGNAL_MICRO_F1, report.format_text()


@pytest.mark.parametrize("lang", ["en", "ru", "de", "az", "tr"])
def test_signals_in_each_language(report: Report, lang: str) -> None:
    assert report.signals_by_lang[lang].f1 >= SIGNAL_MICRO_F1_PER_LANGUAGE, report.format_text()


@pytest.mark.parametrize("parity", [0, 1], ids=["even ids", "odd ids"])
def test_both_halves_of_the_split_score_alike(
    corpus: list[LabelledItem], rules: Rules, parity: int
) -> None:
    half = [item for item in corpus if int(item.id.rsplit("-", 1)[1]) % 2 == parity]
    half_report = evaluate(half, rules)
    assert half_report.relevance.f1 >= RELEVANCE_F1_OVERALL
    assert half_report.signals.f1 >= 0.95


def test_the_language_is_detected_for_every_item(report: Report) -> None:
    assert report.language_detected_correctly == report.items


def test_declaring_the_language_gives_the_same_scores(
    corpus: list[LabelledItem], rules: Rules, report: Report
) -> None:
    declared = evaluate(corpus, rules, declared_lang=True)
    assert declared.relevance == report.relevance
    assert declared.signals == report.signals


@pytest.fixture(scope="module", params=sorted(HELDOUT_CORPORA))
def heldout(request: pytest.FixtureRequest, rules: Rules) -> tuple[str, Report]:
    name: str = request.param
    return name, evaluate(load_corpus(DATA / name), rules)


@pytest.mark.parametrize("name", sorted(HELDOUT_CORPORA))
def test_each_heldout_corpus_covers_every_language_signal_and_false_friends(name: str) -> None:
    items = load_corpus(DATA / name)
    assert len(items) >= 150
    assert {item.lang for item in items} == {"en", "ru", "de", "az", "tr"}
    assert set().union(*(item.signals for item in items)) == set(SIGNAL_IDS)
    for lang in ("en", "ru", "de", "az", "tr"):
        assert sum(not i.relevant for i in items if i.lang == lang) >= 4


def test_relevance_on_the_heldout_corpora(heldout: tuple[str, Report]) -> None:
    name, report = heldout
    overall, per_language, _, _ = HELDOUT_CORPORA[name]
    assert report.relevance.f1 >= overall, (name, report.format_text())
    for lang, score in report.relevance_by_lang.items():
        assert score.f1 >= per_language, (name, lang, report.format_text())


def test_signals_on_the_heldout_corpora(heldout: tuple[str, Report]) -> None:
    name, report = heldout
    _, _, overall, per_language = HELDOUT_CORPORA[name]
    assert report.signals.f1 >= overall, (name, report.format_text())
    for lang, score in report.signals_by_lang.items():
        assert score.f1 >= per_language, (name, lang, report.format_text())


def test_every_frequent_signal_holds_on_real_reporting(rules: Rules) -> None:
    report = evaluate(load_corpus(DATA / "real.jsonl"), rules)
    frequent = {
        signal: score
        for signal, score in report.per_signal.items()
        if score.true_positives + score.false_negatives >= REAL_SIGNAL_MIN_GOLD
    }
    assert len(frequent) >= 10, "the real corpus names most signals often enough to score"
    for signal, score in frequent.items():
        assert score.f1 >= REAL_SIGNAL_F1, (signal, report.format_text())


def test_the_real_corpus_is_verbatim_reporting_with_links() -> None:
    """Every item names its outlet and a public link; about 40 % are near-misses."""
    lines = (DATA / "real.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert len(records) >= 200
    assert all(r["link"].startswith(("http://", "https://")) for r in records)
    assert all(r["source"] and "example" not in r["link"] for r in records)
    assert len({r["link"] for r in records}) == len(records)
    for lang in ("en", "ru", "de", "az", "tr"):
        assert sum(r["lang"] == lang for r in records) >= 30, lang
    near_misses = sum(not r["gold"]["relevant"] for r in records) / len(records)
    assert 0.3 <= near_misses <= 0.5


def test_the_language_is_detected_for_every_heldout_item(heldout: tuple[str, Report]) -> None:
    name, report = heldout
    assert report.language_detected_correctly == report.items, name


# --- the scoring itself ------------------------------------------------------------


def item(id_: str, title: str, relevant: bool, signals: set[str], lang: str = "en") -> LabelledItem:
    return LabelledItem(id_, lang, title, "", relevant, frozenset(signals))


def test_given_a_hit_a_miss_and_a_false_alarm_then_the_scores_count_them(rules: Rules) -> None:
    items = [
        item("t-1", "Moscow summons Azerbaijan's ambassador", True, {"diplomatic_protest"}),
        item("t-2", "Russian central bank lifts key rate", True, {"economic_pressure"}),
        item("t-3", "Putin phones Aliyev", False, set(), lang="de"),
    ]
    report = evaluate(items, rules)
    assert report.relevance == Score(true_positives=1, false_positives=1, false_negatives=1)
    assert report.relevance.f1 == pytest.approx(0.5)
    assert report.signals == Score(true_positives=1, false_positives=0, false_negatives=1)
    assert report.per_signal["economic_pressure"].recall == 0.0
    assert report.relevance_by_lang["de"].false_positives == 1
    # The relevance misses come first: they hide or invent an item.
    assert [miss.id for miss in report.worst_misses] == ["t-2", "t-3"]


def test_the_report_is_plain_data_and_readable_text(rules: Rules) -> None:
    report = evaluate([item("t-1", "Putin meets Aliyev in Sochi", True, {"conciliation"})], rules)
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["signals"]["fn"] == 1
    assert data["worst_misses"][0]["missing_signals"] == ["conciliation"]
    text = report.format_text()
    assert "relevance" in text
    assert "t-1 [en] Putin meets Aliyev in Sochi" in text
    assert "missing conciliation" in text


def test_the_most_frequent_mistakes_pair_each_gold_label_with_what_was_tagged(
    rules: Rules,
) -> None:
    raid = "Russian police detain 30 Azerbaijanis in Yekaterinburg raid"
    items = [
        # Gold says media_crackdown twice where the tagger finds detentions.
        item("t-1", raid, True, {"media_crackdown"}),
        item("t-2", raid.replace("30", "12"), True, {"media_crackdown"}),
        # An extra signal the gold does not have, and a missed one.
        item("t-3", raid, True, set()),
        item("t-4", raid, True, {"detentions", "economic_pressure"}),
        item("t-5", "Putin phones Aliyev", False, set()),
    ]
    report = evaluate(items, rules)
    by_pair = {(c.gold, c.tagged): c for c in report.confusions}
    assert by_pair[("media_crackdown", "detentions")].count == 2
    assert by_pair[("media_crackdown", "detentions")].examples == ("t-1", "t-2")
    assert by_pair[("-", "detentions")].examples == ("t-3",)
    assert by_pair[("economic_pressure", "-")].examples == ("t-4",)
    assert by_pair[("not relevant", "relevant")].examples == ("t-5",)
    # The most frequent comes first, in the text as in the data.
    assert report.confusions[0].count == 2
    text = report.format_text()
    assert "media_crackdown -> detentions" in text
    assert report.to_dict()["confusions"][0]["examples"] == ["t-1", "t-2"]


def test_an_empty_score_is_perfect_not_a_division_by_zero() -> None:
    assert (Score().precision, Score().recall, Score().f1) == (1.0, 1.0, 1.0)
    assert Score(false_negatives=2).f1 == 0.0


def test_a_malformed_corpus_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    good = {"id": "x-1", "lang": "en", "title": "t", "summary": "s", "gold": {"relevant": False}}
    path.write_text(json.dumps(good) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"corpus\.jsonl:3"):
        load_corpus(path)


def test_an_unknown_gold_signal_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    bad = {"id": "x", "lang": "en", "title": "t", "gold": {"relevant": True, "signals": ["war"]}}
    path.write_text(json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="unknown signal"):
        load_corpus(path)
