"""`kilde mcp`, driven by the official `mcp` SDK's own `ClientSession`: over stdio (the SDK spawns the real
`kilde mcp` process) and over streamable HTTP (the real process on a loopback port, and the app in-process for
the rate-limit and origin rules), over the small real index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import pytest

from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, DEMO_QUESTION_NB, ROOT, SEED_ID
from assistant.testing.servers import free_port, has_ipv6_loopback, printed_url, subprocess_env
from tests.held import Held

pytestmark = pytest.mark.integration
KILDE = str(Path(sys.executable).with_name("kilde"))


def kilde_env(settings) -> dict[str, str]:
    return subprocess_env(
        {
            "KILDE_DATA_DIR": str(settings.data_dir),
            "KILDE_CACHE_DIR": str(settings.cache_dir),
            "KILDE_CONFIG": os.devnull,
            "ANONYMIZED_TELEMETRY": "False",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HOME": str(settings.cache_dir),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
    )


@asynccontextmanager
async def stdio_session(settings, env: dict[str, str] | None = None):
    """The real `kilde mcp` over stdio through the SDK's client; `env`: variables besides `kilde_env`'s."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=KILDE, args=["mcp"], env={**kilde_env(settings), **(env or {})}, cwd=str(ROOT)
    )
    # stderr as it is now: the SDK's default is the one of the first test that imported it (capsys's, perhaps,
    # which has no file descriptor for the process to write to).
    async with (
        stdio_client(params, errlog=sys.stderr) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, headers: dict | None = None):
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=120) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def structured(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


async def exercise(session) -> dict:
    """What every transport must do: list and call the tools, list and read the articles."""
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert {"search_archive", "ask_archive"} <= set(tools)
    assert {"query", "since", "until", "source", "k"} <= set(
        tools["search_archive"].input_schema["properties"]
    )

    result = await session.call_tool("search_archive", {"query": DEMO_QUESTION_NB, "k": 3})
    found = structured(result)
    assert (
        json.loads(result.content[0].text) == found
    )  # the same JSON as text, for clients that read only text
    assert len(found["passages"]) == 3 and found["passages"][0]["article_id"] == SEED_ID
    top = found["passages"][0]
    article = (await session.read_resource(top["resource"])).contents[0].text
    assert article[top["start"] : top["end"]] == top["text"]

    recent = structured(
        await session.call_tool("search_archive", {"query": DEMO_QUESTION_EN, "since": "2024-01-01", "k": 10})
    )
    assert {p["article_id"] for p in recent["passages"]} == {SEED_ID}
    norquad = structured(
        await session.call_tool("search_archive", {"query": DEMO_QUESTION_EN, "source": "NorQuAD news"})
    )
    assert norquad["passages"] and SEED_ID not in {p["article_id"] for p in norquad["passages"]}

    answer = structured(await session.call_tool("ask_archive", {"question": DEMO_QUESTION_EN}))
    assert answer["answerable"] and "[1]" in answer["answer"] and "\n\nSources:\n[1] " in answer["answer"]
    first = answer["citations"][0]
    text = (await session.read_resource(first["resource"])).contents[0].text
    assert text[first["start"] : first["end"]] == first["quote"] and first["quote"].startswith(
        ARTICLE4_OPENING
    )

    listed = (await session.list_resources()).resources
    assert SEED_ID in {r.name for r in listed} and len(listed) == 25
    await what_it_advertises_it_serves(session)
    return {"tools": sorted(tools), "answer": answer}


async def what_it_advertises_it_serves(session) -> None:
    """A client lists what each capability the server announces holds (Claude Desktop offers the prompts as
    commands): each answers, and the prompts capability holds a prompt, not an empty list."""
    advertised = set(session.server_capabilities.model_dump(exclude_none=True))
    assert advertised == {"tools", "resources", "prompts"}, advertised
    assert (await session.list_tools()).tools
    assert (await session.list_resources()).resources
    assert (await session.list_resource_templates()).resource_templates
    (prompt,) = (await session.list_prompts()).prompts
    assert prompt.name == "ask_with_citations" and prompt.title and prompt.description
    assert [(a.name, a.required) for a in prompt.arguments] == [("question", True)]
    assert prompt.arguments[0].description

    for question, says in [
        (DEMO_QUESTION_EN, "Answer this question from the Kilde news archive"),
        (DEMO_QUESTION_NB, "Svar på dette spørsmålet fra nyhetsarkivet Kilde"),
    ]:
        got = await session.get_prompt("ask_with_citations", {"question": f"  {question} "})
        (message,) = got.messages
        assert message.role == "user" and message.content.type == "text"
        assert message.content.text.startswith(f"{says}, ") and f": {question}\n" in message.content.text
        assert "ask_archive" in message.content.text and "[n]" in message.content.text


async def bad_input(session) -> None:
    """Tool errors come back as `isError` results naming the problem; a missing article is a protocol error, and
    so is an unknown tool: the specification (2025-11-25, server/tools, "Error Handling") lists "Unknown tools"
    under "Protocol Errors: Standard JSON-RPC errors", its example being code -32602, "Unknown tool:
    invalid_tool_name", while "Tool Execution Errors" (isError) are for API failures, input validation errors and
    business logic errors."""
    from mcp import MCPError

    for name, arguments, says in [
        ("search_archive", {"query": " "}, "empty"),
        ("search_archive", {"query": "😀"}, "query: the query has no words"),  # as ask_archive says of it
        (
            "search_archive",
            {"query": "x", "k": 0},
            "k: must be a whole number from 1 to 50, got 0",
        ),  # said "k: k"
        ("search_archive", {"query": "x", "k": "many"}, "k"),
        ("search_archive", {"query": "x", "since": "soon"}, "not a date"),
        (
            "search_archive",
            {"query": "x", "source": ""},
            "no article has the source ''",
        ),  # searched everything
        ("ask_archive", {"question": "Hvem signerte?", "source": ""}, "no article has the source ''"),
        ("search_archive", {}, "query"),
        ("ask_archive", {"question": ""}, "empty"),
        ("ask_archive", {"question": "x" * 2001}, "limit is 2000"),
    ]:
        result = await session.call_tool(name, arguments)
        assert result.is_error, (name, arguments)
        message = " ".join(c.text for c in result.content if c.type == "text")
        assert says in message and "Traceback" not in message, (arguments, message)
    with pytest.raises(MCPError) as caught:  # was a tool result with isError true
        await session.call_tool("no_such_tool", {})
    assert caught.value.code == -32602 and caught.value.message == (
        "no tool 'no_such_tool'; this server has the tools ask_archive, search_archive"
    ), caught.value.message
    with pytest.raises(MCPError) as caught:
        await session.read_resource("kilde://articles/no-such-article")
    assert "no-such-article" in caught.value.message and caught.value.code == -32602  # invalid params
    for name, arguments, says in [
        ("ask_with_citations", {}, "prompt ask_with_citations: question: required"),
        (  # was error code 0, "Error rendering prompt ask_with_citations", with a traceback in the log
            "ask_with_citations",
            {"question": "Hvem signerte?", "lang": "en"},
            "prompt ask_with_citations: lang: unknown argument (ask_with_citations takes question)",
        ),
        ("ask_with_citations", {"question": " "}, "the question is empty"),
        ("ask_with_citations", {"question": "x" * 2001}, "limit is 2000"),
        (
            "no_such_prompt",
            {"question": "x"},
            "no prompt 'no_such_prompt'; this server has one prompt, ask_with_citations",
        ),
    ]:
        with pytest.raises(MCPError) as caught:
            await session.get_prompt(name, arguments)
        assert says in caught.value.message and caught.value.code == -32602, caught.value.message
        assert "[" not in caught.value.message, caught.value.message  # a sentence, not a Python list


def test_an_unknown_prompt_is_told_the_prompts_there_are_in_words():
    # The message printed Python's list repr: "this server has ['ask_with_citations']".
    from ui.mcp_server import unknown_name

    assert unknown_name("prompt", "nope", ["ask_with_citations"]) == (
        "no prompt 'nope'; this server has one prompt, ask_with_citations"
    )
    assert unknown_name("prompt", "nope", ["summarise", "ask_with_citations"]) == (
        "no prompt 'nope'; this server has the prompts ask_with_citations, summarise"
    )
    assert unknown_name("prompt", "nope", []) == "no prompt 'nope'; this server has no prompts"
    assert unknown_name("prompt", "x" * 500, ["ask_with_citations"]).startswith(
        "no prompt '" + "x" * 80 + "…'; "
    )


def test_stdio_session_against_the_real_process(built_index):
    async def run():
        async with stdio_session(built_index) as session:
            await exercise(session)
            await bad_input(session)

    anyio.run(run)


class McpProcess:
    def __init__(self, settings, log: Path, host: str | None = None):
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [KILDE, "mcp", "--transport", "http", "--port", "0", *(["--host", host] if host else [])],
            env=kilde_env(settings),
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        # --port 0: the port the system chose, as the server names it
        address = printed_url(log, "Kilde's MCP server: ", self.process)
        assert not address.endswith(":0"), address
        self.url = f"{address}/mcp"
        self.port = int(address.rsplit(":", 1)[1])
        wait_port(self.port, self.process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def wait_port(port: int, process: subprocess.Popen | None = None, timeout: float = 180) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"kilde mcp exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on {port}")


def test_streamable_http_session_against_the_real_process(built_index, tmp_path):
    server = McpProcess(built_index, tmp_path / "mcp.log")
    try:

        async def run():
            async with http_session(server.url) as session:
                await exercise(session)
                await bad_input(session)

        anyio.run(run)
    finally:
        server.stop()
    assert "Traceback" not in (tmp_path / "mcp.log").read_text()


def test_streamable_http_on_localhost_answers_on_both_loopback_addresses(built_index, tmp_path):
    # `--host localhost` listened on 127.0.0.1 alone; a client that resolves localhost to ::1 was refused.
    server = McpProcess(built_index, tmp_path / "mcp.log", host="localhost")
    addresses = ["127.0.0.1", "[::1]"] if has_ipv6_loopback() else ["127.0.0.1"]
    try:
        assert server.url == f"http://localhost:{server.port}/mcp"

        async def run():
            for address in addresses:
                async with http_session(f"http://{address}:{server.port}/mcp") as session:
                    assert {tool.name for tool in (await session.list_tools()).tools} >= {
                        "search_archive",
                        "ask_archive",
                    }

        anyio.run(run)
    finally:
        server.stop()
    if not has_ipv6_loopback():
        pytest.skip("no ::1 on this machine: 127.0.0.1 alone was checked")


class InProcess:
    """The MCP app behind the Gate, served by uvicorn in a thread (its lifespan runs the session manager)."""

    def __init__(self, settings, assistant):
        import uvicorn

        from ui.limits import RateLimiter
        from ui.mcp_server import build_mcp, mcp_http_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        app = mcp_http_app(
            build_mcp(assistant, settings, RateLimiter(settings.rate_limit_per_minute)), settings
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_port(self.port)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def test_http_tools_share_the_rate_limit_and_refuse_foreign_origins(built_index, assistant):
    import httpx

    server = InProcess(built_index.replace(rate_limit_per_minute=2), assistant)
    try:

        async def run():
            async with http_session(server.url) as session:
                for _ in range(2):
                    structured(await session.call_tool("search_archive", {"query": DEMO_QUESTION_EN}))
                limited = await session.call_tool("ask_archive", {"question": DEMO_QUESTION_EN})
                assert limited.is_error and "limit is 2 per minute" in limited.content[0].text

        anyio.run(run)
        refused = httpx.post(
            server.url,
            headers={"Origin": "https://evil.example", "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        )
        assert refused.status_code == 403 and refused.json()["error"] == "origin_not_allowed"
    finally:
        server.stop()
    proxied = InProcess(built_index.replace(auth_mode="proxy", trusted_proxies=("10.0.0.5",)), assistant)
    try:
        refused = httpx.post(proxied.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 403 and json.loads(refused.text)["error"] == "untrusted_client"
    finally:
        proxied.stop()


def test_mistyped_arguments_long_uris_and_the_quotes_language(built_index, assistant):
    """Pydantic's own text repeated the value sent, with links to its docs; true and "3" passed as k; the
    answer did not say its quotes were Norwegian."""
    from mcp import MCPError

    server = InProcess(built_index.replace(rate_limit_per_minute=1000), assistant)
    try:

        async def run():
            async with http_session(server.url) as session:
                for name, arguments, says in [
                    ("search_archive", {"query": 123}, "query: must be a string"),
                    ("search_archive", {}, "query: required"),
                    ("search_archive", {"query": "x", "source": {"$ne": None}}, "source: must be a string"),
                    ("search_archive", {"query": "x", "k": True}, "k: must be a whole number"),
                    ("search_archive", {"query": "x", "k": "3"}, "k: must be a whole number"),
                    ("ask_archive", {"question": 42}, "question: must be a string"),
                ]:
                    result = await session.call_tool(name, arguments)
                    message = " ".join(c.text for c in result.content if c.type == "text")
                    assert result.is_error and message == f"Error executing tool {name}: {says}", message
                english = structured(await session.call_tool("ask_archive", {"question": DEMO_QUESTION_EN}))
                assert english["quoted_original_languages"] == ["nb"]  # as /api/ask and the chat say
                norwegian = structured(await session.call_tool("ask_archive", {"question": DEMO_QUESTION_NB}))
                assert norwegian["quoted_original_languages"] == []
                for length in (600, 100_000):
                    with pytest.raises(MCPError) as caught:
                        await session.read_resource("kilde://articles/" + "a" * length)
                    assert len(caught.value.message) < 150, caught.value.message[:200]

        anyio.run(run)
    finally:
        server.stop()


def test_mcp_refuses_to_serve_others_without_auth(built_index):
    done = subprocess.run(
        [KILDE, "mcp", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port())],
        env=kilde_env(built_index),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2 and "Auth mode 'none' serves loopback only" in done.stderr


def test_without_an_index_it_says_so_on_stderr_and_keeps_stdout_clean(built_index, tmp_path):
    done = subprocess.run(
        [KILDE, "mcp"],
        env=kilde_env(built_index.replace(data_dir=tmp_path / "empty")),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and "No Kilde index found" in done.stderr and "kilde ingest" in done.stderr
    assert done.stdout == ""  # stdout is the protocol's channel


# Ids as archives give them: a page's canonical address with its letters percent-escaped (æøå), a CMS's path,
# a name with a percent sign, a Windows-style path. Each is read back through the URI the server hands out.
AWKWARD_IDS = [
    "https://www.nrk.no/norge/bl%C3%A5b%C3%A6r-1.2345",
    "/nyheter/2024/valg",
    "rente-100%41",
    "C:\\notater\\vinter",
]


@pytest.fixture(scope="module")
def awkward_index(tmp_path_factory, tiktoken_cache, embedder):
    from assistant.build import build_assistant, build_pipeline
    from assistant.testing.corpus import make_settings

    folder = tmp_path_factory.mktemp("awkward")
    records = folder / "articles.jsonl"
    records.write_text(
        "".join(
            json.dumps(
                {"id": article_id, "title": f"Sak {n}", "text": f"Saken nummer {n} handler om blåbær."}
            )
            + "\n"
            for n, article_id in enumerate(AWKWARD_IDS)
        ),
        encoding="utf-8",
    )
    settings = make_settings(folder / "index", tiktoken_cache)
    report = build_pipeline(settings, embedder=embedder).ingest([records])
    assert report.added == len(AWKWARD_IDS), report.to_dict()
    return build_assistant(settings, embedder=embedder), settings


def test_every_article_reads_through_the_uri_the_server_gives(awkward_index):
    # The SDK decodes the URI's parameter, and Kilde decoded it again ('rente-100%41' was read as 'rente-100A',
    # the page's address as '…/blåbær-1.2345': no article); the SDK's path guards took '/nyheter/2024/valg' and
    # 'C:\\notater\\vinter' for file paths and answered 'Unknown resource'.
    from mcp import Client

    from ui.mcp_server import build_mcp

    assistant, settings = awkward_index

    async def run():
        async with Client(build_mcp(assistant, settings)) as client:
            listed = {r.name: str(r.uri) for r in (await client.list_resources()).resources}
            assert set(listed) == set(AWKWARD_IDS)
            for n, article_id in enumerate(AWKWARD_IDS):
                text = (await client.read_resource(listed[article_id])).contents[0].text
                assert text.endswith(f"Saken nummer {n} handler om blåbær."), (article_id, text)
            found = await client.call_tool("search_archive", {"query": "blåbær", "k": 4})
            for passage in structured(found)["passages"]:
                text = (await client.read_resource(passage["resource"])).contents[0].text
                assert text[passage["start"] : passage["end"]] == passage["text"]

    anyio.run(run)


def dated_records(path: Path, days: list[int]) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"dag-{day:02d}",
                    "title": f"Dag {day}",
                    "date": f"2024-03-{day:02d}",
                    "text": f"Nyheter for dag {day} om blåbær.",
                }
            )
            + "\n"
            for day in days
        ),
        encoding="utf-8",
    )
    return path


def test_resources_list_pages_through_every_article_with_cursors_it_gave(
    tmp_path, tiktoken_cache, embedder, monkeypatch
):
    # resources/list named the newest MAX_LISTED articles with no nextCursor, and refused every cursor: a client
    # saw 1,000 articles of a larger archive. Each page now ends with a cursor for the next, which holds its
    # place when articles are added meanwhile; a cursor the server did not give is refused.
    from mcp import Client, MCPError

    import ui.mcp_server
    from assistant.build import build_assistant, build_pipeline
    from assistant.testing.corpus import make_settings

    settings = make_settings(tmp_path / "index", tiktoken_cache)
    pipeline = build_pipeline(settings, embedder=embedder)
    assert pipeline.ingest([dated_records(tmp_path / "first.jsonl", [3, 5, 7, 9, 11])]).added == 5
    assistant = build_assistant(settings, embedder=embedder)
    monkeypatch.setattr(ui.mcp_server, "MAX_LISTED", 2)

    async def run():
        async with Client(ui.mcp_server.build_mcp(assistant, settings)) as client:
            pages = [await client.list_resources(cache_mode="refresh")]
            assert [r.name for r in pages[0].resources] == ["dag-11", "dag-09"] and pages[0].next_cursor
            # One article newer than the cursor's place, one older: the older is on a later page, the newer not.
            added = pipeline.ingest([dated_records(tmp_path / "later.jsonl", [1, 12])])
            assert added.added == 2
            while pages[-1].next_cursor:
                cursor = pages[-1].next_cursor
                for tampered in (
                    "garbage",
                    "",
                    cursor[:-1] + ("0" if cursor[-1] != "0" else "1"),
                    "x" + cursor,
                ):
                    with pytest.raises(MCPError) as refused:
                        await client.list_resources(cursor=tampered, cache_mode="refresh")
                    assert refused.value.error.code == -32602
                    assert refused.value.error.message.startswith("Invalid params: params.cursor: "), tampered
                pages.append(await client.list_resources(cursor=cursor, cache_mode="refresh"))
            listed = [r.name for page in pages for r in page.resources]
            assert listed == ["dag-11", "dag-09", "dag-07", "dag-05", "dag-03", "dag-01"]
            assert all(len(page.resources) == 2 for page in pages)
            first = await client.list_resources(cache_mode="refresh")
            assert [r.name for r in first.resources] == ["dag-12", "dag-11"]
        # Another server over the same index takes it (a cursor was the process's own, refused by any other);
        # a server of another index refuses it.
        async with Client(ui.mcp_server.build_mcp(assistant, settings)) as another_server:
            again = await another_server.list_resources(cursor=pages[0].next_cursor, cache_mode="refresh")
            assert [r.name for r in again.resources] == ["dag-07", "dag-05"]
        elsewhere = settings.replace(data_dir=tmp_path / "another-index")
        async with Client(ui.mcp_server.build_mcp(assistant, elsewhere)) as another_index:
            with pytest.raises(MCPError) as refused:
                await another_index.list_resources(cursor=pages[0].next_cursor, cache_mode="refresh")
            assert refused.value.error.message.startswith("Invalid params: params.cursor: not a nextCursor")

    anyio.run(run)


def test_a_cursor_holds_across_a_restart_and_a_rebuilt_index(tmp_path, tiktoken_cache, embedder, monkeypatch):
    """A `nextCursor` given by one server is taken by a real `kilde mcp --transport http` process started later
    over the same data directory (a restart, or two processes behind one address), even after the index was
    rebuilt between them. Each process drew its own key: the later one refused the cursor, and a client paging
    through the archive across a restart was told its cursor was none the server gave."""
    from mcp import Client, MCPError
    from mcp.types import PaginatedRequestParams

    import ui.mcp_server
    from assistant.build import build_assistant, build_pipeline
    from assistant.testing.corpus import make_settings

    settings = make_settings(tmp_path / "index", tiktoken_cache)
    records = dated_records(tmp_path / "days.jsonl", [3, 5, 7, 9, 11])
    assert build_pipeline(settings, embedder=embedder).ingest([records]).added == 5
    assistant = build_assistant(settings, embedder=embedder)
    monkeypatch.setattr(ui.mcp_server, "MAX_LISTED", 2)  # this first server's pages; the process's are 1,000

    async def first_page():
        async with Client(ui.mcp_server.build_mcp(assistant, settings)) as client:
            return await client.list_resources(cache_mode="refresh")

    page_one = anyio.run(first_page)
    assert [r.name for r in page_one.resources] == ["dag-11", "dag-09"] and page_one.next_cursor
    report = build_pipeline(settings, embedder=embedder).ingest([records], reset=True)  # rebuilt
    assert report.added == 5, report.to_dict()

    async def listed(url: str, cursor: str):
        """The page, or the error that refused the cursor (raised here, it would leave the client's task group
        wrapped in exception groups)."""
        async with http_session(url) as session:
            try:
                return await session.list_resources(params=PaginatedRequestParams(cursor=cursor))
            except MCPError as refused:
                return refused

    later = McpProcess(settings, tmp_path / "later.log")
    try:
        page_two = anyio.run(listed, later.url, page_one.next_cursor)
        cursor = page_one.next_cursor
        for altered in (cursor[:-1] + ("0" if cursor[-1] != "0" else "1"), "garbage"):
            refused = anyio.run(listed, later.url, altered)
            assert isinstance(refused, MCPError) and refused.error.code == -32602, refused
            assert refused.error.message.startswith("Invalid params: params.cursor: not a nextCursor")
    finally:
        later.stop()
    assert not isinstance(page_two, MCPError), page_two
    assert [r.name for r in page_two.resources] == [
        "dag-07",
        "dag-05",
        "dag-03",
    ] and page_two.next_cursor is None


def test_an_argument_a_tool_does_not_take_is_refused_by_name(built_index, assistant):
    # The SDK dropped it unseen: a misspelt filter ("sorce") searched the whole archive, and the `k` a client
    # gave ask_archive (which has none) did nothing.
    from mcp import Client

    from ui.mcp_server import build_mcp

    async def run():
        async with Client(build_mcp(assistant, built_index)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert all(t.input_schema["additionalProperties"] is False for t in tools.values())
            for name, arguments, says in [
                (
                    "search_archive",
                    {"query": DEMO_QUESTION_EN, "sorce": "Geopolitika"},
                    "sorce: unknown argument (search_archive takes query, since, until, source, k)",
                ),
                (
                    "ask_archive",
                    {"question": DEMO_QUESTION_EN, "k": 3},
                    "k: unknown argument (ask_archive takes question, since, until, source)",
                ),
                (
                    "search_archive",
                    {"query": "x", "ctx": {}},
                    "ctx: unknown argument",
                ),  # the tool's own context
                ("search_archive", {"query": "x", "y" * 10_000: 1}, "y" * 80 + "…: unknown argument"),
            ]:
                result = await client.call_tool(name, arguments)
                message = " ".join(c.text for c in result.content if c.type == "text")
                assert result.is_error and message.startswith(f"Error executing tool {name}: {says}"), message
                assert len(message) < 300
            found = structured(
                await client.call_tool("search_archive", {"query": DEMO_QUESTION_EN, "since": None})
            )
            assert found["passages"]  # an argument it takes, sent as null, is still its default

    anyio.run(run)


@contextmanager
def raw_stdio(settings, initialise: bool = True):
    """The real `kilde mcp` over stdio, initialised (unless `initialise` is false), as `exchange(line, timeout) ->
    reply`: raw JSON-RPC lines, no SDK client between, so that lines no client would send reach it."""
    import selectors

    process = subprocess.Popen(
        [KILDE, "mcp"],
        env=kilde_env(settings),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    waiting = selectors.DefaultSelector()
    waiting.register(process.stdout, selectors.EVENT_READ)

    def exchange(line: str, timeout: float = 30) -> dict:
        process.stdin.write(line.encode("utf-8") + b"\n")
        process.stdin.flush()
        assert waiting.select(timeout), f"no answer to {line[:80]}"
        return json.loads(process.stdout.readline())

    try:
        if initialise:
            hello = {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            }
            opening = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello})
            assert "result" in exchange(opening, timeout=300)  # once the models have loaded
            process.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        yield exchange
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_stdio_answers_every_line_it_cannot_read_with_the_request_id(built_index):
    # The SDK's stdio transport dropped these lines unseen and the client waited for ever: a lone surrogate escape
    # (a JavaScript client's half of an emoji cut off) is JSON Python reads but the SDK's parser refuses.
    with raw_stdio(built_index) as exchange:
        call = {"name": "search_archive", "arguments": {"query": "Kim Jong-un \ud83d"}}
        for line, code, reply_id, says in [
            (
                json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call}),
                -32700,
                7,
                "lone surrogate",
            ),
            ("not json at all", -32700, None, "Parse error"),
            (
                '{"jsonrpc": "1.0", "id": "eight", "method": "ping"}',
                -32600,
                "eight",
                "not a JSON-RPC 2.0 message",
            ),
        ]:
            reply = exchange(line)
            assert reply["id"] == reply_id and reply["error"]["code"] == code, reply
            assert says in reply["error"]["message"], reply
        assert exchange('{"jsonrpc": "2.0", "id": 9, "method": "ping"}') == {
            "jsonrpc": "2.0",
            "id": 9,
            "result": {},
        }


