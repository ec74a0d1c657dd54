"""The typed values that travel between stages. One `Answer` type is rendered by every face."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.core.dates import parse_date
from assistant.core.errors import BadInputError, clipped
from assistant.core.language import LANGUAGES

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    text: str
    content_hash: str
    language: str
    date: str | None = None
    source: str | None = None
    url: str | None = None
    author: str | None = None
    origin: str | None = None  # where it was loaded from (file path, dataset key)


@dataclass(frozen=True)
class Chunk:
    id: str
    article_id: str
    position: int
    text: str
    start: int  # offsets into Article.text: article.text[start:end] == text
    end: int
    token_count: int


CHUNK_ID_SEPARATOR = "#"  # a chunk id is "<article id>#<position>-<digest>" (`ingest.chunking.chunk_id`)


def article_of_chunk(chunk_id: str) -> str:
    """The id of the article a chunk id belongs to (an article id may itself hold the separator)."""
    return chunk_id.rsplit(CHUNK_ID_SEPARATOR, 1)[0]


@dataclass(frozen=True)
class ArticleMeta:
    """What a hit needs to know about its article, without the full text."""

    id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    language: str
    content_hash: str


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    article: ArticleMeta
    score: float  # fused score, higher is better
    dense_score: float | None = None  # cosine similarity in [-1, 1]
    lexical_score: float | None = None

    @property
    def titled_text(self) -> str:
        """The chunk under its article's title: where a question's names and numbers are looked for."""
        return f"{self.article.title}\n{self.chunk.text}"


@dataclass(frozen=True)
class Filters:
    since: str | None = None  # ISO dates, inclusive
    until: str | None = None
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    articles: tuple[str, ...] = ()  # article ids: a follow-up searched within the conversation's article

    @property
    def empty(self) -> bool:
        return not (self.since or self.until or self.sources or self.languages or self.articles)

    def admits(self, article: ArticleMeta) -> bool:
        """Whether the article passes, as the store decides it (an undated article precedes every date)."""
        date = (article.date or "")[:10]
        return (
            (not self.since or (bool(date) and date >= self.since))
            and (not self.until or not date or date <= self.until)
            and (not self.sources or article.source in self.sources)
            and (not self.languages or article.language in self.languages)
            and (not self.articles or article.id in self.articles)
        )

    @classmethod
    def parse(
        cls,
        since: str | None = None,
        until: str | None = None,
        sources=(),
        languages=(),
        field_prefix: str = "",
    ) -> Filters:
        """Filters from what a person typed; a date that cannot be read, or a language code that is none of
        Kilde's, raises `BadInputError` naming the field (`field_prefix` + since/until/languages), so every face
        reports it the same way."""
        dates: dict[str, str | None] = {}
        for name, value in (("since", since), ("until", until)):
            value = (value or "").strip()
            # Only YYYY-MM-DD, as every face asks for: "31.12.2024" or "12/31/2024" would be a guess.
            iso = parse_date(value) if _ISO_DATE.match(value) else None
            if value and not iso:
                raise BadInputError(
                    f"{field_prefix}{name}", f"{clipped(value)!r} is not a date; use YYYY-MM-DD"
                )
            dates[name] = iso
        # A range that ends before it starts would match nothing, and say nothing of why.
        if dates["since"] and dates["until"] and dates["since"] > dates["until"]:
            raise BadInputError(
                f"{field_prefix}until",
                f"{dates['until']} is before since {dates['since']}; no date is in both",
            )
        # A code that is no language at all ("de", "nob") is refused here; one no article is in, where the archive
        # is known (`check_languages` in `assistant.answering.retrieval`).
        for code in languages or ():
            if code not in LANGUAGES:
                raise BadInputError(
                    f"{field_prefix}languages", f"{clipped(code)!r} is not one of {', '.join(LANGUAGES)}"
                )
        return cls(sources=tuple(sources or ()), languages=tuple(languages or ()), **dates)


NO_FILTERS = Filters()  # the shared "no filter" default of the stages

# What every offset into an article counts, as the faces' schemas tell their clients (README.md).
OFFSET_UNIT = (
    "in Unicode code points (not UTF-16 code units or bytes) of the article's stored, NFC-normalised text"
)


@dataclass(frozen=True)
class Citation:
    n: int
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    chunk_id: str
    quote: str
    start: int
    end: int
    score: float
    # The reader's answer span inside the quote, in article offsets (start <= answer_start < answer_end <= end);
    # None when no reader chose the quote.
    answer_start: int | None = None
    answer_end: int | None = None


@dataclass(frozen=True)
class Reading:
    """What the reader found in one chunk: its best answer span (character offsets into `chunk.text`) and how
    strongly it prefers that span to "no answer here". Scores are logits: only their difference is meaningful.
    A chunk with no readable text has an empty span at 0 and `span_score` -inf."""

    chunk_id: str
    answer_start: int
    answer_end: int
    span_score: float
    no_answer_score: float
    # the best span outside the sentences of the first: a second sentence the answer may quote (-inf: none)
    second_start: int = 0
    second_end: int = 0
    second_score: float = -math.inf

    @property
    def margin(self) -> float:
        return self.span_score - self.no_answer_score

    @property
    def second_margin(self) -> float:
        return self.second_score - self.no_answer_score


@dataclass(frozen=True)
class Sentence:
    text: str
    citations: tuple[int, ...]
    supported: bool | None = None
    support_score: float | None = None


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


_LANGUAGE_GROUP = {"nn": "nb"}  # Nynorsk quotes for a Bokmål question (or back) are not another language


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    answerable: bool
    language: str
    citations: tuple[Citation, ...]
    retrieved: tuple[Hit, ...]
    sentences: tuple[Sentence, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    backend: str = "extractive"
    standalone_question: str | None = None
    notice: str | None = None
    partial: bool = False

    @property
    def quoted_original_languages(self) -> tuple[str, ...]:
        """The languages of the quoted articles when some quote is not in the question's language, else ().
        An extractive answer quotes verbatim, so every face says so; a model writes in the question's."""
        if self.backend != "extractive":
            return ()
        by_chunk = {hit.chunk.id: hit.article.language for hit in self.retrieved}
        quoted = {by_chunk[c.chunk_id] for c in self.citations if c.chunk_id in by_chunk}
        question = _LANGUAGE_GROUP.get(self.language, self.language)
        if all(_LANGUAGE_GROUP.get(q, q) == question for q in quoted):
            return ()
        return tuple(sorted(quoted))

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract shared by `kilde ask --json`, the API and the evals."""
        return {
            "question": self.question,
            "answer": self.answer,
            "answerable": self.answerable,
            "language": self.language,
            "backend": self.backend,
            "standalone_question": self.standalone_question,
            "notice": self.notice,
            "partial": self.partial,
            "quoted_original_languages": list(self.quoted_original_languages),
            "citations": [asdict(c) for c in self.citations],
            "sentences": [
                {
                    "text": s.text,
                    "citations": list(s.citations),
                    "supported": s.supported,
                    "support_score": s.support_score,
                }
                for s in self.sentences
            ],
            "retrieved": [
                {
                    "chunk_id": h.chunk.id,
                    "article_id": h.chunk.article_id,
                    "score": round(h.score, 6),
                    "dense_score": h.dense_score,
                    "lexical_score": h.lexical_score,
                    "title": h.article.title,
                    "start": h.chunk.start,
                    "end": h.chunk.end,
                    "text": h.chunk.text,
                }
                for h in self.retrieved
            ],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
