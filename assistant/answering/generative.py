"""Generative answers through OpenAI or any OpenAI-compatible server, as LangChain runnables.

prompt (number the passages, fit them into the token budget, fill the prompt file) -> stream the
answer through the post-check (`OutputFilter`) -> support check per sentence. Follow-ups are condensed
by the model (`ModelCondenser`).

Any failure of the model (timeout, refused request, broken or malformed stream) is raised as
`ModelFailure` with a readable reason; the `Assistant` then falls back to the extractive answer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

import prompts
from assistant.answering.answers import (
    CITATION_MARK,
    NOT_FOUND,
    assemble,
    not_found,
    not_found_text,
    stream_words,
    unsupported_notice,
)
from assistant.answering.condense import condense_extractive, keeps_the_question
from assistant.answering.context import AnswerContext, Delta
from assistant.answering.deadlines import ModelSlots, TimedStream, retrying
from assistant.answering.extractive import SentenceVectors
from assistant.answering.failures import (
    EmptyStream,
    StreamBroke,
    context_ran_out,
    describe,
    is_model_failure,
    unsupported_answer,
)
from assistant.answering.output_filter import OutputFilter, sentence_end, sentence_markers, without_markers
from assistant.answering.passages import ContextBudget, Shown, format_passage, neutralise
from assistant.answering.support import SupportChecker
from assistant.core.config import Settings
from assistant.core.errors import ModelFailure
from assistant.core.types import Answer, Citation, Sentence, Turn
from assistant.indexes.lexical import analyse_query
from assistant.indexes.model_server import ModelServer

log = logging.getLogger("kilde.generative")

HISTORY_TURNS = 6
MIN_CONTEXT_TOKENS = 512

LENGTH_NOTICE = {
    "en": "The answer was cut off at the token limit (llm_max_tokens).",
    "nb": "Svaret ble kuttet ved grensen for antall tokens (llm_max_tokens).",
    "nn": "Svaret vart kutta ved grensa for talet på tokens (llm_max_tokens).",
}
CONTEXT_NOTICE = {  # cut off well before llm_max_tokens: the server's context is smaller than Kilde thinks
    "en": "The answer was cut off because the model's context ran out (set KILDE_LLM_CONTEXT_TOKENS to the "
    "server's context size).",
    "nb": "Svaret ble kuttet fordi modellens kontekst ble brukt opp (sett KILDE_LLM_CONTEXT_TOKENS til "
    "serverens kontekststørrelse).",
    "nn": "Svaret vart kutta fordi konteksten til modellen vart brukt opp (set KILDE_LLM_CONTEXT_TOKENS til "
    "kontekststorleiken på tenaren).",
}
LOCAL_TOKEN_MARGIN = 1.3  # cl100k under-counts local models' tokenizers (measured: 698 vs 812-857)


def _messages(rendered: Sequence[prompts.Message], system_in_user: bool = False) -> list[BaseMessage]:
    """LangChain messages; `system_in_user` folds the system prompt into the first user turn, for chat
    templates that have no system role (and drop it silently)."""
    rendered = list(rendered)
    if system_in_user and rendered and rendered[0].role == "system":
        system, rest = rendered[0], rendered[1:]
        at = next((i for i, m in enumerate(rest) if m.role == "user"), None)
        if at is None:
            rest.insert(0, prompts.Message("user", system.content))
        else:
            rest[at] = prompts.Message("user", f"{system.content}\n\n{rest[at].content}")
        rendered = rest
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m.role](content=m.content) for m in rendered]


def one_line(text: str) -> str:
    """A turn of a conversation as inert data on one line of a prompt: its line breaks (every one
    `str.splitlines` knows, U+2028 included) folded into spaces, its chat-template tokens neutralised.

    The condense prompt gives each turn as one line, `User: …` or `Assistant: …`, the label written by Kilde.
    A turn that kept its line breaks could open a line of its own ("…\\nUser: …") and put words in the
    other role's mouth, or close the message with a template token (`<|im_end|>`). Folded, a label inside a
    turn stands mid-line, after the turn's real one, where the model reads it as what the turn says; the words
    stay as they were. One line per turn keeps the prompt as models already read it, where tags around each
    turn would need their own escaping."""
    return neutralise(" ".join(part.strip() for part in text.splitlines() if part.strip()))


# -- model failures --------------------------------------------------------------------------------


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
            raise describe(exc, self.settings) from exc
        return False


# -- condensing follow-ups -------------------------------------------------------------------------


class ModelCondenser:
    """Asks the model for a standalone question; an unusable reply (empty, not a question, or without the
    follow-up's names and numbers) falls back to the extractive rule."""

    def __init__(self, settings: Settings, condense_chat, encoding, slots: ModelSlots | None = None):
        self.settings = settings
        self.encoding = encoding
        self.slots = slots or ModelSlots(settings.llm_concurrency, settings.llm_first_token_timeout_s)
        self.chain = (
            RunnableLambda(self._messages, name="condense_prompt") | condense_chat | StrOutputParser()
        )

    def _messages(self, inputs: dict) -> list[BaseMessage]:
        lines = []
        for turn in inputs["history"][-HISTORY_TURNS:]:
            content = one_line(CITATION_MARK.sub("", turn.content))
            tokens = self.encoding.encode(content, disallowed_special=())
            if len(tokens) > 400:
                content = self.encoding.decode(tokens[:400]) + " …"
            lines.append(f"{'User' if turn.role == 'user' else 'Assistant'}: {content}")
        rendered = prompts.load("condense", inputs["language"]).render(
            history="\n".join(lines), question=one_line(inputs["question"])
        )
        return _messages(rendered, self.settings.llm_system_in_user)

    def condense(self, question: str, history: Sequence[Turn], language: str) -> str:
        inputs = {"question": question, "history": history, "language": language}
        with _ModelCalls(self.settings), self.slots.hold():
            replies = list(
                TimedStream(
                    lambda: retrying(lambda: iter([self.chain.invoke(inputs)]), self.settings), self.settings
                )
            )
        text = replies[0] if replies else ""
        standalone = next((line.strip() for line in text.splitlines() if line.strip()), "")
        standalone = (
            re.sub(r"^(standalone question|selvstendig spørsmål)\s*:\s*", "", standalone, flags=re.IGNORECASE)
            .strip()
            .strip('"«»“”')
        )
        if standalone and len(standalone) <= 2000 and keeps_the_question(question, standalone):
            return standalone
        if standalone:
            log.info(
                "the model's condensed question was not usable (%r); condensing without it", standalone[:200]
            )
        return condense_extractive(question, history)


# -- answering -------------------------------------------------------------------------------------


class CallerCut:
    """A caller's cut (`AskRequest.cut_at`) followed over the answer text as it is written: `end(text)` is
    where the sentence the cut falls in ends (the next sentence's start), once it has ended; None until then."""

    def __init__(self, cut_at):
        self.cut_at = cut_at
        self.kept: int | None = None  # how much of the text the caller shows, once it cuts it

    def end(self, written: str) -> int | None:
        if self.kept is None:  # once cut, the cut stays where it is: the text only grows
            self.kept = self.cut_at(written)
        return None if self.kept is None else sentence_end(written, max(self.kept - 1, 0))


class GenerativeAnswerer:
    """The generative `Answerer`. `vectors` (shared with the extractive answerer) rank sentences when a
    passage must be trimmed to fit; `checker` scores each generated sentence against what it cites;
    `server` counts tokens with the model server's own tokenizer where it offers one."""

    def __init__(
        self,
        settings: Settings,
        chat,
        budget: ContextBudget,
        vectors: SentenceVectors,
        checker: SupportChecker,
        server: ModelServer | None = None,
        slots: ModelSlots | None = None,
    ):
        self.settings = settings
        self.name = settings.llm_backend
        self.chat = chat
        self.budget = budget
        self.vectors = vectors
        self.checker = checker
        self.server = server
        self.slots = slots or ModelSlots(settings.llm_concurrency, settings.llm_first_token_timeout_s)
        if settings.llm_backend != "openai":
            budget.scale = max(budget.scale, LOCAL_TOKEN_MARGIN)
        self.prompt = RunnableLambda(self._prompt, name="prompt")

    def __repr__(self) -> str:  # never the key
        return (
            f"GenerativeAnswerer(backend={self.settings.llm_backend!r}, model={self.settings.llm_model!r}, "
            f"base_url={self.settings.llm_base_url!r})"
        )

    def _context_tokens(self) -> int:
        served = self.server.context_size() if self.server else None
        if served and served < self.settings.llm_context_tokens:
            log.warning(
                "the model server's context is %d tokens, less than llm_context_tokens (%d); using %d",
                served,
                self.settings.llm_context_tokens,
                served,
            )
            return served
        return self.settings.llm_context_tokens

    def _server_count(self, rendered: Sequence[prompts.Message]) -> int | None:
        """The prompt's tokens as the server counts them (framed like `ContextBudget.count_messages`)."""
        counts = self.server.count_tokens([m.content for m in rendered]) if self.server else None
        return None if counts is None else sum(c + 4 for c in counts) + 3

    def _prompt(self, context: AnswerContext) -> tuple[list[Shown], list[BaseMessage]]:
        t0 = time.perf_counter()
        template = prompts.load("answer", prompts.prompt_language(context.language))
        # The question is the conversation's last turn (with the previous one, when condensed without the model).
        values = {"question": one_line(context.standalone), "not_found": not_found_text(context.language)}
        relevance = self._relevance(context.standalone, context.retrieval.query_vector)
        limit = self.budget.limit_for(self._context_tokens())
        for _ in range(
            3
        ):  # fit by estimate, then check with the server's tokenizer and refit if it counts more
            overhead = self.budget.count_messages(template.render(passages="", **values))
            shown = self.budget.fit(context.retrieval.hits, limit - overhead, relevance)
            rendered = template.render(
                passages="\n\n".join(format_passage(s.n, s.hit, s.text) for s in shown), **values
            )
            measured = self._server_count(rendered)
            if measured is None:
                break
            self.budget.learn(self.budget.count_messages(rendered, raw=True), measured)
            if measured <= limit:
                break
            log.info(
                "the server counts %d prompt tokens, over the %d available; fitting again", measured, limit
            )
        messages = _messages(rendered, self.settings.llm_system_in_user)
        context.timings_ms["prompt"] = (time.perf_counter() - t0) * 1000
        return shown, messages

    def _relevance(self, question: str, query_vector):
        terms = set(analyse_query(question))

        def score(texts: list[str]) -> list[float]:
            dense = [0.0] * len(texts)
            if query_vector is not None:
                dense = list(self.vectors.get(texts) @ query_vector)
            return [
                float(d) + 0.25 * len(terms & set(analyse_query(t))) / max(len(terms), 1)
                for d, t in zip(dense, texts, strict=True)
            ]

        return score

    def stream(self, context: AnswerContext) -> Iterator[Delta | Answer]:
        with _ModelCalls(self.settings):
            shown, messages = self.prompt.invoke(context)
        if not shown:
            yield from stream_words(not_found(context, self.name))
            return
        filt = OutputFilter(
            len(shown),
            [
                s.hit.article.url
                for s in shown
                if (s.hit.article.url or "").startswith(("http://", "https://"))
            ],
        )
        pieces: list[str] = []
        try:
            yield from self._generate(context, messages, filt, shown, pieces)
        except ModelFailure as failure:
            # What was shown stays shown: the fallback lists the passages its markers point to.
            text = "".join(pieces)
            if text.strip() and not failure.cited:
                failure.cited = tuple(self._support(text, filt, shown, keep_every_marker=True)[2])
            raise

    def _generate(
        self,
        context: AnswerContext,
        messages: list[BaseMessage],
        filt: OutputFilter,
        shown: list[Shown],
        pieces,
    ) -> Iterator[Delta | Answer]:
        """Streams the model's text through the post-check into `pieces`, then the checked `Answer`. Where the
        caller shows only the start of the text (`AskRequest.cut_at`), the model is read to the end of the
        sentence the cut falls in, and no further: leaving the loop closes the stream (`TimedStream`), which
        tells the server to stop writing. That sentence is whole, so its support is checked as in a whole
        answer; the next sentence's start, which the caller does not show, stays in the text unchecked."""
        timings = context.timings_ms
        cut = CallerCut(context.request.cut_at) if context.request.cut_at is not None else None
        ended: int | None = None  # where the sentence of the caller's cut ends, once it has
        with _ModelCalls(self.settings):
            raw: list[str] = []
            finish = None
            t1 = time.perf_counter()
            with self.slots.hold():
                timed = TimedStream(
                    lambda: retrying(lambda: self.chat.stream(messages), self.settings),
                    self.settings,
                    context.request.stop_signal,
                )
                for chunk in timed:
                    finish = chunk.response_metadata.get("finish_reason") or finish
                    text = chunk.content if isinstance(chunk.content, str) else ""
                    if not text:
                        continue
                    raw.append(text)
                    if "first_token" not in timings:
                        timings["first_token"] = (time.perf_counter() - t1) * 1000
                    out = filt.feed(text)
                    if out:
                        if out.strip():
                            timed.shown()
                        pieces.append(out)
                        yield Delta(out)
                        if cut is not None and (ended := cut.end("".join(pieces).strip())) is not None:
                            break
            if ended is None:
                if not "".join(raw).strip():
                    raise context_ran_out() if finish == "length" else EmptyStream()
                if finish is None:
                    raise StreamBroke()
                tail = filt.flush()
                if tail:
                    pieces.append(tail)
                    yield Delta(tail)
            timings["generate"] = (time.perf_counter() - t1) * 1000
        yield self._answer(context, "".join(pieces).strip(), filt, finish, shown, "".join(raw), ended)

    def _cut_by_context(self, raw: str) -> bool:
        """A `length` finish well short of llm_max_tokens: the server's context, not the limit, ran out.
        Counted by the server's tokenizer where it has one; estimated counts can be off by a third."""
        counts = self.server.count_tokens([raw]) if self.server else None
        generated = counts[0] if counts else self.budget.count(raw)
        return generated < (0.9 if counts else 0.6) * self.settings.llm_max_tokens

    def _support(
        self, text: str, filt: OutputFilter, shown: list[Shown], keep_every_marker: bool = False
    ) -> tuple[str, list[Sentence], list[Citation]]:
        """Each sentence scored against each passage it cites. A marker is evidence only where its passage
        supports its sentence: one that does not is dropped from the text when another marker of the sentence
        does; a sentence none of its markers supports keeps them all, flagged unsupported, so that a reader
        sees what it claims to rest on. `keep_every_marker`: for text already shown, whose markers stay.
        Returns the text, its sentences and the citations its markers resolve to."""
        by_answer_number = {new: shown[old - 1] for old, new in filt.numbers.items()}
        sentences: list[Sentence] = []
        spans: dict[int, list[tuple[int, int, float]]] = {}
        dropped = []
        for sentence, marks in sentence_markers(text):
            checked = {}
            for number in dict.fromkeys(n for n, _ in marks):
                checked[number] = self.checker.check(sentence, [by_answer_number[number].hit.chunk.text])
            kept = [n for n, result in checked.items() if result.supported] or list(checked)
            if keep_every_marker:
                kept = list(checked)
            dropped += [mark for n, mark in marks if n not in kept]
            for number in kept:
                result = checked[number]
                spans.setdefault(number, []).append((result.start, result.end, result.score))
            best = max((checked[n].score for n in kept), default=0.0)
            sentences.append(
                Sentence(
                    sentence,
                    tuple(kept),
                    supported=best >= self.checker.threshold,
                    support_score=round(best, 4),
                )
            )
        citations = []
        for number in sorted(spans):
            hit = by_answer_number[number].hit
            start = min(s for s, _, _ in spans[number])
            end = max(e for _, e, _ in spans[number])
            a = hit.article
            citations.append(
                Citation(
                    n=number,
                    article_id=a.id,
                    title=a.title,
                    date=a.date,
                    source=a.source,
                    url=a.url,
                    chunk_id=hit.chunk.id,
                    quote=hit.chunk.text[start:end],
                    start=hit.chunk.start + start,
                    end=hit.chunk.start + end,
                    score=round(max(sc for _, _, sc in spans[number]), 4),
                )
            )
        return without_markers(text, dropped), sentences, citations

    def _answer(
        self,
        context: AnswerContext,
        text: str,
        filt: OutputFilter,
        finish: str,
        shown: list[Shown],
        raw: str = "",
        checked_to: int | None = None,
    ) -> Answer:
        """`checked_to`: `text` is the start of the model's answer, read only as far as the caller shows it
        (`AskRequest.cut_at`); its sentences before this offset are checked, and the rest (the start of one
        more, which the caller does not show) is kept as text alone."""
        t0 = time.perf_counter()
        checked, rest = (text, "") if checked_to is None else (text[:checked_to], text[checked_to:])
        text, sentences, citations = self._support(checked, filt, shown)
        text += rest
        context.timings_ms["support"] = (time.perf_counter() - t0) * 1000
        if filt.dropped or filt.removed_urls:
            log.info("post-check dropped citations %s and %d URLs", filt.dropped, len(filt.removed_urls))
        language = context.language
        notices = []
        if finish == "length":
            cut = CONTEXT_NOTICE if self._cut_by_context(raw) else LENGTH_NOTICE
            notices.append(cut.get(language, cut["en"]))
        if _says_not_found(text):  # the model's own refusal: it cites nothing, whatever markers it wrote
            text, citations, sentences = not_found_text(language), [], []
        elif not any(s.supported for s in sentences):
            raise unsupported_answer()
        elif any(s.supported is False for s in sentences):
            # Said on every face, not only where a sentence can be marked: its [n] alone looks grounded.
            notices.append(unsupported_notice(language))
        return assemble(
            context,
            backend=self.name,
            text=text,
            citations=citations,
            sentences=sentences,
            notice=" ".join(notices) or None,
            partial=finish == "length" or checked_to is not None,
        )


def _says_not_found(text: str) -> bool:
    """The model's own "not in the archive" and nothing else (the prompt asks for exactly that sentence), or
    nothing at all. A refusal followed by a claim is an answer, held to the support check like any other."""
    bare = _bare(CITATION_MARK.sub("", text))
    return not bare or any(bare == _bare(t) for t in NOT_FOUND.values())


def _bare(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()