def test_stdio_answers_a_request_whose_id_has_a_forbidden_type(built_index):
    # The SDK read a request whose id is no string or whole number as a notification, which has no answer: the
    # client waited for ever. JSON-RPC 2.0: Invalid Request, id null.
    from ui.mcp_ids import FORBIDDEN_ID

    with raw_stdio(built_index) as exchange:
        for forbidden in ("true", "{}", "[1]", "1.5", "1.0", "null"):
            for method in ("ping", "tools/list"):
                line = f'{{"jsonrpc": "2.0", "id": {forbidden}, "method": "{method}"}}'
                assert exchange(line) == {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32600, "message": FORBIDDEN_ID},
                }, line
        assert (
            exchange('{"jsonrpc": "2.0", "id": "10", "method": "ping"}')["id"] == "10"
        )  # the session goes on
        assert exchange('{"jsonrpc": "2.0", "id": -3, "method": "ping"}')["id"] == -3


def test_http_answers_a_request_whose_id_has_a_forbidden_type(built_index, assistant):
    # Over streamable HTTP too the SDK took such a request for a notification: 202 Accepted with an empty body,
    # and the client waited for ever for its answer. As over stdio: Invalid Request, id null.
    import httpx

    from ui.mcp_ids import FORBIDDEN_ID

    server = InProcess(built_index.replace(rate_limit_per_minute=1000), assistant)
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}

    def answer(response) -> dict:  # the SDK's reply, as one SSE event
        assert response.status_code == 200, response.text[:200]
        return json.loads(next(x[5:] for x in response.text.splitlines() if x.startswith("data:")))

    try:
        opening = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello}
        opened = httpx.post(server.url, headers=headers, json=opening, timeout=120)
        assert "result" in answer(opened)
        session = {
            **headers,
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-06-18",
        }
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert httpx.post(server.url, headers=session, json=initialized).status_code == 202  # a notification
        for forbidden in ("true", "{}", "[1]", "1.5", "1.0", "null"):
            for method in ("ping", "tools/list"):
                body = f'{{"jsonrpc": "2.0", "id": {forbidden}, "method": "{method}"}}'
                refused = httpx.post(server.url, headers=session, content=body)
                assert refused.status_code == 400 and refused.json() == {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32600, "message": FORBIDDEN_ID},
                }, (body, refused.status_code, refused.text[:200])
        for fine in ("10", -3):  # the session goes on
            ping = {"jsonrpc": "2.0", "id": fine, "method": "ping"}
            assert answer(httpx.post(server.url, headers=session, json=ping))["id"] == fine
    finally:
        server.stop()


