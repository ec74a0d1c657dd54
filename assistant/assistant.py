"""`Assistant`: condense -> retrieve -> answer, as one LangChain runnable, returning an `Answer`."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from langchain_core.runnables import RunnableLambda

from assistant.config import Settings
from assistant.errors import BadInputError
from assistant.extractive import NOT_FOUND, ExtractiveAnswerer
from assistant.retrieval import HybridRetriever
from assistant.support import SupportChecker, check_quotes
from assistant.types import Answer, Filters, Turn
from ingest.articles import detect_language

MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class AskRequest:
    question: str
    history: tuple[Turn, ...] = ()
    filters: Filters = Filters()
    top_k: int | None = None
    retriever: str | None = None


@dataclass(frozen=True)
class Delta:
    """A piece of answer text, streamed before the final `Answer`."""

    text: str


def question_language(question: str) -> str:
    return detect_language(question)


def condense_extractive(question: str, history: Sequence[Turn]) -> str:
    """Without a language model, a follow-up is searched together with the previous user turn."""
    previous = [t.content for t in history if t.role == "user"][-1:]
    return " ".join([*previous, question]) if previous else question


class Assistant:
    def __init__(self, settings: Settings, retriever: HybridRetriever, extractive: ExtractiveAnswerer,
                 generative=None):
        self.settings = settings
        self.retriever = retriever
        self.extractive = extractive
        self.generative = generative
        self.support = SupportChecker(extractive.vectors, settings.support_threshold)
        self.chain = (RunnableLambda(self._condense, name="condense")
                      | RunnableLambda(self._retrieve, name="retrieve")
                      | RunnableLambda(self._extract, name="answer"))

    @property
    def store(self):
        return self.retriever.store

    def validate(self, request: AskRequest) -> AskRequest:
        question = (request.question or "").strip()
        if not question:
            raise BadInputError("question", "the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise BadInputError("question", f"the question is {len(question)} characters; the limit is "
                                f"{MAX_QUESTION_CHARS}")
        return replace(request, question=question)

    def ask(self, request: AskRequest) -> Answer:
        answer = None
        for event in self.stream(request):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def stream(self, request: AskRequest) -> Iterator[Delta | Answer]:
        request = self.validate(request)
        if self.generative is not None and self.settings.llm_backend != "extractive":
            yield from self.generative.stream(self, request)
            return
        answer = self.chain.invoke({"request": request, "t0": time.perf_counter(), "timings": {}})
        for word in answer.answer.split(" "):
            yield Delta(word + " ")
        yield answer

    # -- chain steps: each takes and returns the state dict ----------------------------------------

    def _condense(self, state: dict) -> dict:
        t0 = time.perf_counter()
        request: AskRequest = state["request"]
        state["language"] = question_language(request.question)
        state["standalone"] = condense_extractive(request.question, request.history)
        state["timings"]["condense"] = (time.perf_counter() - t0) * 1000
        return state

    def _retrieve(self, state: dict) -> dict:
        t0 = time.perf_counter()
        request: AskRequest = state["request"]
        state["retrieval"] = self.retriever.retrieve(
            state["standalone"], request.top_k or self.settings.top_k, request.filters,
            request.retriever or self.settings.retriever)
        state["timings"]["retrieve"] = (time.perf_counter() - t0) * 1000
        return state

    def _extract(self, state: dict) -> Answer:
        t0 = time.perf_counter()
        request: AskRequest = state["request"]
        retrieval = state["retrieval"]
        language = state["language"]
        answerable = bool(retrieval.hits) and self.is_answerable(retrieval, state["standalone"])
        extract = None
        if answerable:
            extract = self.extractive.answer(state["standalone"], retrieval.hits, retrieval.query_vector,
                                             language)
            answerable = bool(extract.citations)
            if answerable:
                extract = replace(extract, sentences=check_quotes(self.support, extract.sentences,
                                                                  extract.citations, retrieval.hits))
        timings = state["timings"]
        timings["answer"] = (time.perf_counter() - t0) * 1000
        timings["total"] = (time.perf_counter() - state["t0"]) * 1000
        return Answer(
            question=request.question,
            answer=extract.answer if answerable else NOT_FOUND.get(language, NOT_FOUND["en"]),
            answerable=answerable, language=language,
            citations=extract.citations if answerable else (),
            sentences=extract.sentences if answerable else (),
            retrieved=retrieval.hits,
            # The reranking stage's own time is reported beside retrieve (which includes it), as `rerank`.
            timings_ms=timings | {(k if k == "rerank" else f"retrieve.{k}"): v for k, v in retrieval.timings_ms.items()},
            backend="extractive", standalone_question=state["standalone"] if request.history else None)

    def is_answerable(self, retrieval, question: str | None = None) -> bool:
        """Both calibrated on validation data (evals/calibrate.py): the best dense similarity must reach the
        threshold, and the passages must mention the names and numbers the question asks about."""
        limit = self.settings.refuse_missing_terms.get(question_language(question), 0) if question else 0
        if limit:
            from assistant.support import missing_terms

            missing = missing_terms(question, [f"{h.article.title}\n{h.chunk.text}" for h in retrieval.hits])
            if len(missing) >= limit:
                return False
        if retrieval.query_vector is None:  # bm25-only ablation: no calibrated dense signal
            return any((h.lexical_score or 0) > 0 for h in retrieval.hits)
        return retrieval.best_dense >= self.settings.answerable_threshold
