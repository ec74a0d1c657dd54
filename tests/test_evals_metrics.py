"""Metrics of the eval harness: matching rules from eval-format.md and the ranking metrics."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evals.datasets import EvalItem
from evals.metrics import (
    aggregate,
    contains_answer,
    normalise,
    passage_hit,
    percentile,
    retrieval_metrics,
    score_item,
    strip_citations,
    token_f1,
)


def test_normalise_folds_case_punctuation_guillemets_and_space():
    assert normalise("«Alvorlig  BEKYMRING» – sier\u00a0Japan.") == "alvorlig bekymring sier japan"
    assert normalise("ﬁ") == "fi"  # NFKC


def test_passage_hit_contains_and_straddles_half():
    passage = "Løftet er en gjenoppliving av en gjensidig forsvarsavtale fra 1961"
    assert passage_hit(f"Innledning. {passage}, som ble annullert.", passage)
    assert passage_hit(
        "Tekst før. Løftet er en gjenoppliving av en gjensidig", passage
    )  # first half at chunk end
    assert passage_hit(
        "gjensidig forsvarsavtale fra 1961, som ble annullert", passage
    )  # second half at start
    assert not passage_hit("Løftet er en gjenoppliving", passage)  # less than half
    assert not passage_hit("anything", "")


@given(st.text(min_size=1, max_size=60), st.text(max_size=40), st.text(max_size=40))
def test_a_chunk_always_hits_a_passage_it_contains(passage, before, after):
    if normalise(passage):
        assert passage_hit(before + " " + passage + " " + after, passage)


def test_contains_answer_matches_whole_words_after_normalising():
    assert contains_answer("Avtalen fra 1961 [1] ble annullert.", ["1961"])
    assert not contains_answer("I 19610 skjedde det", ["1961"])
    assert contains_answer("det ga «alvorlig bekymring».", ["Alvorlig bekymring"])
    assert not contains_answer("noe", [""])


def test_token_f1_and_strip_citations():
    assert token_f1("fem VM-gull", "fem") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert token_f1("", "") == 1.0 and token_f1("a", "") == 0.0
    assert strip_citations("Svar her [1] og der [12].") == "Svar her og der ."


def test_retrieval_metrics_from_rank_flags():
    m = retrieval_metrics([False, False, True, False, True] + [False] * 5)
    assert (m["hit@1"], m["hit@3"], m["hit@5"], m["hit@10"]) == (0.0, 1.0, 1.0, 1.0)
    assert m["mrr@10"] == pytest.approx(1 / 3)
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(4) + 1 / math.log2(6)) / ideal)
    assert retrieval_metrics([False] * 10) == {
        "hit@1": 0.0,
        "hit@3": 0.0,
        "hit@5": 0.0,
        "hit@10": 0.0,
        "mrr@10": 0.0,
        "ndcg@10": 0.0,
    }
    assert retrieval_metrics([True])["ndcg@10"] == 1.0


def _answer(text, answerable=True, cited=()):
    chunks = [{"chunk_id": f"c{i}", "text": t} for i, t in enumerate(cited)]
    return {
        "answer": text,
        "answerable": answerable,
        "retrieved": chunks,
        "citations": [
            {"n": i + 1, "chunk_id": c["chunk_id"], "quote": c["text"][:40], "article_id": "a"}
            for i, c in enumerate(chunks)
        ],
    }


ITEM = EvalItem(
    id="x",
    question="Når?",
    dataset="d",
    answers=("1961",),
    gold_passages=("en gjensidig forsvarsavtale fra 1961 mellom landene",),
)


def test_score_item_answerable_hit_found_and_cited():
    gold_chunk = "Løftet er en gjenoppliving av en gjensidig forsvarsavtale fra 1961 mellom landene."
    answer = _answer(
        "Løftet ... fra 1961 mellom landene. [1]", cited=[gold_chunk, "Noe helt annet om Japan."]
    )
    m = score_item(ITEM, answer, [{"text": "Japan"}, {"text": gold_chunk}])
    assert m["hit@1"] == 0.0 and m["hit@3"] == 1.0 and m["mrr@10"] == 0.5
    assert m["answer_found"] == 1.0 and m["false_refusal"] == 0.0
    assert m["citation_precision"] == 0.5 and m["citation_recall"] == 1.0
    assert m["answer_words"] == 6


def test_answer_first_asks_whether_the_first_quote_holds_the_answer():
    gold = "Forsvarsavtalen er fra 1961."
    runner_up = "Avtalen ble signert i Pyongyang."
    leads = score_item(ITEM, _answer(f"{gold} [1] {runner_up} [2]", cited=[gold, runner_up]), [])
    assert leads["answer_found"] == 1.0 and leads["answer_first"] == 1.0
    follows = score_item(ITEM, _answer(f"{runner_up} [1] {gold} [2]", cited=[runner_up, gold]), [])
    assert follows["answer_found"] == 1.0 and follows["answer_first"] == 0.0
    refused = score_item(ITEM, _answer("I couldn't find this in the archive.", answerable=False), [])
    assert refused["answer_first"] == 0.0


def test_score_item_refusals():
    refused = score_item(ITEM, _answer("I couldn't find this in the archive.", answerable=False), [])
    assert (
        refused["false_refusal"] == 1.0
        and refused["answer_found"] == 0.0
        and refused["citation_recall"] == 0.0
    )
    assert refused["citation_precision"] is None and refused["answer_words"] is None
    negative = EvalItem(id="n", question="?", dataset="d", answerable=False)
    assert (
        score_item(negative, _answer("Jeg fant ikke dette.", answerable=False), [])["refusal_unanswerable"]
        == 1.0
    )
    wrong = score_item(negative, _answer("Svar [1]", cited=["tekst"]), [])
    assert wrong["refusal_unanswerable"] == 0.0 and wrong["cited_when_unanswerable"] == 1.0
    assert "hit@1" not in wrong


def test_aggregate_skips_metrics_that_do_not_apply_and_reports_latency():
    records = [
        {"answerable": True, "metrics": {"hit@1": 1.0, "answer_found": None}, "timings_ms": {"total": 10}},
        {"answerable": True, "metrics": {"hit@1": 0.0}, "timings_ms": {"total": 30}},
        {"answerable": False, "metrics": {"refusal_unanswerable": 1.0}, "timings_ms": {"total": 20}},
    ]
    agg = aggregate(records)
    assert agg["n"] == 3 and agg["unanswerable"] == 1
    assert agg["metrics"] == {"hit@1": 0.5, "refusal_unanswerable": 1.0}
    assert agg["latency_ms"]["total"] == {"p50": 20.0, "p95": 29.0}
    assert percentile([], 50) is None
    # only the targeted metrics carry an interval, and only where they apply
    assert agg["intervals"] == {"refusal_unanswerable": [1.0, 1.0]}


def test_the_interval_of_a_rate_matches_its_binomial_spread_and_holds_the_rate():
    from evals.metrics import interval

    # 190 of 238 found: the normal approximation gives 0.798 +- 1.96 * sqrt(p(1-p)/n) = 0.747..0.849
    values = [1.0] * 190 + [0.0] * 48
    lo, hi = interval(values)
    spread = 1.96 * math.sqrt(0.798 * 0.202 / 238)
    assert lo < 190 / 238 < hi
    assert abs(lo - (0.798 - spread)) < 0.01 and abs(hi - (0.798 + spread)) < 0.01
    assert interval(values) == (lo, hi)  # a fixed seed: the same figures give the same interval
    assert interval([None, 0.5, 0.5]) == (0.5, 0.5)  # no spread, no interval width; None skipped
    assert interval([None]) is None
    narrow = interval(values * 4)  # four times the questions: about half the width
    assert 0.4 < (narrow[1] - narrow[0]) / (hi - lo) < 0.6


def test_citation_support_rate_counts_sentences_the_check_accepted():
    from evals.datasets import item_from_object
    from evals.metrics import citation_metrics

    item = item_from_object(
        {"id": "x", "question": "q", "answers": ["a"], "gold_passages": ["gold text"]}, "test", "test:1"
    )
    answer = {
        "retrieved": [],
        "citations": [],
        "sentences": [
            {"text": "s1", "supported": True},
            {"text": "s2", "supported": False},
            {"text": "s3", "supported": True},
            {"text": "s4", "supported": None},
        ],
    }
    assert citation_metrics(item, answer)["citation_support"] == 2 / 3
    assert citation_metrics(item, {**answer, "sentences": []})["citation_support"] is None


def test_repeated_quote_asks_whether_a_follow_up_quotes_an_earlier_answers_sentence():
    from dataclasses import replace

    from assistant.core.types import Turn

    gold = "Forsvarsavtalen er fra 1961."
    other = "Avtalen ble signert i Pyongyang."
    follow_up = replace(ITEM, history=(Turn("user", "Hva?"), Turn("assistant", f"«{gold}» [1]")))
    assert score_item(follow_up, _answer(f"{gold} [1]", cited=[gold]), [])["repeated_quote"] == 1.0
    assert score_item(follow_up, _answer(f"{other} [1]", cited=[other]), [])["repeated_quote"] == 0.0
    assert "repeated_quote" not in score_item(ITEM, _answer(f"{gold} [1]", cited=[gold]), [])  # no history