def test_an_oversized_http_request_gets_a_json_rpc_error_at_kildes_limit(built_index, assistant):
    # The SDK answered a body over its own 4 MiB with a plain-text 413, "Request body too large", and took a body
    # of 2 MiB that `kilde serve` (1 MiB) refuses.
    import httpx
    from mcp import MCPError

    from ui.edge import MAX_BODY_BYTES

    server = InProcess(built_index.replace(rate_limit_per_minute=1000), assistant)
    says = f"Invalid request: the request body is larger than {MAX_BODY_BYTES:,} bytes"
    try:

        async def run():
            async with http_session(server.url) as session:
                with pytest.raises(MCPError) as caught:
                    await session.call_tool("ask_archive", {"question": "x" * (2 * MAX_BODY_BYTES)})
                assert caught.value.message == says, caught.value.message
                assert (await session.list_tools()).tools  # the session goes on

        anyio.run(run)
        request = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * MAX_BODY_BYTES}}
        body = json.dumps(request).encode()
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        for content in (body, iter([body[:1000], body[1000:]])):  # declared, then streamed without a length
            refused = httpx.post(server.url, headers=headers, content=content)
            assert refused.status_code == 413 and refused.headers["content-type"] == "application/json"
            assert refused.json() == {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": says},
            }
    finally:
        server.stop()


