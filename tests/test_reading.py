"""The reading stage: which sentence a reader's span makes the quote, when the reader refuses, and how the
span is shown; then the shipped reader itself, through the assistant, on the seed article."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from assistant.answering.reading import ReadingStage, quotes, second_quote
from assistant.core.types import ArticleMeta, Chunk, Citation, Hit, Reading
from ui.render import answer_span, highlighted

TEXT = (
    "Kommunestyret vedtok budsjettet torsdag. Foto: Ola Nordmann / NTB. "
    "Eiendomsskatten økes med to promille fra januar. Skolene skjermes."
)


def hit(text: str = TEXT, start: int = 100) -> Hit:
    meta = ArticleMeta(
        id="a1", title="Budsjett", date="2024-12-12", source="Test", url=None, language="nb", content_hash="h"
    )
    chunk = Chunk(
        id="a1#0", article_id="a1", position=0, text=text, start=start, end=start + len(text), token_count=30
    )
    return Hit(chunk=chunk, article=meta, score=1.0)


def reading(answer: str, text: str = TEXT, margin: float = 3.0) -> Reading:
    at = text.index(answer)
    return Reading("a1#0", at, at + len(answer), margin, 0.0)


def test_the_quote_is_the_sentence_that_holds_the_span():
    (quote,) = quotes([reading("to promille")], [hit()])
    assert TEXT[quote.start : quote.end] == "Eiendomsskatten økes med to promille fra januar."
    assert TEXT[quote.answer_start : quote.answer_end] == "to promille"


def test_a_span_across_sentences_quotes_every_sentence_it_touches():
    (quote,) = quotes([reading("januar. Skolene")], [hit()])
    assert (
        TEXT[quote.start : quote.end] == "Eiendomsskatten økes med to promille fra januar. Skolene skjermes."
    )


def test_a_span_in_a_photo_credit_or_an_unknown_chunk_is_not_quoted():
    stray = Reading("other#0", 0, 5, 9.0, 0.0)
    kept = quotes([reading("Ola Nordmann", margin=9.0), stray, reading("torsdag", margin=1.0)], [hit()])
    assert [TEXT[q.answer_start : q.answer_end] for q in kept] == ["torsdag"]


ASKED = "Hvordan rense sluket på badet? Hell Klorin i sluket og la det virke i ti minutter."


def test_a_span_in_a_sentence_that_asks_is_not_quoted_and_nothing_is(embedder):
    """The reader's best span sat in a tips column's heading, a question: the archive asks it, it does not answer
    it. The answer quotes nothing (Kilde says it is not in the archive); a runner-up in a question is left out."""
    from assistant.answering.context import AnswerContext, AskRequest
    from assistant.answering.extractive import ExtractiveAnswerer, SentenceVectors
    from assistant.answering.retrieval import Retrieval

    heading, tip = ASKED.index("sluket på badet"), ASKED.index("ti minutter")

    def context(read: Reading) -> AnswerContext:
        retrieval = Retrieval((hit(ASKED),), None, 0.9, {})
        question = "Hvordan lager man vafler?"
        return AnswerContext(AskRequest(question), "nb", question, retrieval, True, 0.0, readings=(read,))

    answerer = ExtractiveAnswerer(SentenceVectors(embedder))
    in_question = Reading("a1#0", heading, heading + 15, 9.0, 0.0, tip, tip + 11, 4.0)
    assert answerer.read_answer(context(in_question)).citations == ()
    runner_up_asks = Reading("a1#0", tip, tip + 11, 9.0, 0.0, heading, heading + 15, 4.0)
    (citation,) = answerer.read_answer(context(runner_up_asks)).citations
    assert citation.quote == "Hell Klorin i sluket og la det virke i ti minutter."


CAPTIONED = (
    "Cenk Sahin (t.h.) i duell med Giannelli Imbula i en treningskamp. "
    "Sahin la i forrige uke ut et innlegg der han ga sin støtte til militæret."
)


def test_a_span_in_a_caption_gives_way_to_the_readings_runner_up():
    """The reader's best span sat in a photo's caption and its runner-up in the report below it: the report is
    quoted, with the runner-up's own span and margin."""
    at, second = CAPTIONED.index("i en treningskamp"), CAPTIONED.index("i forrige uke")
    captioned = Reading("a1#0", at, at + len("i en treningskamp"), 9.0, 0.0, second, second + 13, 4.0)
    (quote,) = quotes([captioned], [hit(CAPTIONED)])
    assert CAPTIONED[quote.start : quote.end].startswith("Sahin la i forrige uke")
    assert CAPTIONED[quote.answer_start : quote.answer_end] == "i forrige uke"
    assert quote.reading.margin == 4.0 and second_quote(quote, [hit(CAPTIONED)]) is None
    # without a runner-up, nothing of the chunk is quoted
    assert quotes([replace(captioned, second_score=-math.inf)], [hit(CAPTIONED)]) == []


