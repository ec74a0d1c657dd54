"""The sentence-support check: its signals, its calibration, and the eval harness that fits it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.answering.support import names, numbers
from assistant.build import build_support_checker
from assistant.core.config import CALIBRATION_FILE, Settings
from evals import support_eval

PAIRS = {r["id"]: r for r in support_eval.load()}


@pytest.fixture(scope="module")
def checker(embedder):
    from assistant.answering.extractive import SentenceVectors

    return build_support_checker(Settings(), SentenceVectors(embedder))


def test_numbers_are_normalised_across_conventions():
    assert numbers("6,400 runners and 6 400 more") == {"6400"}
    assert numbers("1,9 millioner") == {"1.9"} and numbers("3.3 percent") == {"3.3"}
    assert numbers("from 1961 to 1990") == {"1961", "1990"}


def test_names_skip_the_first_word_but_keep_acronyms():
    assert names("The UN and Nord-Korea met Putin's envoy.") == ["un", "nord", "korea", "putin"]


@pytest.mark.parametrize("question", ["\U0001f91d Who signed it?", "«Who signed it?»", "– Who signed it?"])
def test_the_first_word_is_the_first_after_what_opens_the_sentence(question):
    assert names(question) == []


@pytest.mark.parametrize("pair_id", ["sp-001", "sp-003", "sp-004"])
def test_translations_and_paraphrases_are_supported(checker, pair_id):
    pair = PAIRS[pair_id]
    assert pair["label"] and checker.check(pair["sentence"], [pair["passage"]]).supported


@pytest.mark.parametrize("pair_id", ["sp-002", "sp-005"])
def test_wrong_numbers_and_entities_are_flagged(checker, pair_id):
    pair = PAIRS[pair_id]
    assert not pair["label"] and not checker.check(pair["sentence"], [pair["passage"]]).supported


def test_a_verbatim_quote_from_a_long_passage_is_supported(checker):
    passage = (
        "Han sa ikke noe om saken. Avtalen ble inngått under Putins første besøk til Nord-Korea på "
        "24 år, melder Reuters. Ingen andre land var med."
    )
    quote = "Avtalen ble inngått under Putins første besøk til Nord-Korea på 24 år, melder Reuters."
    result = checker.check(quote, [passage], pairs=False)
    assert result.supported and passage[result.start : result.end] == quote


def test_the_best_of_several_cited_passages_counts(checker):
    pair = PAIRS["sp-001"]
    result = checker.check(pair["sentence"], ["Fotballklubben tapte 3-0 på hjemmebane.", pair["passage"]])
    assert result.passage == 1 and result.supported
    assert checker.check(pair["sentence"], []).supported is False


def test_calibration_holds_both_thresholds():
    data = json.loads(CALIBRATION_FILE.read_text())
    assert 0 < data["support_threshold"] < 1 and len(data["support_weights"]) == 6
    assert "answerable_threshold" in data, "another engineer's key must survive our writes"


def test_write_calibration_merges(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"answerable_threshold": 0.8, "other": {"x": 1}}))
    support_eval.write_calibration(0.61, np.array([-1.0, 2, 0, -3, -2, -1]), path)
    data = json.loads(path.read_text())
    assert data["answerable_threshold"] == 0.8 and data["other"] == {"x": 1}
    assert data["support_threshold"] == 0.61 and data["support_weights"][1] == 2.0


def test_metrics_count_the_unsupported_flag():
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.3])
    supported = np.array([False, True, True, False, False])
    m = support_eval.metrics(scores, supported, 0.5)
    assert (m["precision"], m["recall"], m["flagged"]) == (round(2 / 3, 3), round(2 / 3, 3), 3)


def test_fit_respects_the_signs():
    rng = np.random.default_rng(0)
    x = rng.random((200, 5))
    y = (x[:, 0] - x[:, 2] + rng.normal(0, 0.2, 200) > 0).astype(float)
    x[:, 1] = y * 0.0 + (1 - y) * 1.0  # a "lexical" signal that points the wrong way
    w = support_eval.fit(x, y)
    assert w[1] > 0 and w[2] == 0 and w[3] < 0


def test_the_eval_harness_runs_on_a_small_slice(tmp_path, capsys):
    rows = support_eval.load()
    small = [r for r in rows if r["label"]][:6] + [r for r in rows if not r["label"]][:6]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in small))
    assert support_eval.main(["--data", str(data), "--no-write", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["in_sample"]["pairs"] == 12 and "written" not in report


def test_names_tolerate_transliteration_and_ignore_title_words():
    from assistant.answering.support import SupportChecker as C

    passage = "Opposisjonsleder Aleksej Navalnyj deltok i VM i Oberstdorf i februar."
    names_missing = C.lexical_features(
        "Opposition leader Alexei Navalny took part in the World Championships in Oberstdorf in February.",
        passage,
        0.9,
    )[3]
    assert names_missing == 0.0
    assert C.lexical_features("Opposition leader Boris Nemtsov took part.", passage, 0.9)[3] > 0


def test_number_words_in_the_passage_count_generously():
    from assistant.answering.support import SupportChecker as C

    assert (
        C.lexical_features(
            "Two electric cars take up as much space as a bus.",
            "To elbiler tar like stor plass som en buss.",
            0.9,
        )[2]
        == 0.0
    )
    assert (
        C.lexical_features(
            "Three electric cars take up as much space as a bus.",
            "To elbiler tar like stor plass som en buss.",
            0.9,
        )[2]
        == 1.0
    )