def test_the_http_face_is_behind_the_edge_kilde_serve_is_behind(built_index, assistant):
    # `kilde mcp --transport http` had the body limit of ui/edge.py alone: it read 300 header lines, and served on
    # every address (where the SDK checks no host name) it answered any Host header, so DNS rebinding reached it.
    import httpx

    settings = built_index.replace(
        rate_limit_per_minute=1000, host="0.0.0.0", auth_mode="session", trusted_hosts=("kilde.example.org",)
    )
    server = InProcess(settings, assistant)  # on 127.0.0.1, whatever `host` says
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    try:
        many = {**accept, **{f"x-h{i}": "1" for i in range(300)}}
        refused = httpx.post(server.url, json=ping, headers=many)
        assert refused.status_code == 413 and refused.json()["error"] == "too_large", refused.text[:200]
        for host in ("rebind.evil.example", "rebind.evil.example:80"):
            refused = httpx.post(server.url, json=ping, headers={**accept, "Host": host})
            assert refused.status_code == 400 and refused.json()["error"] == "host_not_allowed", refused.text
        # A name in KILDE_TRUSTED_HOSTS passes the edge, to the Gate, which asks for the session mode's cookie.
        passed = httpx.post(server.url, json=ping, headers={**accept, "Host": "kilde.example.org"})
        assert passed.status_code == 401 and passed.json()["error"] == "no_session", passed.text[:200]
    finally:
        server.stop()


