"""What every question is checked and cleaned for before it is searched: `checked_question`, shared by
`Assistant.validate` (every question, whatever the face) and `check_query` (/api/search, the MCP search tool,
the LangChain retrievers), so that a text one refuses the other refuses too, in the same words.

Foundation code: no model, store or index behind it, so an HTTP client (`KildeHTTPRetriever`) checks a query
without importing the answering stack."""

from __future__ import annotations

import re
import unicodedata

from assistant.core.errors import NotTextError, UnusableQuestionError
from assistant.core.markup import without_tags
from assistant.core.surrogates import LONE_SURROGATE

MAX_QUESTION_CHARS = 2000

# Emoji and other pictographs (from the arrows' block on), flags' regional indicators, skin tones, emoji style.
_PICTOGRAPH = re.compile("[\u2190-\u2bff\u3297\u3299\U0001f000-\U0001faff\ufe0e\ufe0f]")


def as_typed(text: str) -> str:
    """`text` without the invisible characters a paste from a web page brings along (zero-width spaces, byte
    order marks, direction marks: Unicode's format characters), its control characters read as spaces."""
    return "".join(
        "" if category == "Cf" else " " if category == "Cc" else ch
        for ch, category in ((ch, unicodedata.category(ch)) for ch in text)
    )


SHOUTED_WORDS = 3  # fewer words in capitals are more often acronyms ("NRK TV", "OL 2019")


def shouts(question: str) -> bool:
    """`question` is written in capitals: at least `SHOUTED_WORDS` words with letters, and every letter a capital
    ("WHO SIGNED THE PACT?")."""
    words = [w for w in question.split() if any(ch.lower() != ch.upper() for ch in w)]
    return len(words) >= SHOUTED_WORDS and not any(ch.islower() for w in words for ch in w)


def check_text(field: str, text: str) -> None:
    """A lone surrogate is no text: no UTF-8 writer (embedder, store, JSON reply) accepts one."""
    if LONE_SURROGATE.search(text):
        raise NotTextError(field)


def without_markup(question: str) -> str:
    """`question` without HTML tags (a tag is searched as its words, "script", "onerror", found in any passage) and
    pictographs (an emoji names nothing a passage holds, yet moves the question's embedding and hides its first
    word)."""
    words = without_tags(question, " ")
    if words != question:
        question = " ".join(words.split())
    if _PICTOGRAPH.search(question):
        question = " ".join(_PICTOGRAPH.sub(" ", question).split())
    return question


def as_sentence(question: str) -> str:
    """A question typed in capitals in ordinary case: every word in capitals reads as a name or an acronym to the
    stages that look for names."""
    return question[0] + question[1:].lower() if shouts(question) else question


def as_asked(text: str) -> str:
    """A user turn of a conversation as its question was searched when asked (`checked_question`'s reading, with
    nothing refused): what a follow-up is searched with (the condensed question, `standalone_question`) holds no
    markup, control character or pictograph that a question could not."""
    return as_sentence(without_markup(as_typed(text).strip()))


def checked_question(text: str, field: str = "question", noun: str = "question") -> str:
    """`text` as it is searched for (`as_typed`, without markup or pictographs, capitals read as a sentence),
    or a `BadInputError` naming `field` when it is not text, has nothing to search for or is too long. The
    checks of every question, and of every search (`check_query`: /api/search, MCP, the LangChain retrievers),
    which calls it the `noun` "query"."""
    check_text(field, text)
    question = as_typed(text).strip()
    if not question:
        raise UnusableQuestionError(field, f"the {noun} is empty", kind="empty")
    if not without_tags(question, " ").strip():
        raise UnusableQuestionError(
            field, f"the {noun} is only markup (HTML tags), with no words to search for", kind="only_markup"
        )
    question = without_markup(question)
    if len(question) > MAX_QUESTION_CHARS:
        raise UnusableQuestionError(
            field,
            f"the {noun} is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}",
            kind="too_long",
            length=len(question),
            limit=MAX_QUESTION_CHARS,
        )
    question = as_sentence(question)
    if not any(ch.isalnum() for ch in question):
        # Nothing to search for: every passage would be as good an answer as any other.
        raise UnusableQuestionError(
            field, f"the {noun} has no words (letters or digits) to search for", kind="no_words"
        )
    return question
