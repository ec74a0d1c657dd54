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
import threading
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
    environment's proxies. `options` are httpx.Client's (`limits` and `verify` go to the direct client's transport)."""
    if on_this_machine(url):
        transport = httpx.HTTPTransport(
            limits=options.pop("limits", httpx.Limits()), verify=options.pop("verify", True)
        )
        return httpx.Client(transport=transport, **options)
    with _proxy_errors():
        return httpx.Client(**options)


def async_http_client(url: str | None, **options) -> httpx.AsyncClient:
    """`http_client`'s asynchronous twin."""
    if on_this_machine(url):
        transport = httpx.AsyncHTTPTransport(
            limits=options.pop("limits", httpx.Limits()), verify=options.pop("verify", True)
        )
        return httpx.AsyncClient(transport=transport, **options)
    with _proxy_errors():
        return httpx.AsyncClient(**options)


def reach_directly(session: httpx.Client, url: str) -> None:
    """Make a client someone else built (Chroma's) reach `url` directly when it is on this machine: drop the
    proxies httpx took from the environment. Before the client sends anything."""
    if on_this_machine(url):
        session._mounts = {}


_made_directly = threading.local()
_installed = threading.Lock()
_httpx_environment_proxies: list = []  # httpx's own reading, once `clients_made_directly` has stood in for it


def _environment_proxies() -> dict[str, str | None]:
    """httpx's reading of the environment's proxies, none while this thread is in `clients_made_directly`."""
    if getattr(_made_directly, "on", False):
        return {}
    return _httpx_environment_proxies[0]()


@contextlib.contextmanager
def clients_made_directly(url: str) -> Iterator[None]:
    """While this thread makes clients for `url` that someone else builds (Chroma's), on this machine: they read
    no proxy from the environment. Chroma makes its own httpx clients, which read every proxy variable while they
    are made, so one httpx cannot use (GNOME's `all_proxy=socks://…`) stopped a store on a `chroma run` at
    127.0.0.1, though no request would go to that proxy. Any other `url`: as httpx reads the environment."""
    if not on_this_machine(url):
        yield
        return
    with _installed:  # httpx.Client asks its module's name for the proxies; other threads read them as before
        # None: an httpx that reads them otherwise, left as it is
        reading = getattr(httpx._client, "get_environment_proxies", None)
        if not _httpx_environment_proxies and reading is not None:
            _httpx_environment_proxies.append(reading)
            httpx._client.get_environment_proxies = _environment_proxies
    before, _made_directly.on = getattr(_made_directly, "on", False), True
    try:
        yield
    finally:
        _made_directly.on = before


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