def test_at_a_terminal_stdio_says_on_stderr_how_to_use_it(built_index):
    """Run by hand, `kilde mcp` waited for JSON-RPC in silence. The line goes to stderr, and only at a terminal:
    stdout is the protocol's, and a client's pipe gets nothing extra."""
    import pty

    from ui.mcp_server import STDIO_AT_A_TERMINAL

    main_end, terminal = pty.openpty()
    try:
        os.write(main_end, b"\x04")  # Ctrl-D: end of input once the server reads it, so it stops by itself
        done = subprocess.run(
            [KILDE, "mcp"],
            env=kilde_env(built_index),
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(main_end)
    assert done.returncode == 0 and STDIO_AT_A_TERMINAL in done.stderr and done.stdout == ""
    piped = subprocess.run(
        [KILDE, "mcp"],
        env=kilde_env(built_index),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert piped.returncode == 0 and STDIO_AT_A_TERMINAL not in piped.stderr and piped.stdout == ""


# Requests whose params the SDK refuses, as a client sends them wrong, and what each answer names. The SDK said
# "Invalid request parameters" with an empty `data` for each, and answered a cursor it never gave with the first
# page again (the specification: "Invalid cursors SHOULD result in an error with code -32602").
MISSHAPEN_PARAMS = [
    (
        "tools/call",
        {"name": "search_archive", "arguments": "query"},
        "Invalid params: params.arguments: must be an object",
    ),
    ("tools/call", {"arguments": {"query": "x"}}, "Invalid params: params.name: required"),
    (
        "prompts/get",
        {"name": "ask_with_citations", "arguments": {"question": 123}},
        "Invalid params: params.arguments.question: must be a string",
    ),
    (
        "prompts/get",
        {"name": "ask_with_citations", "arguments": {"question": None}},
        "Invalid params: params.arguments.question: must be a string",
    ),
    ("resources/read", {"uri": 123}, "Invalid params: params.uri: must be a string"),
    ("resources/read", {}, "Invalid params: params.uri: required"),
]
NO_CURSOR_SAYS = "Invalid params: params.cursor: this list comes on one page, with no nextCursor"
NOT_GIVEN_SAYS = "Invalid params: params.cursor: not a nextCursor this server gave"
GARBAGE_CURSORS = [
    (method, {"cursor": cursor}, NOT_GIVEN_SAYS if method == "resources/list" else NO_CURSOR_SAYS)
    for method in ("resources/list", "tools/list", "prompts/list", "resources/templates/list")
    for cursor in ("garbage", "", "x" * 10_000)
]


def test_params_of_the_wrong_shape_are_named_over_stdio(built_index):
    with raw_stdio(built_index) as exchange:
        for n, (method, params, says) in enumerate(MISSHAPEN_PARAMS + GARBAGE_CURSORS):
            line = json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params})
            reply = exchange(line)
            assert reply["id"] == n and reply["error"]["code"] == -32602, reply
            assert reply["error"]["message"].startswith(says), (line, reply)
        listed = exchange('{"jsonrpc": "2.0", "id": "last", "method": "resources/list", "params": {}}')
        assert len(listed["result"]["resources"]) == 25 and "nextCursor" not in listed["result"]


