"""The extractive answerer embeds sentences only when the question and the passages are in different
languages; a verbatim quote's support score needs no embedding at all."""

import numpy as np
import pytest

from assistant.answering.extractive import (
    Candidate,
    ExtractiveAnswerer,
    SentenceVectors,
    reading_order,
    without_questions,
)
from assistant.answering.support import check_quotes
from assistant.build import build_support_checker
from assistant.core.config import Settings
from assistant.core.sentences import is_question, sentence_spans
from assistant.core.types import ArticleMeta, Chunk, Hit
from assistant.testing.embedders import CountingEmbedder

TEXT = (
    "Kommunestyret vedtok budsjettet for 2025 torsdag kveld. Eiendomsskatten økes med to promille fra "
    "januar. Ordføreren sa at skolene skal skjermes mot kutt."
)


def hit(text: str = TEXT, language: str = "nb") -> Hit:
    meta = ArticleMeta(
        id="a1",
        title="Budsjett",
        date="2024-12-12",
        source="Test",
        url=None,
        language=language,
        content_hash="h1",
    )
    return Hit(
        chunk=Chunk(
            id="a1-c0", article_id="a1", position=0, text=text, start=0, end=len(text), token_count=40
        ),
        article=meta,
        score=1.0,
    )


@pytest.fixture
def counting(embedder):
    return CountingEmbedder(embedder)


def test_same_language_questions_are_scored_without_embedding_sentences(counting):
    answerer = ExtractiveAnswerer(SentenceVectors(counting))
    question = "Hvor mye økes eiendomsskatten?"
    extract = answerer.answer(question, (hit(),), counting.embed_query(question), "nb")
    assert counting.passages == 0
    assert extract.citations and "Eiendomsskatten økes med to promille" in extract.citations[0].quote


def test_cross_language_questions_embed_the_sentences(counting):
    answerer = ExtractiveAnswerer(SentenceVectors(counting))
    question = "How much will the property tax rise?"
    extract = answerer.answer(question, (hit(),), counting.embed_query(question), "en")
    assert counting.passages == 3  # the three sentences of the passage
    assert extract.citations and extract.citations[0].quote in TEXT


def test_a_verbatim_quote_scores_as_if_embedded_and_embeds_nothing(counting):
    answerer = ExtractiveAnswerer(SentenceVectors(counting))
    question = "Hvor mye økes eiendomsskatten?"
    extract = answerer.answer(question, (hit(),), counting.embed_query(question), "nb")
    checker = build_support_checker(Settings(), answerer.vectors)
    checked = check_quotes(checker, extract.sentences, extract.citations, (hit(),))
    assert counting.passages == 0 and checked[0].supported
    # The embedded comparison the shortcut replaces gives the same features up to float rounding.
    quote = extract.citations[0].quote
    texts = [quote] + [TEXT[s:e] for s, e in sentence_spans(TEXT)]
    vectors = answerer.vectors.get(texts)
    best = float(np.max(vectors[1:] @ vectors[0]))
    shortcut, _ = checker.features(quote, TEXT, pairs=False)
    assert shortcut[0] == pytest.approx(best, abs=1e-4)


FOLLOW_UP_TEXT = (
    "Nicki Bille ble fredag dømt til fire måneders fengsel for vold og trusler i København. "
    "Han erkjente også å ha vært i besittelse av 0,26 gram kokain."
)


def test_a_follow_up_is_answered_in_its_own_words_not_the_names_it_carries(counting):
    """The names carried from the conversation are in every sentence about it; the follow-up's own words
    choose the sentence. Asked with the names at full weight, the sentence that repeats them wins."""
    answerer = ExtractiveAnswerer(SentenceVectors(counting))
    focus = "Hvor mye kokain hadde han? Nicki Bille København"
    passage = (hit(FOLLOW_UP_TEXT),)
    vector = counting.embed_query(focus)
    as_follow_up = answerer.answer(focus, passage, vector, "nb", asked="Hvor mye kokain hadde han?")
    assert "0,26 gram kokain" in as_follow_up.citations[0].quote
    everything_own = answerer.answer(focus, passage, vector, "nb")
    assert "Nicki Bille ble fredag dømt" in everything_own.citations[0].quote


def candidate(hit_index: int, start: int, score: float) -> Candidate:
    return Candidate(hit_index, start, start + 10, f"s{hit_index}-{start}", score)


PARAGRAPHS = "Ett. To følger. Tre står for seg.\n\nFire i et nytt avsnitt."


def sentence(words: str, score: float, hit_index: int = 0) -> Candidate:
    at = PARAGRAPHS.index(words)
    return Candidate(hit_index, at, at + len(words), words, score)


def test_an_answer_leads_with_its_best_sentence():
    """ "Who signed it?": the signing sentence scores best but sits in the second-ranked passage; the
    runner-up from the top passage comes after it. "Hva mener Stoltenberg?": his sentence scores best but
    stands after the runner-up in the same passage, and leads too."""
    passages = (hit(PARAGRAPHS), hit(PARAGRAPHS))
    runner_up, best = sentence("Ett.", -2.04, 0), sentence("To følger.", -1.02, 1)
    assert reading_order([runner_up, best], passages) == [best, runner_up]
    later_but_best, earlier = sentence("Fire i et nytt avsnitt.", 3.0), sentence("Tre står for seg.", 1.0)
    assert reading_order([earlier, later_but_best], passages) == [later_but_best, earlier]


