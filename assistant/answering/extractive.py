"""The offline answerer: picks the sentences of the top passages that best answer the question and
quotes them verbatim, each with a citation that carries its exact offsets."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from assistant.answering.amounts import asks_for_amount, states_amount
from assistant.answering.answers import assemble, not_found, quoted_before, stream_words
from assistant.answering.bare import answers_bare, bare_kind, told_in_lead
from assistant.answering.condense import asks_about_a_name_of_its_own, rare_words, related
from assistant.answering.context import AnswerContext, Delta
from assistant.answering.cuts import Cut, cut_quote, marked, may_be_piece
from assistant.answering.days import asks_for_date, states_date
from assistant.answering.furniture import unquotable
from assistant.answering.parts import missing_parts
from assistant.answering.reading import Quote, quotes, second_quote
from assistant.answering.support import SupportChecker, check_quotes
from assistant.answering.years import missing_years
from assistant.core.language import language_group
from assistant.core.links import carries_links
from assistant.core.sentences import is_question, sentence_spans
from assistant.core.types import Answer, Article, Citation, Hit, Sentence
from assistant.indexes.embeddings import Embedder
from assistant.indexes.lexical import analyse, analyse_query
from assistant.indexes.sentence_vectors import SentenceVectorLog, sentence_key

# What kind of answer a question asks for, and how a sentence that holds one looks. Questions are
# matched in Norwegian and English; a sentence that has the asked-for kind of answer gets a bonus.
ANSWER_KINDS = (
    (
        re.compile(
            r"\b(hvor (mange|mye|stor|store|lang|lenge|gammel|høy|mange)|how (many|much|long|old|big|tall|far)|"
            r"koste[rt]?|cost|antall|prosent|percent|beløp)\b",
            re.IGNORECASE,
        ),
        re.compile(r"\d"),
    ),
    (
        re.compile(
            r"\b(når|hvilket år|hvilken dag|hvilken måned|when|what year|which year|what date|what day)\b",
            re.IGNORECASE,
        ),
        re.compile(
            r"\b(1[89]\d\d|20\d\d|januar|februar|mars|april|mai|juni|juli|august|september|oktober|november|"
            r"desember|january|february|march|may|june|july|october|december|mandag|tirsdag|onsdag|torsdag|"
            r"fredag|lørdag|søndag|i dag|i går|i morgen|\d{1,2}\.\s?\w+)\b",
            re.IGNORECASE,
        ),
    ),
    (
        re.compile(r"\b(hvem|who|whom|whose)\b", re.IGNORECASE),
        re.compile(r"(?<!^)(?<![.!?]\s)\b[A-ZÆØÅ][a-zæøå]+(\s[A-ZÆØÅ][a-zæøå]+)+"),
    ),
)


def unstated_amount(question: str, citations: Sequence[Citation]) -> bool:
    """The question asks for an amount and the quotes state none: the passages are about it, the number is not
    there (`amounts.py`), so Kilde says it is not in the archive rather than quote what counts nothing."""
    return asks_for_amount(question) and not any(states_amount(c.quote, question) for c in citations)


def unstated_date(question: str, citations: Sequence[Citation]) -> bool:
    """The question asks on what date or day, and the quotes name none (`days.py`): as for an amount, Kilde says
    it is not in the archive rather than quote the event without its date."""
    return asks_for_date(question) and not any(states_date(c.quote) for c in citations)


def answer_kind_bonus(question: str, sentence: str) -> float:
    """1.0 when the question asks for a number, date or name and the sentence holds one, else 0."""
    for asks, holds in ANSWER_KINDS:
        if asks.search(question):
            return 1.0 if holds.search(sentence) else 0.0
    return 0.0


@dataclass(frozen=True)
class Candidate:
    hit_index: int
    start: int  # offsets in the article text
    end: int
    text: str
    score: float
    answer_start: int | None = None  # the reader's span inside the sentence, in article offsets
    answer_end: int | None = None


def reading_order(chosen: Sequence[Candidate], hits: Sequence[Hit]) -> list[Candidate]:
    """The best sentence first: an answer leads with what answers the question best, even where it stands later
    in its passage or a better-ranked passage gave the runner-up ("Hva mener Stoltenberg?" led with the
    sentence before his). Sentences that follow one another in one paragraph read as one passage, and one
    answer may run over them: such a run keeps the article's order, where its best sentence stands."""
    ranked = sorted(chosen, key=lambda c: -c.score)
    runs: list[list[Candidate]] = []
    for candidate in ranked:
        run = next((r for r in runs if any(in_a_row(c, candidate, hits) for c in r)), None)
        if run is None:
            runs.append([candidate])
        else:
            run.append(candidate)
    return [c for run in runs for c in sorted(run, key=lambda c: c.start)]


