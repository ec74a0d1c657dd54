"""`python -m evals.reading_choice`: what the reading stage's choice among its read chunks reaches, against a
perfect choice among the same chunks."""

from __future__ import annotations

import pytest

from evals.reading_choice import ReadChunk, main, summary


def chunk(rank: int, holds: bool, gold: bool | None = None) -> ReadChunk:
    return ReadChunk(rank, 1.0, holds if gold is None else gold, holds)


def test_the_summary_sets_the_choice_against_the_best_of_the_read_chunks():
    per_question = [
        [chunk(0, True), chunk(1, False)],  # chosen right
        [chunk(2, False), chunk(0, True)],  # another read chunk held it
        [chunk(0, False, gold=True), chunk(1, False)],  # the gold chunk chosen, its quote missed the answer
        [chunk(0, False), chunk(1, False)],  # nowhere in what was read
        [],  # nothing read
    ]
    assert summary(per_question) == {
        "questions": 5,
        "chosen": 20.0,
        "best_of_read": 40.0,
        "gold_read": 60.0,
        "chosen_gold": 40.0,
    }
    assert summary([])["questions"] == 0


def test_test_sets_are_not_explored(tmp_path):
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "--dataset", "norquad:news:test"])
