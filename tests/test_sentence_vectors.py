"""The index's sentence vectors: written by the ingest before the chunks that hold them, read by text at query
time, whole after a killed writer, filled in for an index that predates them, and what the reranker's and the
picker's sentence features are made of."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from assistant.answering.features import PICKER_FEATURES, RERANK_FEATURES, picker_features, rerank_features
from assistant.answering.picker import SentencePicker
from assistant.answering.rerank import RERANK_MODE
from assistant.build import build_assistant, build_pipeline, build_sentence_vectors
from assistant.core.errors import ConfigError
from assistant.indexes.sentence_vectors import KEYS, VECTORS, SentenceVectorLog, chunk_sentences, sentence_key
from assistant.testing.corpus import SEED, make_settings
from assistant.testing.embedders import CountingEmbedder

SEED_QUESTION = "Hva forplikter artikkel 4 partene til?"


class PhaseLog:
    """What a pipeline reports: each phase with its total and the chunks advanced in it."""

    def __init__(self):
        self.phases: list[tuple[str, int | None, int]] = []

    def start(self, phase: str, total: int | None) -> None:
        self.phases.append((phase, total, 0))

    def advance(self, articles: int, chunks: int) -> None:
        phase, total, done = self.phases[-1]
        self.phases[-1] = (phase, total, done + chunks)

    def finish(self) -> None:
        pass


def unit(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_vectors_are_found_by_text_and_missing_ones_are_reported(tmp_path):
    log = SentenceVectorLog(tmp_path, "test/embedder", 8)
    vectors = unit(3)
    log.append(["én", "to", "tre"], vectors)
    got, found = log.lookup([sentence_key("tre"), sentence_key("fire"), sentence_key("én")])
    assert found.tolist() == [True, False, True]
    assert np.allclose(got[0], vectors[2], atol=1e-3) and np.allclose(got[2], vectors[0], atol=1e-3)
    assert not got[1].any()
    assert log.missing(["to", "fire", "fire", "fem"]) == ["fire", "fem"]
    with pytest.raises(ValueError, match="2 sentences but 1 vectors"):
        log.append(["a", "b"], vectors[:1])


def test_a_reader_sees_what_the_writer_appends_later(tmp_path):
    writer = SentenceVectorLog(tmp_path, "test/embedder", 8)
    reader = SentenceVectorLog(tmp_path, "test/embedder", 8)
    assert len(reader) == 0 and not reader.lookup([sentence_key("a")])[1].any()
    writer.append(["a"], unit(1))
    assert reader.lookup([sentence_key("a")])[1].all()
    writer.append(["b"], unit(1, seed=1))
    assert reader.lookup([sentence_key("a"), sentence_key("b")])[1].all() and len(reader) == 2


def test_a_torn_tail_from_a_killed_writer_is_ignored_then_cut(tmp_path):
    log = SentenceVectorLog(tmp_path, "test/embedder", 8)
    log.append(["a", "b"], unit(2))
    # Killed after writing a vector and half of its key: neither row is complete.
    with open(tmp_path / VECTORS, "ab") as fh:
        fh.write(b"\x01" * 16)
    with open(tmp_path / KEYS, "ab") as fh:
        fh.write(b"\x02" * 3)
    reader = SentenceVectorLog(tmp_path, "test/embedder", 8)
    assert len(reader) == 2 and reader.lookup([sentence_key("b")])[1].all()
    c = unit(1, seed=5)
    log.append(["c"], c)
    got, found = SentenceVectorLog(tmp_path, "test/embedder", 8).lookup(
        [sentence_key("c"), sentence_key("a")]
    )
    assert found.all() and np.allclose(got[0], c[0], atol=1e-3)
    assert (tmp_path / KEYS).stat().st_size == 3 * 8 and (tmp_path / VECTORS).stat().st_size == 3 * 8 * 2


def test_vectors_of_another_embedder_are_not_used_and_not_mixed(tmp_path):
    SentenceVectorLog(tmp_path, "one/embedder", 8).append(["a"], unit(1))
    other = SentenceVectorLog(tmp_path, "other/embedder", 8)
    assert not other.usable and not other.lookup([sentence_key("a")])[1].any()
    with pytest.raises(ConfigError, match="another embedder"):
        other.append(["b"], unit(1))
    (tmp_path / "log.json").write_text("{not json")
    with pytest.raises(ConfigError, match="kilde ingest"):
        SentenceVectorLog(tmp_path, "one/embedder", 8)


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    return folder


def test_ingest_stores_every_chunks_sentences_and_an_old_index_gets_them_back(
    tmp_path, corpus, tiktoken_cache, embedder, caplog
):
    settings = make_settings(tmp_path / "data", tiktoken_cache)
    counting = CountingEmbedder(embedder)
    pipeline = build_pipeline(settings, embedder=counting)
    report = pipeline.ingest([corpus])
    sentences = {s for chunk, _ in pipeline.store.iter_chunks() for s in chunk_sentences(chunk.text)}
    assert report.sentences_embedded == len(sentences) > report.chunks_embedded
    assert counting.passages == report.chunks_embedded + report.sentences_embedded
    log = build_sentence_vectors(settings, embedder)
    assert not log.missing(sorted(sentences))
    stored, found = log.lookup([sentence_key(s) for s in sorted(sentences)[:5]])
    fresh = embedder.embed_passages(sorted(sentences)[:5])
    assert found.all() and np.allclose(stored, fresh, atol=2e-3)

    counting.passages = 0
    assert pipeline.ingest([corpus]).sentences_embedded == 0 and counting.passages == 0

    # An index ingested before sentence vectors were kept: a reader says so, the next ingest computes them.
    shutil.rmtree(settings.sentence_vectors_root)
    with caplog.at_level(logging.WARNING, logger="kilde.build"):
        build_assistant(settings, embedder=embedder)
    assert "no sentence vectors yet" in caplog.text and "kilde ingest" in caplog.text
    again = pipeline.ingest([corpus])
    assert again.chunks_embedded == 0 and again.sentences_embedded == len(sentences)
    assert counting.passages == len(sentences)
    assert not build_sentence_vectors(settings, embedder).missing(sorted(sentences))


def test_a_store_written_without_an_ingest_gets_every_chunks_sentence_vectors_once(
    tmp_path, corpus, tiktoken_cache, embedder, caplog
):
    settings = make_settings(tmp_path / "data", tiktoken_cache)
    counting = CountingEmbedder(embedder)
    pipeline = build_pipeline(settings, embedder=counting)
    pipeline.ingest([corpus])
    sentences = sorted({s for chunk, _ in pipeline.store.iter_chunks() for s in chunk_sentences(chunk.text)})
    # As the scale benchmark's synthetic store: chunks and a generation, but no sentence vectors.
    shutil.rmtree(settings.sentence_vectors_root)
    counting.passages = 0
    progress = PhaseLog()
    assert pipeline.complete_sentence_vectors(progress) == len(sentences) == counting.passages
    # Reading the store back is a phase of its own, every chunk counted, before the embedding.
    chunks = pipeline.store.counts()[1]
    assert progress.phases == [
        ("Checking sentence vectors", chunks, chunks),
        ("Sentence vectors", chunks, chunks),
    ]
    assert not build_sentence_vectors(settings, embedder).missing(sentences)
    with caplog.at_level(logging.WARNING, logger="kilde.build"):
        build_assistant(settings, embedder=embedder)
    assert "no sentence vectors yet" not in caplog.text
    assert pipeline.complete_sentence_vectors() == 0 and counting.passages == len(sentences)


def test_reranker_and_picker_features_use_the_stored_sentence_vectors(assistant):
    retriever = assistant.retriever
    pool, query = retriever.pool(SEED_QUESTION)
    assert query.vector is not None and retriever.reranker.sentences is not None
    rows = rerank_features(query, pool.hits, sentences=retriever.reranker.sentences)
    best = rows[:, RERANK_FEATURES.index("sd_best")]
    assert np.isfinite(best).all() and ((best > 0) & (best <= 1.0001)).all()
    # Each chunk's best sentence cosine is what the question's vector and that sentence's own embedding give.
    top = int(np.argmax(best))
    texts = chunk_sentences(pool.hits[top].chunk.text)
    fresh = assistant.retriever.embedder.embed_passages(texts) @ query.vector
    assert best[top] == pytest.approx(float(fresh.max()), abs=2e-3)
    assert np.nanmin(rows[:, RERANK_FEATURES.index("sd_best_gap")]) == 0
    # Without the vectors the features are missing, not zero: the model tells the two apart.
    assert np.isnan(rerank_features(query, pool.hits)[:, RERANK_FEATURES.index("sd_best")]).all()

    retrieval = retriever.retrieve(SEED_QUESTION, 3, mode=RERANK_MODE)
    spans = SentencePicker.spans(retrieval.hits)
    rows = picker_features(query, retrieval.hits, spans, retriever.reranker.sentences)
    dense = rows[:, PICKER_FEATURES.index("s_dense")]
    assert np.isfinite(dense).all() and rows[:, PICKER_FEATURES.index("s_dense_rank")].min() == 1


def test_answerers_take_stored_vectors_and_embed_only_what_the_index_lacks(tmp_path, embedder):
    from assistant.answering.extractive import SentenceVectors

    stored = ["Artikkel 4 i avtalen sier at partene hjelper hverandre.", "Avtalen ble signert i Pyongyang."]
    log = SentenceVectorLog(tmp_path, embedder.name, embedder.dim)
    log.append(stored, embedder.embed_passages(stored))
    counting = CountingEmbedder(embedder)
    vectors = SentenceVectors(counting, log)
    new = "En setning som ingen ingest har sett."
    got = vectors.get([stored[1], new, stored[0]])
    assert counting.passages == 1  # only the sentence the index lacks
    expected = embedder.embed_passages([stored[1], new, stored[0]])
    assert np.allclose(got, expected, atol=2e-3)
    vectors.get([stored[0], stored[1]])
    assert counting.passages == 1
