"""Generative answers through OpenAI or any OpenAI-compatible server, as a LangChain runnable chain.

condense (LLM, only for follow-ups) -> retrieve (the core's hybrid retriever) -> prompt (number the
passages, fit them into the token budget, fill the prompt file) -> stream the answer -> post-check
(only citations to passages that were shown, no URLs that are not the sources' own, no markup) ->
support check per sentence.

Any failure of the model (timeout, refused request, broken or malformed stream) ends in the offline
extractive answer with a visible notice; text already streamed is marked partial.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

import prompts
from assistant.config import Settings
from assistant.errors import BackendError, ConfigError, redact
from assistant.extractive import NOT_FOUND
from assistant.inert import make_inert
from assistant.lexical import analyse_query
from assistant.links import BARE_HOST, MD_IMAGE, MD_LINK, URL, AllowedLinks
from assistant.support import SupportChecker
from assistant.tokens import get_encoding
from assistant.types import Answer, Citation, Sentence
from ingest.sentences import sentence_spans
from prompts.passages import _ACTIVE, _CHAT_TOKENS, _TAG, ContextBudget, format_passage

if TYPE_CHECKING:
    from assistant.assistant import AskRequest, Assistant

log = logging.getLogger("kilde.generative")

HISTORY_TURNS = 6
MIN_CONTEXT_TOKENS = 512

NOTICES = {
    "en": "The language model failed ({reason}), so this is the offline extractive answer instead.",
    "nb": "Språkmodellen feilet ({reason}), så dette er det offline uttrekkssvaret i stedet.",
}
PARTIAL_NOTICE = {
    "en": " The generated text shown before it broke off is incomplete.",
    "nb": " Den genererte teksten som ble vist før den brøt av, er ufullstendig.",
}
LENGTH_NOTICE = {
    "en": "The answer was cut off at the token limit (llm_max_tokens).",
    "nb": "Svaret ble kuttet ved grensen for antall tokens (llm_max_tokens).",
}


def encoding_for_model(model: str) -> str:
    """tiktoken encoding of OpenAI's model families; other (local) models are estimated with cl100k."""
    name = model.lower().split("/")[-1]
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o")) or re.match(r"^o\d", name):
        return "o200k_base"
    return "cl100k_base"


# -- post-check of the model's output -------------------------------------------------------------

_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")


class OutputFilter:
    """Cleans the model's text as it streams: citations only to shown passages (renumbered in
    order of first use), no URLs other than the sources' own, no markup or chat-template tokens.

    Text is released up to the last white space outside an unclosed bracket, so a marker, link or
    tag is always judged whole."""

    def __init__(self, passages: int, allowed_urls: Sequence[str]):
        self.passages = passages
        self.allowed = AllowedLinks(allowed_urls)
        self.numbers: dict[int, int] = {}  # passage number shown to the model -> number in the answer
        self.dropped: list[int] = []
        self.removed_urls: list[str] = []
        self._pending = ""

    def feed(self, text: str) -> str:
        self._pending += text
        cut = self._cut()
        if cut <= 0:
            return ""
        raw, self._pending = self._pending[:cut], self._pending[cut:]
        out = self.clean(raw)
        return out if out.strip() or not raw.strip() else ""  # a removed link leaves no stray space

    def flush(self) -> str:
        raw, self._pending = self._pending, ""
        out = self.clean(raw)
        return out if out.strip() or not raw.strip() else ""

    def _cut(self) -> int:
        pending = self._pending
        if len(pending) > 4000:
            return len(pending)
        opened = re.search(r"<(script|style|iframe|object|svg|form)\b", pending, re.IGNORECASE)
        if opened and not re.search(rf"</{opened.group(1)}\s*>", pending[opened.start():], re.IGNORECASE):
            return 0  # hold an active element until it closes, so it is removed whole
        depth = {"[": 0, "(": 0, "<": 0}
        closing = {"]": "[", ")": "(", ">": "<"}
        cut = 0
        for i, ch in enumerate(pending):
            if ch in depth:
                depth[ch] += 1
            elif ch in closing:
                depth[closing[ch]] = max(0, depth[closing[ch]] - 1)
            elif ch.isspace() and not any(depth.values()) and i > 0:
                cut = i
        return cut

    def clean(self, text: str) -> str:
        text = _CHAT_TOKENS.sub("", text)
        text = _ACTIVE.sub("", text)
        text = MD_IMAGE.sub("", text)
        text = MD_LINK.sub(lambda m: m.group(1) if not _MARKER.fullmatch(f"[{m.group(1)}]") else
                            f"[{m.group(1)}]", text)
        text = _TAG.sub("", text)
        text = URL.sub(self._url, text)
        text = BARE_HOST.sub(self._bare_host, text)
        text = _MARKER.sub(self._marker, text)
        text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
        return make_inert(re.sub(r"[ \t]{2,}", " ", text))  # whatever the patterns above missed

    def _url(self, match: re.Match) -> str:
        url = match.group().rstrip(".,;:!?")
        tail = match.group()[len(url):]
        if self.allowed.url(url):
            return match.group()
        self.removed_urls.append(url)
        return tail

    def _bare_host(self, match: re.Match) -> str:
        if self.allowed.bare(match):
            return match.group()
        self.removed_urls.append(match.group())
        return ""

    def _marker(self, match: re.Match) -> str:
        out = []
        for raw in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(raw)
            if not 1 <= n <= self.passages:
                self.dropped.append(n)
                continue
            number = self.numbers.setdefault(n, len(self.numbers) + 1)
            out.append(f"[{number}]")
        return "".join(dict.fromkeys(out))


