"""The tagger by example: given a headline, when scanned, then these signals and this evidence.

The scan is the tagger before its background step (test_tagging_background.py).
"""

from __future__ import annotations

import pytest

from monitor.tagging import TagResult, detect_language, normalise_field, scan
from monitor.tagging.rules import Rules, fold, load_rules
from monitor.tagging.text import MAX_FIELD_CHARS
from schemas import SIGNAL_IDS, Evidence, ItemTagged


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules()


def evidence_of(result: TagResult, kind: str, label: str | None = None) -> list[Evidence]:
    return [e for e in result.evidence if e.kind == kind and (label is None or e.label == label)]


def matched_texts(result: TagResult, kind: str, label: str | None = None) -> set[str]:
    return {e.text for e in evidence_of(result, kind, label)}


# --- relevance ---------------------------------------------------------------


def test_given_both_sides_and_an_arrest_when_tagged_then_relevant_with_detentions(
    rules: Rules,
) -> None:
    result = scan(
        "Police raid Sputnik Azerbaijan office in Baku and detain its managers",
        "Azerbaijani police took the Russian state agency's director into custody.",
        rules,
    )
    assert result.relevant
    assert result.sides == ("AZ", "RU")
    assert "detentions" in result.signals
    assert "media_crackdown" in result.signals
    assert {"Sputnik", "Baku"} <= matched_texts(result, "actor")
    assert "detain" in matched_texts(result, "signal", "detentions")


def test_one_side_acting_on_the_other_sides_outlet_is_relevant(rules: Rules) -> None:
    # Sputnik is a Russian state outlet: the only RU mention is the asset itself.
    result = scan("Baku raids Sputnik office", "", rules)
    assert result.relevant
    assert {e.label for e in evidence_of(result, "actor")} == {"AZ", "RU"}


def test_one_side_alone_is_not_relevant(rules: Rules) -> None:
    result = scan(
        "Russian central bank lifts key rate to 21 per cent",
        "The Bank of Russia raised borrowing costs to tackle inflation.",
        rules,
    )
    assert not result.relevant
    assert result.sides == ("RU",)
    assert result.signals == ()


def test_signals_are_only_given_to_relevant_items(rules: Rules) -> None:
    result = scan("Moscow court sentences opposition activist", "Police detained dozens.", rules)
    assert not result.relevant
    assert result.signals == ()
    assert not evidence_of(result, "signal")


# --- false friends -----------------------------------------------------------


def test_moscow_idaho_is_not_russia(rules: Rules) -> None:
    result = scan(
        "Azerbaijani student wins award in Moscow, Idaho",
        "The University of Idaho honoured the exchange student from Baku.",
        rules,
    )
    assert not result.relevant
    assert result.sides == ("AZ",)
    assert matched_texts(result, "exclusion") >= {"Moscow, Idaho"}


def test_moscow_idaho_in_russian(rules: Rules) -> None:
    result = scan("Студент из Азербайджана в Москве (штат Айдахо)", "", rules)
    assert not result.relevant


def test_football_fixture_is_not_relations(rules: Rules) -> None:
    result = scan(
        "Qarabağ host Spartak Moscow in the Champions League",
        "The Azerbaijani champions face the Russian side in Baku.",
        rules,
    )
    assert not result.relevant
    assert "football and other sport" in {e.label for e in evidence_of(result, "exclusion")}


def test_baku_grand_prix_is_not_relations(rules: Rules) -> None:
    result = scan(
        "Russian driver crashes out of the Azerbaijan Grand Prix in Baku",
        "The Formula 1 race on the city circuit was won by Verstappen.",
        rules,
    )
    assert not result.relevant


def test_cop29_side_event_is_not_relations(rules: Rules) -> None:
    result = scan(
        "Russian delegation holds COP29 side event in Baku",
        "The climate conference side event discussed Arctic permafrost.",
        rules,
    )
    assert not result.relevant


def test_an_exclusion_does_not_hide_a_leader(rules: Rules) -> None:
    # The football words explain "Baku" and "Russian", but Putin and Aliyev remain.
    result = scan(
        "Putin and Aliyev watch the Champions League final together",
        "The two presidents met in Baku.",
        rules,
    )
    assert result.relevant
    assert "leader_contact" in result.signals


