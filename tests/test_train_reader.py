"""How the reader's training finds its inputs (`evals/train_reader.py`; training itself needs torch, which CI
does not install): the index's chunks that hold a question's answer, although ingest moved the title out and
doubled the line breaks."""

from __future__ import annotations

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
