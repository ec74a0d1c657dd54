"""Abstention: a question whose names or numbers no retrieved passage mentions is refused."""

from assistant.answering.context import AskRequest
from assistant.answering.support import missing_terms
from evals.calibrate import choose_missing_rule


def test_missing_terms_finds_names_and_numbers_the_passages_lack():
    passages = ["Moss lufthavn Rygge har vært stengt siden 2016. Nye eiere vil gjenåpne flyplassen."]
    assert missing_terms("Hvor mange passasjerer hadde Gardermoen i 2019?", passages) == [
        "gardermoen",
        "2019",
    ]
    assert missing_terms("When did Moss Airport Rygge close?", passages) == []
    assert missing_terms("Når stengte Rygge i 2016?", passages) == []


def test_the_rule_is_chosen_within_the_false_refusal_bound():
    pos, neg = [0.9] * 10, [0.9] * 4
    rule, table = choose_missing_rule(pos, neg, [0] * 9 + [1], [1, 1, 2, 0], 0.8, [[0] * 9 + [1]], 0.10)
    assert rule == 1 and table[1]["tnr"] == 0.75 and table[1]["tpr"] == 0.9
    rule, _ = choose_missing_rule(pos, neg, [0] * 8 + [1, 1], [1, 1, 2, 0], 0.8, [[0] * 8 + [1, 1]], 0.10)
    assert rule == 2  # refusing on one missing term would refuse 20% of answerable questions


def test_a_near_miss_question_is_refused_with_the_rule_on(assistant):
    strict = type(assistant)(
        assistant.settings.replace(refuse_missing_terms={"en": 1, "nb": 1}),
        assistant.retriever,
        assistant.extractive,
        None,
    )
    answer = strict.ask(AskRequest("How many troops did Gardermoen send to Pyongyang in 2019?"))
    assert not answer.answerable and answer.citations == () and "couldn't find" in answer.answer
    assert strict.ask(AskRequest("What does Article 4 commit each side to?")).answerable


def test_an_acronym_genitive_is_the_acronym():
    passages = ["Brattvik IL får nytt kunstgressstadion med plass til 3200 tilskuere."]
    assert missing_terms("Hvor mange tilskuere får Brattvik ILs nye stadion plass til?", passages) == []
