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