def test_params_of_the_wrong_shape_are_named_over_http(built_index, assistant):
    import httpx

    server = InProcess(built_index.replace(rate_limit_per_minute=1000), assistant)
    try:
        session = opened_http_session(server.url)
        for n, (method, params, says) in enumerate(MISSHAPEN_PARAMS + GARBAGE_CURSORS):
            body = {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
            reply = sse_reply(httpx.post(server.url, headers=session, json=body, timeout=60))
            assert reply["id"] == n and reply["error"]["code"] == -32602, reply
            assert reply["error"]["message"].startswith(says), (body, reply)
        ping = {"jsonrpc": "2.0", "id": "last", "method": "ping"}
        assert sse_reply(httpx.post(server.url, headers=session, json=ping))["result"] == {}
    finally:
        server.stop()


def sse_reply(response) -> dict:
    """The SDK's reply to one request over streamable HTTP: one SSE event."""
    assert response.status_code == 200, response.text[:200]
    return json.loads(next(x[5:] for x in response.text.splitlines() if x.startswith("data:")))


def opened_http_session(url: str) -> dict:
    """The headers of a streamable-HTTP session opened with raw requests (initialize, then initialized)."""
    import httpx

    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    opening = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello}
    opened = httpx.post(url, headers=headers, json=opening, timeout=120)
    assert "result" in sse_reply(opened)
    session = {
        **headers,
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-06-18",
    }
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx.post(url, headers=session, json=initialized).status_code == 202
    return session


def test_http_says_a_lone_surrogate_as_stdio_does_with_the_request_id(built_index, assistant):
    # The SDK answered "Parse error: unexpected end of hex escape at line 1 column 125", id null: no word of what
    # was wrong, nor which request. An escaped emoji, whole, is answered.
    import httpx

    from ui.mcp_ids import LONE_SURROGATE

    server = InProcess(built_index.replace(rate_limit_per_minute=1000), assistant)
    try:
        session = opened_http_session(server.url)
        for request_id, query in ((7, "Kim Jong-un \\ud83d"), ("eight", "\\udc00 Kim")):
            body = (
                f'{{"jsonrpc": "2.0", "id": {json.dumps(request_id)}, "method": "tools/call", "params": '
                f'{{"name": "search_archive", "arguments": {{"query": "{query}"}}}}}}'
            )
            refused = httpx.post(server.url, headers=session, content=body)
            assert refused.status_code == 400 and refused.json() == {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32700, "message": LONE_SURROGATE},
            }, refused.text[:300]
        whole = (
            '{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": '
            '{"name": "search_archive", "arguments": {"query": "Kim Jong-un \\ud83d\\ude00", "k": 1}}}'
        )
        found = sse_reply(httpx.post(server.url, headers=session, content=whole, timeout=60))
        assert found["id"] == 9 and not found["result"]["isError"], found
        assert found["result"]["structuredContent"]["passages"][0]["article_id"] == SEED_ID
    finally:
        server.stop()