@pytest.mark.parametrize(
    ("title", "lang"),
    [
        ("Wheat prices fall in Kazakhstan, Russia, Azerbaijan and Georgia", "en"),
        ("Цены на бензин выросли в России, Казахстане, Азербайджане и Белоруссии", "ru"),
        ("Gasimporte: Norwegen, Russland, Aserbaidschan und Katar im Vergleich", "de"),
        ("Xəzəryanı ölkələr – Azərbaycan, Rusiya, İran və Qazaxıstan – görüş keçirib", "az"),
        ("Rusya, Azerbaycan ve Kazakistan'dan gelen turist sayısı arttı", "tr"),
    ],
)
def test_both_sides_named_only_in_a_list_of_countries_is_not_relevant(
    rules: Rules, title: str, lang: str
) -> None:
    result = scan(title, "", rules, lang=lang)
    assert not result.relevant
    assert result.signals == ()
    [listed] = evidence_of(result, "exclusion", "a list of countries")
    assert listed.rule_id == "x.country_list"
    assert "," in listed.text


def test_a_list_does_not_hide_the_sides_named_outside_it(rules: Rules) -> None:
    result = scan(
        "Grain exports from Kazakhstan, Russia and Ukraine rise",
        "Moscow summoned Azerbaijan's ambassador over a separate dispute.",
        rules,
    )
    assert result.relevant
    assert "diplomatic_protest" in result.signals


def test_two_countries_side_by_side_are_not_a_list(rules: Rules) -> None:
    assert scan("Russia and Azerbaijan sign a trade deal", "", rules).relevant


@pytest.mark.parametrize(
    "title",
    [
        "Chess: Russian grandmaster wins the Baku Open",
        "Сборная России по борьбе выиграла турнир в Баку",
        "Russischer Ringer gewinnt EM-Gold in Baku",
        "Bakı Marafonu: qalib Rusiya təmsilçisi olub",
        "Eurovision: Azerbaijan through to the final, Russia still barred",
    ],
)
def test_sport_and_song_contests_are_not_relations(rules: Rules, title: str) -> None:
    assert not scan(title, "", rules).relevant


@pytest.mark.parametrize(
    ("title", "lang", "signal"),
    [
        # baskın is a raid, baskı pressure
        ("Rusya'da Azerbaycanlılara baskın: 15 gözaltı", "tr", "hostile_rhetoric"),
        # a Berater (adviser) does not berate
        (
            "Aserbaidschan lehnt EAWU ab, sagte ein Berater; Russland schweigt",
            "de",
            "hostile_rhetoric",
        ),
        # a Drohne (drone) is not a Drohung (threat)
        ("Russische Drohne trifft Botschaft Aserbaidschans in Kiew", "de", "hostile_rhetoric"),
        # a ziyaretçi is a visitor, not a visit
        ("Rusya ve Azerbaycan'dan gelen ziyaretçilerin sayısı arttı", "tr", "leader_contact"),
        # "a sign of" is not a signature
        ("Moscow watches Azerbaijan–Turkey drills, a sign of closer ties", "en", "conciliation"),
    ],
)
def test_a_stem_does_not_swallow_a_different_word(
    rules: Rules, title: str, lang: str, signal: str
) -> None:
    assert signal not in scan(title, "", rules, lang=lang).signals


@pytest.mark.parametrize(
    ("title", "lang"),
    [
        ("Baku frees Sputnik Azerbaijan editors after four months in jail", "en"),
        ("Baku lässt inhaftierte Sputnik-Mitarbeiter frei", "de"),
        ("Bakıda həbs edilən Rusiya vətəndaşları azad edilib", "az"),
    ],
)
def test_a_release_is_conciliation_not_a_detention(rules: Rules, title: str, lang: str) -> None:
    result = scan(title, "", rules, lang=lang)
    assert "conciliation" in result.signals
    assert "detentions" not in result.signals
    assert "media_crackdown" not in result.signals


def test_a_demanded_release_is_still_about_the_detention(rules: Rules) -> None:
    result = scan("Moscow demands release of Russians detained in Baku", "", rules)
    assert "detentions" in result.signals
    assert "conciliation" not in result.signals