def in_a_row(one: Candidate, other: Candidate, hits: Sequence[Hit]) -> bool:
    """Two sentences of one chunk with nothing but spaces between them: they read as one passage."""
    if one.hit_index != other.hit_index:
        return False
    chunk = hits[one.hit_index].chunk
    first, then = sorted((one, other), key=lambda c: c.start)
    between = chunk.text[first.end - chunk.start : then.start - chunk.start]
    return first.end <= then.start and not between.strip() and "\n" not in between


@dataclass(frozen=True)
class Extract:
    answer: str
    citations: tuple[Citation, ...]
    sentences: tuple[Sentence, ...]


class SentenceVectors:
    """Sentence embeddings: the index's stored ones (`SentenceVectorLog`, written at ingest) first, then an
    LRU of those embedded here (a generated answer's sentences, an index ingested before sentences were)."""

    def __init__(self, embedder: Embedder, stored: SentenceVectorLog | None = None, size: int = 20000):
        self._embedder = embedder
        self.stored = stored
        self._size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: list[str]) -> np.ndarray:
        if self.stored is not None and texts:
            vectors, found = self.stored.lookup([sentence_key(t) for t in texts])
            if found.all():
                return vectors
            if found.any():
                rest = [t for t, f in zip(texts, found, strict=True) if not f]
                vectors[~found] = self._embedded(rest)
                return vectors
        return self._embedded(texts)

    def _embedded(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self._embedder.embed_passages(missing)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=False):
                    self._cache[text] = vector
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        with self._lock:
            for text in texts:
                self._cache.move_to_end(text)
            return np.vstack([self._cache[t] for t in texts])


def without_questions(chosen: list[Candidate]) -> list[Candidate]:
    """The chosen sentences that do not ask a question, or none when the best one asks: a sentence that asks
    answers nothing, and where it is the best match the archive does not hold the answer ("How do I make
    waffles?" matched an advice column's "Hvordan rense sluket på badet?"). On validation no answered question's
    quote asked one; 11 of the 40 questions of `off_topic_dev.jsonl` were answered with one (docs/evals.md)."""
    if chosen and is_question(chosen[0].text):
        return []
    return [c for c in chosen if not is_question(c.text)]


