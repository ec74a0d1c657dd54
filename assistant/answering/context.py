"""What travels between the answering stages: the request, the context every answerer receives, the
streamed pieces, and the `Answerer` protocol that the extractive and generative answerers implement."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from assistant.answering.retrieval import Retrieval
from assistant.core.errors import ModelFailure
from assistant.core.stopping import Stop
from assistant.core.types import Answer, Filters, Reading, Turn


@dataclass(frozen=True)
class AskRequest:
    """`cut_at`: for a caller that shows only the start of the answer text (the OpenAI face's `max_tokens`
    and `stop`), how much of the text written so far (the `Delta`s joined, stripped) it shows, None while it
    shows all of it. A generative answer then stops reading its model at the end of the sentence the cut
    falls in, rather than at the model's own token limit. `stop_signal`: given, the caller no longer wants the answer
    (its client cancelled the call), and `Assistant.ask` ends with `Stopped` at its next step."""

    question: str
    history: tuple[Turn, ...] = ()
    filters: Filters = field(default_factory=Filters)
    top_k: int | None = None
    retriever: str | None = None
    cut_at: Callable[[str], int | None] | None = field(default=None, compare=False, repr=False)
    stop_signal: Stop | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Delta:
    """A piece of answer text, streamed before the final `Answer`."""

    text: str


@dataclass(frozen=True)
class Condensed:
    """The question in its language, as it is searched; `failure` says why a model could not condense it."""

    request: AskRequest
    language: str
    standalone: str
    started: float  # time.perf_counter() when the request arrived
    timings_ms: dict[str, float] = field(default_factory=dict)
    failure: ModelFailure | None = None


@dataclass(frozen=True)
class AnswerContext:
    """Everything an answerer needs, computed once by the `Assistant`."""

    request: AskRequest
    language: str
    standalone: str
    retrieval: Retrieval
    answerable: bool
    started: float
    timings_ms: dict[str, float] = field(default_factory=dict)  # each stage adds its own
    failure: ModelFailure | None = None
    focus: str | None = None  # the words the quoted sentence must answer, when not `standalone`
    readings: tuple[Reading, ...] = ()  # the reader's spans in the top chunks, best first (`reading.py`)
    names_nothing: bool = (
        False  # why it is not answerable: asked alone, it names nothing (`unseen.names_nothing`)
    )
    # or, in a conversation, a question word alone that asks for no one thing ("What?", `bare.asks_for_no_one_thing`)
    asks_for_no_one_thing: bool = False
    unseen_words: tuple[str, ...] = ()  # or words no passage uses (`unseen.py`)
    missing_parts: tuple[str, ...] = ()  # or numbered parts ("Article 5") no passage found names (`parts.py`)
    # or the question's rarest word, which no passage found uses, below the reranker's floor (`refused_by_floor`)
    absent_word: str | None = None
    # a follow-up's earlier answers, whose quotes it does not quote again (`condense.earlier_answers`)
    shown_before: str = ""
    # a follow-up held to the conversation's article, which names what it names (`Assistant._retrieve`)
    held_to_article: bool = False
    # or the title of the article a follow-up refers back to, which the request's filters leave out
    # (`Assistant.article_outside_filters`)
    filtered_out: str | None = None

    @property
    def answer_question(self) -> str:
        return self.focus or self.standalone

    @property
    def judged_question(self) -> str:
        """Whose names and numbers the passages must mention (`Assistant.is_answerable`): a follow-up's own
        words, since the names it borrowed from the previous question were that question's to find."""
        return self.request.question if self.focus else self.standalone

    @property
    def standalone_question(self) -> str | None:
        return self.standalone if self.request.history else None


class Answerer(Protocol):
    """A strategy that turns an answerable context into streamed text and one final `Answer`. It never
    calls back into the assistant; a model failure is raised as `ModelFailure`."""

    name: str

    def stream(self, context: AnswerContext) -> Iterator[Delta | Answer]: ...
