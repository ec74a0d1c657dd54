from assistant.answering.context import AskRequest
from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, DEMO_QUESTION_NB, SEED_ID


def test_article4_question_cites_the_article4_paragraph_in_both_languages(assistant):
    for question in (DEMO_QUESTION_EN, DEMO_QUESTION_NB):
        answer = assistant.ask(AskRequest(question))
        assert answer.answerable
        first = answer.citations[0]
        assert first.n == 1 and first.article_id == SEED_ID
        assert first.quote.startswith(ARTICLE4_OPENING)
        assert "[1]" in answer.answer