def test_a_prison_sentence_is_legal_action_not_a_new_detention(rules: Rules) -> None:
    result = scan("Rusiya məhkəməsi azərbaycanlı iş adamına 10 il həbs cəzası verib", "", rules)
    assert "legal_action" in result.signals
    assert "detentions" not in result.signals


def test_german_separable_verbs_are_read(rules: Rules) -> None:
    stays_away = scan("Alijew bleibt der Siegesparade in Moskau fern", "", rules)
    assert "diplomatic_protest" in stays_away.signals
    phoned = scan("Putin und Alijew telefonieren nach Flugzeugabsturz", "", rules)
    assert "leader_contact" in phoned.signals


def test_george_russell_is_not_russia(rules: Rules) -> None:
    result = scan("Russell second in Baku", "George Russell finished second.", rules)
    assert result.sides == ("AZ",)


# --- five languages and inflection -----------------------------------------------


@pytest.mark.parametrize(
    ("title", "summary", "lang", "signal", "trigger_text"),
    [
        (
            "В Екатеринбурге задержаны выходцы из Азербайджана",
            "Силовики провели обыски у членов азербайджанской диаспоры.",
            "ru",
            "detentions",
            "задержаны",
        ),
        (
            "Festnahmen russischer Staatsbürger in Baku",
            "Die aserbaidschanische Polizei hat mehrere Russen festgenommen.",
            "de",
            "detentions",
            "festgenommen",
        ),
        (
            "Yekaterinburqda soydaşlarımız saxlanılıb",
            "Rusiya hüquq-mühafizə orqanları Azərbaycan diasporuna qarşı reyd keçirib.",
            "az",
            "detentions",
            "saxlanılıb",
        ),
        (
            "Bakü'de Rus vatandaşları gözaltına alındı",
            "Azerbaycan polisi Rusya vatandaşlarını gözaltına aldı.",
            "tr",
            "detentions",
            "gözaltına",
        ),
        (
            "Moscow summons Azerbaijan's ambassador",
            "Russia's foreign ministry lodged a protest.",
            "en",
            "diplomatic_protest",
            "summons",
        ),
    ],
)
def test_signals_in_every_language(
    rules: Rules, title: str, summary: str, lang: str, signal: str, trigger_text: str
) -> None:
    result = scan(title, summary, rules)
    assert result.lang == lang
    assert result.relevant
    assert signal in result.signals
    assert any(trigger_text.startswith(text) for text in matched_texts(result, "signal", signal))


@pytest.mark.parametrize(
    ("text", "side"),
    [
        ("Азербайджану", "AZ"),
        ("азербайджанцами", "AZ"),
        ("Екатеринбурге", "RU"),
        ("Москвой", "RU"),
        ("Aserbaidschans", "AZ"),
        ("Bergkarabach", "AZ"),
        ("Azərbaycanın", "AZ"),
        ("Azərbaycana", "AZ"),
        ("Rusiyanın", "RU"),
        ("Rusya'nın", "RU"),
        ("Bakü'de", "AZ"),
        ("Putin'den", "RU"),
        ("Russian-Azerbaijani", "AZ"),
        ("Russian-Azerbaijani", "RU"),
    ],
)
def test_inflected_forms_are_mentions(rules: Rules, text: str, side: str) -> None:
    result = scan(text, "", rules)
    assert side in result.sides


def test_a_prefix_stem_does_not_match_inside_a_word(rules: Rules) -> None:
    # "rus" is a whole word in Turkish; "Rustem" is a name, not Russia.
    result = scan("Rustem Umerov in Ankara", "", rules, lang="tr")
    assert result.sides == ()


def test_a_russian_stem_catches_cases_but_not_a_different_word(rules: Rules) -> None:
    # задержа* is detention (задержан, задержание); задержка is a delay.
    detained = scan("Россиянин задержан в Баку", "", rules)
    delayed = scan("Задержка рейса из Москвы в Баку", "", rules)
    assert "detentions" in detained.signals
    assert "detentions" not in delayed.signals


# --- Turkish i ---------------------------------------------------------------------


