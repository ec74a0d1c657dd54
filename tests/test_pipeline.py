"""Ingestion with the real embedder and real Chroma: incremental, idempotent, prune/remove without
orphans, bad input isolated, half-written articles never cited, lexical and dense sides in step."""

import json
import shutil

import pytest

from assistant.answering.context import AskRequest
from assistant.build import build_assistant, build_pipeline
from assistant.core.errors import EmbedderMismatchError, StoreBusyError
from assistant.indexes.lexical import LexicalIndex
from assistant.testing.corpus import SEED, SEED_ID, make_settings, write_distractors
from assistant.testing.embedders import ForeignEmbedder
from ingest.loaders import load_file


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    write_distractors(folder, count=3)
    (folder / "ferje.txt").write_text(
        "3. mars, 2025\n\nFerja er innstilt\n\nFerja mellom Moss og Horten er "
        "innstilt i dag på grunn av sterk vind. Bastø Fosen ber reisende følge med.",
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def settings(tmp_path, tiktoken_cache):
    return make_settings(tmp_path / "index", tiktoken_cache)


def _consistent(pipeline):
    """The invariants every ingest must leave behind."""
    store = pipeline.store
    stored = store.stored_articles()
    owners = store.chunk_owners()
    assert all(aid in stored and stored[aid].meta.content_hash == digest for aid, digest in owners.values())
    assert sum(s.chunk_count for s in stored.values()) == len(owners)
    for article_id in stored:
        article = store.get_article(article_id)
        for chunk_id in store.chunk_ids_of(article_id):
            chunk, _ = store.get_chunks([chunk_id])[chunk_id]
            assert article.text[chunk.start : chunk.end] == chunk.text
    lexical = LexicalIndex.load(pipeline.lexical.root)
    assert lexical.generation == store.generation()
    assert set(lexical.chunk_ids) == set(owners)
    rows = store.get_chunks(list(owners))
    for chunk_id, (chunk, meta) in rows.items():  # what readers serve instead of the store
        row = lexical.row(chunk_id)
        assert (row.chunk, row.article) == (chunk, meta)
    return stored, owners


def test_a_snapshot_from_before_chunk_rows_gets_them_on_the_next_ingest(corpus, settings, embedder):
    pipeline = build_pipeline(settings, embedder=embedder)
    pipeline.ingest([corpus])
    folder = pipeline.lexical.root / (pipeline.lexical.root / "CURRENT").read_text().strip()
    for name in ("rows.jsonl", "rows.offsets.npy", "rows.articles.json"):
        (folder / name).unlink()
    assert not LexicalIndex.load(pipeline.lexical.root).has_rows

    report = pipeline.ingest([corpus])
    assert (report.unchanged, report.chunks_embedded) == (5, 0)
    assert LexicalIndex.load(pipeline.lexical.root).has_rows
    _consistent(pipeline)


def test_second_run_embeds_nothing_and_changes_nothing(corpus, settings, embedder):
    pipeline = build_pipeline(settings, embedder=embedder)
    first = pipeline.ingest([corpus])
    assert (first.added, first.updated, first.rejected) == (5, 0, [])
    _stored, owners = _consistent(pipeline)
    generation = pipeline.store.generation()

    second = pipeline.ingest([corpus])
    assert (second.added, second.updated, second.unchanged, second.chunks_embedded) == (0, 0, 5, 0)
    assert pipeline.store.generation() == generation, "an unchanged corpus does not republish the index"
    assert _consistent(pipeline)[1] == owners


def test_changed_article_replaces_its_chunks_and_prune_and_remove_leave_no_orphans(
    corpus, settings, embedder
):
    pipeline = build_pipeline(settings, embedder=embedder)
    pipeline.ingest([corpus])
    old_ids = set(pipeline.store.chunk_ids_of("ferje"))

    (corpus / "ferje.txt").write_text(
        "3. mars, 2025\n\nFerja går igjen\n\nFerja mellom Moss og Horten går "
        "som normalt igjen etter at vinden har løyet.",
        encoding="utf-8",
    )
    report = pipeline.ingest([corpus])
    assert (report.updated, report.added, report.unchanged) == (1, 0, 4)
    new_ids = set(pipeline.store.chunk_ids_of("ferje"))
    assert new_ids and not (new_ids & old_ids)
    assert "går som normalt" in pipeline.store.get_article("ferje").text
    _consistent(pipeline)

    (corpus / "ferje.txt").unlink()
    assert pipeline.ingest([corpus]).removed == 0, "without --prune nothing is removed"
    assert pipeline.ingest([corpus], prune=True).removed == 1
    assert pipeline.store.get_article("ferje") is None and pipeline.store.chunk_ids_of("ferje") == []

    assert pipeline.remove(SEED_ID) and not pipeline.remove(SEED_ID)
    stored, _ = _consistent(pipeline)
    assert SEED_ID not in stored and len(stored) == 3


def test_bad_files_are_reported_while_the_rest_lands(corpus, settings, embedder):
    (corpus / "broken.json").write_text("{not json", encoding="utf-8")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    pipeline = build_pipeline(settings, embedder=embedder)
    report = pipeline.ingest([corpus])
    assert report.added == 5
    assert sorted(e.source.rsplit("/", 1)[-1] for e in report.rejected) == [
        "broken.json",
        "empty.txt",
        "image.txt",
    ]
    _consistent(pipeline)


def test_a_file_over_the_size_limit_is_rejected_by_name_while_the_rest_lands(
    corpus, settings, embedder, monkeypatch
):
    """A file larger than `MAX_FILE_BYTES` (50 MB; lowered here, rather than writing 50 MB) is refused before
    it is read, named with its size, the limit and the fix; the other files of the run land, and what the file
    held when it was smaller is kept, even by --prune."""
    import ingest.loaders

    paragraph = "Fergekaia i Vestrevik ble åpnet i går etter to års bygging. Ordføreren klippet snoren. "
    big = corpus / "kai.txt"
    big.write_text("Ny fergekai\n\n" + paragraph * 40, encoding="utf-8")
    pipeline = build_pipeline(settings, embedder=embedder)
    assert pipeline.ingest([corpus]).added == 6 and pipeline.store.get_article("kai") is not None

    big.write_text("Ny fergekai\n\n" + paragraph * 400, encoding="utf-8")  # grown, and changed
    size = big.stat().st_size
    # the limit lowered under this file, above every other file of the corpus
    monkeypatch.setattr(ingest.loaders, "MAX_FILE_BYTES", 16 * 1024)
    assert max(f.stat().st_size for f in corpus.rglob("*") if f.is_file() and f != big) < 16 * 1024 < size
    (corpus / "ny.txt").write_text(
        "4. mars, 2025\n\nNy rute\n\nFerja får en ny rute til Brattvik fra neste uke.", encoding="utf-8"
    )
    report = pipeline.ingest([corpus], prune=True)
    assert (report.added, report.unchanged, report.removed) == (1, 5, 0)
    [rejected] = report.rejected
    assert rejected.source.endswith("kai.txt")
    assert rejected.reason == (
        f"the file has {size:,} bytes; the limit is 16,384 bytes a file: split it into smaller files "
        "(a .jsonl file by its lines) and ingest those"
    )
    assert "Ny rute" in pipeline.store.get_article("ny").title
    assert pipeline.store.get_article("kai").text.count("Ordføreren") == 40  # kept as it was, not pruned
    _consistent(pipeline)


def test_a_half_written_article_is_never_cited_and_a_rerun_completes_it(corpus, settings, embedder):
    pipeline = build_pipeline(settings, embedder=embedder)
    pipeline.ingest([corpus])
    # Simulate a kill between the chunk writes and the commit point of a changed seed article.
    [seed] = load_file(corpus / SEED.name).articles
    from dataclasses import replace

    changed = replace(
        seed, text=seed.text.replace("Artikkel 4", "Artikkel 4 (endret)"), content_hash="x" * 64
    )
    chunks = pipeline.chunker.split(changed)
    pipeline.dirty_marker.touch()  # what a killed writer leaves behind
    pipeline.store.upsert_chunks(changed, chunks, embedder.embed_passages([c.text for c in chunks]))
    assistant = build_assistant(settings, embedder=embedder)
    answer = assistant.ask(AskRequest("What does Article 4 commit each side to?", top_k=8))
    assert all(
        h.article.content_hash == seed.content_hash for h in answer.retrieved if h.article.id == SEED_ID
    )
    assert "(endret)" not in json.dumps(answer.to_dict(), ensure_ascii=False)

    report = pipeline.ingest([corpus])
    assert report.unchanged == 5 and report.orphans_swept > 0
    assert not pipeline.dirty_marker.exists()
    _consistent(pipeline)


def test_one_writer_at_a_time(settings, embedder, corpus):
    pipeline = build_pipeline(settings, embedder=embedder)
    with pipeline.writer(), pytest.raises(StoreBusyError, match="Another ingest"):
        pipeline.ingest([corpus])


def test_another_embedder_is_refused_with_the_fix(corpus, settings, embedder):
    build_pipeline(settings, embedder=embedder).ingest([corpus / SEED.name])

    with pytest.raises(EmbedderMismatchError, match="kilde ingest --reset"):
        build_assistant(settings, embedder=ForeignEmbedder())
