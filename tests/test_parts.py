"""A question about a numbered part ("Article 5") is answered only from passages that name that part."""

import pytest

from assistant.answering.context import AskRequest
from assistant.answering.parts import missing_parts, numbered_parts
from assistant.core.types import Turn
from assistant.testing.corpus import DEMO_QUESTION_EN, SEED_ID

PACT = (
    "Artikkel 4 i avtalen sier: «Hvis en av partene står overfor en væpnet invasjon …» "
    "Artikkel 51 i FN-pakten gir en medlemsstat rett til å ta individuelle eller kollektive selvforsvarsaksjoner."
)


def test_numbered_parts_are_read_in_either_language_and_by_their_whole_number():
    assert numbered_parts(PACT) == {("artikkel", "4"), ("artikkel", "51")}
    assert numbered_parts("I paragraf 55 i forretningsordenen … jf. § 12 og kapittel 4.") == {
        ("paragraf", "55"),
        ("paragraf", "12"),
        ("kapittel", "4"),
    }
    assert numbered_parts("Resolution 242 and Article 5 of the treaty") == {
        ("resolusjon", "242"),
        ("artikkel", "5"),
    }
    assert numbered_parts("Hun vant 4 VM-gull i 2019, og artikkelen kom 3. mai.") == set()


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("What does Article 5 say?", ["Article 5"]),  # "artikkel 51" is not Article 5
        ("Hva sier artikkel 3?", ["artikkel 3"]),
        ("What does Article 4 commit each side to?", []),  # as "Artikkel 4"
        ("What right does Article 51 of the UN Charter give a member state?", []),
        ("What do Article 4 and article 6 say?", ["article 6"]),
        ("Hvor mange VM-gull vant hun i 2019?", []),  # numbers that number no part
    ],
)
def test_missing_parts_are_those_no_passage_names(question, missing):
    assert missing_parts(question, [PACT]) == missing


def test_a_question_about_a_part_the_archive_lacks_is_refused_and_says_why(assistant):
    answer = assistant.ask(AskRequest("What does Article 5 say?"))
    assert not answer.answerable and not answer.citations
    assert answer.answer.endswith("No passage I found names «Article 5».")
    norwegian = assistant.ask(AskRequest("Hva sier artikkel 3 i avtalen?"))
    assert not norwegian.answerable and "«artikkel 3»" in norwegian.answer
    # the part the pact's article names is still answered from it
    named = assistant.ask(AskRequest(DEMO_QUESTION_EN))
    assert named.answerable and named.citations[0].article_id == SEED_ID
    assert "Artikkel 4" in named.citations[0].quote


def test_a_follow_up_is_held_to_the_parts_it_names_itself(assistant):
    first = assistant.ask(AskRequest(DEMO_QUESTION_EN))
    other = assistant.ask(
        AskRequest(
            "And Article 5?", history=(Turn("user", DEMO_QUESTION_EN), Turn("assistant", first.answer))
        )
    )
    assert not other.answerable and "«Article 5»" in other.answer
    refused = "What does Article 5 say?"
    back = assistant.ask(
        AskRequest(
            "And what does Article 4 commit each side to?",
            history=(Turn("user", refused), Turn("assistant", other.answer)),
        )
    )
    assert back.answerable and "Artikkel 4" in back.answer
