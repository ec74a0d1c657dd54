"""A question word alone ("When?", "Hvor?") asks the conversation's last question for one kind of thing, and a quote
answers it only by holding that kind."""

from __future__ import annotations

import pytest

from assistant.answering.bare import answers_bare, asks_for_no_one_thing, bare_kind, is_bare, told_in_lead


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When?", "when"),
        ("Når?", "when"),
        ("And when?", "when"),
        ("When exactly?", "when"),
        ("Where?", "where"),
        ("Hvor?", "where"),
        ("Og hvor da?", "where"),
        ("Who?", "who"),
        ("Hvem?", "who"),
        ("Why?", "why"),
        ("Hvorfor?", "why"),
        ("How many?", "amount"),
        ("Hvor mange?", "amount"),
        ("Hvor mye?", "amount"),
    ],
)
def test_a_question_word_alone_asks_for_its_kind(question, kind):
    assert bare_kind(question) == kind and is_bare(question)


@pytest.mark.parametrize("question", ["What?", "Hva?", "How?", "Og hvordan?"])
def test_what_and_how_alone_ask_for_no_one_kind(question):
    assert is_bare(question) and bare_kind(question) is None and asks_for_no_one_thing(question)
    assert answers_bare(question, "Russland og Nord-Korea benekter enhver våpenhandel.")


@pytest.mark.parametrize(
    "question", ["When?", "Hvem?", "How many?", "What did Putin say?", "Hva skjedde i Åre?"]
)
def test_a_question_word_of_a_kind_or_a_whole_question_asks_for_something(question):
    assert not asks_for_no_one_thing(question)


@pytest.mark.parametrize(
    "question",
    ["Who signed it?", "When was it signed?", "Hvor ble den signert?", "Hvem er han?", "Where is Pyongyang?"],
)
def test_a_question_with_more_than_its_question_word_is_not_bare(question):
    assert not is_bare(question) and bare_kind(question) is None
    assert answers_bare(question, "Russland og Nord-Korea benekter enhver våpenhandel.")


VISIT = (
    "Denne avtalen ble inngått under Russlands president Vladimir Putins første besøk til Nord-Korea på 24 år, "
    "melder Reuters."
)
ASIA = "Dette er en av de mest profilerte diplomatiske fremstøtene i Asia fra Moskvas side på flere år."
CHA = "– Det kommer fra Kims ønske om å satse alt på denne avtalen, mens Putin er nølende, sa Cha."
KCNA = "Nord-Koreas nyhetsbyrå KCNA offentliggjorde torsdag hele teksten til avtalen."
ARTICLE_51 = "Artikkel 51 i FN-pakten gir en medlemsstat rett til å ta individuelle eller kollektive selvforsvarsaksjoner."


@pytest.mark.parametrize("question", ["When?", "Når?"])
def test_a_time_is_a_date_a_day_or_during_an_event(question):
    assert answers_bare(question, VISIT) and answers_bare(question, KCNA)
    assert not answers_bare(question, ASIA) and not answers_bare(question, ARTICLE_51)
    assert not answers_bare(question, "Presidenten står under press.")
    # English "may" and "march" are a month only beside a day's number
    assert not answers_bare(question, "The talks may resume if both sides march in step.")
    assert answers_bare(question, "The pact was signed on 19 June.") and answers_bare(
        question, "It ends May 5."
    )


@pytest.mark.parametrize("question", ["Where?", "Hvor?"])
def test_a_place_is_a_name_after_a_preposition_of_place(question):
    assert answers_bare(question, VISIT)
    assert answers_bare(question, "På sitt første besøk til Pyongyang siden 2000 takket Putin Kim.")
    assert not answers_bare(question, CHA)  # "fra Kims ønske" is whose wish, not a place
    assert not answers_bare(question, ARTICLE_51)


def test_a_reason_is_given_by_a_word_that_gives_one():
    assert answers_bare("Hvorfor?", "Avtalen ble annullert fordi Sovjetunionen knyttet bånd til Sør-Korea.")
    assert not answers_bare("Why?", ASIA)


def test_an_amount_is_a_number_that_counts():
    assert answers_bare("Hvor mange?", "Over 300 soldater ble sendt.")
    assert not answers_bare("How many?", ASIA)
    # "Artikkel 51" names an article: it counts nothing ("How many?" after the Article 4 answer quoted it)
    assert not answers_bare("How many?", ARTICLE_51) and not answers_bare("Hvor mange?", ARTICLE_51)
    assert answers_bare("Hvor mange?", "Artikkel 4 forplikter to land.")


def test_when_and_where_are_told_in_a_reports_lead():
    assert told_in_lead("When?") and told_in_lead("Hvor?")
    assert not any(
        told_in_lead(q) for q in ("Who?", "Hvorfor?", "Hvor mange?", "What?", "When was it signed?")
    )
