"""`python -m evals.reading_choice`: what the reading stage's choice among its read chunks reaches, against a
perfect choice among the same chunks."""

from __future__ import annotations

import pytest

from evals.reading_choice import QuestionReading, Quoted, main, summary


def read(*quoted: tuple[bool, bool], gold_read: bool | None = None) -> QuestionReading:
    """Quotes as (gold chunk, holds the answer), in the stage's order."""
    quotes = tuple(Quoted(gold, holds) for gold, holds in quoted)
    return QuestionReading(quotes, any(q.gold_chunk for q in quotes) if gold_read is None else gold_read)


def test_the_summary_sets_the_choice_against_the_best_of_the_read_chunks():
    per_question = [
        read((True, True), (False, False)),  # chosen right
        read((False, False), (True, True)),  # another read chunk held it
        read((True, False), (False, False)),  # the gold chunk chosen, its quote missed the answer
        read((False, False), (False, False)),  # nowhere in what was read
        read(gold_read=True),  # the gold chunk read, but nothing quotable
    ]
    assert summary(per_question) == {
        "questions": 5,
        "chosen": 20.0,
        "best_of_read": 40.0,
        "gold_read": 80.0,
        "chosen_gold": 40.0,
    }
    assert summary([])["questions"] == 0


def test_test_sets_are_not_explored(tmp_path):
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "--dataset", "norquad:news:test"])


def test_the_picker_weight_reorders_the_readings_by_preference_plus_the_picker_score():
    stage_prefers_a_wrong_quote = QuestionReading(
        (
            Quoted(False, False, preference=3.0, picker_score=-1.0),
            Quoted(True, True, preference=2.0, picker_score=1.0),
        ),
        gold_read=True,
    )
    stage_is_right = QuestionReading(
        (
            Quoted(True, True, preference=6.0, picker_score=0.0),
            Quoted(False, False, preference=1.0, picker_score=1.5),
        ),
        gold_read=True,
    )
    figures = summary([stage_prefers_a_wrong_quote, stage_is_right], picker_weights=[0.0, 1.0, 4.0])
    assert figures["chosen"] == 50.0
    # 0: the stage's own order; 1: the picker turns the first question and keeps the second (6 > 1 + 1.5);
    # 4: it turns the second too (1 + 6 > 6).
    assert figures["chosen_with_picker"] == {"0.0": 50.0, "1.0": 100.0, "4.0": 50.0}
    assert "chosen_with_picker" not in summary([stage_is_right])
