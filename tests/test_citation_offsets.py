"""Round twenty-six: every face that returns citations points `start`/`end` at the quoted characters of the
article text that face serves, whatever the article held before the quote (tests/citation_offsets.py)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import anyio
import httpx
import pytest

from assistant.testing.servers import ThreadServer
from tests.citation_offsets import CASES, build_offsets_index, check_citation

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def offsets_settings(tmp_path_factory, tiktoken_cache, embedder):
    # The reader on, so its answer spans (answer_start/answer_end) are checked as well.
    return build_offsets_index(tmp_path_factory.mktemp("offsets"), tiktoken_cache, embedder, reader=True)


@pytest.fixture(scope="module")
def offsets_assistant(offsets_settings, embedder):
    from assistant.build import build_assistant

    return build_assistant(offsets_settings, embedder=embedder)


@pytest.fixture(scope="module")
def offsets_api(offsets_settings, offsets_assistant):
    from ui.server import create_app

    server = ThreadServer(create_app(offsets_settings.replace(rate_limit_per_minute=1000), offsets_assistant))
    yield server.start()
    server.stop()


def cited_titles(citations) -> set[str]:
    return {c["title"] for c in citations}


def test_stored_text_is_the_cleaned_nfc_text_the_offsets_count(offsets_assistant):
    """What ingest does to each case, as docs say: NFC, no CR, tab, BOM, zero-width space or no-break space."""
    for name in CASES:
        text = offsets_assistant.store.get_article(name).text
        assert unicodedata.is_normalized("NFC", text)
        assert not set(text) & {"\r", "\t", "\ufeff", "\u200b", "\u00a0", "\u202f", "\u2009"}, name


def test_a_quote_in_the_overlap_of_two_chunks_has_the_same_offsets_in_both(offsets_assistant):
    from assistant.answering.context import AskRequest

    answer = offsets_assistant.ask(AskRequest(question=CASES["chunk-overlap"][2]))
    (citation,) = [c for c in answer.citations if c.quote == CASES["chunk-overlap"][1]]
    holding = [
        chunk
        for chunk, _ in offsets_assistant.store.iter_chunks()
        if chunk.article_id == "chunk-overlap" and chunk.start <= citation.start and citation.end <= chunk.end
    ]
    assert len(holding) == 2 and citation.chunk_id in {c.id for c in holding}
    for chunk in holding:
        at = chunk.text.index(citation.quote)
        assert (chunk.start + at, chunk.start + at + len(citation.quote)) == (citation.start, citation.end)


def test_a_quote_cut_from_a_sentence_longer_than_a_chunk_opens_at_a_clause_and_is_marked(offsets_assistant):
    """The chunk that ends the over-long sentence opens mid-clause ("39 to the square, finally sold …"): the quote
    opens after its comma, and the answer marks the sentence's left-out start (`assistant/answering/cuts.py`)."""
    from assistant.answering.context import AskRequest

    answer = offsets_assistant.ask(AskRequest(question=CASES["chunk-boundary"][2]))
    citation = answer.citations[0]
    assert citation.quote == "finally sold 🎟️ seventeen thousand tickets in total.", answer.answer
    assert answer.answer.startswith(f"… {citation.quote} [1]"), answer.answer


def test_python_ask_quotes_at_its_offsets(offsets_assistant):
    from assistant.answering.context import AskRequest

    for name, (_, _, question) in CASES.items():
        answer = offsets_assistant.ask(AskRequest(question=question)).to_dict()
        assert f"Report {name} from the coast" in cited_titles(answer["citations"]), (name, answer["answer"])
        for citation in answer["citations"]:
            check_citation(citation, offsets_assistant.store.get_article(citation["article_id"]).text)


def test_api_ask_quotes_at_the_offsets_of_the_api_article(offsets_api):
    with httpx.Client(base_url=offsets_api.url, timeout=120) as client:
        for name, (_, _, question) in CASES.items():
            answer = client.post("/api/ask", json={"question": question}).raise_for_status().json()
            assert f"Report {name} from the coast" in cited_titles(answer["citations"]), name
            for citation in answer["citations"]:
                article = client.get(f"/api/articles/{quote(citation['article_id'], safe='')}").json()
                check_citation(citation, article["text"])


