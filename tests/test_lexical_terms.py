"""The BM25 side's terms: a decimal number or a clock time is one term, so a bare number in a question does not
match every decimal that holds it, and a snapshot analysed otherwise is rebuilt rather than searched."""

import json
import logging

from assistant.core.types import NO_FILTERS, ArticleMeta, Chunk
from assistant.indexes.lexical import (
    ANALYSER_VERSION,
    LexicalIndex,
    LexicalSide,
    analyse,
    analyse_query,
    holds_within,
)
from assistant.indexes.store import ChromaStore
from ingest.articles import make_article

TEXTS = {
    "avtale": "Artikkel 4 i avtalen sier at partene skal hjelpe hverandre.",
    "temperatur": "Laveste temperatur i natt: Trysil - Nordre Kanken - 4,3 grader.",
    "valg": "Partiet fikk 3,5 prosent ved valget 04.05.2019, klokken 14.30 var det klart.",
}


def _index() -> LexicalIndex:
    rows = []
    for name, text in TEXTS.items():
        meta = ArticleMeta(name, "", "2025-01-01", "Avis", None, "nb", f"hash-{name}")
        rows.append((Chunk(f"{name}#0", name, 0, text, 0, len(text), 12), meta))
    return LexicalIndex.build(rows, "g1")


def _found(index: LexicalIndex, query: str) -> list[str]:
    return [hit.chunk_id.split("#")[0] for hit in index.search(query, 5, NO_FILTERS)]


def test_decimals_and_clock_times_are_one_term_with_either_separator():
    assert "4.3" in analyse_query("Kanken - 4,3")
    assert "4" not in analyse_query("Kanken - 4,3")
    assert analyse_query("3.5 percent")[0] == analyse_query("3,5 prosent")[0] == "3.5"
    assert "14.30" in analyse_query("klokken 14.30.")
    # A number with more separators is a date or a thousands-separated figure: its parts are what is asked for.
    assert {"04", "05", "2019"} <= set(analyse_query("04.05.2019"))
    assert {"1", "2", "3"} <= set(analyse_query("1,2,3"))


def test_a_bare_number_finds_the_number_not_the_decimals_that_hold_it():
    index = _index()
    assert _found(index, "Artikkel 4") == ["avtale"]
    assert _found(index, "4,3 grader") == ["temperatur"]
    assert _found(index, "3.5 percent") == ["valg"]
    assert _found(index, "2019") == ["valg"]


def test_a_snapshot_analysed_otherwise_is_rebuilt_from_the_store_with_a_warning(tmp_path, caplog):
    store = ChromaStore.open(tmp_path, None, "terms")
    store.ensure_embedder("fixed", 2)
    for name, text in TEXTS.items():
        article = make_article(
            title="", body=text, given_id=name, date="2025-01-01", source="Avis", language="nb"
        )
        chunk = Chunk(f"{name}#0", name, 0, article.text, 0, len(article.text), 12)
        store.upsert_chunks(article, [chunk], [[1.0, 0.0]])
        store.upsert_article(article, "sig", 1)
    root = tmp_path / "lexical"
    LexicalSide(store, root).rebuild()
    folder = root / (root / "CURRENT").read_text().strip()
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert meta["analyser"] == ANALYSER_VERSION
    del meta["analyser"]  # as written before decimals were one term
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    assert LexicalIndex.load(root) is None
    assert LexicalIndex.analysed_otherwise(root)

    reader = LexicalSide(store, root)
    with caplog.at_level(logging.WARNING, logger="kilde.lexical"):
        assert _found(reader.current(), "Artikkel 4") == ["avtale"]
    assert "rebuilding it from the store" in caplog.text
    assert not LexicalIndex.analysed_otherwise(root)
    assert reader.current().generation == store.generation()
    assert LexicalIndex.load(root) is not None  # the rebuilt snapshot was saved for the next reader


def test_a_term_is_held_within_a_compound_as_its_head_or_within_a_derivation_as_its_stem():
    [avtale, pakt, gjenoppliver] = analyse("avtale pakt gjenoppliver", "nb")
    [forsvarsavtale, forsvarspakt, gjenoppliving] = analyse("forsvarsavtale forsvarspakt gjenoppliving", "nb")
    assert holds_within(avtale, forsvarsavtale) and holds_within(pakt, forsvarspakt)
    assert holds_within(gjenoppliver, gjenoppliving)
    # not the word itself, not a short word's beginning, not a head after too little, not a number
    assert not holds_within(pakt, pakt) and not holds_within("stat", "statsminist")
    assert not holds_within("land", "island") and not holds_within("961", "1961")
