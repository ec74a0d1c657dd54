"""What the generative answer presents as grounded, against the scripted OpenAI-compatible server over real
HTTP, on the real index fixture: a refusal followed by a claim is no refusal, an unsupported sentence is marked
on every face, a marker whose passage does not support its sentence is no evidence, and text shown before a
broken stream cites what it cited."""

from __future__ import annotations

import pytest

from assistant.answering.context import AskRequest
from assistant.build import build_assistant
from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, DEMO_QUESTION_NB
from assistant.testing.scripted_llm import Reply
from tests.test_generative import generative_settings, run

CLAIM_EN = "But Article 4 obliges Norway to pay 3 billion kroner [1]."
CLAIM_NB = "Men artikkel 4 forplikter Norge til å betale 3 milliarder kroner til Pyongyang hvert år [1]."


@pytest.fixture(autouse=True)
def fresh_script(llm):
    llm.reset()
    yield


@pytest.fixture(scope="module")
def generative(built_index, embedder, llm):
    return build_assistant(generative_settings(built_index, llm), embedder=embedder)


@pytest.mark.parametrize(
    "question, reply",
    [
        (DEMO_QUESTION_EN, f"I couldn't find this in the archive. {CLAIM_EN}"),
        (DEMO_QUESTION_NB, f"Jeg fant ikke dette i arkivet. {CLAIM_NB}"),
    ],
    ids=["en", "nb"],
)
def test_a_refusal_followed_by_an_unsupported_claim_is_replaced(generative, llm, question, reply):
    llm.script(Reply(reply))
    _, answer = run(generative, AskRequest(question))
    assert answer.backend == "extractive" and answer.answerable
    assert answer.citations[0].quote.startswith(ARTICLE4_OPENING)
    assert answer.notice and ("replaced" in answer.notice or "erstattet" in answer.notice)
    assert "3 billion" not in answer.answer and "milliarder" not in answer.answer


def test_a_pure_refusal_is_kept_and_cites_nothing(generative, llm):
    llm.script(Reply("I couldn't find this in the archive [1]."))
    _, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "openai-compatible" and not answer.answerable
    assert answer.citations == () and answer.notice is None
