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
from tests.test_generative import ARTICLE4_EN, generative_settings, run

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


UNSUPPORTED_CLAIM = "The treaty also obliges Norway to pay 3 billion kroner to Pyongyang every year"
GOOD_THEN_UNSUPPORTED = f"{ARTICLE4_EN} [1] {UNSUPPORTED_CLAIM} [1]."


def test_an_unsupported_cited_sentence_gets_a_notice(generative, llm):
    llm.script(Reply(GOOD_THEN_UNSUPPORTED))
    _, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "openai-compatible"
    assert [s.supported for s in answer.sentences] == [True, False]
    assert answer.notice and "not supported by the passage they cite" in answer.notice
    assert answer.to_dict()["notice"] == answer.notice


def test_the_cli_marks_an_unsupported_sentence(monkeypatch, built_index, llm, tmp_path, capsys):
    from assistant.cli import main
    from tests.test_generative import generative_cli_env

    generative_cli_env(monkeypatch, built_index, llm, tmp_path)
    llm.script(Reply(GOOD_THEN_UNSUPPORTED))
    assert main(["ask", "--backend", "openai-compatible", DEMO_QUESTION_EN]) == 0
    out = capsys.readouterr().out
    assert "not supported by the passage they cite" in out
    assert f"(unsupported) {UNSUPPORTED_CLAIM}. [1]" in out
    assert f"(unsupported) {ARTICLE4_EN}" not in out


def test_mcp_ask_archive_marks_an_unsupported_sentence(built_index, embedder, llm):
    import anyio

    from tests.test_mcp_server import InProcess, http_session, structured

    settings = generative_settings(built_index, llm)
    server = InProcess(settings, build_assistant(settings, embedder=embedder))
    try:

        async def ask() -> dict:
            async with http_session(server.url) as session:
                return structured(await session.call_tool("ask_archive", {"question": DEMO_QUESTION_EN}))

        llm.script(Reply(GOOD_THEN_UNSUPPORTED))
        result = anyio.run(ask)
    finally:
        server.stop()
    assert [s["supported"] for s in result["sentences"]] == [True, False]
    assert result["sentences"][1]["text"] == f"{UNSUPPORTED_CLAIM}."
    assert result["notice"] and "not supported by the passage they cite" in result["notice"]
    assert f"{UNSUPPORTED_CLAIM} [1]. (unsupported)" in result["answer"]
    assert result["answer"].count("(unsupported)") == 1


def test_a_marker_whose_passage_does_not_support_its_sentence_is_no_evidence(generative, llm):
    hits = generative.retriever.retrieve(
        DEMO_QUESTION_EN, generative.settings.top_k, mode=generative.settings.retriever
    ).hits
    assert "Artikkel 4" in hits[0].chunk.text and "Artikkel 4" not in hits[1].chunk.text
    llm.script(Reply(f"{ARTICLE4_EN[:-1]} [1, 2]."))
    deltas, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    assert "[1] [2]" in "".join(deltas), "the stream showed both markers"
    assert [c.n for c in answer.citations] == [1] and answer.citations[0].chunk_id == hits[0].chunk.id
    assert answer.sentences[0].citations == (1,) and answer.sentences[0].supported
    assert answer.answer == f"{ARTICLE4_EN[:-1]} [1]." and answer.notice is None


def test_a_sentence_no_marker_supports_keeps_its_markers_flagged(generative, llm):
    llm.script(Reply(f"{ARTICLE4_EN} [1] {UNSUPPORTED_CLAIM} [1, 2]."))
    _, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    assert answer.sentences[1].citations == (1, 2) and answer.sentences[1].supported is False
    assert answer.answer.endswith(f"{UNSUPPORTED_CLAIM} [1] [2].")


STOLTENBERG_EN = (
    "NATO Secretary General Jens Stoltenberg said the pact shows that authoritarian powers are allying [{n}]. "
    "He added that the alliance is watching the situation closely and will respond to any threat [{n}]."
)


def stoltenberg_reply(assistant) -> tuple[Reply, str]:
    """A reply citing the Stoltenberg passage by the number the model is shown, cut off after 20 chunks."""
    hits = assistant.retriever.retrieve(
        DEMO_QUESTION_EN, assistant.settings.top_k, mode=assistant.settings.retriever
    ).hits
    n, hit = next((n, h) for n, h in enumerate(hits, 1) if "Stoltenberg" in h.chunk.text)
    assert n != 1 and not hits[0].chunk.text.count("Stoltenberg")
    return Reply(STOLTENBERG_EN.format(n=n), cut_after=20), hit.chunk.id


def test_markers_shown_before_a_broken_stream_still_name_their_passage(generative, llm):
    reply, stoltenberg = stoltenberg_reply(generative)
    llm.script(reply)
    deltas, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    shown = "".join(deltas)
    assert "allying [1]" in shown, "renumbered in order of first use"
    assert answer.backend == "extractive" and answer.partial and "incomplete" in answer.notice
    by_n = {c.n: c for c in answer.citations}
    assert by_n[1].chunk_id == stoltenberg, "the [1] shown before the break names the passage it cited"
    fallback = [c for c in answer.citations if c.quote.startswith(ARTICLE4_OPENING)]
    assert fallback and fallback[0].n > 1 and f"[{fallback[0].n}]" in answer.answer
    assert "[1]" not in answer.answer
    assert all(n in by_n for s in answer.sentences for n in s.citations)


def test_an_answer_no_text_of_was_shown_is_no_partial_one(generative, llm):
    reply, _ = stoltenberg_reply(generative)
    llm.script(reply)
    answer = generative.ask(AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "extractive" and not answer.partial
    assert "broke off" in answer.notice and "incomplete" not in answer.notice
    assert answer.citations[0].n == 1 and answer.citations[0].quote.startswith(ARTICLE4_OPENING)