HEADED = (
    "Edwin Tamasese er arrestert for å ha spredt feilinformasjon om vaksiner.\n\nKritisk for 20 barn\n\n"
    "Over 4.200 personer er smittet."
)


def test_the_readers_second_guess_is_never_a_heading():
    """ "Kritisk for 20 barn" followed answers it added nothing to: the runner-up's sentence is dropped when it is a
    heading, and quoted when it is prose."""
    first, heading, prose = (HEADED.index(s) for s in ("Edwin Tamasese", "20 barn", "4.200"))
    read = Reading("a1#0", first, first + 14, 9.0, 0.0, heading, heading + 7, 4.0)
    (quote,) = quotes([read], [hit(HEADED)])
    assert second_quote(quote, [hit(HEADED)]) is None
    (quote,) = quotes([replace(read, second_start=prose, second_end=prose + 5)], [hit(HEADED)])
    second = second_quote(quote, [hit(HEADED)])
    assert second is not None and HEADED[second.start : second.end] == "Over 4.200 personer er smittet."


CHART = (
    "Søstrene opptrådte i klubber i USA og Europa til 1953.\n\nHits\n\nÅr\n\nSingle\n\nListeplassering\n\n"
    'US Billboard Hot 100\n\n1938\n\n"Bei Mir Bist Du Schoen"\n\n12'
)


def test_a_span_in_a_tables_cell_is_not_quoted():
    """ "Who sang Bei Mir Bist Du Schoen?" once quoted the chart's cells, which mean nothing without their row."""
    readings = [reading(cell, CHART, margin=9.0) for cell in ("Bei Mir", "1938", "Billboard")]
    kept = quotes([*readings, reading("USA og Europa", CHART, margin=1.0)], [hit(CHART)])
    assert [CHART[q.start : q.end] for q in kept] == [
        "Søstrene opptrådte i klubber i USA og Europa til 1953."
    ]


class Fixed:
    def __init__(self, readings):
        self.readings = readings

    def read(self, question, chunks, titles=None):
        return list(self.readings)


def test_the_stage_refuses_only_below_the_calibrated_margin_of_the_question_language():
    weak = [Reading("a1#0", 0, 5, 1.0, 2.0)]  # margin -1
    stage = ReadingStage(Fixed(weak), chunks=3, margins={"no": -0.5, "en": -2.0})
    assert not stage.finds_an_answer(weak, "nb")
    assert not stage.finds_an_answer(weak, "nn")  # Nynorsk shares Bokmål's margin
    assert stage.finds_an_answer(weak, "en")
    assert ReadingStage(Fixed(weak), 3, {}).finds_an_answer(weak, "nb")  # uncalibrated: never refuses
    timings: dict[str, float] = {}
    assert stage.read("q", [hit()], timings) == tuple(weak) and "read" in timings


def test_a_sure_reading_from_a_chunk_without_the_question_names_is_no_answer_where_that_is_calibrated():
    budget, other = hit(), hit("Bystyret i Bergen vedtok budsjettet for 2023 torsdag.")
    other = Hit(chunk=Chunk(**{**other.chunk.__dict__, "id": "b1#0"}), article=other.article, score=0.5)
    sure_in_other = [Reading("b1#0", 0, 8, 5.0, 0.0), Reading("a1#0", 0, 5, -4.0, 0.0)]
    question = (
        "Hva vedtok kommunestyret i Bergen i 2024?"  # names Bergen and 2024: the second chunk lacks 2024
    )
    stage = ReadingStage(Fixed(sure_in_other), 3, {"no": -1.0}, missing_term_limits={"no": 1})
    assert not stage.finds_an_answer(sure_in_other, "nb", question, [budget, other])
    # the chunk missing only one term passes a limit of two; English has no limit; no question: not checked
    assert ReadingStage(Fixed([]), 3, {"no": -1.0}, missing_term_limits={"no": 2}).finds_an_answer(
        sure_in_other, "nb", question, [budget, other]
    )
    assert stage.finds_an_answer(sure_in_other, "en", question, [budget, other])
    assert stage.finds_an_answer(sure_in_other, "nb")
    # the reading that names everything counts once it is sure enough
    named = [Reading("b1#0", 0, 8, 5.0, 0.0)]
    assert stage.finds_an_answer(named, "nb", "Hva vedtok bystyret i Bergen for 2023?", [other])