def test_turkish_capital_i_folds_to_dotless_and_dotted_i() -> None:
    assert fold("RUSYA'NIN İSTANBUL", "tr") == "rusya'nın istanbul"
    assert fold("RUSYA'NIN İSTANBUL", "en") == "rusya'nin istanbul"
    assert len(fold("İİİ", "de")) == 3


def test_turkish_headline_in_capitals_is_read_right(rules: Rules) -> None:
    result = scan("BAKÜ'DE RUS VATANDAŞLARINA TUTUKLAMA KARARI", "", rules, lang="tr")
    assert result.relevant
    assert "detentions" in result.signals
    assert result.lang == "tr"


def test_dotted_capital_i_keeps_offsets_aligned(rules: Rules) -> None:
    title = "İlham Əliyev Putinlə görüşüb"
    result = scan(title, "", rules)
    assert result.lang == "az"
    for e in result.evidence:
        assert normalise_field(title)[e.start : e.end] == e.text
    assert "İlham" in matched_texts(result, "actor", "AZ")


# --- nearness ------------------------------------------------------------------------


def test_a_trigger_far_from_any_actor_gives_no_signal(rules: Rules) -> None:
    filler = " ".join(["The weather was mild and the markets were calm."] * 30)
    result = scan(
        "Azerbaijan and Russia review trade figures",
        f"{filler} Elsewhere, police arrested a burglar.",
        rules,
    )
    assert result.relevant
    assert "detentions" not in result.signals


def test_a_meeting_needs_both_sides_close_by(rules: Rules) -> None:
    result = scan(
        "Aliyev meets Pashinyan in Abu Dhabi",
        "The leaders held talks without a mediator. " * 3 + "Russia was not informed.",
        rules,
    )
    assert "leader_contact" not in result.signals


def test_a_demanded_apology_is_protest_not_conciliation(rules: Rules) -> None:
    result = scan(
        "Baku demands an apology from Moscow",
        "Azerbaijan expects Russia to apologise and pay compensation.",
        rules,
    )
    assert "diplomatic_protest" in result.signals
    assert "conciliation" not in result.signals


def test_a_given_apology_is_conciliation(rules: Rules) -> None:
    result = scan("Putin apologises to Aliyev over the downed airliner", "", rules)
    assert "conciliation" in result.signals


# --- normalisation and odd input -------------------------------------------------------


def test_html_is_stripped_and_entities_unescaped_before_matching(rules: Rules) -> None:
    title = (
        "<p><b>Azerbaijan</b> &amp; Russia: police&nbsp;<i>arrest</i>"
        " &#1041;&#1072;&#1082;&#1091;</p>"
    )
    result = scan(title, "<script>var russia = 1;</script>", rules)
    normalised = normalise_field(title)
    assert normalised == "Azerbaijan & Russia: police arrest Баку"
    assert result.relevant
    assert "detentions" in result.signals
    for e in result.evidence:
        assert e.field == "title"
        assert normalised[e.start : e.end] == e.text


def test_evidence_offsets_refer_to_the_normalised_text(rules: Rules) -> None:
    title = (
        "Ｍｏｓｃｏｗ\u00a0summons   Azer\u00adbaijan's ambassador"  # full-width, nbsp, soft hyphen
    )
    result = scan(title, "", rules)
    normalised = normalise_field(title)
    assert normalised == "Moscow summons Azerbaijan's ambassador"
    assert result.relevant
    for e in result.evidence:
        assert normalised[e.start : e.end] == e.text


def test_yo_is_read_as_ye(rules: Rules) -> None:
    result = scan("Баку ждёт извинений от Москвы", "", rules)
    assert "diplomatic_protest" in result.signals


