"""`Assistant`: condense -> retrieve (and rerank) -> read -> answerable? -> answerer, run once per question.

The stages before the answerer are one LangChain runnable that builds a typed `AnswerContext`; the answerer is
a strategy (extractive, or generative with the extractive one as its fallback). Falling back when a
model fails is decided here, never inside an answerer."""

from __future__ import annotations

import contextlib
import logging
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import islice

from langchain_core.runnables import RunnableLambda

from assistant.answering.answers import cited_after, fallback_notice, holds_words, not_found, stream_words
from assistant.answering.bare import asks_for_no_one_thing, is_bare, told_in_lead
from assistant.answering.condense import (
    Condenser,
    condense_extractive,
    earlier_answers,
    earlier_quotes,
    fits_elsewhere,
    follow_up_focus,
    fuse_follow_up,
    within_article,
)
from assistant.answering.context import AnswerContext, Answerer, AskRequest, Condensed, Delta
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.parts import missing_parts
from assistant.answering.reading import ReadingStage
from assistant.answering.rerank import RERANK_MODE
from assistant.answering.retrieval import HybridRetriever, Retrieval
from assistant.answering.small_talk import BACKEND as SMALL_TALK
from assistant.answering.small_talk import small_talk
from assistant.answering.support import missing_terms
from assistant.answering.translate import Translator, is_keyword_search, names_translation
from assistant.answering.unseen import (
    ArchiveWords,
    names_nothing,
    nothing_used,
    rarest_word_absent,
    unseen_words,
)
from assistant.core.config import Settings
from assistant.core.errors import BadInputError, ModelFailure
from assistant.core.language import detect_language, language_group
from assistant.core.markup import TAG, without_tags
from assistant.core.questions import as_asked, check_text, checked_question
from assistant.core.types import NO_FILTERS, Answer, ArticleMeta, Filters, Hit, Turn

log = logging.getLogger("kilde.assistant")

MAX_TOP_K = 50  # passages a request may ask to be answered from
MAX_HISTORY_TURNS = (
    6  # the generative condenser reads the last few turns; the extractive one the last question
)
MAX_TURN_CHARS = 2000
# How many of the articles a conversation's answers quoted a follow-up may be about, the latest first.
CONVERSATION_ARTICLES = 3


def says_something(text: str) -> bool:
    """Whether `text` holds a character that is neither a space nor invisible (stops at the first one)."""
    return any(unicodedata.category(ch)[0] not in "CZ" for ch in text)


def read_history(turns: Sequence[Turn], question: str) -> tuple[Turn, ...]:
    """The turns a follow-up is read with: what condensing needs and no more, since every turn is embedded or sent
    along behind the one embedder. The last `MAX_HISTORY_TURNS` that say something, the latest first looked at, each
    its first `MAX_TURN_CHARS` characters; a conversation of any length is taken on every face, and a turn read
    by none is judged by none (on the OpenAI face an old message refused every later question of the chat). A
    turn that says nothing (an OpenAI message whose content was null or a picture) is none: read as the last
    question, it would leave a follow-up ("Who signed it?") without what it refers back to. A user turn is read
    as its question was (`as_asked`), an assistant turn as Kilde gave it (without the tags of a client that sent
    back the HTML it showed). A last user turn that is the `question` itself (a client that added it to
    the history before sending) is not the question before it: searched with it, "Who signed it?" would be
    searched as "Who signed it? Who signed it?"."""
    kept: list[Turn] = []
    for turn in reversed(turns):
        if len(kept) == MAX_HISTORY_TURNS:
            break
        text = turn.content[:MAX_TURN_CHARS]
        if turn.role == "user":
            text = as_asked(text)
            if not kept and text.casefold() == question.casefold():
                continue
        elif TAG.search(text):
            # Kilde's answers hold no markup: this is one a client sent back as it showed it ("<p>…</p>"). Its
            # quotes are found in their passages only without the tags.
            text = without_tags(text)
        if says_something(text):
            kept.append(replace(turn, content=text))
    return tuple(reversed(kept))


