"""The `MCP-Protocol-Version` header `kilde mcp` takes over streamable HTTP.

The SDK hands a request whose header names a version it does not know ('1999-01-01', or the version a client
asked for in `initialize` instead of the one the server answered) to its handler for the 2026 protocol, which
answers 400 "params._meta must be an object carrying the required 'io.modelcontextprotocol/protocolVersion' and
'io.modelcontextprotocol/clientCapabilities' envelope keys": nothing says the version is the fault. The
specification (2025-11-25, basic/transports) says a server MUST answer an invalid or unsupported
MCP-Protocol-Version with 400 Bad Request; `ProtocolVersions` does, naming the versions it speaks.
"""

from __future__ import annotations

from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.types import INVALID_REQUEST, ErrorData, JSONRPCError
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS
from starlette.responses import Response

from assistant.core.errors import MAX_ECHOED


def unsupported_version(version: str) -> str:
    shown = version if len(version) <= MAX_ECHOED else version[:MAX_ECHOED] + "…"
    return (
        f"Bad Request: unsupported MCP-Protocol-Version {shown!r}; this server speaks "
        f"{', '.join(SUPPORTED_PROTOCOL_VERSIONS)} (send the version the initialize result named)"
    )


class ProtocolVersions:
    """ASGI, before the SDK's streamable-HTTP app at `path`: a request whose `MCP-Protocol-Version` the SDK
    does not speak gets 400 and a JSON-RPC error naming it, id null (the body is not read)."""

    def __init__(self, app, path: str):
        self.app, self.path = app, path

    async def __call__(self, scope, receive, send):
        header = MCP_PROTOCOL_VERSION_HEADER.encode("ascii")
        sent = next((v for k, v in scope.get("headers", ()) if k == header), None)
        if scope["type"] != "http" or scope["path"] != self.path or sent is None:
            await self.app(scope, receive, send)
            return
        version = sent.decode("latin-1")
        if version in SUPPORTED_PROTOCOL_VERSIONS:
            await self.app(scope, receive, send)
            return
        error = ErrorData(code=INVALID_REQUEST, message=unsupported_version(version))
        body = JSONRPCError(jsonrpc="2.0", id=None, error=error).model_dump_json(
            by_alias=True, exclude_unset=True
        )
        await Response(body, status_code=400, media_type="application/json")(scope, receive, send)
