"""The sockets a Kilde server listens on, bound before the models load, and uvicorn serving on them.

Binding first names a busy port or a host that is no address of this machine at once, and lets `--port 0` print
the port the system chose instead of ":0". A host name is every address it resolves to, as asyncio binds one,
and `localhost` is 127.0.0.1 and ::1 whatever /etc/hosts lists (RFC 6761; a browser or curl may try either),
each where this machine has it, on one port.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Iterator

from assistant.core.config import Settings
from assistant.core.errors import ConfigError

log = logging.getLogger("kilde.ui")

Address = tuple[socket.AddressFamily, tuple]  # a family and a sockaddr whose port is set at bind time

LOOPBACK: tuple[Address, ...] = ((socket.AF_INET, ("127.0.0.1", 0)), (socket.AF_INET6, ("::1", 0, 0, 0)))
LOCALHOST_NAMES = ("localhost", "localhost.")
# An address this machine does not have (no IPv6, say); another of the host's addresses serves instead.
NOT_HERE = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
PORT_0_TRIES = 5  # the port chosen for one address may be taken on another: choose again


@contextlib.contextmanager
def listening(settings: Settings) -> Iterator[list[socket.socket]]:
    """The bound sockets, closed on the way out. Each listens on the same port: `port_of` names it."""
    listeners = bind_listeners(settings)
    try:
        yield listeners
    finally:
        for listener in listeners:
            listener.close()


def port_of(listeners: list[socket.socket]) -> int:
    return listeners[0].getsockname()[1]


def bind_listeners(settings: Settings) -> list[socket.socket]:
    try:
        addresses = addresses_of(settings.host)
    except OSError as exc:
        raise ConfigError(_bind_problem(settings, exc)) from None
    tries = 1
    while True:
        try:
            return bind_all(addresses, settings.port)
        except OSError as exc:
            if settings.port == 0 and exc.errno == errno.EADDRINUSE and tries < PORT_0_TRIES:
                tries += 1
                continue
            raise ConfigError(_bind_problem(settings, exc)) from None


def addresses_of(host: str) -> list[Address]:
    """The addresses to listen on for `host`, each once, in the resolver's order; an address is itself."""
    if host.lower() in LOCALHOST_NAMES:
        return list(LOOPBACK)
    found: list[Address] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM):
        if (family, sockaddr) not in found:
            found.append((family, sockaddr))
    return found


def bind_all(addresses: list[Address], port: int) -> list[socket.socket]:
    """A socket bound to each address on `port` (0: the one the system chooses for the first, for all). An
    address this machine lacks is left out while another one binds; any other failure closes them all."""
    bound: list[socket.socket] = []
    missing: list[OSError] = []
    try:
        for family, sockaddr in addresses:
            try:
                listener = _bound(family, (sockaddr[0], port, *sockaddr[2:]))
            except OSError as exc:
                if len(addresses) > 1 and exc.errno in NOT_HERE:
                    log.info("not listening on %s: %s", sockaddr[0], exc.strerror)
                    missing.append(exc)
                    continue
                raise
            bound.append(listener)
            port = listener.getsockname()[1]  # with --port 0, the others take the port chosen for the first
        if not bound:
            raise missing[0]
        return bound
    except BaseException:
        for listener in bound:
            listener.close()
        raise


def _bound(family: socket.AddressFamily, sockaddr: tuple) -> socket.socket:
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # as asyncio binds it: --host :: serves IPv6 alone, ::1 beside 127.0.0.1
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(sockaddr)
    except OSError:
        listener.close()
        raise
    return listener


def _bind_problem(settings: Settings, exc: OSError) -> str:
    if isinstance(exc, socket.gaierror) or exc.errno in NOT_HERE:
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


def serve_on(app, listeners: list[socket.socket]) -> int:
    """Serve `app` until Ctrl-C or SIGTERM, as `uvicorn.run` would, but on the sockets bound already."""
    import uvicorn

    # proxy_headers=False: the client address must be the real peer, so that trusted-proxy and
    # loopback checks in ui.security cannot be fooled by an X-Forwarded-For header.
    server = uvicorn.Server(
        uvicorn.Config(app, proxy_headers=False, log_level="warning", timeout_graceful_shutdown=3)
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it shut down on
        server.run(sockets=listeners)
    return 0 if server.started else 3  # uvicorn's exit code when the app failed to start