def check_top_k(top_k: int | None, field: str = "top_k") -> None:
    """None asks for the configured number; otherwise 1 to `MAX_TOP_K` (0 would read as "the default")."""
    if top_k is not None and not 1 <= top_k <= MAX_TOP_K:
        raise BadInputError(field, f"must be from 1 to {MAX_TOP_K}, got {top_k}")


class Assistant:
    """`extractive` answers offline and is the fallback whenever `generative` fails; `condenser` turns a
    follow-up into a standalone question (a model's, or the extractive rule when none is given); `reading`
    is Kilde's own reader (`reading.py`), absent when its model is not used."""

    def __init__(
        self,
        settings: Settings,
        retriever: HybridRetriever,
        extractive: ExtractiveAnswerer,
        generative: Answerer | None = None,
        condenser: Condenser | None = None,
        reading: ReadingStage | None = None,
        translator: Translator | None = None,
        archive_words: Callable[[], ArchiveWords] | None = None,
    ):
        """`translator`: the dictionary through which an English question's names are looked for in Norwegian
        passages (`is_answerable`); None looks for them as written. `archive_words`: the archive's BM25
        vocabulary as it is now, through which a question about a word no passage uses is refused
        (`refused_unseen_words`), and one below the reranker's floor whose rarest word no passage found uses
        (`refused_by_floor`); None never refuses on these grounds."""
        self.settings = settings
        self.retriever = retriever
        self.extractive = extractive
        self.generative = generative
        self.answerer: Answerer = generative or extractive
        self.condenser = condenser
        self.reading = reading
        self.translator = translator
        self.archive_words = archive_words
        self.prepare = (
            RunnableLambda(self._condense, name="condense")
            | RunnableLambda(self._retrieve, name="retrieve")
            | RunnableLambda(self._read, name="read")
            | RunnableLambda(self._judge, name="answerable")
        )

    @property
    def store(self):
        return self.retriever.store

    def model_status(self) -> dict | None:
        """The model server's state (`GET {base_url}/models`), for readiness probes; None without a model.
        An unreachable server degrades Kilde to extractive answers; it does not make it unready."""
        server = getattr(self.generative, "server", None)
        return server.status().to_dict() if server is not None else None

    def validate(self, request: AskRequest) -> AskRequest:
        # The question first, and only there: `checked_question` judges it for every face, a lone surrogate included.
        question = checked_question(request.question or "")
        history = read_history(request.history, question)
        texts = [
            *(("history", t.content) for t in history),
            *(("source filter", s) for s in request.filters.sources),
        ]
        for field, text in texts:
            check_text(field, text)
        check_top_k(request.top_k)
        return replace(request, question=question, history=history)

    def ask(self, request: AskRequest) -> Answer:
        """The finished answer alone: no text streamed before it was shown to anyone. Once the request's
        `stop_signal` is given, `Stopped` at the next step (leaving the events closes the model's stream)."""
        stop = request.stop_signal
        answer = None
        with contextlib.closing(self._answer(request, shows_text=False)) as events:
            if stop is not None:
                stop.check()
            for event in events:
                if stop is not None:
                    stop.check()
                if isinstance(event, Answer):
                    answer = event
        assert answer is not None
        return answer

    def stream(self, request: AskRequest) -> Iterator[Delta | Answer]:
        """The answer's text as it is written, then the `Answer`: a fallback after a broken stream says that
        the text shown before it is incomplete, and keeps the passages that text cites."""
        return self._answer(request, shows_text=True)

    def _answer(self, request: AskRequest, shows_text: bool) -> Iterator[Delta | Answer]:
        started = time.perf_counter()
        request = self.validate(request)
        # Before any event: a face that streams can still answer an index removed from disk with a plain error.
        self.store.ensure_present()
        chat = small_talk(request.question)
        if chat is not None:  # nothing to search for: say what Kilde answers, cite nothing
            timings = {"total": (time.perf_counter() - started) * 1000}
            reply = Answer(
                request.question,
                chat.reply,
                False,
                chat.language,
                (),
                (),
                timings_ms=timings,
                backend=SMALL_TALK,
            )
            yield from stream_words(reply)
            return
        context: AnswerContext = self.prepare.invoke(request)
        if context.failure is not None:
            yield from self._fall_back(context, context.failure, streamed=False)
            return
        if not context.answerable:
            yield from stream_words(not_found(context, self.answerer.name))
            return
        streamed = False
        try:
            for event in self.answerer.stream(context):
                streamed = streamed or isinstance(event, Delta)
                yield event
        except ModelFailure as failure:
            if self.answerer is self.extractive:
                raise
            log.warning(
                "generative backend failed: %s; falling back to the extractive answer", failure.reason
            )
            yield from self._fall_back(context, failure, streamed and shows_text)

    def _fall_back(
        self, context: AnswerContext, reason: ModelFailure | str, streamed: bool
    ) -> Iterator[Delta | Answer]:
        """`streamed`: generated text was shown before the failure."""
        if context.answerable:
            answer = self.extractive.answer_context(context)
        else:
            answer = not_found(context, self.extractive.name)
        replaced = isinstance(reason, ModelFailure) and reason.replaced
        if streamed and isinstance(reason, ModelFailure):
            answer = cited_after(answer, reason.cited)
        answer = replace(
            answer,
            notice=fallback_notice(answer.language, reason, streamed),
            partial=streamed and not replaced,
            backend=self.extractive.name,
        )
        yield from stream_words(answer, lead="\n\n" if streamed else "")

    # -- the stages before the answerer --------------------------------------------------------

    def _condense(self, request: AskRequest) -> Condensed:
        started = time.perf_counter()
        language = detect_language(request.question)
        standalone, failure = request.question, None
        if request.history:
            try:
                standalone = (
                    self.condenser.condense(request.question, request.history, language)
                    if self.condenser
                    else condense_extractive(request.question, request.history)
                )
            except ModelFailure as exc:  # the answer falls back too; search as the extractive path would
                log.warning("condensing with the model failed: %s", exc.reason)
                standalone, failure = condense_extractive(request.question, request.history), exc
        timings = {"condense": (time.perf_counter() - started) * 1000}
        return Condensed(request, language, standalone, started, timings, failure)

    def _retrieve(self, condensed: Condensed) -> AnswerContext:
        t0 = time.perf_counter()
        request = condensed.request
        k, mode = request.top_k or self.settings.top_k, request.retriever or self.settings.retriever
        focus = None
        held_to_article = False
        filtered_out = None
        # How an English question's names are written in Norwegian passages (None for a Norwegian one).
        names_in = names_translation(self.translator, condensed.language)
        if condensed.standalone != request.question and self.condenser is None:
            # The extractive rule glued names to a follow-up: its own words get a say of their own, and
            # the sentence quoted must answer them, not the history.
            focus = follow_up_focus(request.question, request.history)
            searched = self.retriever.retrieve(condensed.standalone, 2 * k, request.filters, mode)
            own = self.retriever.retrieve(focus, 2 * k, request.filters, mode)
            retrieval = fuse_follow_up(searched, own, k)
            # A follow-up may leave an article the reranker scores far below another for its own words, but not
            # one that asks the last question about a name of its own ("What about China?"): its own words are that
            # name alone, which many another article matches better than the conversation's.
            may_leave = focus != request.question and mode == RERANK_MODE and not is_bare(request.question)
            margin = self.settings.follow_up_article_margin
            for article in islice(self.conversation_articles(request), CONVERSATION_ARTICLES):
                kept = replace(request.filters, articles=(article,))
                # `retrieval.query_vector` is the focus's, from the search just made (`fuse_follow_up`)
                # a bare "When?" is answered from the article's lead, which its focus need not find (`bare.py`)
                wide = 2 * k if told_in_lead(request.question) else k
                within = self.retriever.retrieve(focus, wide, kept, mode, query_vector=retrieval.query_vector)
                if may_leave and fits_elsewhere(own, within, article, margin):
                    continue
                # A follow-up that names what the article never mentions ("And how did Japan react?" after an
                # answer quoted from another article) is about an earlier answer's article, or the archive's.
                if not missing_terms(request.question, [h.titled_text for h in within.hits], names_in):
                    retrieval = within_article(retrieval, within, wide)
                    held_to_article = True
                    break
            else:
                filtered_out = self.article_outside_filters(request)
        else:
            retrieval = self.retriever.retrieve(condensed.standalone, k, request.filters, mode)
        condensed.timings_ms["retrieve"] = (time.perf_counter() - t0) * 1000
        # A follow-up asks for something new: the sentences earlier answers quoted are not quoted again, unless one
        # answers what it newly asks (`earlier_answers`).
        shown = ""
        if focus:
            passages = [hit.chunk.text for hit in retrieval.hits]
            titles = [hit.article.title for hit in retrieval.hits]
            shown = earlier_answers(request.history, request.question, names_in, passages, titles)
        return AnswerContext(
            request,
            condensed.language,
            condensed.standalone,
            retrieval,
            False,
            condensed.started,
            condensed.timings_ms,
            condensed.failure,
            focus,
            shown_before=shown,
            held_to_article=held_to_article,
            filtered_out=filtered_out,
        )

    def _read(self, context: AnswerContext) -> AnswerContext:
        if self.reading is None or not context.retrieval.hits:
            return context
        readings = self.reading.read(
            context.answer_question, context.retrieval.hits, context.timings_ms, context.language
        )
        return replace(context, readings=readings)

    def _judge(self, context: AnswerContext) -> AnswerContext:
        unseen = self.refused_unseen_words(
            context.judged_question, context.language, follow_up=bool(context.request.history)
        )
        # "Article 5" is not answered by passages that name only Article 4; a follow-up is held to the parts it
        # names itself, not to those of the question before it
        parts = missing_parts(context.request.question, [h.titled_text for h in context.retrieval.hits])
        # A follow-up's "Why?" leans on the conversation; asked alone, or after questions that named nothing either
        # ("Tell me more" after "What about it?"), it names nothing to answer about.
        asked = (t.content for t in context.request.history if t.role == "user")
        nothing = names_nothing(context.request.question) and all(map(names_nothing, asked))
        # after a conversation, "What?" alone leans on it for what it asks about, but says nothing of what it asks
        vague = bool(context.request.history) and asks_for_no_one_thing(context.request.question)
        passes = self.passes_threshold_and_names(context)
        absent = self.refused_by_floor(context) if passes else None
        answerable = (
            not context.filtered_out
            and not nothing
            and not vague
            and passes
            and absent is None
            and not unseen
            and not parts
            and (
                self.reading is None
                or self.reading.finds_an_answer(
                    context.readings, context.language, context.judged_question, context.retrieval.hits
                )
            )
        )
        if answerable and not context.request.filters.empty:
            t0 = time.perf_counter()
            answerable = self.filter_holds_an_answer(context)
            context.timings_ms["filter_check"] = (time.perf_counter() - t0) * 1000
        return replace(
            context,
            answerable=answerable,
            names_nothing=nothing,
            asks_for_no_one_thing=vague,
            unseen_words=tuple(unseen),
            missing_parts=tuple(parts),
            absent_word=absent,
        )

    def passes_threshold_and_names(self, context: AnswerContext) -> bool:
        """The first gates of `_judge`: some passage found, `is_answerable` with the dense threshold waived for a
        follow-up held to the conversation's article and for a question the reranker is sure of."""
        waived = context.held_to_article or self.reranker_is_sure(context)
        return bool(context.retrieval.hits) and self.is_answerable(
            context.retrieval, context.judged_question, dense_gate=not waived
        )

    def refused_by_floor(self, context: AnswerContext) -> str | None:
        """The question's rarest word, where a reranked question has no passage the reranker scores at least its
        language group's floor and none of its passages uses that word (`rarest_word_absent`): the reranker's
        score alone also refused answerable questions whose passages it scored low but which held what the
        question is about. The floors are `rerank_floors`, or `reader_rerank_floors` for a question Kilde's reader
        reads, whose margins refuse on their own. A follow-up read with the conversation (`focus`) is not judged:
        its passages were searched within the conversation's article, or fused with its own words' search, not
        ordered by the reranker alone."""
        floors = self.settings.rerank_floors if self.reading is None else self.settings.reader_rerank_floors
        floor = floors.get(language_group(context.language))
        mode = context.request.retriever or self.settings.retriever
        judged = mode == RERANK_MODE and not context.focus and context.retrieval.hits
        if floor is None or not judged or context.retrieval.hits[0].score >= floor:
            return None
        return self.rarest_word_absent(context.judged_question, context.language, context.retrieval.hits)

    def rarest_word_absent(self, question: str, language: str, hits: Sequence[Hit]) -> str | None:
        """The question's rarest word when none of the passages found uses it (`unseen.rarest_word_absent`); an
        English question's words are read in the dictionary's Norwegian too."""
        if self.archive_words is None:
            return None
        english = language_group(language) == "en" and self.translator is not None
        translate = self.translator.translate if english else None
        passages = [h.titled_text for h in hits]
        return rarest_word_absent(question, passages, self.archive_words(), translate)

    def reranker_is_sure(self, context: AnswerContext) -> bool:
        """Whether a reranked question asked alone has a passage the reranker scores at least its language group's
        `rerank_sure`, which then stands in for the dense threshold (the names and every later gate still judge),
        in an archive of at least `rerank_sure_min_chunks` chunks. A follow-up read with the conversation (`focus`)
        is not judged, as for `refused_by_floor`."""
        sure = self.settings.rerank_sure.get(language_group(context.language))
        mode = context.request.retriever or self.settings.retriever
        if sure is None or mode != RERANK_MODE or context.focus or not context.retrieval.hits:
            return False
        if context.retrieval.hits[0].score < sure:
            return False
        least = self.settings.rerank_sure_min_chunks
        return not least or (self.archive_words is not None and len(self.archive_words()) >= least)

    def filter_holds_an_answer(self, context: AnswerContext) -> bool:
        """A filter narrows the archive; it does not make what is left relevant. Near-misses score close to
        real answers in dense similarity, so the calibrated threshold passes almost any passage a filter
        leaves. The question is therefore also answered from the whole archive: when that answer quotes
        nothing the filter keeps, and its best quote outscores the best one the filter keeps by more than
        `filter_answer_margin`, the filter holds no answer (validation questions within another source:
        11 of 204 answered instead of 73; within their own: 99 of 102 instead of 100; docs/evals.md)."""
        request, filters = context.request, context.request.filters
        k, mode = request.top_k or self.settings.top_k, request.retriever or self.settings.retriever
        archive = self.retriever.retrieve(context.standalone, k, NO_FILTERS, mode)
        question, language = context.answer_question, context.language
        whole = self.extractive.answer(question, archive.hits, archive.query_vector, language).citations
        articles = {hit.chunk.id: hit.article for hit in archive.hits}
        if not whole or any(filters.admits(articles[c.chunk_id]) for c in whole):
            return True
        retrieval = context.retrieval
        kept = self.extractive.answer(question, retrieval.hits, retrieval.query_vector, language).citations
        if not kept:
            return False
        gap = max(c.score for c in whole) - max(c.score for c in kept)
        return gap <= self.settings.filter_answer_margin

    def refused_unseen_words(
        self, question: str, language: str, with_reader: bool | None = None, follow_up: bool = False
    ) -> list[str]:
        """The words no passage of the archive uses for which the question is refused: judged in the languages
        `refuse_unseen_words` names, or with the reader on, in the language groups `reader_unseen_words` names
        (each chosen on validation data, by evals/calibrate.py and evals/calibrate_reader.py), and only in an
        archive of at least `refuse_unseen_words_min_chunks` chunks (the one they were chosen on): a smaller
        one's vocabulary misses ordinary words ("reagert" in a 40-article archive). Elsewhere, in any language,
        only a question none of whose words the archive uses in any reading is refused (`unseen.nothing_used`).
        `with_reader`: judge as with the reader on or off (None: as this assistant is). `follow_up`: the question
        leans on the conversation for what it is about ("Who is he, exactly?"), so its own words alone are not
        judged by `nothing_used`."""
        if with_reader is None:
            with_reader = self.reading is not None
        if with_reader:
            judged = language_group(language) in self.settings.reader_unseen_words
        else:
            judged = language in self.settings.refuse_unseen_words
        if self.archive_words is None:
            return []
        archive = self.archive_words()
        if len(archive) < self.settings.refuse_unseen_words_min_chunks:
            return []
        if not judged:  # a question of nothing the archive holds is refused in any language
            if follow_up:
                return []
            translate = self.translator.translate if self.translator is not None else None
            return nothing_used(question, archive, translate)
        return self._unseen_words(question, archive)

    def unseen_words(self, question: str) -> list[str]:
        """The words of a question that no passage of the archive uses (`unseen.py`), whether or not a rule
        refuses for them."""
        return [] if self.archive_words is None else self._unseen_words(question, self.archive_words())

    def _unseen_words(self, question: str, archive: ArchiveWords) -> list[str]:
        """A keyword search's language is a guess, and its words the archive lacks are searched through the
        dictionary (`search_translation`): there a word counts as used when the archive uses its translation
        ("Article" in "Article 4")."""
        words = unseen_words(question, archive)
        if words and self.translator is not None and is_keyword_search(question):
            translations = {w: self.translator.translate(w) for w in words}
            words = [w for w in words if not translations[w] or unseen_words(translations[w], archive)]
        return words

    def conversation_articles(self, request: AskRequest) -> Iterator[str]:
        """The articles whose passages the conversation's answers quoted, the last answer's first, where the
        filters admit them: what a follow-up that refers back is about ("Who signed it?" after the Article 4
        question). A paraphrase (a generative answer) names none. Each is looked up only when asked for."""
        seen: set[str] = set()
        for article in self.quoted_articles(request.history, request.filters):
            if article.id not in seen:
                seen.add(article.id)
                yield article.id

    def quoted_articles(self, history: Sequence[Turn], filters: Filters) -> Iterator[ArticleMeta]:
        """The article each quote of the conversation's answers was taken from, among those `filters` admit, the
        last answer's first: a passage found for the quote that holds its words."""
        for quote in earlier_quotes(history):
            found = self.retriever.retrieve(quote, 3, filters, "bm25")
            article = next((hit.article for hit in found.hits if holds_words(hit.chunk.text, quote)), None)
            if article is not None:
                yield article

    def article_outside_filters(self, request: AskRequest) -> str | None:
        """The title of the article the conversation's last answer quoted, where the request's filters admit none
        of the articles its answers quoted: a follow-up that refers back to it ("Who signed it?" after the
        Article 4 answer, with dates that leave the article out) would otherwise be answered from whatever the
        filters keep, about something else (a «Signe» for "signed"). None without filters, or where one of the
        conversation's articles is admitted (the follow-up was then searched within it, or left it for its own
        words)."""
        if request.filters.empty:
            return None
        outside = None
        for article in self.quoted_articles(request.history, NO_FILTERS):
            if request.filters.admits(article):
                return None
            outside = outside or article.title
        return outside

    def is_answerable(
        self, retrieval: Retrieval, question: str | None = None, dense_gate: bool = True
    ) -> bool:
        """Both calibrated on validation data (evals/calibrate.py): the best dense similarity must reach the
        threshold, and the passages must mention the names and numbers the question asks about. Without
        `dense_gate` only the names count: for a follow-up held to the conversation's article ("Who signed it?",
        "What about China?" after the Article 4 answer), the conversation has found the article, and the names
        found in it are the evidence; how close the few words of the follow-up and the previous question come
        to a passage is not (in archives of the seed article and a few dozen others they fell under the
        threshold, and both were refused)."""
        language = detect_language(question) if question else "und"
        limit = self.settings.refuse_missing_terms.get(language, 0) if question else 0
        if limit:
            translate = names_translation(self.translator, language)
            missing = missing_terms(question, [h.titled_text for h in retrieval.hits], translate)
            if len(missing) >= limit:
                return False
        if not dense_gate:
            return True
        if retrieval.query_vector is None:  # bm25-only ablation: no calibrated dense signal
            return any((h.lexical_score or 0) > 0 for h in retrieval.hits)
        return retrieval.best_dense >= self.settings.answerable_threshold
