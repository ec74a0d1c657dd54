"""Reaching a Chroma server (`chroma run`, KILDE_CHROMA_URL): Chroma's HTTP client, every request bounded as a whole
and sent with the server's token when one is set, and Kilde's error for each way the server fails.

Chroma's client waits for ever: its httpx client has no timeout, and no Chroma setting sets one. An httpx timeout
bounds each wait for the socket, not a request: a server that trickles its answer a byte at a time, each within
the timeout, kept a question waiting as long as it liked. Here every request of the client, from its first (the
ones Chroma sends while the client is being made), must be answered whole within the timeout: each socket wait
gets what is left of it."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import httpcore
import httpx

from assistant.core.errors import (
    StoreFailedError,
    StoreRefusedError,
    StoreUnreachableError,
    shortened,
)
from assistant.indexes.http_clients import clients_made_directly, reach_directly, unusable_proxy

_WRITE_SLICE = 64 * 1024  # a body is written in slices, each bounded by what is left of the request's time


def token_headers(token: str | None, header: str) -> dict[str, str]:
    """The header that carries a Chroma server's token: `Authorization: Bearer <token>` (a reverse proxy's, and
    Chroma's own token auth), or the bare token in any other header (Chroma's `X-Chroma-Token`)."""
    if not token:
        return {}
    return {header: f"Bearer {token}" if header.lower() == "authorization" else token}


class _Deadline(threading.local):
    """When the request a thread sends must be answered by (`time.monotonic()`); None outside a request."""

    until: float | None = None

    def bound(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """`timeout` for one socket wait, cut to what is left of the request's time; `expired` once none is."""
        if self.until is None:
            return timeout
        left = self.until - time.monotonic()
        if left <= 0:
            raise expired("the request was not answered whole in time")
        return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline):
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_SLICE):
            part = view[start : start + _WRITE_SLICE]
            self._stream.write(bytes(part), self._deadline.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        bounded = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._stream.start_tls(ssl_context, server_hostname, bounded), self._deadline)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, each connection's waits bounded by the `_Deadline` of its thread's request."""

    def __init__(self, backend: httpcore.NetworkBackend, deadline: _Deadline):
        self._backend = backend
        self._deadline = deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        bounded = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return _BoundedStream(stream, self._deadline)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        bounded = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(
            self._backend.connect_unix_socket(path, bounded, socket_options), self._deadline
        )

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bound_session(session: httpx.Client, timeout_s: float) -> None:
    """Bound every request `session` sends (Chroma's client's, made with `timeout=None`) to `timeout_s` in all:
    to connect, to send, and to read the whole answer. httpx has no such setting; its transports' connection
    pools (the one for the server, and any for a proxy named in the environment) are given a network backend
    that cuts each socket wait to what is left of the request's time. Server errors are raised as
    `httpx.HTTPStatusError` (`_raise_server_errors`)."""
    deadline = _Deadline()

    def start(request: httpx.Request) -> None:  # a request hook: it runs in the thread that sends the request
        deadline.until = time.monotonic() + timeout_s

    session.timeout = httpx.Timeout(timeout_s)
    for transport in (session._transport, *session._mounts.values()):
        pool = getattr(transport, "_pool", None)
        if pool is not None:
            pool._network_backend = _BoundedBackend(pool._network_backend, deadline)
    session.event_hooks["request"].append(start)
    session.event_hooks["response"].append(_raise_server_errors)


def http_client(url, port: int, where: str, chroma_settings, timeout_s: float, headers: dict[str, str]):
    """`chromadb.HttpClient` for the server at `url`, sending `headers` (a token), every request bounded by
    `timeout_s` (`bound_session`) from the first one Chroma sends while the client is being made. What the server
    answers then is Kilde's error, as for every later call (`server_error`); `where` names the server."""
    from chromadb.api.client import Client
    from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT

    def prepare(session: httpx.Client) -> None:
        if not getattr(session, "_kilde_bounded", False):
            reach_directly(session, where)
            bound_session(session, timeout_s)
            session._kilde_bounded = True

    class BoundedClient(Client):
        """Chroma's client, its sessions bounded (and a server on this machine reached without a proxy) before
        they send anything: its first request is the one `get_user_identity` sends, then an admin client, with a
        session of its own, asks for the tenant and database."""

        def get_user_identity(self):
            prepare(self._server._session)
            return super().get_user_identity()

        def _validate_tenant_database(self, tenant: str, database: str) -> None:
            prepare(self._admin_client._server._session)
            super()._validate_tenant_database(tenant, database)

    # What chromadb.HttpClient does, with Kilde's client class
    chroma_settings.chroma_api_impl = "chromadb.api.fastapi.FastAPI"
    chroma_settings.chroma_server_host = url.hostname
    chroma_settings.chroma_server_http_port = port
    chroma_settings.chroma_server_ssl_enabled = url.scheme == "https"
    chroma_settings.chroma_server_headers = dict(headers)
    try:
        with clients_made_directly(where):
            return BoundedClient(tenant=DEFAULT_TENANT, database=DEFAULT_DATABASE, settings=chroma_settings)
    except (httpx.HTTPError, ValueError, ImportError) as exc:
        # httpx refuses a proxy variable it cannot use while Chroma makes its client, before any request
        if (proxy := unusable_proxy(exc)) is not None:
            raise proxy from None
        if isinstance(exc, ImportError):
            raise
        # Chroma's own client says "Could not connect to a Chroma server" (a ValueError), the HTTP error kept;
        # an answer that is no JSON is orjson's JSONDecodeError, a ValueError too
        sent = next(iter(headers), None)
        failure = server_error(where, exc, timeout_s, sent) or server_error(
            where, exc.__context__, timeout_s, sent
        )
        if failure is None:
            raise
        raise failure from None


