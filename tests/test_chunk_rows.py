"""The chunk rows of a lexical snapshot: what readers serve instead of the store must be exactly what was
written, and a damaged or foreign rows file is never served."""

from assistant.core.types import ArticleMeta, Chunk
from assistant.indexes.chunk_rows import ARTICLES_FILE, OFFSETS_FILE, ROWS_FILE, ChunkRows
from assistant.indexes.lexical import LexicalIndex, analyse, analyse_sentences
from assistant.indexes.sentence_vectors import sentence_key

TEXTS = [
    "Ferja er innstilt. «Vi beklager», sier Bastø Fosen.\nNeste avgang er kl. 18.",
    'Emoji 🚢 og "anførsel" og \\ skråstrek. Lone surrogate \ud800 from a JSON file.',
    "",
]


def _rows():
    out = []
    for number, text in enumerate(TEXTS):
        # Two versions of one article: each chunk keeps the version it was written for.
        meta = ArticleMeta(
            "sak-1", "Sak én" if number % 2 else "", "2025-03-03", "Avis", None, "nb", f"hash{number % 2}"
        )
        out.append((Chunk(f"sak-1#{number}", "sak-1", number, text, 0, len(text), 7), meta))
    return out


def test_rows_round_trip_with_their_stems(tmp_path):
    index = LexicalIndex.build(_rows(), "g1")
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded.has_rows and loaded.folder == (tmp_path / "CURRENT").read_text()
    for chunk, meta in _rows():
        row = loaded.row(chunk.id)
        assert (row.chunk, row.article) == (chunk, meta)
        assert row.sentences == analyse_sentences(chunk.text, "nb")
        assert row.title_stems == analyse(meta.title, "nb")
        assert row.sentence_keys == [sentence_key(chunk.text[s:e]) for s, e, _ in row.sentences]
    assert loaded.row("sak-9#0") is None


def test_a_torn_or_foreign_rows_file_is_not_served(tmp_path):
    LexicalIndex.build(_rows(), "g1").save(tmp_path)
    folder = tmp_path / (tmp_path / "CURRENT").read_text()
    rows = (folder / ROWS_FILE).read_bytes()
    (folder / ROWS_FILE).write_bytes(rows[:-10])  # cut short
    assert ChunkRows.load(folder, len(TEXTS)) is None
    loaded = LexicalIndex.load(tmp_path)
    assert loaded is not None and not loaded.has_rows and loaded.row("sak-1#0") is None  # BM25 still works

    (folder / ROWS_FILE).write_bytes(rows)
    assert ChunkRows.load(folder, len(TEXTS) + 1) is None  # rows of another snapshot's chunks
    header = (folder / ARTICLES_FILE).read_text(encoding="utf-8")
    (folder / ARTICLES_FILE).write_text(header.replace('"format": 1', '"format": 0'), encoding="utf-8")
    assert ChunkRows.load(folder, len(TEXTS)) is None  # rows of another format
    (folder / ARTICLES_FILE).write_text(header, encoding="utf-8")
    assert ChunkRows.load(folder, len(TEXTS)) is not None
    (folder / OFFSETS_FILE).unlink()
    assert ChunkRows.load(folder, len(TEXTS)) is None


def test_an_article_filter_keeps_the_search_to_those_articles(tmp_path):
    from assistant.core.types import Filters, article_of_chunk
    from ingest.chunking import chunk_id

    texts = {
        "sak#1": "Ferja er innstilt i dag.",
        "sak-2": "Ferja går igjen i morgen.",
        "sak-3": "Bussen er sen.",
    }
    rows = []
    for article, text in texts.items():
        meta = ArticleMeta(article, "", "2025-03-03", "Avis", None, "nb", "h")
        rows.append((Chunk(chunk_id(article, 0, text), article, 0, text, 0, len(text), 5), meta))
    assert [article_of_chunk(chunk.id) for chunk, _ in rows] == list(texts)  # an id may hold the separator
    LexicalIndex.build(rows, "g1").save(tmp_path)
    index = LexicalIndex.load(tmp_path)  # the filter works on a loaded snapshot, not only a fresh one

    def found(filters):
        return {article_of_chunk(hit.chunk_id) for hit in index.search("ferja", 10, filters)}

    assert found(Filters()) == {"sak#1", "sak-2"}
    assert found(Filters(articles=("sak-2",))) == {"sak-2"}
    assert found(Filters(articles=("sak#1", "sak-3"))) == {"sak#1"}
    assert found(Filters(articles=("nope",))) == set()
