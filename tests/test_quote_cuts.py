"""A quote taken from a sentence longer than a chunk, which ingest cuts into pieces at word boundaries
(`ingest.chunking`), begins and ends where a reader can take it up, at the sentence's own start or end, a clause
boundary or a word, and the answer marks with "…" where the sentence goes on; the citation's offsets are still
exactly the characters quoted, and the reader's answer span lies inside (`assistant/answering/cuts.py`). The
articles are real NorQuAD Wikipedia articles whose sentences run past a chunk."""

from __future__ import annotations

import json

import pytest

from assistant.testing.corpus import ROOT
from tests.citation_offsets import check_citation

pytestmark = pytest.mark.integration

WIKIPEDIA = ROOT / "corpus" / "norquad" / "wikipedia" / "answers_1.json"
# "Guangxu-keiseren (kinesisk: 光緒, … keiser fra 25. februar 1875, … Qing Dezong), var den niende i rekken av de
# Qing-keisere som regjerte i Kina." (372 characters, 192 tokens) and Regjeringskvartalet's "Utbyggingshistorien
# spenner fra … og fasadebevaring av en gammel bygård som del av det nye anlegget." (608 characters, 215 tokens)
LONG_OPENINGS = ("Guangxu-keiseren (kinesisk", "Utbyggingshistorien spenner")


@pytest.fixture(scope="module")
def long_sentences(tmp_path_factory, tiktoken_cache, embedder):
    """An index of the two articles alone, the reader on, so its answer spans are kept inside the quotes too."""
    from assistant.build import build_assistant, build_pipeline
    from assistant.testing.corpus import make_settings

    root = tmp_path_factory.mktemp("long-sentences")
    data = json.loads(WIKIPEDIA.read_text(encoding="utf-8"))
    data["data"] = [
        article
        for article in data["data"]
        if any(opening in p["context"] for p in article["paragraphs"] for opening in LONG_OPENINGS)
    ]
    corpus = root / "corpus" / "wikipedia" / "answers_1.json"
    corpus.parent.mkdir(parents=True)
    corpus.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    settings = make_settings(root / "index", tiktoken_cache, reader=True)
    report = build_pipeline(settings, embedder=embedder).ingest([corpus.parent])
    assert not report.rejected and report.added == 2, report.to_dict()
    return build_assistant(settings, embedder=embedder)


def ask(assistant, question: str):
    from assistant.answering.context import AskRequest

    return assistant.ask(AskRequest(question=question))


def at_words(text: str, start: int, end: int) -> bool:
    """`text[start:end]` opens at a word's start and closes at a word's end, or before a clause boundary."""
    opens = start == 0 or text[start - 1].isspace()
    closes = end == len(text) or text[end].isspace() or text[end] in ",;:"
    return opens and closes


@pytest.mark.parametrize(
    ("question", "opening", "closing", "answer"),
    [
        # the answer in the piece that ends the sentence: "Qing-keisere som regjerte i Kina."
        ("Hvor regjerte Qing-keiserne?", "… ", "", "i Kina"),
        # in the piece that opens it, "… født Zaitian 載湉; posthume navn: …, Qing Dezong), var den niende i rekken
        # av de", cut short before "var", mid-clause
        ("Når ble Guangxu keiser i Kina?", "", " …", "25. februar 1875"),
    ],
)
def test_a_quote_of_an_over_long_sentence_is_taken_up_where_a_reader_can_and_marked(
    long_sentences, question, opening, closing, answer
):
    result = ask(long_sentences, question)
    citation = result.citations[0]
    text = long_sentences.store.get_article(citation.article_id).text
    check_citation(result.to_dict()["citations"][0], text)
    assert answer in text[citation.answer_start : citation.answer_end], citation
    assert at_words(text, citation.start, citation.end), citation.quote
    assert result.answer.startswith(f"{opening}{citation.quote}{closing} [1]"), result.answer
    if closing:  # cut at the sentence's last clause boundary that keeps the answer, not mid-clause
        assert text[citation.end] == "," and citation.quote.endswith("Qing Dezong)"), citation.quote
    assert all(s.supported for s in result.sentences), result.sentences


def test_a_quote_that_opens_mid_clause_opens_after_the_clause_boundary(long_sentences):
    """The piece "kvartalsstruktur og byggehøyde mot gaten, og fasadebevaring av en gammel bygård som del av det nye
    anlegget." is quoted from its clause "og fasadebevaring …", marked, and a follow-up still finds the article the
    quote came from (`Assistant.quoted_articles`)."""
    from assistant.core.types import Filters, Turn

    question = "Hva slags bygård ble bevart som del av det nye anlegget i Regjeringskvartalet?"
    result = ask(long_sentences, question)
    citation = result.citations[0]
    text = long_sentences.store.get_article(citation.article_id).text
    assert citation.quote == "og fasadebevaring av en gammel bygård som del av det nye anlegget.", (
        result.answer
    )
    assert text[citation.start : citation.end] == citation.quote and text[: citation.start].endswith(
        "gaten, "
    )
    assert result.answer.startswith(f"… {citation.quote} [1]"), result.answer
    history = (Turn("user", question), Turn("assistant", result.answer))
    quoted = long_sentences.quoted_articles(history, Filters())
    assert next(quoted).id == citation.article_id


PIECES = (
    "Intro. The long one opened here and 42 was the answer, in a piece of it with words enough to go on,"
    " and on. Next."
)


def test_without_a_reader_span_a_piece_is_kept_whole_and_only_marked():
    """A quote the rule or the picker chose has no answer span to keep: leaving out the clause before its comma
    would leave out what it was chosen for ("42 was the answer")."""
    from assistant.answering.cuts import cut_quote

    start = PIECES.index("42 was")
    end = PIECES.index(" and on.")  # ingest cuts at a space
    cut = cut_quote(PIECES, start, end)
    assert (cut.start, cut.end) == (start, end)
    assert cut.opens_cut and cut.closes_cut


@pytest.mark.parametrize(
    ("text", "opens_chunk", "closes_chunk", "piece"),
    [
        ("Produksjonen fra feltet tok til i 1971.", False, True, False),
        ("Han sa: «Det går bra.»", False, True, False),
        ("Qing-keisere som regjerte i Kina.", True, True, True),
        (
            "kvartalsstruktur og byggehøyde mot gaten, og fasadebevaring av en gammel bygård.",
            True,
            False,
            True,
        ),
        ("39 to the square, finally sold 🎟️ seventeen thousand tickets in total.", True, True, True),
        ("Guangxu-keiseren (…, Qing Dezong), var den niende i rekken av de", False, True, True),
        ("Guangxu-keiseren (…, Qing Dezong), var den niende i rekken av de", False, False, False),
    ],
)
def test_only_a_sentence_that_may_be_a_piece_has_its_article_looked_up(
    text, opens_chunk, closes_chunk, piece
):
    """A sentence that closes its chunk as sentences end is whole there: unless it opens its chunk too, the answer
    does not look its article up (`cuts.may_be_piece`)."""
    from assistant.answering.cuts import may_be_piece

    assert may_be_piece(text, opens_chunk, closes_chunk) is piece
