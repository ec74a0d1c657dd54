"""How the reader's training finds its inputs (`evals/train_reader.py`; training itself needs torch, which CI
does not install): the index's chunks that hold a question's answer, although ingest moved the title out and
doubled the line breaks."""

from __future__ import annotations

import pytest

from evals.train_reader import Negatives, TrainQuestion, squeezed

CONTEXT = (
    "Budsjettet er vedtatt\nKommunestyret vedtok budsjettet torsdag.\n"
    "Eiendomsskatten økes med to promille fra januar.\nSkolene skjermes."
)


def question(answer: str) -> TrainQuestion:
    at = CONTEXT.index(answer)
    return TrainQuestion("a1-q1", "news", "a1", "Hvor mye økes skatten?", CONTEXT, at, at + len(answer))


def negatives_with(chunks: dict[str, list[str]]) -> Negatives:
    found = object.__new__(Negatives)  # the index is not needed to match chunks
    found.by_article = {article: [(t, *squeezed(t)) for t in texts] for article, texts in chunks.items()}
    return found


def test_squeezed_keeps_each_characters_offset():
    text, offsets = squeezed("a\n\n b  c")
    assert text == "a b c"
    assert [("a\n\n b  c")[i] for i in offsets] == ["a", "\n", "b", " ", "c"]


def test_the_chunks_that_hold_the_answer_are_found_despite_ingests_line_breaks():
    chunks = {
        "a1": [
            "Kommunestyret vedtok budsjettet torsdag.\n\nEiendomsskatten økes med to promille fra januar.",
            "Skolene skjermes.",
        ],
        "other": ["Eiendomsskatten økes med to promille fra januar."],
    }
    ((text, start, end),) = negatives_with(chunks).answer_chunks(question("to promille"))
    assert text == chunks["a1"][0] and text[start:end] == "to promille"


def test_an_answer_across_two_chunks_has_no_answer_chunk():
    chunks = {
        "a1": ["Kommunestyret vedtok budsjettet torsdag.", "Eiendomsskatten økes med to promille fra januar."]
    }
    assert negatives_with(chunks).answer_chunks(question("torsdag.\nEiendomsskatten")) == []


def test_english_training_questions_are_train_questions_apart_from_every_english_eval_set():
    import json

    from evals.datasets import DATA
    from evals.train import split_keys
    from evals.train_reader import (
        ENGLISH_QUESTIONS,
        MORE_ENGLISH_QUESTIONS,
        WIKIPEDIA_ENGLISH_QUESTIONS,
        english_questions,
        train_questions,
    )

    questions = train_questions()
    files = (ENGLISH_QUESTIONS, MORE_ENGLISH_QUESTIONS, WIKIPEDIA_ENGLISH_QUESTIONS)
    by_file = {
        path: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] for path in files
    }
    written = [item for items in by_file.values() for item in items]
    english = english_questions(questions, files)
    assert len(english) == len(written) == len({item["key"] for item in written})
    # the two news halves, then Wikipedia: every train question once, each file of one domain
    assert {item["key"] for item in written} == {q.key for q in questions}
    domains = {q.key: q.domain for q in questions}
    for (path, items), domain in zip(by_file.items(), ("news", "news", "wikipedia"), strict=True):
        assert {domains[item["key"]] for item in items} == {domain}, path.name
    assert all(item["question"] != item["question_nb"] for item in written)  # written in English, not copied

    twins = {q.key: q for q in questions}
    for q, item in zip(english, written, strict=True):
        twin = twins[item["key"]]
        assert (q.context, q.answer, q.article) == (twin.context, twin.answer, twin.article)
        # read as the reading stage reads an English question: the question, then its dictionary translation
        assert q.question.startswith(item["question"]) and len(q.question) > len(item["question"])

    held_out = {f"{article}-q{qid}" for keys in split_keys().values() for article, qid in keys}
    english_eval = set()
    for path in DATA.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if item.get("language") == "en" and "norquad_question_id" in item:
                english_eval |= {f"{a}-q{item['norquad_question_id']}" for a in item["gold_article_ids"]}
    assert english_eval, "the English eval sets name their NorQuAD questions"
    assert english_eval <= held_out  # the keys are spelled alike: every English eval question is held out
    assert not {item["key"] for item in written} & (held_out | english_eval)


def test_english_question_files_are_recorded_from_the_repository_root(tmp_path):
    from evals.train_reader import MORE_ENGLISH_QUESTIONS, repo_path

    assert repo_path(MORE_ENGLISH_QUESTIONS) == "evals/data/norquad_train_en_2.jsonl"
    with pytest.raises(SystemExit, match="no such file"):
        repo_path(tmp_path / "missing.jsonl")
    outside = tmp_path / "questions.jsonl"
    outside.write_text("{}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="must lie in the repository"):
        repo_path(outside)