def server_error(
    where: str, exc: BaseException | None, timeout_s: float, token_header: str | None = None
) -> StoreUnreachableError | None:
    """Kilde's error for what asking the Chroma server at `where` raised (an `httpx.HTTPError`, or a
    `json.JSONDecodeError` of an answer); None for anything else. `token_header`: the header a token was sent
    in, None if Kilde sent none (a refusal's message says which to check)."""
    if isinstance(exc, httpx.TimeoutException):
        return StoreUnreachableError(
            where, f"no answer within {timeout_s:g} s, the wait KILDE_CHROMA_TIMEOUT sets"
        )
    if isinstance(exc, httpx.TransportError):
        return StoreUnreachableError(where, str(exc) or type(exc).__name__)
    if isinstance(exc, httpx.HTTPStatusError):
        answer = exc.response
        reason = f"HTTP {answer.status_code} {answer.reason_phrase}".rstrip()
        with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
            # Chroma's own error ({"error": "InternalError", "message": ...}); a proxy's page is not repeated
            reason += f": {shortened(str(answer.json()['message']))}"
        if answer.status_code in (401, 403, 407):
            return StoreRefusedError(where, reason, token_header)
        return StoreFailedError(where, reason)
    if isinstance(exc, json.JSONDecodeError):  # what Chroma's client could not read (a proxy's 200 page)
        return StoreFailedError(where, f"an answer that is no JSON: {exc}")
    if isinstance(exc, httpx.HTTPError):  # an answer that could not be decoded, too many redirects
        return StoreFailedError(where, str(exc) or type(exc).__name__)
    return None


def _raise_server_errors(answer: httpx.Response) -> None:
    """An HTTP client's response hook: a 5xx, a refusal (401, 403, 407: a proxy's, or Chroma's own token auth's),
    and a 4xx that is not Chroma's own error (a proxy's 404 page), is `HTTPStatusError`. Chroma's client would
    raise its `InternalError`, its auth error, or a bare `Exception` holding the page, none told apart from
    Kilde's own mistakes. Chroma's other 4xx stay Chroma's: the store reads its `NotFoundError` as an index
    reset by another client."""
    status = answer.status_code
    if status >= 500 or status in (401, 403, 407) or (status >= 400 and not _chromas_error(answer)):
        answer.read()
        answer.raise_for_status()


def _chromas_error(answer: httpx.Response) -> bool:
    """Whether an error answer is Chroma's own, `{"error": "NotFoundError", "message": ...}`, which its client
    raises as its typed error (a body of another shape it raises as a bare `Exception`)."""
    try:
        body = json.loads(answer.read())
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)
