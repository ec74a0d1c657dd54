"""The reading stage, between reranking and the answerability judgment: Kilde's own reader
(`reader.py`, a multilingual model fine-tuned on NorQuAD) reads the question with each of the top reranked
chunks and returns, per chunk, its best answer span and a no-answer score.

What the stage decides: a question is answerable only if some chunk's span beats "no answer" by the margin
calibrated on validation data for the question's language (`python -m evals.calibrate_reader`), in a chunk that
mentions the names and numbers the question asks about where that is calibrated too; and the extractive
answer quotes the sentence that holds the best span, with the span itself as the citation's
`answer_start`/`answer_end`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from assistant.answering.furniture import is_heading, unquotable
from assistant.answering.support import missing_terms
from assistant.answering.translate import Translator, names_translation
from assistant.core.language import language_group
from assistant.core.links import carries_links
from assistant.core.sentences import sentences_touched
from assistant.core.types import Chunk, Hit, Reading


class Reader(Protocol):
    def read(
        self, question: str, chunks: Sequence[Chunk], titles: Sequence[str] | None = None
    ) -> list[Reading]: ...


@dataclass(frozen=True)
class Quote:
    """The sentence (or sentences) holding a reader's span, in offsets of the chunk's text."""

    hit_index: int
    start: int
    end: int
    answer_start: int
    answer_end: int
    reading: Reading


def preference(margin: float, rank: int, rank_weight: float) -> float:
    """How strongly a reading is preferred for the quote: its margin less `rank_weight` per reranked place."""
    return margin - rank_weight * rank


class ReadingStage:
    """`chunks`: how many of the top reranked chunks are read. `margins`: per question language group
    (`language_group`: "no" for Bokmål and Nynorsk, "en"), the least
    `span_score - no_answer_score` that counts as an answer (absent: the reader never refuses).
    `rank_weights`: per question language group ("default": any other group), the readings are ordered by
    margin minus this much per reranked place, so the reranker's order still counts where the reader is nearly
    as sure of a lower chunk (calibrated on validation; absent: by margin alone).
    `translator`: an English question is read with the dictionary translation of its words after it
    (`translate.py`), as its BM25 side searches: the reader learned from Norwegian questions only.
    `missing_term_limits`: per question language group, a reading counts as an answer only when fewer than
    this many of the question's names and numbers are missing from its own chunk (title and text): a near
    miss is read confidently from a passage about another year or person (absent: not checked)."""

    def __init__(
        self,
        reader: Reader,
        chunks: int,
        margins: dict[str, float],
        rank_weights: dict[str, float] | None = None,
        translator: Translator | None = None,
        missing_term_limits: dict[str, int] | None = None,
    ):
        self.reader = reader
        self.chunks = chunks
        self.margins = margins
        self.rank_weights = rank_weights or {}
        self.translator = translator
        self.missing_term_limits = missing_term_limits or {}

    def read(
        self, question: str, hits: Sequence[Hit], timings_ms: dict[str, float], language: str = "und"
    ) -> tuple[Reading, ...]:
        started = time.perf_counter()
        question = as_read(question, language, self.translator)
        top = hits[: self.chunks]
        readings = (
            self.reader.read(question, [h.chunk for h in top], [h.article.title for h in top]) if top else []
        )
        timings_ms["read"] = (time.perf_counter() - started) * 1000
        weight = self.rank_weight_for(language)
        least = self.margin_for(language)
        if least is not None:  # a second sentence is quoted only where the reader finds an answer in it too
            readings = [
                r if r.second_margin >= least else replace(r, second_score=-math.inf) for r in readings
            ]
        ranked = sorted(enumerate(readings), key=lambda pair: -preference(pair[1].margin, pair[0], weight))
        return tuple(
            reading for _, reading in ranked
        )  # a stable sort: on a tie the better-ranked chunk first

    def rank_weight_for(self, language: str) -> float:
        return self.rank_weights.get(language_group(language), self.rank_weights.get("default", 0.0))

    def margin_for(self, language: str) -> float | None:
        return self.margins.get(language_group(language))

    def finds_an_answer(
        self, readings: Sequence[Reading], language: str, question: str = "", hits: Sequence[Hit] = ()
    ) -> bool:
        """Some reading beats "no answer" by the language's margin, in a chunk of `hits` that does not miss
        the language's limit of the question's names and numbers."""
        least = self.margin_for(language)
        limit = self.missing_term_limits.get(language_group(language))
        sure = [r for r in readings if least is None or r.margin >= least]
        if limit is None or not question:
            return least is None or bool(sure)
        return any(missing < limit for missing in self.missing_in(question, sure, hits, language))

    def missing_in(
        self, question: str, readings: Sequence[Reading], hits: Sequence[Hit], language: str
    ) -> list[int]:
        """Per reading, how many of the question's names and numbers its chunk misses, as `finds_an_answer`
        counts them: an English question's names through the stage's dictionary too."""
        return missing_in_chunks(question, readings, hits, names_translation(self.translator, language))


def missing_in_chunks(
    question: str,
    readings: Sequence[Reading],
    hits: Sequence[Hit],
    translate: Callable[[str], str] | None = None,
) -> list[int]:
    """Per reading, how many of the question's names and numbers its own chunk (title and text) misses: what
    `missing_term_limits` bounds (`translate`: see `support.missing_terms`)."""
    texts = {hit.chunk.id: hit.titled_text for hit in hits}
    return [len(missing_terms(question, [texts.get(r.chunk_id, "")], translate)) for r in readings]


def as_read(question: str, language: str, translator: Translator | None) -> str:
    """The question as the reader reads it: an English one with its Norwegian words after it, word by word as
    the reader was trained (the dictionary's phrases are for the search; read, they cost English validation
    answers: `assistant/models/reader-decisions.md`)."""
    if translator is None or language_group(language) != "en":
        return question
    translation = translator.translate(question, phrases=False)
    return f"{question} {translation}" if translation else question


def quotes(readings: Sequence[Reading], hits: Sequence[Hit]) -> list[Quote]:
    """The sentences holding each reading's span, best reading first. A span in web-page furniture
    (`furniture.is_furniture`), in a table's cell (`furniture.in_table`) or in a sentence with a planted link is
    not quoted: the reading's runner-up span is, where it has one (`runner_up_quote`); a span that crosses a
    sentence boundary quotes the sentences it touches."""
    index = {hit.chunk.id: i for i, hit in enumerate(hits)}
    out: list[Quote] = []
    for reading in readings:
        i = index.get(reading.chunk_id)
        if i is None:
            continue
        quote = quote_of(reading, i, hits, reading.answer_start, reading.answer_end) or runner_up_quote(
            reading, i, hits
        )
        if quote is not None:
            out.append(quote)
    return out


def runner_up_quote(reading: Reading, i: int, hits: Sequence[Hit]) -> Quote | None:
    """The sentence of the reading's runner-up span, quoted as the reading's answer where its best span cannot be
    (a photo caption stating what a sentence below says): the reading as if the runner-up were its best span."""
    if not math.isfinite(reading.second_score):
        return None
    promoted = replace(
        reading,
        answer_start=reading.second_start,
        answer_end=reading.second_end,
        span_score=reading.second_score,
        second_score=-math.inf,
    )
    return quote_of(promoted, i, hits, promoted.answer_start, promoted.answer_end)


def second_quote(quote: Quote, hits: Sequence[Hit]) -> Quote | None:
    """The sentence holding the reading's runner-up span in the same chunk, when the reading stage kept one and
    it lies apart from the first quote (a span touching it would quote it twice). Never a heading: as the
    reader's second guess, a heading ("Kritisk for 20 barn") added the answer to no validation answer that quoted
    one after its first sentence (docs/evals.md)."""
    reading = quote.reading
    if not math.isfinite(reading.second_score):
        return None
    second = quote_of(reading, quote.hit_index, hits, reading.second_start, reading.second_end)
    if second is None or (second.start < quote.end and quote.start < second.end):
        return None
    if is_heading(hits[quote.hit_index].chunk.text, second.start, second.end):
        return None
    return second


def quote_of(
    reading: Reading, i: int, hits: Sequence[Hit], answer_start: int, answer_end: int
) -> Quote | None:
    """The sentences of `hits[i]` that a span touches, unless they are furniture, a table's cell or carry a planted
    link."""
    if answer_end <= answer_start:
        return None
    text = hits[i].chunk.text
    touched = sentences_touched(text, answer_start, answer_end)
    if touched is None:
        return None
    start, end = touched
    sentence = text[start:end]
    own = [hits[i].article.url] if hits[i].article.url else []
    if unquotable(text, start, end) or carries_links(sentence, own):
        return None
    return Quote(i, start, end, max(answer_start, start), min(answer_end, end), reading)
