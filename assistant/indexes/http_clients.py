"""The HTTP clients Kilde talks to its servers with (a model server, a Chroma server, another Kilde).

A server on this machine (127.0.0.0/8, ::1, `localhost`) is reached directly, never through a proxy the environment
names (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, in either case): httpx sends every request through such a proxy unless
NO_PROXY lists the host, so on an intranet machine each question went to the proxy, which answered 502 for an
address it cannot reach, or saw the question. Any other server is reached through those proxies, NO_PROXY
respected, as httpx reads them. A proxy variable httpx cannot use (GNOME's `socks://`, `socks5://` without the
socksio package) is Kilde's `ConfigError` naming the variable, where httpx raised a ValueError or ImportError
while the client was made."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Iterator

import httpx

from assistant.core.errors import ConfigError

# What httpx reads (through urllib's getproxies), lower case first as urllib prefers it.
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
_SCHEMES = ("http", "https", "socks5", "socks5h")


def on_this_machine(url: str | httpx.URL | None) -> bool:
    """Whether `url` names a loopback host: `localhost` (or a name under it), 127.0.0.0/8 or ::1."""
    if url is None:
        return False
    try:
        host = httpx.URL(str(url)).host.lower().rstrip(".")
    except (httpx.InvalidURL, TypeError):
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_client(url: str | None, **options) -> httpx.Client:
    """An `httpx.Client` for the server at `url`: direct when it is on this machine, else through the
    environment's proxies. `options` are httpx.Client's (`limits` goes to the direct client's transport)."""
    if on_this_machine(url):
        transport = httpx.HTTPTransport(limits=options.pop("limits", httpx.Limits()))
        return httpx.Client(transport=transport, **options)
    with _proxy_errors():
        return httpx.Client(**options)


def async_http_client(url: str | None, **options) -> httpx.AsyncClient:
    """`http_client`'s asynchronous twin."""
    if on_this_machine(url):
        transport = httpx.AsyncHTTPTransport(limits=options.pop("limits", httpx.Limits()))
        return httpx.AsyncClient(transport=transport, **options)
    with _proxy_errors():
        return httpx.AsyncClient(**options)


def reach_directly(session: httpx.Client, url: str) -> None:
    """Make a client someone else built (Chroma's) reach `url` directly when it is on this machine: drop the
    proxies httpx took from the environment. Before the client sends anything."""
    if on_this_machine(url):
        session._mounts = {}


@contextlib.contextmanager
def _proxy_errors() -> Iterator[None]:
    """httpx's error for a proxy variable it cannot use, as a `ConfigError` naming the variable."""
    try:
        yield
    except (ValueError, ImportError, httpx.InvalidURL) as exc:
        if (failure := unusable_proxy(exc)) is None:
            raise
        raise failure from None


def unusable_proxy(exc: BaseException) -> ConfigError | None:
    """Kilde's error for httpx's refusal of a proxy the environment names; None when `exc` is no such refusal."""
    if not (isinstance(exc, httpx.InvalidURL) or "proxy" in str(exc).lower()):
        return None
    for name in PROXY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        scheme = value.partition("://")[0].lower() if "://" in value else "http"
        try:
            readable = httpx.URL(value if "://" in value else f"http://{value}").host != ""
        except httpx.InvalidURL:
            readable = False
        if isinstance(exc, ImportError) and scheme.startswith("socks5"):
            need = "a SOCKS proxy needs the socksio package (pip install 'httpx[socks]')"
        elif scheme not in _SCHEMES:
            need = "name an http://, https:// or socks5:// proxy"
        elif not readable:
            need = "name a proxy as http://host:port"
        else:
            continue
        shown = re.sub(r"//[^/@]*@", "//", value)[:200]  # a proxy's user and password are not printed
        return ConfigError(
            f"{name} is {shown!r}, a proxy Kilde's HTTP client cannot use: {need}, or unset {name}"
        )
    return None
