"""`python -m evals.keyword_searches`: the keyword-search translation finds what it changes."""

from __future__ import annotations

from assistant.answering.translate import search_translation
from assistant.core.language import detect_language
from evals.keyword_searches import changed_questions


def test_only_a_short_question_read_as_norwegian_with_words_the_archive_lacks_is_changed(assistant):
    frequency = assistant.retriever.lexical.current().document_frequency

    def translate(question: str, language: str) -> str:
        return search_translation(assistant.translator, question, language, frequency)

    questions = {
        "set": [
            "Article 4",  # read as Bokmål; "Article" is in no passage
            "artikkel 4",  # the archive's own word
            "Hvem dømte kampen?",  # short, Norwegian, words the archive uses
            "Who signed it?",  # English: translated as before, not by this rule
            "What does Article 4 commit each side to?",  # long
        ]
    }
    short, changed = changed_questions(questions, translate, detect_language)
    assert short == {"set": 4}
    assert changed == [("set", "Article 4", "artikkel")]