def test_an_english_questions_names_are_looked_for_in_the_read_chunk_through_the_dictionary_too():
    from assistant.answering.translate import Translator

    chunk = hit("Paven besøkte Polen i juni.")
    sure = [Reading("a1#0", 0, 5, 5.0, 0.0)]
    limits = {"en": 1}
    as_written = ReadingStage(Fixed(sure), 3, {"en": -1.0}, missing_term_limits=limits)
    dictionary = Translator({"pope": ("pave",), "poland": ("polen",)})
    translated = ReadingStage(Fixed(sure), 3, {"en": -1.0}, translator=dictionary, missing_term_limits=limits)
    question = "When did the Pope visit Poland?"
    assert not as_written.finds_an_answer(sure, "en", question, [chunk])
    assert translated.finds_an_answer(sure, "en", question, [chunk])
    assert not translated.finds_an_answer(sure, "en", "When did the Pope visit Mongolia?", [chunk])


def test_an_english_question_is_read_with_its_words_translation_not_the_dictionarys_phrases():
    from assistant.answering.reading import as_read
    from assistant.answering.translate import Translator

    dictionary = Translator(
        {"prime": ("prim",), "minist": ("minister",)}, phrases={("prime", "minist"): ("statsminister",)}
    )
    question = "Who is the prime minister?"
    assert "statsminister" in dictionary.translate(question)  # the search gets the phrase
    assert as_read(question, "en", dictionary) == f"{question} prim minister"  # the reader, as it was trained
    assert as_read("Hvem er statsminister?", "nb", dictionary) == "Hvem er statsminister?"


def test_the_runner_up_sentence_is_kept_only_where_the_reader_finds_an_answer_in_it_too():
    first, second = TEXT.index("to promille"), TEXT.index("Skolene")
    both = Reading("a1#0", first, first + 11, 3.0, 0.0, second, second + 7, -0.5)
    stage = ReadingStage(Fixed([both]), 3, {"no": -1.0, "en": 0.0})
    (kept,) = stage.read("Hva skjer med eiendomsskatten?", [hit()], {}, "nb")
    (quote,) = quotes([kept], [hit()])
    runner_up = second_quote(quote, [hit()])
    assert TEXT[runner_up.start : runner_up.end] == "Skolene skjermes."
    assert TEXT[runner_up.answer_start : runner_up.answer_end] == "Skolene"
    # below the English margin the runner-up is dropped, so the answer quotes one sentence
    (dropped,) = stage.read("What happens to the property tax?", [hit()], {}, "en")
    assert second_quote(quotes([dropped], [hit()])[0], [hit()]) is None


class Recording:
    """A reader that keeps the questions it was given and finds nothing."""

    def __init__(self):
        self.questions: list[str] = []

    def read(self, question, chunks, titles=None):
        self.questions.append(question)
        return []


def test_an_english_question_is_read_with_its_norwegian_words_after_it():
    """The reader learned from Norwegian questions; the dictionary's words (the shipped FreeDict list) bring an
    English one closer to them. A Norwegian question is read as asked."""
    from assistant.answering.translate import default_translator

    reader = Recording()
    stage = ReadingStage(reader, 3, {}, translator=default_translator())
    stage.read("How much was the property tax raised?", [hit()], {}, "en")
    stage.read("Hvor mye økes eiendomsskatten?", [hit()], {}, "nb")
    english, norwegian = reader.questions
    assert english.startswith("How much was the property tax raised? ")
    assert "skatt" in english.split("?", 1)[1]
    assert norwegian == "Hvor mye økes eiendomsskatten?"
    ReadingStage(reader, 3, {}).read("How much was the property tax raised?", [hit()], {}, "en")
    assert reader.questions[-1] == "How much was the property tax raised?"  # no dictionary: as asked


def test_the_rank_weight_lets_the_reranked_order_outweigh_a_slightly_surer_reading():
    # readings in the reranked order of their chunks: the second is surer by 1.0
    first, second = Reading("a1#0", 0, 5, 2.0, 0.0), Reading("a2#0", 0, 5, 3.0, 0.0)
    hits = [hit(), hit()]
    by_margin = ReadingStage(Fixed([first, second]), 3, {})
    assert by_margin.read("q", hits, {}) == (second, first)
    assert ReadingStage(Fixed([first, second]), 3, {}, {"no": 2.0}).read("q", hits, {}, "nb") == (
        first,
        second,
    )
    assert ReadingStage(Fixed([first, second]), 3, {}, {"no": 0.5}).read("q", hits, {}, "nb") == (
        second,
        first,
    )


