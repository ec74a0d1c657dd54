"""The socket a Kilde server listens on, bound before the models load, and uvicorn serving on that socket.

Binding first names a busy port or a host that is no address of this machine at once, and lets `--port 0` print
the port the system chose instead of ":0"."""

from __future__ import annotations

import contextlib
import errno
import socket

from assistant.core.config import Settings
from assistant.core.errors import ConfigError


def bind_listener(settings: Settings) -> socket.socket:
    # The address family as uvicorn picks it for a host it binds itself.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:  # as asyncio binds it: --host :: serves IPv6 alone
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        listener.bind((settings.host, settings.port))
    except OSError as exc:
        listener.close()
        raise ConfigError(_bind_problem(settings, exc)) from None
    return listener


def _bind_problem(settings: Settings, exc: OSError) -> str:
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"Cannot listen on {settings.host} ({exc.strerror}): it is no address of this machine. "
            "Name one with --host or KILDE_HOST, such as 127.0.0.1."
        )
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Cannot listen on {settings.host}:{settings.port} ({exc.strerror}). Is Kilde already running? "
            "Stop it, or pick another port with --port or KILDE_PORT."
        )
    return (
        f"Cannot listen on {settings.host}:{settings.port} ({exc.strerror}). "
        "Pick another port with --port or KILDE_PORT."
    )


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve_on(app, listener: socket.socket) -> int:
    """Serve `app` until Ctrl-C or SIGTERM, as `uvicorn.run` would, but on the socket bound already."""
    import uvicorn

    # proxy_headers=False: the client address must be the real peer, so that trusted-proxy and
    # loopback checks in ui.security cannot be fooled by an X-Forwarded-For header.
    server = uvicorn.Server(
        uvicorn.Config(app, proxy_headers=False, log_level="warning", timeout_graceful_shutdown=3)
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it shut down on
        server.run(sockets=[listener])
    return 0 if server.started else 3  # uvicorn's exit code when the app failed to start