class ExtractiveAnswerer:
    """The offline `Answerer`. `vectors` is the sentence-embedding cache it shares with the support check;
    `articles` looks up an article as stored (`get_article`), to tell where a quote that opens or closes a chunk
    cuts its sentence (`cuts.py`; None: quotes are taken whole from their chunk)."""

    name = "extractive"

    def __init__(
        self,
        vectors: SentenceVectors,
        checker: SupportChecker | None = None,
        max_sentences: int = 2,
        passages_scored: int = 2,
        lexical_weight: float = 0.25,
        second_margin: float = 0.03,
        kind_weight: float = 0.04,
        carried_weight: float = 0.0,
        articles: Callable[[str], Article | None] | None = None,
    ):
        self.vectors = vectors
        self.articles = articles
        self.checker = checker
        self.max_sentences = max_sentences
        self.passages_scored = passages_scored
        self.lexical_weight = lexical_weight
        self.second_margin = second_margin
        self.kind_weight = kind_weight
        self.carried_weight = carried_weight
        self.picker = None  # a learned SentencePicker (assistant/answering/picker.py), set by build_assistant

    def picked(
        self,
        question: str,
        hits: tuple[Hit, ...],
        language: str | None,
        query_vector: np.ndarray | None = None,
        avoid: str = "",
        asked: str | None = None,
    ) -> list[Candidate]:
        """The learned picker's one or two sentences, none of them in `avoid`, as candidates with article
        offsets; for a bare follow-up `asked` ("When?"), only sentences that hold what it asks for, from every
        passage given."""
        kind_asked = asked is not None and bare_kind(asked) is not None
        holds = (lambda text: answers_bare(asked, text)) if kind_asked else None
        passages = len(hits) if kind_asked else None
        return [
            Candidate(
                s.hit_index,
                hits[s.hit_index].chunk.start + s.start,
                hits[s.hit_index].chunk.start + s.end,
                s.text,
                score,
            )
            for s, score in self.picker.choose(
                question, hits, language or "und", query_vector, avoid, holds=holds, passages=passages
            )
        ]

    def stream(self, context: AnswerContext) -> Iterator[Delta | Answer]:
        yield from stream_words(self.answer_context(context))

    def answer_context(self, context: AnswerContext) -> Answer:
        t0 = time.perf_counter()
        retrieval = context.retrieval
        avoid = context.shown_before
        extract = self.read_answer(context, avoid) or self.answer(
            context.answer_question,
            retrieval.hits,
            retrieval.query_vector,
            context.language,
            avoid=avoid,
            asked=context.request.question if context.focus else None,
        )
        no_amount = bool(extract.citations) and unstated_amount(context.answer_question, extract.citations)
        no_date = bool(extract.citations) and unstated_date(context.answer_question, extract.citations)
        # the quoted passages must name the numbered parts the question names, as the passages found did, and
        # mention the years it names (a quote about 2018 does not answer a question about 2019)
        cited = {c.chunk_id for c in extract.citations}
        quoted_passages = [h.titled_text for h in retrieval.hits if h.chunk.id in cited]
        asked = context.request.question
        other_part = (
            missing_parts(asked, quoted_passages) + missing_years(asked, quoted_passages) if cited else []
        )
        if not extract.citations or no_amount or no_date or other_part:
            context.timings_ms["answer"] = (time.perf_counter() - t0) * 1000
            # a bare follow-up ("When?") is answered by a sentence that holds what it asks for, or by none (`bare.py`)
            unheld = bare_kind(asked) if context.focus and not extract.citations else None
            return not_found(
                context,
                self.name,
                no_amount=no_amount,
                missing_parts=other_part,
                no_date=no_date,
                bare_kind=unheld,
            )
        sentences = extract.sentences
        if self.checker is not None:
            sentences = check_quotes(self.checker, sentences, extract.citations, retrieval.hits)
        context.timings_ms["answer"] = (time.perf_counter() - t0) * 1000
        return assemble(
            context, backend=self.name, text=extract.answer, citations=extract.citations, sentences=sentences
        )

    def candidates(
        self,
        question: str,
        hits: tuple[Hit, ...],
        query_vector: np.ndarray | None,
        language: str | None = None,
        asked: str | None = None,
        passages: int | None = None,
    ) -> list[Candidate]:
        """Scores each sentence of the top `passages` (None: `passages_scored`). Within one language the stemmed
        term overlap alone picks the answer sentence at least as well as with sentence embeddings (NorQuAD news
        validation: 68.1 % vs 65.1 % answer found, `python -m evals.sentence_scoring`) and costs nothing at query
        time; across languages (an English question over Norwegian text) only the embeddings see the match, so
        sentences are embedded then.

        `asked` is a follow-up's own words when `question` also carries names from the conversation. Every
        sentence of the article being discussed shares those names, so in the term overlap they count
        `carried_weight` as much as the follow-up's own words. On the 160 validation dialogues of
        `evals/data/followups_dev.jsonl`, answer found was 58.8 % at weight 1 and 62.5 % at 0.6, 0.3 and 0;
        citation precision was highest at 0 (73.4 %). The names still choose the passages (retrieval)."""
        scored = hits[: passages or self.passages_scored]
        use_dense = query_vector is not None and (
            language is None
            or any(language_group(hit.article.language) != language_group(language) for hit in scored)
        )
        spans: list[tuple[int, int, int, str]] = []
        for index, hit in enumerate(scored):
            text = hit.chunk.text
            own = [hit.article.url] if hit.article.url else []
            for start, end in sentence_spans(text):
                # Never quote a planted link, image or tag: an API client might render the answer.
                if (
                    end - start >= 15
                    and not carries_links(text[start:end], own)
                    and not unquotable(text, start, end)
                ):
                    spans.append((index, hit.chunk.start + start, hit.chunk.start + end, text[start:end]))
        if not spans:
            return []
        query_terms = set(analyse_query(question))
        own_terms = set(analyse_query(asked)) if asked else query_terms
        weights = {t: 1.0 if t in own_terms else self.carried_weight for t in query_terms}
        total = max(sum(weights.values()), 1.0)
        dense = np.zeros(len(spans))
        if use_dense:
            dense = self.vectors.get([s[3] for s in spans]) @ query_vector
        out = []
        for (index, start, end, text), similarity in zip(spans, dense, strict=False):
            terms = set(analyse_query(text))
            overlap = sum(weights[t] for t in query_terms & terms) / total
            prior = 0.02 * (self.passages_scored - index)  # the better-ranked passage wins ties
            kind = self.kind_weight * answer_kind_bonus(question, text)
            out.append(
                Candidate(
                    index, start, end, text, float(similarity) + self.lexical_weight * overlap + prior + kind
                )
            )
        return sorted(out, key=lambda c: -c.score)

    def answer(
        self,
        question: str,
        hits: tuple[Hit, ...],
        query_vector: np.ndarray | None,
        language: str | None = None,
        avoid: str = "",
        asked: str | None = None,
    ) -> Extract:
        if hits and asked is not None and bare_kind(asked) is not None:
            # "When?" is answered by a sentence that dates something, wherever in the article it stands, or by none
            # (`bare.py`)
            hits = tuple(hit for hit in hits if hit.article.id == hits[0].article.id)
        if asked is not None and told_in_lead(asked):
            chosen = self.lead_sentence(question, asked, hits, avoid, language)
        else:
            chosen = self.choose(question, hits, query_vector, language, avoid, asked)
        # A follow-up about a name of its own ("What did China say?" after the Article 4 answer) is answered by what
        # the article says of that name: a runner-up beside it is what the conversation asked before ("Japan har
        # uttrykt …", the sentence before China's), and would lead where the two stand in a row (`reading_order`).
        # A bare "Who?" is answered by the one sentence that names the person: a runner-up is one more sentence that
        # names anything ("… i Asia fra Moskvas side …").
        if asked is not None and (asks_about_a_name_of_its_own(asked) or bare_kind(asked) is not None):
            chosen = chosen[:1]
        return self.cite(chosen, hits)

    def lead_sentence(
        self, question: str, asked: str, hits: tuple[Hit, ...], avoid: str, language: str | None
    ) -> list[Candidate]:
        """For a bare "When?" or "Where?" (`asked`), the sentence of the article's passages that gives what it asks
        for, the first in the article (a report tells when and where its story happened in its lead) of those that
        hold the most of the `question`'s rarer words (`condense.rare_words`: the last question's words that at most
        two of the passages' sentences hold, "karrieren", "alpinist"; not "avtalen" of the pact's article). The
        picker, with nothing of the follow-up's own to match, quoted "… fra 1961, …", the date of the treaty this
        one revives, before "Denne avtalen ble inngått under … Putins første besøk …". An English `question`'s
        words are not weighed against the Norwegian sentences ("each side" is not "Moskvas side"): the earlier
        quotes' (`avoid`) are, which are the archive's, over the sentences not quoted before. "Where?" after
        Svindal's career quoted the article's first place, "… i Field Productions …", before "… i Åre i sitt
        siste renn som alpinist"."""
        found = [
            c
            for c in self.candidates(asked, hits, None, None, asked, passages=len(hits))
            if answers_bare(asked, c.text) and not quoted_before(c.text, avoid) and not is_question(c.text)
        ]
        sentences = {
            " ".join(h.chunk.text[a:b].split()) for h in hits for a, b in sentence_spans(h.chunk.text)
        }
        if language_group(language or "") == "en":
            unquoted = {s for s in sentences if not quoted_before(s, avoid)}
            rare = rare_words(set(analyse(avoid, "nb")), unquoted)
        else:
            rare = rare_words(set(analyse(question, "nb")), sentences)
        return sorted(found, key=lambda c: (-len(related(rare, set(analyse(c.text, "nb")))), c.start))[:1]

    def read_answer(self, context: AnswerContext, avoid: str = "") -> Extract | None:
        """The sentence that holds the reader's best span (`reading.py`), the span marked in its citation, and,
        where the answer may quote two sentences, after it the one holding the reader's runner-up span in the same
        chunk; None when there is no reading to quote (no reader, or every span sits in furniture)."""
        hits = context.retrieval.hits
        asked = context.request.question if context.focus else ""
        for quote in quotes(context.readings, hits):
            first = self.quoted(quote, hits, quote.reading.margin)
            if quoted_before(first.text, avoid) or not answers_bare(asked, first.text):
                continue
            if is_question(first.text):  # the best span sits in a question: the archive asks, not answers
                return self.cite([], hits)
            chosen = [first]
            second = second_quote(quote, hits) if self.max_sentences >= 2 else None
            if second is not None:
                candidate = self.quoted(second, hits, quote.reading.second_margin)
                if not quoted_before(candidate.text, avoid) and not is_question(candidate.text):
                    chosen.append(candidate)
            # The best span's sentence leads (`reading_order`): the runner-up is the reader's second guess
            # ("What does Article 4 commit each side to?" led with the paragraph before Article 4).
            return self.cite(chosen, hits)
        return None

    @staticmethod
    def quoted(quote: Quote, hits: tuple[Hit, ...], score: float) -> Candidate:
        chunk = hits[quote.hit_index].chunk
        offset = chunk.start
        return Candidate(
            quote.hit_index,
            offset + quote.start,
            offset + quote.end,
            chunk.text[quote.start : quote.end],
            score,
            offset + quote.answer_start,
            offset + quote.answer_end,
        )

    def choose(
        self,
        question: str,
        hits: tuple[Hit, ...],
        query_vector: np.ndarray | None,
        language: str | None,
        avoid: str,
        asked: str | None,
    ) -> list[Candidate]:
        if self.picker is not None and self.picker.applies_to(language):  # the learned picker chooses
            # The picker learned from questions that name what they ask about, so a follow-up reaches it
            # with the names it refers back to (`follow_up_focus`), as its sentence cosines already do (the
            # focus's query vector). The rule reads the follow-up's own words (`candidates`, `carried_weight`).
            chosen = self.picked(question, hits, language, query_vector, avoid, asked)[: self.max_sentences]
        else:
            ranked = [
                c
                for c in self.candidates(question, hits, query_vector, language, asked)
                if not quoted_before(c.text, avoid) and (asked is None or answers_bare(asked, c.text))
            ]
            if not ranked:
                return []
            chosen = [ranked[0]]
            for candidate in ranked[1:]:
                if (
                    len(chosen) >= self.max_sentences
                    or candidate.score < ranked[0].score - self.second_margin
                ):
                    break
                if all(candidate.text != c.text for c in chosen):  # overlapping chunks repeat sentences
                    chosen.append(candidate)
        return without_questions(chosen)

    def cite(self, chosen: list[Candidate], hits: tuple[Hit, ...]) -> Extract:
        """The chosen sentences in reading order (`reading_order`), one citation number each (none chosen:
        empty); a piece of an over-long sentence is quoted from where a reader can take it up, marked where the
        sentence goes on (`cuts.py`)."""
        chosen = reading_order(chosen, hits)
        # One number per quote, so every [n] leads to exactly one highlighted passage.
        citations: list[Citation] = []
        sentences: list[Sentence] = []
        shown: list[str] = []
        for n, candidate in enumerate(chosen, 1):
            hit = hits[candidate.hit_index]
            candidate, cut = self.cut(candidate, hit)
            citations.append(
                Citation(
                    n=n,
                    article_id=hit.article.id,
                    title=hit.article.title,
                    date=hit.article.date,
                    source=hit.article.source,
                    url=hit.article.url,
                    chunk_id=hit.chunk.id,
                    quote=candidate.text,
                    start=candidate.start,
                    end=candidate.end,
                    score=round(candidate.score, 4),
                    answer_start=candidate.answer_start,
                    answer_end=candidate.answer_end,
                )
            )
            sentences.append(Sentence(text=candidate.text, citations=(n,), supported=True, support_score=1.0))
            shown.append(f"{marked(candidate.text, cut)} [{n}]")
        return Extract(" ".join(shown), tuple(citations), tuple(sentences))

    def cut(self, candidate: Candidate, hit: Hit) -> tuple[Candidate, Cut]:
        """`candidate` begun and ended where a reader can take it up (`cuts.cut_quote`). Only a sentence at a
        chunk's edge can be a piece of a longer one (a piece fills its chunk, bar the last, which opens one), and
        only the article as the hit found it tells (looked up where `may_be_piece` says the sentence can be one):
        one stored since, or none, leaves the quote as it is."""
        chunk = hit.chunk
        opens_chunk = candidate.start == chunk.start and chunk.start > 0
        piece = may_be_piece(candidate.text, opens_chunk, candidate.end == chunk.end)
        article = self.articles(hit.article.id) if piece and self.articles is not None else None
        if article is None or article.content_hash != hit.article.content_hash:
            return candidate, Cut(candidate.start, candidate.end)
        keep = None if candidate.answer_start is None else (candidate.answer_start, candidate.answer_end)
        cut = cut_quote(article.text, candidate.start, candidate.end, keep)
        text = article.text[cut.start : cut.end]
        return replace(candidate, start=cut.start, end=cut.end, text=text), cut
