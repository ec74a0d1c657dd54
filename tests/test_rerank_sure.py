"""The reranker's sure score: a question asked alone whose best passage the reranker scores at least it is not held
to the dense threshold, and the score is chosen on validation data (evals/calibrate_sure.py)."""

import pytest

from assistant.answering.context import AskRequest
from evals.calibrate import UNANSWERABLE, split_unanswerable
from evals.calibrate_sure import Asked, calibration_items, choose_sure
from evals.datasets import EvalItem, load_dataset


def asked(
    score: float, refused: bool = False, by_threshold_alone: bool = True, answerable: bool = True
) -> Asked:
    item = EvalItem(id=f"q-{score}", question="?", answerable=answerable, dataset="val", language="en")
    return Asked(item, score, refused, refused and not by_threshold_alone)


def test_the_sure_score_answers_what_only_the_threshold_refused_above_every_such_unanswerable_question():
    positives = [asked(2.0)] * 96 + [asked(1.7, refused=True), asked(-0.3, refused=True)]
    positives += [asked(3.0, refused=True, by_threshold_alone=False), asked(-4.0, refused=True)]
    negatives = [asked(-1.5, refused=True, answerable=False), asked(-2.5, refused=True, answerable=False)]
    negatives += [asked(5.0, refused=True, by_threshold_alone=False, answerable=False)]
    sure, table = choose_sure(positives, negatives)
    # Midway between the highest unanswerable score the threshold alone held back and the lowest answerable one
    # above it; the one refused by another gate (3.0, 5.0) changes nothing whatever the score
    assert sure == pytest.approx(-0.9)
    assert table["positives_refused_without"] == 4 and table["positives_refused_with"] == 2
    assert table["negatives_refused_with"] == table["negatives_refused_without"] == 3


def test_the_highest_score_wins_a_tie_and_no_gain_gives_no_score():
    positives = [asked(2.0)] * 10 + [asked(1.0, refused=True)]
    negatives = [asked(-1.0, refused=True, answerable=False)]
    sure, _ = choose_sure(positives, negatives)
    assert sure == pytest.approx(
        0.0
    )  # anything in (-1.0, 1.0] rescues the one; the midpoint is the only candidate
    sure, table = choose_sure(positives, [asked(1.5, refused=True, answerable=False)])
    assert sure is None and table["positives_refused_with"] == 1  # rescuing it would let the negative through


def test_the_sure_score_is_chosen_on_validation_questions_only():
    positives, negatives = calibration_items()
    datasets = {i.dataset for i in [*positives, *negatives]}
    assert "seed_short" in datasets and "off_topic_dev" in datasets
    assert not any("test" in d for d in datasets) and "off_topic" not in datasets
    _, report_half = split_unanswerable(load_dataset(str(UNANSWERABLE)))
    assert not {i.id for i in negatives} & {i.id for i in report_half}


def sure_of(assistant, threshold: float, sure: dict, min_chunks: int = 0):
    settings = assistant.settings.replace(
        answerable_threshold=threshold, rerank_sure=sure, rerank_sure_min_chunks=min_chunks
    )
    return type(assistant)(
        settings, assistant.retriever, assistant.extractive, None, archive_words=assistant.archive_words
    )


def test_a_question_the_reranker_is_sure_of_passes_a_threshold_it_falls_under(assistant):
    question = "What does Article 4 commit each side to?"
    answer = assistant.ask(AskRequest(question))
    top = answer.retrieved[0].score
    strict = 0.999  # no question of this archive reaches it
    assert not sure_of(assistant, strict, {}).ask(AskRequest(question)).answerable
    sure = sure_of(assistant, strict, {"en": top - 0.01}).ask(AskRequest(question))
    assert sure.answerable and sure.answer == answer.answer and sure.citations == answer.citations
    # a score above its best passage's, another language group's, or another retriever's order does not vouch
    assert not sure_of(assistant, strict, {"en": top + 0.01}).ask(AskRequest(question)).answerable
    assert not sure_of(assistant, strict, {"no": -1e9}).ask(AskRequest(question)).answerable
    hybrid = AskRequest(question, retriever="hybrid")
    assert not sure_of(assistant, strict, {"en": -1e9}).ask(hybrid).answerable


def test_the_names_a_question_asks_about_still_judge_a_question_the_reranker_is_sure_of(assistant):
    question = "What does Article 4 of the Zorblatt treaty commit each side to?"
    assert not sure_of(assistant, 0.0, {}).ask(AskRequest(question)).answerable
    assert not sure_of(assistant, 0.999, {"en": -1e9}).ask(AskRequest(question)).answerable


def test_the_sure_score_holds_only_in_an_archive_as_large_as_the_one_it_was_chosen_on(assistant):
    question = "What does Article 4 commit each side to?"
    top = assistant.ask(AskRequest(question)).retrieved[0].score
    chunks = len(assistant.archive_words())
    assert (
        sure_of(assistant, 0.999, {"en": top - 0.01}, min_chunks=chunks).ask(AskRequest(question)).answerable
    )
    larger = sure_of(assistant, 0.999, {"en": top - 0.01}, min_chunks=chunks + 1)
    assert not larger.ask(AskRequest(question)).answerable


def test_the_sure_score_is_opt_in_and_recorded_with_the_archive_size_it_holds_from():
    """Chosen on validation, it let English off-topic test questions through (docs/evals.md)."""
    from assistant.core.config import Settings, read_calibration

    settings = Settings()
    assert settings.rerank_sure == {} and settings.rerank_sure_min_chunks >= 4000
    assert read_calibration()["rerank_sure_provenance"]["sure"]