def test_sentences_in_a_row_of_one_paragraph_keep_the_articles_order():
    """One answer may run over two sentences that follow each other: they read as one passage, in the article's
    order, placed where the best of them stands."""
    passages = (hit(PARAGRAPHS), hit(PARAGRAPHS))
    first, second = sentence("Ett.", 0.5), sentence("To følger.", 2.0)
    assert reading_order([second, first], passages) == [first, second]
    elsewhere = sentence("Tre står for seg.", 1.0, 1)
    assert reading_order([elsewhere, second, first], passages) == [first, second, elsewhere]
    better_elsewhere = sentence("Tre står for seg.", 3.0, 1)
    assert reading_order([second, better_elsewhere, first], passages) == [better_elsewhere, first, second]
    one_between = sentence("Tre står for seg.", 1.0)
    assert reading_order([first, one_between], passages) == [one_between, first]
    new_paragraph = sentence("Fire i et nytt avsnitt.", 0.2)
    assert reading_order([new_paragraph, one_between], passages) == [one_between, new_paragraph]


def test_the_extract_numbers_its_citations_in_reading_order(counting):
    answerer = ExtractiveAnswerer(SentenceVectors(counting))
    extract = answerer.cite([candidate(0, 0, -2.0), candidate(1, 0, -1.0)], (hit(), hit(FOLLOW_UP_TEXT)))
    assert [(c.n, c.quote) for c in extract.citations] == [(1, "s1-0"), (2, "s0-0")]
    assert extract.answer == "s1-0 [1] s0-0 [2]"


ADVICE = (
    "Hvordan rense sluket på badet? Hell en desiliter Klorin i sluket og la det virke i ca. 10 minutter. "
    "Skyll etter med varmt vann."
)


def test_a_question_is_never_quoted_and_leaves_nothing_when_it_matches_best(counting):
    """Where the best-matching sentence only asks ("How do I clean the drain?" against an advice column), the
    archive does not answer; a question that would come second is left out."""
    answerer = ExtractiveAnswerer(SentenceVectors(counting))
    asked = "Hvordan rense sluket på badet?"
    best_asks = answerer.answer(asked, (hit(ADVICE),), counting.embed_query(asked), "nb")
    assert best_asks.citations == () and best_asks.answer == ""
    tip = Candidate(0, 31, 101, "Hell en desiliter Klorin i sluket og la det virke i ca. 10 minutter.", 1.0)
    question = Candidate(0, 0, 30, "Hvordan rense sluket på badet?", 0.99)
    assert without_questions([tip, question]) == [tip]
    assert without_questions([question, tip]) == []


@pytest.mark.parametrize(
    ("sentence_text", "asking"),
    [
        ("Hvordan rense sluket på badet?", True),
        ("– Hva skjer nå?", True),
        ("«Hvorfor?»", True),
        ("Han spurte «hvorfor?» og gikk.", False),
        ("Artikkel 4 i avtalen sier: «Hvis en av partene angripes, hjelper den andre.»", False),
    ],
)
def test_a_sentence_asks_when_it_ends_with_a_question_mark(sentence_text, asking):
    assert is_question(sentence_text) is asking


CAREER = (
    "Regissørene Even Sigstad og Filip Christensen i Field Productions har fått 1,5 millioner kroner i "
    "produksjonstilskudd. Kinopremiere er satt til oktober 2020. Svindal, som i februar la opp som alpinist, vant "
    "blant annet to OL-gull, fem VM-gull og 36 enkeltseirer i verdenscupen. 36-åringen rundet av karrieren med "
    "VM-sølv i Åre i sitt siste renn som alpinist."
)
LAST_QUOTE = (
    "Svindal, som i februar la opp som alpinist, vant blant annet to OL-gull, fem VM-gull og 36 enkeltseirer i "
    "verdenscupen."
)


def test_an_english_question_word_alone_is_answered_by_a_sentence_sharing_the_last_quotes_words(counting):
    """ "Where?" after the English question of Svindal's career quoted the article's first place, "… i Field
    Productions …": an English question's words are not the Norwegian sentences', so the sentence told first won.
    The last quote's words are the archive's own: "alpinist" leads to "… i Åre i sitt siste renn som alpinist"."""
    answerer = ExtractiveAnswerer(SentenceVectors(counting))
    question = "Where? When did Aksel Lund Svindal end his career as an alpine skier?"
    extract = answerer.answer(question, (hit(CAREER),), None, "en", avoid=LAST_QUOTE, asked="Where?")
    assert [c.quote for c in extract.citations] == [
        "36-åringen rundet av karrieren med VM-sølv i Åre i sitt siste renn som alpinist."
    ]
    # with no earlier quote to go by, the first sentence that names a place
    first = answerer.answer(question, (hit(CAREER),), None, "en", asked="Where?")
    assert "Field Productions" in first.citations[0].quote
