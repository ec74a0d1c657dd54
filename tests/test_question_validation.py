"""What a question must be before anything is searched: not empty, not over the limit, and holding at least
one word (a letter or digit in any script); punctuation or emoji alone would be answered with any passage."""

from __future__ import annotations

import pytest

from assistant.answering.assistant import Assistant
from assistant.answering.context import AskRequest
from assistant.core.errors import BadInputError


def validate(question: str) -> AskRequest:
    return Assistant.validate(object.__new__(Assistant), AskRequest(question))


@pytest.mark.parametrize("question", ["???", " ?! ", "…", "🤔", "-- ** --", "«»"])
def test_a_question_without_words_is_refused_with_a_clear_error(question):
    with pytest.raises(BadInputError, match="no words"):
        validate(question)


@pytest.mark.parametrize("question", ["2019?", "Hvem?", "Что это?", "什么？", "  Article 4  "])
def test_a_question_with_a_word_in_any_script_is_accepted_and_trimmed(question):
    assert validate(question).question == question.strip()