def test_the_rank_weight_is_the_question_languages():
    first, second = Reading("a1#0", 0, 5, 2.0, 0.0), Reading("a2#0", 0, 5, 3.0, 0.0)
    hits = [hit(), hit()]
    stage = ReadingStage(Fixed([first, second]), 3, {}, {"no": 2.0, "en": 0.5, "default": 4.0})
    assert stage.read("q", hits, {}, "nn") == (first, second)  # Nynorsk counts as Norwegian
    assert stage.read("q", hits, {}, "en") == (second, first)
    assert stage.rank_weight_for("de") == 4.0  # a language validation had no questions in


def test_the_rank_weight_is_chosen_by_how_the_quotes_score():
    from evals.calibrate_reader import Quoted, Scored, choose_rank_weight, quote_scores
    from evals.datasets import EvalItem

    item = EvalItem(id="q", question="q", dataset="t", language="nb", answers=("x",))
    # the reader is slightly surer of the second chunk, but the first holds the answer
    right_first = Scored(item, True, 3.0, (Quoted(0, 2.0, True, True), Quoted(1, 3.0, False, False)))
    assert quote_scores([right_first], 0.0) == {"answer_found": 0.0, "citation_precision": 0.0}
    assert quote_scores([right_first], 2.0) == {"answer_found": 1.0, "citation_precision": 1.0}
    weight, table = choose_rank_weight([right_first])
    assert weight == 1.0 and table["0.0"]["answer_found"] == 0.0  # ties go to the smaller weight
    unread = Scored(item, True, float("-inf"))
    assert quote_scores([right_first, unread], 2.0)["answer_found"] == 0.5  # no quote counts as a miss
    # the surer chunk's runner-up sentence holds the answer: it counts where it passes the language's margin
    in_second = Scored(
        item, True, 3.0, (Quoted(0, 2.0, False, True), Quoted(1, 3.0, False, True, -1.0, True))
    )
    assert quote_scores([in_second], 0.0)["answer_found"] == 0.0  # one sentence a quote
    assert quote_scores([in_second], 0.0, {"no": -2.0})["answer_found"] == 1.0
    assert quote_scores([in_second], 0.0, {"no": 0.0})["answer_found"] == 0.0


def test_the_span_is_bold_inside_the_marked_quote_and_escaped():
    text = "Før. Svaret er <b>42</b> i dag. Etter."
    start, end = text.index("Svaret"), text.index(" Etter")
    inner = (text.index("<b>"), text.index(" i dag"))
    html = highlighted(text, start, end, answer=inner)
    assert (
        '<mark class="kilde-quote">Svaret er <strong class="kilde-answer">&lt;b&gt;42&lt;/b&gt;</strong>'
        in html
    )
    citation = Citation(
        1,
        "a",
        "t",
        None,
        None,
        None,
        "c",
        text[start:end],
        500 + start,
        500 + end,
        1.0,
        500 + inner[0],
        500 + inner[1],
    )
    assert answer_span(citation, (start, end)) == inner  # offsets follow the quote when it is re-found
    outside = Citation(1, "a", "t", None, None, None, "c", text[start:end], start, end, 1.0, 0, 3)
    assert answer_span(outside, (start, end)) is None


@pytest.fixture(scope="module")
def reading_assistant(built_index, embedder):
    """The assistant with the reading stage on (`KILDE_READER=1`; off by default)."""
    from dataclasses import replace

    from assistant.build import build_assistant

    return build_assistant(replace(built_index, reader=True), embedder=embedder)


def test_the_reader_is_off_by_default(assistant):
    assert assistant.reading is None


@pytest.mark.parametrize(
    "question",
    [
        "What does Article 4 commit each side to?",
        "Fra hvilket år er forsvarsavtalen som løftet gjenoppliver?",
    ],
)
def test_the_shipped_reader_marks_its_span_inside_the_quote(reading_assistant, question):
    """Which sentence the reader chooses is measured by `make eval` (evals/RESULTS.md), not here."""
    from assistant.answering.context import AskRequest

    result = reading_assistant.ask(AskRequest(question))
    assert "read" in result.timings_ms
    assert result.citations, result.answer
    first = result.citations[0]
    assert first.start <= first.answer_start < first.answer_end <= first.end
    assert first.quote[first.answer_start - first.start : first.answer_end - first.start].strip()
    assert first.quote in result.answer