def test_http_names_a_protocol_version_it_does_not_speak(built_index, assistant):
    # The SDK answered a header it does not know as a request of the 2026 protocol: 400 "params._meta must be an
    # object carrying the required 'io.modelcontextprotocol/protocolVersion' and … envelope keys".
    import httpx

    from ui.mcp_versions import unsupported_version

    server = InProcess(built_index.replace(rate_limit_per_minute=1000), assistant)
    try:
        session = opened_http_session(server.url)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        for version in ("1999-01-01", "2026-01-01", "latest", "2" * 500):
            refused = httpx.post(server.url, headers={**session, "mcp-protocol-version": version}, json=ping)
            assert refused.status_code == 400 and refused.json() == {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": unsupported_version(version)},
            }, refused.text[:300]
            assert "2025-11-25" in refused.json()["error"]["message"] and len(refused.text) < 400
        for version in ("2025-06-18", "2025-11-25"):  # the versions it speaks are answered
            passed = httpx.post(server.url, headers={**session, "mcp-protocol-version": version}, json=ping)
            assert sse_reply(passed) == {"jsonrpc": "2.0", "id": 1, "result": {}}

        async def run():  # the SDK's own client, which sends the version the server named
            async with http_session(server.url) as client:
                assert (await client.send_ping()) is not None

        anyio.run(run)
    finally:
        server.stop()


def test_a_cancelled_call_gets_no_answer_and_gives_its_slot_back(built_index, assistant):
    """A client cancels an ask (`notifications/cancelled`) while the answer is computed: the session answers
    other requests meanwhile, the cancelled one gets no answer (its POST's stream is closed with the SDK's
    -32800 "Request cancelled", so no client waits on it), and its answering slot (one here) serves the next
    ask once the computation it started has ended (a thread cannot be stopped)."""
    import httpx

    release = threading.Event()
    held = Held(assistant, release)
    server = InProcess(built_index.replace(rate_limit_per_minute=1000, ui_concurrency=1), held)
    try:
        session = opened_http_session(server.url)
        ask = {"name": "ask_archive", "arguments": {"question": DEMO_QUESTION_EN}}
        cancelled: dict = {}

        def call_then_read():
            body = {"jsonrpc": "2.0", "id": 50, "method": "tools/call", "params": ask}
            cancelled["response"] = httpx.post(server.url, headers=session, json=body, timeout=120)

        caller = threading.Thread(target=call_then_read)
        caller.start()
        assert held.entered.wait(120)  # the answer is being computed
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 50}}
        assert httpx.post(server.url, headers=session, json=cancel).status_code == 202
        ping = {"jsonrpc": "2.0", "id": 51, "method": "ping"}
        assert sse_reply(httpx.post(server.url, headers=session, json=ping)) == {
            "jsonrpc": "2.0",
            "id": 51,
            "result": {},
        }
        release.set()
        caller.join(120)
        assert not caller.is_alive()
        assert sse_reply(cancelled["response"]) == {
            "jsonrpc": "2.0",
            "id": 50,
            "error": {"code": -32800, "message": "Request cancelled"},
        }
        next_ask = {"jsonrpc": "2.0", "id": 52, "method": "tools/call", "params": ask}
        answered = sse_reply(httpx.post(server.url, headers=session, json=next_ask, timeout=120))
        assert answered["id"] == 52 and answered["result"]["structuredContent"]["answerable"], answered
    finally:
        release.set()
        server.stop()


ARTICLE4_EN = (
    "Article 4 says that if one party faces an armed invasion and is in a state of war, the other "
    "will immediately use all available means to provide military and other assistance."
)


def test_a_cancelled_ask_over_stdio_gives_its_slot_back_while_its_model_still_writes(built_index):
    """Over stdio, with the SDK's own client: an ask whose model (the scripted server, held mid-answer) is still
    writing is cancelled (the client abandons the call, and sends `notifications/cancelled`), and the next ask,
    with the one answering slot there is, is answered while the cancelled answer's model is still held. The
    cancelled answer held that slot until its model wrote to the end: a client that cancelled a slow answer
    waited for it all the same before its next question was answered."""
    from assistant.testing.scripted_llm import Reply, ScriptedLLMServer

    wake, stalling = threading.Event(), threading.Event()
    question = {"question": DEMO_QUESTION_EN}
    with ScriptedLLMServer() as model:
        held = Reply(
            chunks=[f"{ARTICLE4_EN} [1]", " It was signed in Pyongyang [1]."],
            stall_after=1,
            stall_s=600,
            wake=wake,
            stalling=stalling,
        )
        model.script(held, Reply(f"{ARTICLE4_EN} [1]"))
        env = {
            "KILDE_LLM_BACKEND": "openai-compatible",
            "KILDE_LLM_BASE_URL": model.url,
            "KILDE_LLM_MODEL": model.models[0],
            "KILDE_UI_CONCURRENCY": "1",
            # The model's silence may not end the held answer: only the cancel may.
            **dict.fromkeys(
                ("KILDE_LLM_TIMEOUT", "KILDE_LLM_FIRST_TOKEN_TIMEOUT", "KILDE_LLM_TOTAL_TIMEOUT"), "600"
            ),
        }

        async def run():
            async with stdio_session(built_index, env) as session:
                async with anyio.create_task_group() as asking:
                    asking.start_soon(session.call_tool, "ask_archive", question)
                    assert await anyio.to_thread.run_sync(stalling.wait, 300)  # its model is writing
                    asking.cancel_scope.cancel()
                with anyio.fail_after(120):  # without the slot back, it waits for the held model (600 s)
                    answer = structured(await session.call_tool("ask_archive", question))
                assert not wake.is_set()  # the cancelled answer's model is still held
                assert answer["answerable"] and answer["answer"].startswith(ARTICLE4_EN), answer
                assert "Pyongyang" not in answer["answer"]  # the answer is the second reply's
                assert (await session.send_ping()) is not None

        try:
            anyio.run(run)
        finally:
            wake.set()
        assert len(model.chat_requests) == 2


