"""`kilde mcp`: the archive as a Model Context Protocol server, on the official `mcp` SDK.

Tools: `search_archive(query, since, until, source, k)` returns passages with their citation data (article id,
title, date, source, url, offsets); `ask_archive(question, …)` returns the cited answer. Resources: each article
as `kilde://articles/{id}`, its text exactly as the offsets count it. Prompt: `ask_with_citations(question)`, the
question in a message that asks the client's model to answer it through `ask_archive`, keeping the citations
(`prompts/ask_with_citations.*.md`, in the question's language).

Transports: stdio (an assistant launches `kilde mcp` itself), or streamable HTTP at `/mcp` on 127.0.0.1. Over
HTTP the same edge (`ui.edge.Limits`: sizes, trusted host names, forwarded headers) and `Gate` (origin, auth mode,
client identity) as `kilde serve` run in front, besides the SDK's own DNS-rebinding check, and the tools count
against the same per-client rate limit as `/api/ask`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, TypeVar
from urllib.parse import quote

import anyio
from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.server.mcpserver.prompts.base import AssistantMessage, Message, UserMessage
from mcp.server.mcpserver.resources import ResourceSecurity
from mcp.types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    ErrorData,
    JSONRPCError,
    ListResourcesResult,
    PaginatedRequestParams,
    Resource,
)
from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError

import prompts
from assistant.answering.answers import mark_unsupported
from assistant.answering.assistant import Assistant
from assistant.answering.context import AskRequest
from assistant.core.config import Settings
from assistant.core.errors import MAX_ECHOED, BadInputError, KildeError
from assistant.core.language import detect_language
from assistant.core.stopping import Stop, Stopped
from assistant.core.types import OFFSET_UNIT
from assistant.langchain_retriever import check_query, make_filters, passage_of
from ui.mcp_pages import MAX_LISTED, Cursors, index_place, listing_key, newest_first
from ui.mcp_params import NamedParams, argument_problems

MCP_PATH = "/mcp"
ASK_PROMPT = "ask_with_citations"
ARTICLE_URI = "kilde://articles/{article_id}"
T = TypeVar("T")


class Passage(BaseModel):
    chunk_id: str
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    language: str
    start: int = Field(
        description=f"where the passage starts in the article's text (the resource), {OFFSET_UNIT}"
    )
    end: int = Field(description=f"where it ends: text[start:end] is the passage; {OFFSET_UNIT}")
    score: float
    dense_score: float | None
    lexical_score: float | None
    text: str
    resource: str = Field(description="the article as an MCP resource")


class SearchResult(BaseModel):
    query: str
    passages: list[Passage]


class Citation(BaseModel):
    n: int
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    chunk_id: str
    quote: str = Field(description="the cited text: the article's text[start:end]")
    start: int = Field(
        description=f"where the quote starts in the article's text (the resource), {OFFSET_UNIT}"
    )
    end: int = Field(description=f"where it ends, {OFFSET_UNIT}")
    score: float
    answer_start: int | None = Field(
        None,
        description=f"where the reader's answer span inside the quote starts (null: none), {OFFSET_UNIT}",
    )
    answer_end: int | None = Field(None, description=f"where that span ends, {OFFSET_UNIT}")
    resource: str


class Sentence(BaseModel):
    text: str = Field(description="one sentence of the answer, without its [n] markers")
    citations: list[int]
    supported: bool | None = Field(
        description="false: the passages it cites do not support it (check the source); null: not checked"
    )
    support_score: float | None


class AskResult(BaseModel):
    question: str
    answer: str = Field(
        description="the answer with [n] markers, each unsupported sentence followed by a mark such as "
        "'(unsupported)', then the notice and the sources list"
    )
    answerable: bool
    language: str
    citations: list[Citation]
    sentences: list[Sentence] = Field(description="the answer's sentences, with the support check's verdict")
    notice: str | None
    quoted_original_languages: list[str] = Field(
        description="the languages of the quoted articles when some quote is not in the question's language "
        "(an extractive answer quotes verbatim); empty otherwise"
    )


def article_uri(article_id: str) -> str:
    return ARTICLE_URI.format(article_id=quote(article_id, safe=""))


def unknown_arguments(name: str, arguments: dict, schema: dict | None) -> str | None:
    """'sorce: unknown argument (search_archive takes query, since, until, source, k)', or None. The SDK dropped
    such an argument unseen: a misspelt filter searched the whole archive, a `k` given to ask_archive did
    nothing."""
    if schema is None:
        return None
    known = list(schema.get("properties", {}))
    unknown = [key for key in arguments if key not in known]
    if not unknown:
        return None
    named = "; ".join(f"{shortened(key)}: unknown argument" for key in unknown[:5])
    return f"{named} ({name} takes {', '.join(known)})"


def shortened(text: str) -> str:
    return text if len(text) <= MAX_ECHOED else text[:MAX_ECHOED] + "…"


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """The message for a prompt or tool (`kind`) this server lacks: the ones it has, in words ("this server has
    one prompt, ask_with_citations"; "the tools a, b"), not as a Python list."""
    names = sorted(known)
    if not names:
        listed = f"no {kind}s"
    elif len(names) == 1:
        listed = f"one {kind}, {names[0]}"
    else:
        listed = f"the {kind}s {', '.join(names)}"
    return f"no {kind} {shortened(name)!r}; this server has {listed}"


def ask_prompt(assistant: Assistant, question: str) -> list[Message]:
    """The `ask_with_citations` prompt's messages for `question`, in its language. A question `ask_archive`
    would refuse (empty, too long, no words) is refused here already, as invalid params."""
    try:
        assistant.validate(AskRequest(question=question))
    except BadInputError as exc:
        raise MCPError(INVALID_PARAMS, f"prompt {ASK_PROMPT}: {exc}") from None
    question = question.strip()
    template = prompts.load(ASK_PROMPT, detect_language(question))
    roles = {"user": UserMessage, "assistant": AssistantMessage}  # MCP prompts have no system messages
    return [roles[m.role](m.content) for m in template.render(question=question)]


async def unless_cancelled(compute: Callable[[], T], stop: Stop, slots: anyio.CapacityLimiter) -> T:
    """`compute()` in a worker thread, in one of the answering `slots`. A cancelled call (the client's
    `notifications/cancelled`, or its connection gone) gives `stop`, and the computation ends at its next step,
    a wait on the model's next words at once, so its slot serves the next call then; it used to run to the
    model's last word in that slot, for no one. The slot is held until the thread has ended, so no more answers
    are computed at once than there are slots."""

    async def stop_when_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            stop.give()
            raise

    answered: list[T] = []
    failure: Exception | None = None
    async with anyio.create_task_group() as watching:
        watching.start_soon(stop_when_cancelled)
        try:
            answered.append(await anyio.to_thread.run_sync(compute, limiter=slots))
        except Stopped:
            pass  # only a cancelled call gives the stop
        except Exception as exc:  # raised as it is below, not in the task group's exception group
            failure = exc
        finally:
            watching.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if answered:
        return answered[0]
    await anyio.lowlevel.checkpoint()  # where the cancellation that stopped it is raised: it answers nothing
    raise Stopped


def build_mcp(
    assistant: Assistant, settings: Settings, limiter=None, slots: anyio.CapacityLimiter | None = None
):
    from ui.api import RateLimited
    from ui.openai_api import tail_text
    from ui.security import client_key

    slots = slots or anyio.CapacityLimiter(max(1, settings.ui_concurrency))

    class KildeMCP(MCPServer):
        async def run_stdio_async(self) -> None:
            # As the SDK's own, but a line it cannot read, or a request with an id of a forbidden type, is
            # answered (ui/mcp_stdio.py), not dropped unseen. stdin is read here, as the SDK reads it (UTF-8, a
            # byte that is none replaced), so that each line is seen before the SDK parses it.
            from mcp.server.stdio import stdio_server

            from ui.mcp_stdio import AnsweredLines, RequestLines

            # Never closed: a thread may still block reading it when the session ends (as in the SDK).
            stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
            lines = RequestLines(anyio.wrap_file(stdin))
            async with stdio_server(stdin=lines) as (read, write):
                lines.answer_on(write)
                lowlevel = self._lowlevel_server
                await lowlevel.run(
                    AnsweredLines(read, write), write, lowlevel.create_initialization_options()
                )

        async def list_tools(self):
            # Said in the schema too: an argument a tool does not take is refused (`unknown_arguments`).
            return [
                tool.model_copy(update={"input_schema": {**tool.input_schema, "additionalProperties": False}})
                for tool in await super().list_tools()
            ]

        async def call_tool(self, name, arguments, context=None):
            # The specification (2025-11-25, tools, "Error Handling") lists unknown tools among the protocol errors,
            # with -32602; the SDK answered a tool result with isError true.
            tools = {t.name: t for t in await super().list_tools()}
            if name not in tools:
                raise MCPError(INVALID_PARAMS, unknown_name("tool", name, tools))
            schema = tools[name].input_schema
            unknown = unknown_arguments(name, arguments, schema)
            if unknown:
                raise ToolError(f"Error executing tool {name}: {unknown}")
            try:
                return await super().call_tool(name, arguments, context)
            except UnexpectedToolError:
                raise
            except ToolError as exc:
                # The SDK validates the arguments against the tool's signature before the tool runs.
                if not isinstance(exc.__cause__, ValidationError):
                    raise
                problems = argument_problems(exc.__cause__)
                raise ToolError(f"Error executing tool {name}: {problems}") from exc.__cause__

        async def read_resource(self, uri, context=None):
            try:
                return await super().read_resource(uri, context)
            except ResourceNotFoundError as exc:
                # The SDK's "Unknown resource: <uri>" repeats the whole URI, however long.
                asked = str(uri)
                if asked not in str(exc) or len(asked) <= MAX_ECHOED:
                    raise
                raise ResourceNotFoundError(str(exc).replace(asked, shortened(asked))) from None

        async def get_prompt(self, name, arguments=None, context=None):
            # The SDK answers an unknown prompt or a missing argument with error code 0, logging a traceback.
            known = {p.name: p for p in await self.list_prompts()}
            if name not in known:
                raise MCPError(INVALID_PARAMS, unknown_name("prompt", name, known))
            takes = [a.name for a in known[name].arguments or ()]
            unknown = [key for key in arguments or {} if key not in takes]
            if unknown:  # the SDK failed to render it: error code 0 and a traceback in the log
                named = "; ".join(f"{shortened(key)}: unknown argument" for key in unknown[:5])
                raise MCPError(INVALID_PARAMS, f"prompt {name}: {named} ({name} takes {', '.join(takes)})")
            missing = [
                a.name for a in known[name].arguments or () if a.required and a.name not in (arguments or {})
            ]
            if missing:
                raise MCPError(INVALID_PARAMS, f"prompt {name}: {', '.join(missing)}: required")
            return await super().get_prompt(name, arguments, context)

        async def _handle_list_resources(self, ctx, params: PaginatedRequestParams | None):
            # The SDK's handler lists the resources of `list_resources`, all on one page.
            return await resource_page(params.cursor if params else None)

        async def list_resources(self) -> list[Resource]:
            return (await resource_page(None)).resources

    cursors = Cursors.of_index(index_place(assistant.store, settings))

    async def resource_page(cursor: str | None) -> ListResourcesResult:
        after = cursors.position(cursor) if cursor is not None else None
        stored = await anyio.to_thread.run_sync(assistant.store.stored_articles)
        page, more = newest_first(stored.values(), after, MAX_LISTED)
        return ListResourcesResult(
            resources=[
                Resource(
                    uri=article_uri(s.meta.id),
                    name=s.meta.id,
                    title=s.meta.title,
                    description=" · ".join(x for x in (s.meta.date, s.meta.source, s.meta.language) if x),
                    mime_type="text/plain",
                )
                for s in page
            ],
            next_cursor=cursors.give(listing_key(page[-1])) if more else None,
        )

    server = KildeMCP(
        "kilde",
        title="Kilde",
        instructions="Cited answers from a Norwegian and English news archive. search_archive finds passages; "
        "ask_archive answers with [n] citations; every article is a resource with the text the offsets count; "
        f"the prompt {ASK_PROMPT} asks a question through ask_archive, keeping its citations.",
    )
    server._lowlevel_server.middleware.append(NamedParams())  # ui/mcp_params.py

    def check_rate(ctx: Context) -> None:
        if limiter is None:
            return
        request = getattr(ctx.request_context, "request", None)
        key = client_key(request) if request is not None else "mcp:stdio"
        retry_after = limiter.check(key)
        if retry_after is not None:
            raise ToolError(str(RateLimited(limiter.per_minute, retry_after)))

    def filters_of(since, until, source):
        # An empty source is refused, as `kilde ask --source=` and /api/ask refuse it; it searched everything.
        return make_filters(since, until, [] if source is None else [source])

    @server.tool(
        name="search_archive",
        description="Search the news archive (hybrid: meaning and keywords). Returns up to k passages, best "
        "first, each with its article's id, title, date, source, url and the passage's offsets in the article.",
    )
    async def search_archive(
        query: StrictStr,
        ctx: Context,
        since: StrictStr | None = None,
        until: StrictStr | None = None,
        source: StrictStr | None = None,
        k: StrictInt = 5,
    ) -> SearchResult:
        """query: what to look for; since/until: ISO dates (inclusive); source: one source name."""
        check_rate(ctx)
        try:
            query, k = check_query(query, k)
            filters = filters_of(since, until, source)
            retrieval = await anyio.to_thread.run_sync(
                assistant.retriever.retrieve, query, k, filters, settings.retriever, limiter=slots
            )
        except KildeError as exc:
            raise ToolError(str(exc)) from None
        passages = [
            Passage(**passage_of(h), resource=article_uri(h.chunk.article_id)) for h in retrieval.hits
        ]
        return SearchResult(query=query, passages=passages)

    @server.tool(
        name="ask_archive",
        description="Answer a question from the news archive, in its language (Norwegian or English), with [n] "
        "citations quoting the articles exactly; says so when the archive does not hold the answer.",
    )
    async def ask_archive(
        question: StrictStr,
        ctx: Context,
        since: StrictStr | None = None,
        until: StrictStr | None = None,
        source: StrictStr | None = None,
    ) -> AskResult:
        """question: 1 to 2000 characters; since/until: ISO dates (inclusive); source: one source name."""
        check_rate(ctx)
        try:
            stop = Stop()
            request = assistant.validate(
                AskRequest(question=question, filters=filters_of(since, until, source), stop_signal=stop)
            )
            answer = await unless_cancelled(lambda: assistant.ask(request), stop, slots)
        except KildeError as exc:
            raise ToolError(str(exc)) from None
        citations = [
            Citation(
                **{k: getattr(c, k) for k in Citation.model_fields if k != "resource"},
                resource=article_uri(c.article_id),
            )
            for c in answer.citations
        ]
        return AskResult(
            question=answer.question,
            answer=mark_unsupported(answer) + tail_text(answer),
            answerable=answer.answerable,
            language=answer.language,
            citations=citations,
            sentences=[Sentence(**s) for s in answer.to_dict()["sentences"]],
            notice=answer.notice,
            quoted_original_languages=list(answer.quoted_original_languages),
        )

    @server.prompt(
        name=ASK_PROMPT,
        title="Ask the archive, with citations",
        description="Answer a question from the news archive alone, through ask_archive, keeping its [n] "
        "citations and sources list; in the question's language (Norwegian or English).",
    )
    def ask_with_citations(
        question: Annotated[str, Field(description="what to ask the archive: 1 to 2000 characters")],
    ) -> list[Message]:
        return ask_prompt(assistant, question)

    # The SDK hands over the id decoded already. An id is no file path, so the SDK's guards against path
    # traversal do not apply: they refused ids such as '/nyheter/valg' or 'C:\\notat' as unknown resources.
    @server.resource(
        ARTICLE_URI,
        name="article",
        title="An archive article",
        mime_type="text/plain",
        security=ResourceSecurity(exempt_params={"article_id"}),
    )
    async def article(article_id: str) -> str:
        found = (
            await anyio.to_thread.run_sync(assistant.store.get_article, article_id)
            if len(article_id) <= 512
            else None
        )
        if found is None:
            raise ResourceNotFoundError(f"no article with id {article_id[:MAX_ECHOED]!r}")
        return found.text

    return server


def json_rpc_too_large(max_body: int) -> bytes:
    """The MCP face's 413 body: a JSON-RPC error whose id is null, as the SDK answers the other requests it
    cannot read (its own 413 was plain text, which no JSON-RPC client reads as an error)."""
    error = ErrorData(
        code=INVALID_REQUEST, message=f"Invalid request: the request body is larger than {max_body:,} bytes"
    )
    return (
        JSONRPCError(jsonrpc="2.0", id=None, error=error)
        .model_dump_json(by_alias=True, exclude_unset=True)
        .encode()
    )


def mcp_http_app(server, settings: Settings):
    """The streamable-HTTP app behind Kilde's `Gate`, and that behind the edge `kilde serve` has (`ui.edge.Limits`:
    header and body sizes, trusted host names, forwarded headers from trusted proxies only), whose body limit
    answers in JSON-RPC."""
    from ui.edge import MAX_BODY_BYTES, BodyLimit, Limits
    from ui.mcp_ids import ForbiddenIds
    from ui.mcp_versions import ProtocolVersions
    from ui.security import Gate
    from ui.sessions import SessionStore

    sdk_app = server.streamable_http_app(
        streamable_http_path=MCP_PATH, host=settings.host, max_request_body_size=MAX_BODY_BYTES
    )
    # A request whose id MCP forbids is answered, not taken for a notification (ui/mcp_ids.py).
    # A version the SDK does not speak is named, not answered as a 2026 request (ui/mcp_versions.py).
    checked = ProtocolVersions(ForbiddenIds(sdk_app, MCP_PATH), MCP_PATH)
    gated = Gate(checked, settings=settings, sessions=SessionStore())
    return Limits(gated, settings, body=BodyLimit(MAX_BODY_BYTES, json_rpc_too_large))


STDIO_AT_A_TERMINAL = (
    "kilde mcp speaks the Model Context Protocol over stdin and stdout, and waits for an MCP client: configure "
    "`kilde mcp` as a server in the client, which starts it (docs/integrations.md), or serve it over HTTP with "
    "`kilde mcp --transport http`. Ctrl-D or Ctrl-C stops it."
)


def run(settings: Settings, transport: str) -> int:
    """Build the assistant (nothing may reach stdout but the protocol), then serve until the client leaves."""
    from assistant.build import build_assistant
    from ui.limits import RateLimiter

    if transport == "stdio":
        with contextlib.redirect_stdout(sys.stderr):
            assistant = build_assistant(settings, follow_in_background=True)
        if sys.stdin.isatty():  # a person ran it: it waited in silence for JSON-RPC on the terminal
            print(STDIO_AT_A_TERMINAL, file=sys.stderr, flush=True)
        anyio.run(build_mcp(assistant, settings, RateLimiter(settings.rate_limit_per_minute)).run_stdio_async)
        return 0
    from ui.listener import http_url, listening, port_of, serve_on
    from ui.server import check_binding

    check_binding(settings)
    with listening(settings) as listeners:
        settings = settings.replace(port=port_of(listeners))  # the port the system chose for --port 0
        with contextlib.redirect_stdout(sys.stderr):
            assistant = build_assistant(settings, follow_in_background=True)
        server = build_mcp(assistant, settings, RateLimiter(settings.rate_limit_per_minute))
        print(
            f"Kilde's MCP server: {http_url(settings.host, settings.port)}{MCP_PATH} (streamable HTTP). "
            "Ctrl-C stops it.",
            file=sys.stderr,
            flush=True,
        )
        return serve_on(mcp_http_app(server, settings), listeners)
