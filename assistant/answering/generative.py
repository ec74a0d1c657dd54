"""Generative answers through OpenAI or any OpenAI-compatible server, as LangChain runnables.

prompt (number the passages, fit them into the token budget, fill the prompt file) -> stream the
answer through the post-check (`OutputFilter`) -> support check per sentence. Follow-ups are condensed
by the model (`ModelCondenser`).

Any failure of the model (timeout, refused request, broken or malformed stream) is raised as
`ModelFailure` with a readable reason; the `Assistant` then falls back to the extractive answer.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

import prompts
from assistant.answering.answers import assemble, not_found, not_found_text, stream_words
from assistant.answering.condense import condense_extractive
from assistant.answering.context import AnswerContext, Delta
from assistant.answering.extractive import SentenceVectors
from assistant.answering.output_filter import OutputFilter, split_sentences
from assistant.answering.passages import ContextBudget, Shown, format_passage
from assistant.answering.support import SupportChecker
from assistant.core.config import Settings
from assistant.core.errors import BackendError, ModelFailure, redact
from assistant.core.types import Answer, Citation, Sentence, Turn
from assistant.indexes.lexical import analyse_query

log = logging.getLogger("kilde.generative")

HISTORY_TURNS = 6
MIN_CONTEXT_TOKENS = 512

LENGTH_NOTICE = {
    "en": "The answer was cut off at the token limit (llm_max_tokens).",
    "nb": "Svaret ble kuttet ved grensen for antall tokens (llm_max_tokens).",
}


class _StreamBroke(Exception):
    """The stream ended without a finish reason: the connection was cut mid-answer."""


def _messages(rendered: Sequence[prompts.Message]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in rendered]


# -- model failures --------------------------------------------------------------------------------

def is_model_failure(exc: Exception) -> bool:
    import openai

    if isinstance(exc, (openai.OpenAIError, _StreamBroke, BackendError, json.JSONDecodeError, TimeoutError,
                        ConnectionError)):
        return True
    module = type(exc).__module__ or ""
    # Transport errors of the HTTP client, and LangChain's refusal / content-filter errors.
    return module.startswith(("httpx", "httpcore", "langchain_openai", "langchain_core.exceptions")) or \
        type(exc).__name__ in ("ModelRefusalError", "OpenAIRefusalError")


def failure_reason(exc: Exception, settings: Settings) -> str:
    import openai

    if isinstance(exc, ModelFailure):
        return exc.reason
    if isinstance(exc, openai.APITimeoutError):
        reason = f"no reply within {settings.llm_timeout_s:g} s"
    elif isinstance(exc, openai.RateLimitError):
        reason = f"rate limited, HTTP 429 after {settings.llm_max_retries} retries"
    elif isinstance(exc, openai.APIStatusError):
        reason = f"the server refused the request, HTTP {exc.status_code}"
    elif isinstance(exc, openai.APIConnectionError):
        reason = "the connection broke off"
    elif isinstance(exc, _StreamBroke):
        reason = "the answer stream broke off before it finished"
    elif isinstance(exc, (json.JSONDecodeError, ValueError)) and "JSON" in type(exc).__name__ + str(exc):
        reason = "the server sent a malformed reply"
    else:
        reason = f"{type(exc).__name__}"
    return redact(reason, settings.llm_api_key)


class _ModelCalls:
    """Turns the model's failures into `ModelFailure`; anything else is a bug and propagates."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, ModelFailure) or not isinstance(exc, Exception):
            return False
        if is_model_failure(exc):
            raise ModelFailure(failure_reason(exc, self.settings)) from exc
        return False


# -- condensing follow-ups -------------------------------------------------------------------------

class ModelCondenser:
    """Asks the model for a standalone question; an unusable reply falls back to the extractive rule."""

    def __init__(self, settings: Settings, condense_chat, encoding):
        self.settings = settings
        self.encoding = encoding
        self.chain = RunnableLambda(self._messages, name="condense_prompt") | condense_chat | StrOutputParser()

    def _messages(self, inputs: dict) -> list[BaseMessage]:
        lines = []
        for turn in inputs["history"][-HISTORY_TURNS:]:
            content = re.sub(r"\s*\[\d+\]", "", turn.content).strip()
            tokens = self.encoding.encode(content, disallowed_special=())
            if len(tokens) > 400:
                content = self.encoding.decode(tokens[:400]) + " …"
            lines.append(f"{'User' if turn.role == 'user' else 'Assistant'}: {content}")
        rendered = prompts.load("condense", inputs["language"]).render(
            history="\n".join(lines), question=inputs["question"])
        return _messages(rendered)

    def condense(self, question: str, history: Sequence[Turn], language: str) -> str:
        with _ModelCalls(self.settings):
            text = self.chain.invoke({"question": question, "history": history, "language": language})
        standalone = next((line.strip() for line in text.splitlines() if line.strip()), "")
        standalone = re.sub(r"^(standalone question|selvstendig spørsmål)\s*:\s*", "", standalone,
                            flags=re.IGNORECASE).strip().strip('"«»“”')
        if standalone and len(standalone) <= 2000:
            return standalone
        return condense_extractive(question, history)


# -- answering -------------------------------------------------------------------------------------

