"""A question that asks on what date or day is answered only by a quote that names one: the sentence saying that
Putin and Kim signed the pact does not say when."""

import pytest

from assistant.answering.context import AskRequest
from assistant.answering.days import asks_for_date, states_date
from assistant.testing.corpus import SEED_ID


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("På hvilken dato signerte Putin og Kim Jong Un avtalen?", True),
        ("Hvilken dag offentliggjorde KCNA teksten?", True),
        ("On what day did KCNA publish the text?", True),
        ("What date was the pact signed?", True),
        ("Og hvilken ukedag var det?", True),
        ("Når ble avtalen signert?", False),  # "when" asks for a time of any grain
        ("Hvilket år ble avtalen fra 1961 annullert?", False),
        ("Hva skjedde på hvilken dag?", False),  # not the question's own ask
        (
            "Hvem signerte avtalen? På hvilken dato?",
            False,
        ),  # a follow-up's standalone form: its first question
    ],
)
def test_a_question_asks_for_a_date_by_its_opening_words(question, asks):
    assert asks_for_date(question) is asks


@pytest.mark.parametrize(
    ("text", "states"),
    [
        ("Den 19. juni 2024 signerte de avtalen.", True),
        ("KCNA offentliggjorde torsdag hele teksten.", True),
        ("Søndagens kamp ble avlyst.", True),
        ("Han kom 19.06.2024 og dro 20.6.", True),
        ("Det skjedde i går, sa han.", True),
        ("They met on June 19.", True),
        ("Fristen er 3. jan. neste år.", True),
        ("Avtalen ble signert av Putin og Kim Jong Un.", False),
        ("Avtalen fra 1961 ble annullert i 1990.", False),  # a year dates nothing to the day
        ("Jan Egeland sa at 4,5 prosent mangler.", False),  # "Jan" without a point is a name
    ],
)
def test_a_quote_states_a_date_by_naming_a_day(text, states):
    assert states_date(text) is states


def test_a_date_the_quotes_do_not_give_is_refused_and_says_why(assistant):
    question = (
        "På hvilken dato signerte Putin og Kim Jong Un avtalen om et omfattende strategisk partnerskap?"
    )
    # The passage about the signing is found; it does not say on what day.
    retrieval = assistant.retriever.retrieve(question, 5)
    assert any("ble signert av Putin" in hit.chunk.text for hit in retrieval.hits)
    answer = assistant.ask(AskRequest(question))
    assert not answer.answerable and not answer.citations
    assert answer.answer.endswith("Ingen av tekstene jeg fant, oppgir datoen det spørres om.")
    english = assistant.ask(AskRequest("On what date did Putin and Kim Jong Un sign the pact?"))
    assert not english.answerable and english.answer.endswith("No passage I found gives the date asked for.")
    # A day the quote names answers it.
    named = assistant.ask(AskRequest("Hvilken dag offentliggjorde KCNA hele teksten til avtalen?"))
    assert named.answerable and named.citations[0].article_id == SEED_ID
    assert "torsdag" in named.citations[0].quote