def test_huge_input_is_cut_and_noted(rules: Rules) -> None:
    summary = "Azerbaijan and Russia. " * 5_000  # 115,000 characters
    result = scan("Trade talks", summary, rules)
    notes = {n.label: n for n in evidence_of(result, "note")}
    assert notes["truncated"].field == "summary"
    assert all(e.end <= MAX_FIELD_CHARS for e in result.evidence if e.kind != "note")
    assert result.relevant
    # Thousands of repeated mentions are listed a few times each and counted in a note.
    assert len(result.evidence) < 20
    assert "further matches" in notes["evidence_capped"].text


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("", ""),
        ("   ", "\n\t"),
        ("\x00\x01\x02\xff\ufffd", "\ud800 lone surrogate"),
        (bytes(range(256)).decode("latin-1"), "<<<>>>&&&;;"),
        ("<", "&#xDEADBEEF; &#0; &bogus;"),
        ("*" * 50_000, "İ" * 30_000),
    ],
)
def test_empty_binary_or_garbage_input_is_not_relevant_and_does_not_raise(
    rules: Rules, title: str, summary: str
) -> None:
    result = scan(title, summary, rules)
    assert not result.relevant
    assert result.signals == ()


def test_non_string_input_does_not_raise(rules: Rules) -> None:
    result = scan(b"\xff\xfe Baku \x00 Moscow", None, rules)  # type: ignore[arg-type]
    assert result.sides == ("AZ", "RU")


# --- result shape ----------------------------------------------------------------------


def test_signals_follow_the_taxonomy_order(rules: Rules) -> None:
    result = scan(
        "Aliyev: Russia shot down our plane and must apologise",
        "Baku demands punishment of those responsible and accuses Moscow of a cover-up.",
        rules,
    )
    assert result.signals == tuple(s for s in SIGNAL_IDS if s in result.signals)
    assert {"armed_incident", "hostile_rhetoric", "diplomatic_protest"} <= set(result.signals)


def test_result_is_deterministic_and_carries_the_rules_version(rules: Rules) -> None:
    first = scan("Putin phones Aliyev", "The Kremlin said the call was warm.", rules)
    second = scan("Putin phones Aliyev", "The Kremlin said the call was warm.", rules)
    assert first == second
    assert first.rules_version == rules.version
    assert len(rules.version) == 16


def test_fast_evidence_equals_validated_evidence(rules: Rules) -> None:
    # The matcher builds Evidence without validation (it is on the hot path);
    # this holds it to what pydantic's validated constructor gives.
    result = scan("Moscow summons Azerbaijan's ambassador", "", rules)
    for fast in result.evidence:
        validated = Evidence(**fast.model_dump())
        assert fast == validated
        assert fast.model_dump_json() == validated.model_dump_json()
        assert fast.model_fields_set == validated.model_fields_set
        assert hash(fast) == hash(validated)
    tagged = ItemTagged.model_validate(
        {
            "item_id": "x",
            "revision": "r",
            "source": "s",
            "title": "t",
            "lang": "en",
            "event_time": "2025-01-01T00:00:00Z",
            "relevant": True,
            "dyad": "AZ-RU",
            "sides": ["AZ", "RU"],
            "signals": list(result.signals),
            "evidence": list(result.evidence),
            "rules_version": rules.version,
        }
    )
    assert ItemTagged.model_validate_json(tagged.model_dump_json()) == tagged


def test_title_and_summary_matches_never_join_across_the_fields(rules: Rules) -> None:
    # "shot down" split between the fields is not a shoot-down.
    result = scan(
        "Baku and Moscow ask who shot", "down the rumours of a rift, officials said.", rules
    )
    assert result.relevant
    assert "armed_incident" not in result.signals
    texts = {"title": "Baku and Moscow ask who shot", "summary": "down the rumours of a rift"}
    for e in result.evidence:
        assert texts[e.field][e.start : e.end] == e.text


def test_declared_language_wins_over_detection(rules: Rules) -> None:
    assert scan("Baku", "", rules, lang="de").lang == "de"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Aliyev and Putin met in Moscow on the sidelines of the summit", "en"),
        ("Qarabağ hold Chelsea to a draw in Baku as the fans cheer", "en"),
        ("Der russische Präsident traf sich mit Alijew in Baku", "de"),
        ("Rusya ile Azerbaycan arasında gerginlik tırmanıyor", "tr"),
        ("Azərbaycan və Rusiya arasında gərginlik", "az"),
        ("Путин и Алиев провели переговоры", "ru"),
    ],
)
def test_language_is_detected_offline(text: str, lang: str) -> None:
    assert detect_language(text) == lang