def test_the_answer_leads_with_the_sentence_of_the_readers_best_span(reading_assistant):
    # The runner-up's sentence stands before Article 4 in the article, and the answer led with it.
    from assistant.answering.context import AskRequest

    result = reading_assistant.ask(AskRequest("What does Article 4 commit each side to?"))
    scores = [c.score for c in result.citations]
    assert scores == sorted(scores, reverse=True), result.citations
    assert result.citations[0].quote.startswith("Artikkel 4 i avtalen sier")
    assert result.answer.startswith(result.citations[0].quote)


def test_the_margin_keeps_the_false_refusal_bound_on_each_large_set_alone():
    from evals.calibrate_reader import BOUNDED_SET_SIZE, Scored, choose_margin
    from evals.datasets import EvalItem

    def answerable(dataset: str, margin: float) -> Scored:
        item = EvalItem(id="q", question="q", dataset=dataset, language="en", answers=("x",))
        return Scored(item, True, margin)

    def weak_and_strong(dataset: str, size: int) -> list[Scored]:
        return [answerable(dataset, -3.0 + i * 0.1) for i in range(6)] + [
            answerable(dataset, 5.0) for _ in range(size - 6)
        ]

    others = [answerable("other", 6.0) for _ in range(2 * BOUNDED_SET_SIZE)]
    # six weak readings of 100: 6 % alone, 2 % together with the others; at most five may be refused
    large = weak_and_strong("english-versions", BOUNDED_SET_SIZE)
    margin = choose_margin(large + others, [], 0.05)
    assert sum(s.margin < margin for s in large) == 5
    # the same six in a set too small to be bounded alone: only the whole counts, and all six are refused
    small = weak_and_strong("seed-like", BOUNDED_SET_SIZE // 2)
    margin = choose_margin(small + others, [], 0.05)
    assert sum(s.margin < margin for s in small) == 6


def test_the_missing_term_limit_is_kept_only_where_it_refuses_more_unanswerable_questions_within_the_bound():
    from evals.calibrate_reader import Scored, choose_gate
    from evals.datasets import EvalItem

    def scored(answerable: bool, readings: list[tuple[float, int]]) -> Scored:
        item = EvalItem(
            id="q", question="q", dataset="set", language="nb", answers=("x",) if answerable else ()
        )
        return Scored(item, True, max(m for m, _ in readings), term_margins=tuple(readings))

    # answerable questions are read surely from chunks that name everything; the unanswerable ones just as
    # surely, but from chunks that miss one of the question's terms: only the limit tells them apart
    positives = [scored(True, [(4.0 + i / 100, 0), (1.0, 2)]) for i in range(100)]
    near_misses = [scored(False, [(4.5, 1), (-2.0, 0)]) for _ in range(10)]
    margin, limit, table = choose_gate(positives, near_misses, 0.05)
    assert limit == 1 and table["1"]["refused_unanswerable"] == 1.0
    assert table["None"]["refused_unanswerable"] < 1.0 and table["1"]["false_refusal"] <= 0.05
    assert -2.0 < margin <= 4.0 + 5 / 100
    # where the limit would refuse answerable questions too (they miss a term as often), none is kept
    missing_too = [scored(True, [(4.0 + i / 100, 1)]) for i in range(100)]
    margin, limit, table = choose_gate(missing_too, near_misses, 0.05)
    assert limit is None and not table["1"]["within_bound"]


def test_the_unseen_words_rule_is_kept_with_the_reader_only_where_it_refuses_more_within_the_bound():
    from evals.calibrate_reader import Scored, choose_gates
    from evals.datasets import EvalItem

    def scored(answerable: bool, margin: float, unseen: bool) -> Scored:
        item = EvalItem(
            id="q", question="q", dataset="set", language="nb", answers=("x",) if answerable else ()
        )
        return Scored(item, True, margin, term_margins=((margin, 0),), unseen=unseen)

    positives = [scored(True, 4.0 + i / 100, False) for i in range(100)]
    # two near misses read as surely as the answerable questions, but about a word no passage uses
    negatives = [scored(False, 5.0, True), scored(False, 5.0, True), scored(False, -3.0, False)]
    _, _, keep, table = choose_gates(positives, negatives, 0.05)
    assert keep and table["with"]["None"]["refused_unanswerable"] == 1.0
    assert table["without"]["None"]["refused_unanswerable"] < 1.0
    # where the reader's margin already refuses them, the rule adds nothing and is left out
    negatives = [scored(False, -3.0, True), scored(False, -3.0, False)]
    _, _, keep, _ = choose_gates(positives, negatives, 0.05)
    assert not keep
