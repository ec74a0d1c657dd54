"""The shipped reader (`assistant/models/reader.onnx`) on real NorQuAD validation passages: spans at exact
character offsets of the chunk's text, long chunks read in windows, several chunks in one batched call, and
clear results for bad input."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from assistant.answering.reader import (
    SETTINGS_FILE,
    SPINNING,
    Reader,
    Reading,
    best_span,
    line_breaks,
    question_ids,
    windows,
)
from assistant.core.errors import BadInputError
from assistant.core.sentences import sentence_spans
from assistant.core.types import Chunk
from assistant.indexes.e5_weights import default_model_path
from evals.reader_eval import f1, gold_questions


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader()


@pytest.fixture(scope="module")
def validation():
    return gold_questions("validation")


def chunk(text: str, id: str = "a#0") -> Chunk:
    return Chunk(
        id=id, article_id=id.split("#")[0], position=0, text=text, start=0, end=len(text), token_count=0
    )


def test_spans_are_exact_offsets_into_the_chunk_and_mostly_right(reader, validation):
    questions = validation[:20]
    scores = []
    for q in questions:
        (reading,) = reader.read(q.question, [chunk(q.context, "news-x#3")])
        assert isinstance(reading, Reading) and reading.chunk_id == "news-x#3"
        assert 0 <= reading.answer_start < reading.answer_end <= len(q.context)
        span = q.context[reading.answer_start : reading.answer_end]
        assert span == span.strip() and span
        assert np.isfinite(reading.span_score) and np.isfinite(reading.no_answer_score)
        scores.append(max(f1(span, a) for a in q.answers))
    assert np.mean(scores) >= 0.5, scores


def test_a_long_chunk_is_read_in_windows_and_late_answers_are_found(reader, validation):
    late = [q for q in validation if q.context.find(q.answers[0]) > 0.7 * len(q.context)][:5]
    assert late
    hits = 0
    for q in late:
        windows = reader.tokenizer.encode(q.context).ids
        assert len(windows) > reader.settings.max_tokens  # more than one window
        (reading,) = reader.read(q.question, [chunk(q.context)])
        hits += max(f1(q.context[reading.answer_start : reading.answer_end], a) for a in q.answers) > 0
    assert hits >= 3


def test_one_call_reads_several_chunks_in_their_order_as_if_alone(reader, validation):
    q = validation[0]
    others = [validation[i].context for i in (40, 80, 120, 160)]
    chunks = [chunk(t, f"other-{i}#0") for i, t in enumerate(others[:2])]
    chunks += [chunk(q.context, "gold#0"), *(chunk(t, f"other-{i}#0") for i, t in enumerate(others[2:], 2))]
    readings = reader.read(q.question, chunks)
    assert [r.chunk_id for r in readings] == [c.id for c in chunks]
    for reading, c in zip(readings, chunks, strict=True):
        assert 0 <= reading.answer_start < reading.answer_end <= len(c.text)
    # the gold chunk reads the same alone: padding is masked, and activations stay float (only the weights are
    # int8), so no other chunk of the batch moves its scores
    (alone,) = reader.read(q.question, [chunks[2]])
    assert (alone.answer_start, alone.answer_end) == (readings[2].answer_start, readings[2].answer_end)
    assert alone.span_score == pytest.approx(readings[2].span_score, abs=1e-3)
    assert alone.no_answer_score == pytest.approx(readings[2].no_answer_score, abs=1e-3)


def test_the_answers_passage_outscores_unrelated_ones(reader, validation):
    q = validation[0]
    chunks = [chunk(validation[i].context, f"other-{i}#0") for i in (40, 80, 120, 160)] + [
        chunk(q.context, "gold#0")
    ]
    best = max(reader.read(q.question, chunks), key=lambda r: r.margin)
    assert best.chunk_id == "gold#0"


def test_a_passage_about_something_else_scores_no_answer_above_the_span(reader, validation):
    pairs = [(validation[i], validation[(i + 97) % len(validation)]) for i in range(0, 60, 12)]
    refused = 0
    for q, other in pairs:
        if q.context == other.context:
            continue
        (reading,) = reader.read(q.question, [chunk(other.context)])
        refused += reading.no_answer_score > reading.span_score
    assert refused >= 4


def test_bad_input_gets_a_clear_result(reader):
    with pytest.raises(BadInputError):
        reader.read("", [chunk("Oslo er hovedstaden i Norge.")])
    with pytest.raises(BadInputError):
        reader.read("   \n", [chunk("Oslo er hovedstaden i Norge.")])
    assert reader.read("Hva er hovedstaden i Norge?", []) == []
    (empty,) = reader.read("Hva er hovedstaden i Norge?", [chunk("")])
    assert (empty.answer_start, empty.answer_end, empty.span_score) == (0, 0, float("-inf"))


def test_the_readers_idle_threads_sleep_and_leave_the_cores_to_the_rest_of_the_answer(reader):
    options = reader._session.get_session_options()
    assert options.get_session_config_entry(SPINNING) == "0"
    assert options.intra_op_num_threads == min(2, os.cpu_count() or 1)


def test_the_shipped_settings_name_the_word_embeddings_they_were_trained_with():
    settings = json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))
    digest = hashlib.sha256(default_model_path().read_bytes()).hexdigest()
    assert settings["word_embeddings"]["sha256"] == digest


def test_the_runner_up_span_lies_in_other_sentences_of_the_same_chunk(reader, validation):
    seen = 0
    for q in validation[:12]:
        (reading,) = reader.read(q.question, [chunk(q.context)])
        if not np.isfinite(reading.second_score):
            continue
        seen += 1
        text = q.context
        assert 0 <= reading.second_start < reading.second_end <= len(text)
        first = [
            (s, e) for s, e in sentence_spans(text) if s < reading.answer_end and reading.answer_start < e
        ]
        assert reading.second_end <= first[0][0] or reading.second_start >= first[-1][1]
        assert text[reading.second_start : reading.second_end].strip()
    assert seen >= 6  # passages of several sentences have one
    (single,) = reader.read("Hvem vant?", [chunk("Rosenborg vant kampen 2-0 i Trondheim.")])
    assert single.second_score == -np.inf


# A NorQuAD news chunk (CC0) whose best span, read without regard to lines, runs from the end of one
# paragraph into the first name of the next.
IDRETTSGALLA = (
    "Nå er nominasjonen til Idrettsgallaen på Hamar lørdag 4. januar klar, skriver NRK.\n\n"
    "Utfordrer vinteridretten\n\n"
    "I 2019 var det ingen prisvinnere fra fotballens verden, men flere stjerneskudd er med og preger årets "
    "nominasjoner.\n\n"
    "Erling Braut Haaland (19), Martin Ødegaard (21) er begge nominert til den prestisjetunge prisen «Årets "
    "navn», som stemmes fram av folket. I tillegg kan Ødegaard bli årets mannlige utøver, mens Haaland er "
    "nominert til årets gjennombrudd-prisen."
)


def test_line_breaks_count_the_breaks_before_each_tokens_ends():
    text = "Tittel\n\nFørste setning her.\nAndre"
    offsets = np.array([[0, 6], [8, 14], [15, 22], [23, 27], [28, 33]])
    lines = line_breaks(text, offsets)
    assert lines.tolist() == [[0, 0], [2, 2], [2, 2], [2, 2], [3, 3]]
    # a span crosses a break exactly when its last token's end lies beyond more breaks than its first's start
    assert lines[4, 1] > lines[1, 0] and not lines[3, 1] > lines[1, 0]
    assert line_breaks("", np.zeros((0, 2), dtype=np.int64)).shape == (0, 2)


def test_a_span_never_runs_across_a_line_break(reader):
    question = "Who won the Norwegian football league in 2019?"
    # read without the lines, the model's best span crosses a paragraph break: what the reader must not quote
    encoding = reader.tokenizer.encode(IDRETTSGALLA)
    (window,) = windows(
        reader.tokenizer,
        question_ids(reader.tokenizer, question, reader.settings),
        encoding,
        0,
        reader.settings,
    )
    (s,), (e,) = reader.logits([window])
    _, first, last = best_span(s, e, window, reader.settings.max_answer_tokens)
    assert "\n" in IDRETTSGALLA[window.offsets[first, 0] : window.offsets[last, 1]]
    (reading,) = reader.read(question, [chunk(IDRETTSGALLA)])
    span = IDRETTSGALLA[reading.answer_start : reading.answer_end]
    assert span and "\n" not in span
    if np.isfinite(reading.second_score):
        assert "\n" not in IDRETTSGALLA[reading.second_start : reading.second_end]


def test_a_chunk_is_read_under_its_title_and_no_span_starts_in_the_title(reader, monkeypatch):
    from dataclasses import replace

    text = "Han sa at det var en fin dag for alle som kom."
    title = "Ola Nordmann vant valget i Oslo"
    monkeypatch.setattr(reader, "settings", replace(reader.settings, read_titles=True))
    (titled,) = reader.read("Hvem vant valget i Oslo?", [chunk(text)], [title])
    # the only answer is in the title, which is read but never quoted: the span lies in the chunk's own text
    assert 0 <= titled.answer_start < titled.answer_end <= len(text)
    assert text[titled.answer_start : titled.answer_end].strip()
    (plain,) = reader.read("Hvem vant valget i Oslo?", [chunk(text)])
    assert titled.no_answer_score != pytest.approx(plain.no_answer_score, abs=1e-3)  # the title was read

    monkeypatch.setattr(reader, "settings", replace(reader.settings, read_titles=False))
    (ignored,) = reader.read("Hvem vant valget i Oslo?", [chunk(text)], [title])
    assert (ignored.answer_start, ignored.answer_end) == (plain.answer_start, plain.answer_end)
    assert ignored.no_answer_score == pytest.approx(plain.no_answer_score, abs=1e-3)


def test_titled_readings_keep_exact_offsets_into_the_chunk(reader, validation, monkeypatch):
    from dataclasses import replace

    monkeypatch.setattr(reader, "settings", replace(reader.settings, read_titles=True))
    found = 0
    for q in validation[:12]:
        title, _, body = q.context.partition("\n")  # NorQuAD passages begin with their title
        (reading,) = reader.read(q.question, [chunk(body)], [title])
        assert 0 <= reading.answer_start < reading.answer_end <= len(body)
        span = body[reading.answer_start : reading.answer_end]
        assert span == span.strip() and span
        found += any(a in span or span in a for a in q.answers)
        if np.isfinite(reading.second_score):
            assert 0 <= reading.second_start < reading.second_end <= len(body)
            assert body[reading.second_start : reading.second_end].strip()
    assert found >= 6