class GenerativeAnswerer:
    """The generative `Answerer`. `vectors` (shared with the extractive answerer) rank sentences when a
    passage must be trimmed to fit; `checker` scores each generated sentence against what it cites."""

    def __init__(self, settings: Settings, chat, budget: ContextBudget, vectors: SentenceVectors,
                 checker: SupportChecker):
        self.settings = settings
        self.name = settings.llm_backend
        self.chat = chat
        self.budget = budget
        self.vectors = vectors
        self.checker = checker
        self.prompt = RunnableLambda(self._prompt, name="prompt")

    def __repr__(self) -> str:  # never the key
        return (f"GenerativeAnswerer(backend={self.settings.llm_backend!r}, model={self.settings.llm_model!r}, "
                f"base_url={self.settings.llm_base_url!r})")

    def _prompt(self, context: AnswerContext) -> tuple[list[Shown], list[BaseMessage]]:
        t0 = time.perf_counter()
        template = prompts.load("answer", prompts.prompt_language(context.language))
        values = {"question": context.standalone, "not_found": not_found_text(context.language)}
        overhead = self.budget.count_messages(template.render(passages="", **values))
        relevance = self._relevance(context.standalone, context.retrieval.query_vector)
        shown = self.budget.fit(context.retrieval.hits, self.budget.limit - overhead, relevance)
        passages = "\n\n".join(format_passage(s.n, s.hit, s.text) for s in shown)
        messages = _messages(template.render(passages=passages, **values))
        context.timings_ms["prompt"] = (time.perf_counter() - t0) * 1000
        return shown, messages

    def _relevance(self, question: str, query_vector):
        terms = set(analyse_query(question))

        def score(texts: list[str]) -> list[float]:
            dense = [0.0] * len(texts)
            if query_vector is not None:
                dense = list(self.vectors.get(texts) @ query_vector)
            return [float(d) + 0.25 * len(terms & set(analyse_query(t))) / max(len(terms), 1)
                    for d, t in zip(dense, texts, strict=True)]
        return score

    def stream(self, context: AnswerContext) -> Iterator[Delta | Answer]:
        timings = context.timings_ms
        with _ModelCalls(self.settings):
            shown, messages = self.prompt.invoke(context)
            if not shown:
                yield from stream_words(not_found(context, self.name))
                return
            filt = OutputFilter(len(shown), [s.hit.article.url for s in shown
                                             if (s.hit.article.url or "").startswith(("http://", "https://"))])
            pieces: list[str] = []
            finish = None
            t1 = time.perf_counter()
            for chunk in self.chat.stream(messages):
                finish = chunk.response_metadata.get("finish_reason") or finish
                text = chunk.content if isinstance(chunk.content, str) else ""
                if not text:
                    continue
                if "first_token" not in timings:
                    timings["first_token"] = (time.perf_counter() - t1) * 1000
                out = filt.feed(text)
                if out:
                    pieces.append(out)
                    yield Delta(out)
            if finish is None:
                raise _StreamBroke()
            tail = filt.flush()
            if tail:
                pieces.append(tail)
                yield Delta(tail)
            timings["generate"] = (time.perf_counter() - t1) * 1000
        yield self._answer(context, "".join(pieces).strip(), filt, finish, shown)

    def _answer(self, context: AnswerContext, text: str, filt: OutputFilter, finish: str,
                shown: list[Shown]) -> Answer:
        t0 = time.perf_counter()
        by_answer_number = {new: shown[old - 1] for old, new in filt.numbers.items()}
        sentences: list[Sentence] = []
        spans: dict[int, list[tuple[int, int, float]]] = {}
        for sentence, numbers in split_sentences(text):
            if not numbers:
                sentences.append(Sentence(sentence, (), supported=False, support_score=0.0))
                continue
            best = 0.0
            for number in numbers:
                result = self.checker.check(sentence, [by_answer_number[number].hit.chunk.text])
                spans.setdefault(number, []).append((result.start, result.end, result.score))
                best = max(best, result.score)
            sentences.append(Sentence(sentence, numbers, supported=best >= self.checker.threshold,
                                      support_score=round(best, 4)))
        citations = []
        for number in sorted(spans):
            hit = by_answer_number[number].hit
            start = min(s for s, _, _ in spans[number])
            end = max(e for _, e, _ in spans[number])
            a = hit.article
            citations.append(Citation(
                n=number, article_id=a.id, title=a.title, date=a.date, source=a.source, url=a.url,
                chunk_id=hit.chunk.id, quote=hit.chunk.text[start:end], start=hit.chunk.start + start,
                end=hit.chunk.start + end, score=round(max(sc for _, _, sc in spans[number]), 4)))
        context.timings_ms["support"] = (time.perf_counter() - t0) * 1000
        if filt.dropped or filt.removed_urls:
            log.info("post-check dropped citations %s and %d URLs", filt.dropped, len(filt.removed_urls))
        language = context.language
        notice = LENGTH_NOTICE.get(language, LENGTH_NOTICE["en"]) if finish == "length" else None
        return assemble(context, backend=self.name, text=text or not_found_text(language),
                        citations=citations, sentences=sentences, notice=notice, partial=finish == "length")
