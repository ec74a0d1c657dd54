"""A question that names a year is answered only from passages that mention it: a quote about 2018 does not
answer a question about 2019."""

import pytest

from assistant.answering.context import AskRequest
from assistant.answering.years import missing_years, named_years
from assistant.testing.corpus import SEED_ID


@pytest.mark.parametrize(
    ("question", "years"),
    [
        ("Hvor stort resultat hadde Norwegian i tredje kvartal 2019?", ["2019"]),
        ("Which team won the boys' 19 class at Norway Cup 2019?", ["2019"]),
        ("Hvem vant i 2019, og hvem vant i 2020 og 2019?", ["2019", "2020"]),
        ("Hva skjedde i 2019/20-sesongen?", ["2019"]),
        ("Når ble gravplassen tatt i bruk i 1606?", ["1606"]),
        ("Når startet den vestlige gullblokaden på 1920-tallet?", []),  # a decade
        ("Hva skjedde 1.2019, og hva kostet 12019 kroner?", []),  # parts of other numbers
        ("Hvor mange VM-gull har Svindal?", []),
    ],
)
def test_a_year_is_a_number_that_stands_alone(question, years):
    assert named_years(question) == years


def test_missing_years_are_those_no_passage_mentions_in_any_form():
    passages = [
        "Norwegian hadde et driftsresultat på minus 3,8 milliarder kroner i 2018.",
        "Sesongen 2019-2020.",
    ]
    assert missing_years("Hvor stort resultat hadde Norwegian i 2017?", passages) == ["2017"]
    assert missing_years("Hva var resultatet i 2018 og 2019?", passages) == []
    assert missing_years("Hva skjedde i 2020 og 2021?", passages) == ["2021"]
    assert missing_years("Hvor stort var resultatet?", passages) == []


def test_a_quote_that_misses_the_questions_year_is_refused_and_says_why(assistant):
    # The pact's passages found mention 1961 (the treaty it revives), but not the one that quotes Article 4.
    question = "Hva forplikter artikkel 4 partene til i 1961?"
    retrieval = assistant.retriever.retrieve(question, 5)
    assert any("1961" in hit.chunk.text for hit in retrieval.hits)
    answer = assistant.ask(AskRequest(question))
    assert not answer.answerable and not answer.citations
    assert answer.answer.endswith("Ingen av tekstene jeg fant, nevner «1961».")
    # the year the quoted passage mentions is answered from it
    named = assistant.ask(AskRequest("Når ble den gjensidige forsvarsavtalen fra 1961 annullert?"))
    assert named.answerable and named.citations[0].article_id == SEED_ID
    assert "1961" in named.citations[0].quote
