"""Question language: Bokmål and Nynorsk told apart by the words only one of them uses."""

from __future__ import annotations

import pytest

from assistant.core.language import ENGLISH_OPENERS, detect_language, norwegian_standard

BOKMAL = [
    "Hva sa NATO-generalsekretær Jens Stoltenberg om avtalen mellom Russland og Nord-Korea?",
    "Hva sa NATO-generalsekretæren om forsvarspakten?",
    "Hvem signerte avtalen mellom Russland og Nord-Korea?",
    "Hvordan reagerte Japan?",
    "Hva forplikter artikkel 4 hver av partene til?",
    "Hvor mange mennesker bor i Oslo?",
    "Hvorfor ble avtalen inngått nå?",
]
NYNORSK = [
    "Kva sa generalsekretæren i NATO om avtalen?",
    "Korleis reagerte Japan på avtalen?",
    "Kven signerte forsvarsavtalen mellom Russland og Nord-Korea?",
    "Kva forpliktar artikkel 4 kvar av partane til?",
    "Kor mange menneske bur i Oslo?",
    "Kvifor vart avtalen inngått no?",
]
ENGLISH = ["What did the NATO secretary general say?", "And how did Japan react?", "Who is Kim Jong-un?"]
# English questions full of Norwegian names, which py3langid alone reads as Norwegian (English versions of
# NorQuAD validation questions and an unanswerable one): their opening word settles it.
ENGLISH_WITH_NORWEGIAN_NAMES = [
    "When did Solskjær's team play Chelsea?",
    "What did Kaare talk about on Fjernsynskjøkkenet?",
    "Who runs Nettavisen Økonomi's grocery price index (dagligvarebørs)?",
    "What new name did the party Folkeaksjonen nei til mer bompenger end up choosing?",
]


@pytest.mark.parametrize("question", BOKMAL)
def test_bokmal_questions_are_bokmal(question):
    assert detect_language(question) == "nb"


@pytest.mark.parametrize("question", NYNORSK)
def test_nynorsk_questions_are_nynorsk(question):
    assert detect_language(question) == "nn"


@pytest.mark.parametrize("question", ENGLISH)
def test_english_questions_stay_english(question):
    assert detect_language(question) == "en"


@pytest.mark.parametrize("question", ENGLISH_WITH_NORWEGIAN_NAMES)
def test_an_english_opening_word_makes_a_question_with_norwegian_names_english(question):
    assert detect_language(question) == "en"
    assert detect_language(question.replace(question.split()[0], "Hm,", 1)) != "en"  # the identifier alone
    assert question.split()[0].lower() in ENGLISH_OPENERS


def test_a_norwegian_text_that_opens_with_a_name_spelled_like_an_english_word_stays_norwegian():
    assert detect_language("Are Kalvø og den nye boka hans om Nordmarka") in ("nb", "nn")


def test_no_marker_words_leave_the_choice_to_the_identifier():
    assert norwegian_standard("Stoltenberg og NATO i Brussel") is None
    assert norwegian_standard("Hva og kva") is None  # one each: undecided