def test_openai_face_quotes_at_the_offsets_plain_and_streamed(offsets_api):
    import openai

    client = openai.OpenAI(base_url=offsets_api.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    articles = httpx.Client(base_url=offsets_api.url, timeout=120)
    for name in ("emoji", "nfd", "zero-width", "chunk-boundary"):
        messages = [{"role": "user", "content": CASES[name][2]}]
        plain = client.chat.completions.create(model="kilde", messages=messages).model_extra["kilde"]
        chunks = list(client.chat.completions.create(model="kilde", messages=messages, stream=True))
        streamed = chunks[-1].model_extra["kilde"]
        for kilde in (plain, streamed):
            assert f"Report {name} from the coast" in cited_titles(kilde["citations"]), name
            for citation in kilde["citations"]:
                text = articles.get(f"/api/articles/{quote(citation['article_id'], safe='')}").json()["text"]
                check_citation(citation, text)
    articles.close()


def test_mcp_ask_archive_quotes_at_the_offsets_of_the_resource(offsets_settings, offsets_assistant):
    from tests.test_mcp_server import InProcess, http_session, structured

    server = InProcess(offsets_settings.replace(rate_limit_per_minute=1000), offsets_assistant)

    async def asks():
        async with http_session(server.url) as session:
            for name, (_, _, question) in CASES.items():
                answer = structured(await session.call_tool("ask_archive", {"question": question}))
                assert f"Report {name} from the coast" in cited_titles(answer["citations"]), name
                for citation in answer["citations"]:
                    text = (await session.read_resource(citation["resource"])).contents[0].text
                    check_citation(citation, text)

    try:
        anyio.run(asks)
    finally:
        server.stop()


def test_generative_answer_quotes_at_its_offsets(offsets_settings, embedder, llm):
    """A model that repeats the passage's sentence: the support check's span in the passage is the quote."""
    from assistant.answering.context import AskRequest
    from assistant.build import build_assistant
    from assistant.testing.scripted_llm import Reply
    from ingest.cleaning import normalise_line

    settings = llm.settings_for(offsets_settings, llm_max_retries=0)
    generative = build_assistant(settings, embedder=embedder)
    for name in ("emoji", "nfd", "zero-width", "soft-hyphen"):
        _, sentence, question = CASES[name]
        llm.reset()
        llm.script(Reply(f"{normalise_line(sentence)} [1]"))
        answer = generative.ask(AskRequest(question=question)).to_dict()
        assert answer["backend"] == "openai-compatible" and cited_titles(answer["citations"]) == {
            f"Report {name} from the coast"
        }, answer
        (citation,) = answer["citations"]
        check_citation(citation, generative.store.get_article(name).text)
        assert normalise_line(sentence) in citation["quote"]


def test_the_schemas_clients_read_name_the_offsets_unit(offsets_api, offsets_settings, offsets_assistant):
    """OpenAPI (/api/ask's citations, /api/search's passages) and the MCP tools' output schemas say what the
    offsets count, and /api/ask's documented citation holds every field a citation has."""
    from tests.test_mcp_server import InProcess, http_session

    schemas = httpx.get(offsets_api.url + "/openapi.json").json()["components"]["schemas"]
    answer = httpx.post(
        offsets_api.url + "/api/ask", json={"question": CASES["emoji"][2]}, timeout=120
    ).json()
    assert set(schemas["CitationOut"]["properties"]) == set(answer["citations"][0])
    described = [
        schemas["CitationOut"]["properties"][f] for f in ("start", "end", "answer_start", "answer_end")
    ]
    described += [schemas["PassageOut"]["properties"][f] for f in ("start", "end")]

    server = InProcess(offsets_settings.replace(rate_limit_per_minute=1000), offsets_assistant)

    async def tool_schemas():
        async with http_session(server.url) as session:
            return {t.name: t.output_schema for t in (await session.list_tools()).tools}

    try:
        tools = anyio.run(tool_schemas)
    finally:
        server.stop()
    for tool, model, fields in (
        ("search_archive", "Passage", ("start", "end")),
        ("ask_archive", "Citation", ("start", "end", "answer_start", "answer_end")),
    ):
        described += [tools[tool]["$defs"][model]["properties"][f] for f in fields]
    for field in described:
        assert "Unicode code points" in field.get("description", ""), field
