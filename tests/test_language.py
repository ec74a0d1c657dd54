"""Question language: Bokmål and Nynorsk told apart by the words only one of them uses."""

from __future__ import annotations

import pytest

from assistant.core.language import detect_language, norwegian_standard

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


@pytest.mark.parametrize("question", BOKMAL)
def test_bokmal_questions_are_bokmal(question):
    assert detect_language(question) == "nb"


@pytest.mark.parametrize("question", NYNORSK)
def test_nynorsk_questions_are_nynorsk(question):
    assert detect_language(question) == "nn"


@pytest.mark.parametrize("question", ENGLISH)
def test_english_questions_stay_english(question):
    assert detect_language(question) == "en"


def test_no_marker_words_leave_the_choice_to_the_identifier():
    assert norwegian_standard("Stoltenberg og NATO i Brussel") is None
    assert norwegian_standard("Hva og kva") is None  # one each: undecided