def split_sentences(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """The answer's sentences with the citation numbers each one carries (markers removed). A run of
    markers standing on its own (after the full stop) belongs to the sentence before it."""
    out: list[tuple[str, list[int]]] = []
    for start, end in sentence_spans(text):
        piece = text[start:end]
        leading = re.match(r"(?:\s*\[\d+\])+", piece)
        if leading and out:  # "… assistance. [1] Next sentence": the marker closes the sentence before
            out[-1][1].extend(int(n) for n in re.findall(r"\[(\d+)\]", leading.group()))
            piece = piece[leading.end():]
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", piece)]
        bare = re.sub(r"\s*\[\d+\]", "", piece).strip()
        if not re.search(r"\w", bare):
            if out:
                out[-1][1].extend(numbers)
            continue
        out.append((re.sub(r"\s+([.,;:!?])", r"\1", bare), numbers))
    return [(s, tuple(dict.fromkeys(ns))) for s, ns in out]


# -- the chain -------------------------------------------------------------------------------------

class _StreamBroke(Exception):
    """The stream ended without a finish reason: the connection was cut mid-answer."""


def _messages(rendered: Sequence[prompts.Message]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in rendered]


class GenerativeAnswerer:
    def __init__(self, settings: Settings, chat, condense_chat):
        self.settings = settings
        self.chat = chat
        self.condense_chat = condense_chat
        self.encoding_name = encoding_for_model(settings.llm_model)
        self.budget = ContextBudget(get_encoding(self.encoding_name, settings.tiktoken_cache_dir),
                                    settings.llm_context_tokens, settings.llm_max_tokens)
        self.prepare = (RunnableLambda(self._condense, name="condense")
                        | RunnableLambda(self._retrieve, name="retrieve")
                        | RunnableLambda(self._prompt, name="prompt"))
        self.condense_chain = (RunnableLambda(self._condense_messages, name="condense_prompt")
                               | condense_chat | StrOutputParser())

    def __repr__(self) -> str:  # never the key
        return (f"GenerativeAnswerer(backend={self.settings.llm_backend!r}, model={self.settings.llm_model!r}, "
                f"base_url={self.settings.llm_base_url!r})")

    # -- steps -------------------------------------------------------------------------------

    def _condense_messages(self, state: dict) -> list[BaseMessage]:
        request = state["request"]
        lines = []
        for turn in request.history[-HISTORY_TURNS:]:
            content = re.sub(r"\s*\[\d+\]", "", turn.content).strip()
            tokens = self.budget.encoding.encode(content, disallowed_special=())
            if len(tokens) > 400:
                content = self.budget.encoding.decode(tokens[:400]) + " …"
            lines.append(f"{'User' if turn.role == 'user' else 'Assistant'}: {content}")
        rendered = prompts.load("condense", state["language"]).render(
            history="\n".join(lines), question=request.question)
        return _messages(rendered)

    def _condense(self, state: dict) -> dict:
        from assistant.assistant import question_language

        t0 = time.perf_counter()
        request = state["request"]
        state["language"] = question_language(request.question)
        state["standalone"] = request.question
        if request.history:
            text = self.condense_chain.invoke(state)
            standalone = next((line.strip() for line in text.splitlines() if line.strip()), "")
            standalone = re.sub(r"^(standalone question|selvstendig spørsmål)\s*:\s*", "", standalone,
                                flags=re.IGNORECASE).strip().strip('"«»“”')
            if standalone and len(standalone) <= 2000:
                state["standalone"] = standalone
            else:
                from assistant.assistant import condense_extractive

                state["standalone"] = condense_extractive(request.question, request.history)
        state["timings"]["condense"] = (time.perf_counter() - t0) * 1000
        return state

    def _retrieve(self, state: dict) -> dict:
        return state["assistant"]._retrieve(state)

    def _prompt(self, state: dict) -> dict:
        t0 = time.perf_counter()
        assistant, retrieval = state["assistant"], state["retrieval"]
        language = prompts.prompt_language(state["language"])
        template = prompts.load("answer", language)
        values = {"question": state["standalone"], "not_found": NOT_FOUND.get(state["language"], NOT_FOUND["en"])}
        overhead = self.budget.count_messages(template.render(passages="", **values))
        relevance = self._relevance(assistant, state["standalone"], retrieval.query_vector)
        shown = self.budget.fit(retrieval.hits, self.budget.limit - overhead, relevance)
        passages = "\n\n".join(format_passage(s.n, s.hit, s.text) for s in shown)
        rendered = template.render(passages=passages, **values)
        state["shown"] = shown
        state["prompt_tokens"] = self.budget.count_messages(rendered)
        state["messages"] = _messages(rendered)
        state["timings"]["prompt"] = (time.perf_counter() - t0) * 1000
        return state

    @staticmethod
    def _relevance(assistant, question: str, query_vector):
        terms = set(analyse_query(question))

        def score(texts: list[str]) -> list[float]:
            dense = [0.0] * len(texts)
            if query_vector is not None:
                dense = list(assistant.extractive.vectors.get(texts) @ query_vector)
            return [float(d) + 0.25 * len(terms & set(analyse_query(t))) / max(len(terms), 1)
                    for d, t in zip(dense, texts)]
        return score

    # -- streaming -------------------------------------------------------------------------------

    def stream(self, assistant: Assistant, request: AskRequest) -> Iterator:
        from assistant.assistant import Delta

        t0 = time.perf_counter()
        state = {"request": request, "t0": t0, "timings": {}, "assistant": assistant}
        streamed = False
        try:
            state = self.prepare.invoke(state)
            retrieval = state["retrieval"]
            if not retrieval.hits or not assistant.is_answerable(retrieval, state["standalone"]) or not state["shown"]:
                yield from self._not_found(assistant, state)
                return
            filt = OutputFilter(len(state["shown"]), [s.hit.article.url for s in state["shown"]
                                                      if (s.hit.article.url or "").startswith(("http://", "https://"))])
            pieces: list[str] = []
            finish = None
            t1 = time.perf_counter()
            for chunk in self.chat.stream(state["messages"]):
                finish = chunk.response_metadata.get("finish_reason") or finish
                text = chunk.content if isinstance(chunk.content, str) else ""
                if not text:
                    continue
                if "first_token" not in state["timings"]:
                    state["timings"]["first_token"] = (time.perf_counter() - t1) * 1000
                out = filt.feed(text)
                if out:
                    pieces.append(out)
                    streamed = True
                    yield Delta(out)
            if finish is None:
                raise _StreamBroke()
            tail = filt.flush()
            if tail:
                pieces.append(tail)
                yield Delta(tail)
            state["timings"]["generate"] = (time.perf_counter() - t1) * 1000
        except Exception as exc:
            reason = self._reason(exc)
            if not self._is_model_failure(exc):
                raise
            log.warning("generative backend failed: %s; falling back to the extractive answer", reason)
            yield from self._fallback(assistant, state, reason, streamed)
            return
        yield self._answer(assistant, state, "".join(pieces).strip(), filt, finish)

    # -- the final Answer -------------------------------------------------------------------------

    def _answer(self, assistant, state: dict, text: str, filt: OutputFilter, finish: str) -> Answer:
        t0 = time.perf_counter()
        request, retrieval, shown = state["request"], state["retrieval"], state["shown"]
        by_answer_number = {new: shown[old - 1] for old, new in filt.numbers.items()}
        checker = SupportChecker(assistant.extractive.vectors, self.settings.support_threshold)
        sentences: list[Sentence] = []
        spans: dict[int, list[tuple[int, int, float]]] = {}
        for sentence, numbers in split_sentences(text):
            if not numbers:
                sentences.append(Sentence(sentence, (), supported=False, support_score=0.0))
                continue
            best = 0.0
            for number in numbers:
                result = checker.check(sentence, [by_answer_number[number].hit.chunk.text])
                spans.setdefault(number, []).append((result.start, result.end, result.score))
                best = max(best, result.score)
            sentences.append(Sentence(sentence, numbers, supported=best >= checker.threshold,
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
        answerable = bool(citations)
        language = state["language"]
        timings = state["timings"]
        timings["support"] = (time.perf_counter() - t0) * 1000
        timings["total"] = (time.perf_counter() - state["t0"]) * 1000
        notice = LENGTH_NOTICE.get(language, LENGTH_NOTICE["en"]) if finish == "length" else None
        if filt.dropped or filt.removed_urls:
            log.info("post-check dropped citations %s and %d URLs", filt.dropped, len(filt.removed_urls))
        return Answer(
            question=request.question,
            answer=text if (answerable or text) else NOT_FOUND.get(language, NOT_FOUND["en"]),
            answerable=answerable, language=language, citations=tuple(citations),
            sentences=tuple(sentences) if answerable else (), retrieved=retrieval.hits,
            timings_ms=timings | {f"retrieve.{k}": v for k, v in retrieval.timings_ms.items()},
            backend=self.settings.llm_backend,
            standalone_question=state["standalone"] if request.history else None,
            notice=notice, partial=finish == "length")

    def _not_found(self, assistant, state: dict) -> Iterator:
        from assistant.assistant import Delta

        answer = replace(assistant._extract(state), backend=self.settings.llm_backend)
        for word in answer.answer.split(" "):
            yield Delta(word + " ")
        yield answer

    def _fallback(self, assistant, state: dict, reason: str, streamed: bool) -> Iterator:
        from assistant.assistant import Delta

        if "retrieval" in state and "standalone" in state:
            answer = assistant._extract(state)
        else:  # the condense step failed: condense without the model, then retrieve
            answer = assistant.chain.invoke({"request": state["request"], "t0": state["t0"], "timings": {}})
        language = answer.language if answer.language in NOTICES else "en"
        notice = NOTICES[language].format(reason=reason) + (PARTIAL_NOTICE[language] if streamed else "")
        answer = replace(answer, notice=notice, partial=streamed, backend="extractive")
        if streamed:
            yield Delta("\n\n")
        for word in answer.answer.split(" "):
            yield Delta(word + " ")
        yield answer

    # -- errors ----------------------------------------------------------------------------------

    @staticmethod
    def _is_model_failure(exc: Exception) -> bool:
        import openai

        if isinstance(exc, (openai.OpenAIError, _StreamBroke, BackendError, json.JSONDecodeError, TimeoutError,
                            ConnectionError)):
            return True
        module = type(exc).__module__ or ""
        # Transport errors of the HTTP client, and LangChain's refusal / content-filter errors.
        return module.startswith(("httpx", "httpcore", "langchain_openai", "langchain_core.exceptions")) or \
            type(exc).__name__ in ("ModelRefusalError", "OpenAIRefusalError")

    def _reason(self, exc: Exception) -> str:
        import openai

        timeout = self.settings.llm_timeout_s
        if isinstance(exc, openai.APITimeoutError):
            reason = f"no reply within {timeout:g} s"
        elif isinstance(exc, openai.RateLimitError):
            reason = f"rate limited, HTTP 429 after {self.settings.llm_max_retries} retries"
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
        return redact(reason, self.settings.llm_api_key)


def build_chat_models(settings: Settings):
    """The two ChatOpenAI clients: streaming for answers, plain for condensing follow-ups."""
    from langchain_openai import ChatOpenAI

    common = {"model": settings.llm_model, "api_key": settings.llm_api_key or "not-needed",
              "base_url": settings.llm_base_url, "timeout": settings.llm_timeout_s,
              "max_retries": settings.llm_max_retries, "temperature": 0}
    extra = {}
    if settings.llm_backend == "openai-compatible":
        # Local servers (llama.cpp, older Ollama and vLLM builds) read `max_tokens`, not only the newer
        # `max_completion_tokens` that ChatOpenAI sends; send both with the same value.
        extra = {"extra_body": {"max_tokens": settings.llm_max_tokens}}
    chat = ChatOpenAI(streaming=True, max_tokens=settings.llm_max_tokens, **common, **extra)
    condense_extra = {"extra_body": {"max_tokens": 200}} if extra else {}
    condense = ChatOpenAI(streaming=False, max_tokens=200, **common, **condense_extra)
    return chat, condense


def build_generative(settings: Settings) -> GenerativeAnswerer:
    if settings.llm_context_tokens - settings.llm_max_tokens < MIN_CONTEXT_TOKENS:
        raise ConfigError(
            f"llm_context_tokens ({settings.llm_context_tokens}) leaves less than {MIN_CONTEXT_TOKENS} tokens "
            f"for the prompt after llm_max_tokens ({settings.llm_max_tokens}); raise the context or lower "
            "KILDE_LLM_MAX_TOKENS.")
    chat, condense = build_chat_models(settings)
    return GenerativeAnswerer(settings, chat, condense)