def test_a_client_that_leaves_mid_call_and_two_sessions_at_once(built_index, assistant):
    """A client whose connection closes while its ask is computed leaves the server serving, its session too;
    two sessions asking at once each get the answer to their own question."""
    import socket

    import httpx

    release = threading.Event()
    held = Held(assistant, release)
    server = InProcess(built_index.replace(rate_limit_per_minute=1000, ui_concurrency=2), held)
    try:
        session = opened_http_session(server.url)
        ask = {"name": "ask_archive", "arguments": {"question": DEMO_QUESTION_EN}}
        body = json.dumps({"jsonrpc": "2.0", "id": 60, "method": "tools/call", "params": ask}).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in session.items())
        with socket.create_connection(("127.0.0.1", server.port)) as leaving:
            leaving.sendall(
                f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            assert held.entered.wait(120)  # the answer is being computed as the client leaves
        release.set()
        again = {"jsonrpc": "2.0", "id": 61, "method": "tools/call", "params": ask}
        answered = sse_reply(httpx.post(server.url, headers=session, json=again, timeout=120))
        assert answered["id"] == 61 and answered["result"]["structuredContent"]["answerable"], answered

        async def both():
            answers = {}

            async def one(question):
                async with http_session(server.url) as client:
                    result = await client.call_tool("ask_archive", {"question": question})
                    answers[question] = structured(result)

            async with anyio.create_task_group() as group:
                for question in (DEMO_QUESTION_EN, DEMO_QUESTION_NB):
                    group.start_soon(one, question)
            return answers

        answers = anyio.run(both)
        assert {q: a["question"] for q, a in answers.items()} == {
            DEMO_QUESTION_EN: DEMO_QUESTION_EN,
            DEMO_QUESTION_NB: DEMO_QUESTION_NB,
        }
        assert answers[DEMO_QUESTION_EN]["language"] == "en" and answers[DEMO_QUESTION_NB]["language"] == "nb"
    finally:
        release.set()
        server.stop()


# Tool arguments of the wrong JSON type as raw JSON writes them (NaN, a number past a double, thousands of digits,
# 3.0, 1E1), and what the `isError` result says: each names its argument, none repeats the value sent at length.
MISTYPED_ARGUMENTS = [
    ('{"query": null}', "query: must be a string"),
    ('{"query": ["Putin"]}', "query: must be a string"),
    ('{"query": {"q": "Putin"}}', "query: must be a string"),
    ('{"query": "Putin", "k": NaN}', "k: must be a whole number"),
    ('{"query": "Putin", "k": Infinity}', "k: must be a whole number"),
    ('{"query": "Putin", "k": 1e400}', "k: must be a whole number"),
    ('{"query": "Putin", "k": 3.0}', "k: must be a whole number"),
    ('{"query": "Putin", "k": 1E1}', "k: must be a whole number"),
    ('{"query": "Putin", "k": [3]}', "k: must be a whole number"),
    ('{"query": "Putin", "k": null}', "k: must be a whole number"),
    (
        '{"query": "Putin", "k": ' + "9" * 4000 + "}",
        "k: must be a whole number from 1 to 50, got " + "9" * 80,
    ),
    ('{"query": "Putin", "since": 2024}', "since: must be a string"),
    ('{"query": "Putin", "source": ["Geopolitika"]}', "source: must be a string"),
    ('{"query": "' + "x" * 100_000 + '"}', "query: the query is 100000 characters; the limit is 2000"),
]


def test_tool_arguments_of_the_wrong_json_type_are_named_and_the_results_fit_their_schemas(built_index):
    import jsonschema

    with raw_stdio(built_index) as exchange:
        for n, (arguments, says) in enumerate(MISTYPED_ARGUMENTS):
            line = (
                f'{{"jsonrpc": "2.0", "id": {n}, "method": "tools/call", "params": '
                f'{{"name": "search_archive", "arguments": {arguments}}}}}'
            )
            reply = exchange(line)
            assert reply["id"] == n and reply["result"]["isError"], (arguments[:80], reply)
            (content,) = reply["result"]["content"]
            assert content["text"] == f"Error executing tool search_archive: {says}", (
                arguments[:80],
                content,
            )
        tools = {
            t["name"]: t
            for t in exchange('{"jsonrpc": "2.0", "id": "t", "method": "tools/list"}')["result"]["tools"]
        }
        for name, arguments in [
            ("search_archive", {"query": DEMO_QUESTION_EN, "k": 3}),
            ("ask_archive", {"question": DEMO_QUESTION_EN}),
            ("ask_archive", {"question": "Hvem vant Eurovision i 1962?"}),  # not in the archive
        ]:
            call = {"name": name, "arguments": arguments}
            reply = exchange(
                json.dumps({"jsonrpc": "2.0", "id": name, "method": "tools/call", "params": call})
            )
            result = reply["result"]
            assert not result["isError"], result
            jsonschema.validate(result["structuredContent"], tools[name]["outputSchema"])
            (content,) = result["content"]
            assert content["type"] == "text" and json.loads(content["text"]) == result["structuredContent"]
            for cited in result["structuredContent"].get("citations", []):
                uri = {"uri": cited["resource"]}
                read = exchange(
                    json.dumps({"jsonrpc": "2.0", "id": "r", "method": "resources/read", "params": uri})
                )
                text = read["result"]["contents"][0]["text"]
                assert text[cited["start"] : cited["end"]] == cited["quote"], cited


def test_a_request_before_initialize_is_told_to_initialize_first(built_index):
    # The SDK answered -32602 "Invalid request parameters", as if the params were at fault.
    from ui.mcp_params import NOT_INITIALIZED

    with raw_stdio(built_index, initialise=False) as exchange:
        call = {"name": "search_archive", "arguments": {"query": "Putin"}}
        for n, (method, params) in enumerate(
            [("tools/list", {}), ("resources/list", {}), ("tools/call", call), ("ping", {})]
        ):
            request = {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
            reply = exchange(json.dumps(request), timeout=300)  # once the models have loaded
            if method == "ping":  # the one request the specification allows before initialize
                assert reply == {"jsonrpc": "2.0", "id": n, "result": {}}
            else:
                assert reply == {
                    "jsonrpc": "2.0",
                    "id": n,
                    "error": {"code": -32600, "message": NOT_INITIALIZED},
                }
