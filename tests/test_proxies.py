"""The proxies an intranet machine names in its environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, either case): a
server on this machine (a model server, a `chroma run`, another Kilde) is reached directly, never through them; a
remote model server is reached through them. The proxy is a real one on 127.0.0.1 (`FailingProxy`) that records
what it is asked for; the remote server is a TEST-NET address (192.0.2.1) that only the proxy can reach."""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import ssl
import threading

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from assistant.core.errors import ConfigError
from assistant.indexes.embeddings import OpenAIEmbedder
from assistant.indexes.http_clients import async_http_client, http_client
from assistant.indexes.llm import build_chat_models
from assistant.indexes.model_server import ModelServer
from assistant.indexes.store import ChromaStore
from assistant.testing.corpus import DEMO_QUESTION_NB, make_settings
from assistant.testing.servers import FailingProxy

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
REMOTE = "http://192.0.2.1/v1"  # TEST-NET-1: reached through the proxy or not at all


@pytest.fixture
def proxy_named(monkeypatch):
    """Name `url` as the proxy in every variable httpx reads, and no NO_PROXY."""

    def name(url: str) -> None:
        for variable in PROXY_VARIABLES:
            monkeypatch.setenv(variable, url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

    return name


def _generative(tmp_path, base_url: str):
    return make_settings(
        tmp_path / "data",
        tmp_path / "cache",
        llm_backend="openai-compatible",
        llm_base_url=base_url,
        llm_model="scripted-7b",
    )


def _ask_every_client(settings) -> tuple[str, str, object, int]:
    chat, condense = build_chat_models(settings)
    answer = "".join(str(piece.content) for piece in chat.stream("Hva sier artikkel 4?"))
    condensed = str(condense.invoke("Hvem signerte den?").content)
    status = ModelServer(settings).status(fresh=True)
    embedder = OpenAIEmbedder("scripted-embed", settings.llm_base_url, None, timeout_s=10, max_retries=0)
    return answer, condensed, status, embedder.dim


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_model_server_on_this_machine_is_reached_directly_whatever_proxy_the_environment_names(
    tmp_path, llm, proxy_named, host
):
    """Every request to the model server on 127.0.0.1 (the streamed answer, the condensing call, `/models`,
    embeddings) went to the proxy: on an intranet machine the proxy answered 502 for an address it cannot reach,
    or saw each question. The proxy is now asked for nothing and the server answers."""
    with FailingProxy(llm.url.removesuffix("/v1")) as proxy:
        proxy.failure = (502, "text/html", b"<html><body>502 Bad Gateway</body></html>")
        proxy_named(proxy.url)
        llm.script("Artikkel 4 sier at partene skal hjelpe hverandre.", "Hvem signerte forsvarspakten?")
        answer, condensed, status, dim = _ask_every_client(
            _generative(tmp_path, llm.url.replace("127.0.0.1", host))
        )
    assert answer == "Artikkel 4 sier at partene skal hjelpe hverandre."
    assert condensed == "Hvem signerte forsvarspakten?"
    assert status.ok and dim > 0
    assert proxy.requested == []


def test_a_remote_model_server_is_reached_through_the_proxy_the_environment_names(tmp_path, llm, proxy_named):
    """A model server elsewhere is reached as the environment says: every client's request goes to the proxy
    (192.0.2.1 cannot be reached any other way), asking for the remote URL."""
    with FailingProxy(llm.url.removesuffix("/v1")) as proxy:
        proxy_named(proxy.url)
        llm.script("Artikkel 4 sier at partene skal hjelpe hverandre.", "Hvem signerte forsvarspakten?")
        answer, condensed, status, dim = _ask_every_client(_generative(tmp_path, REMOTE))
    assert answer == "Artikkel 4 sier at partene skal hjelpe hverandre."
    assert condensed == "Hvem signerte forsvarspakten?"
    assert status.ok and dim > 0
    assert proxy.requested.count(f"{REMOTE}/chat/completions") == 2
    assert f"{REMOTE}/models" in proxy.requested and f"{REMOTE}/embeddings" in proxy.requested


@pytest.mark.integration
def test_a_chroma_server_on_this_machine_is_reached_directly_whatever_proxy_the_environment_names(
    tmp_path, chroma_url, proxy_named
):
    """Opening a store on a `chroma run` at 127.0.0.1 sent its first request through the proxy (a 502 from an
    intranet proxy: "answered with an error"), and, once that was direct, Chroma's admin client, a session of its
    own, still sent the tenant check there. Every request is now direct."""
    with FailingProxy(chroma_url) as proxy:
        proxy.failure = (502, "text/html", b"<html><body>502 Bad Gateway</body></html>")
        proxy_named(proxy.url)
        store = ChromaStore.open(tmp_path, chroma_url, f"direct-{tmp_path.name[-20:].replace('_', '-')}")
        store.ensure_embedder("m", 8)
        assert store.counts() == (0, 0)
        store.reset()
    assert proxy.requested == []


@pytest.mark.integration
@pytest.mark.parametrize("value", ["socks://kilde:s3cret@127.0.0.1:1080/", "socks5://127.0.0.1:1080"])
def test_a_chroma_server_on_this_machine_is_opened_whatever_unusable_proxy_the_environment_names(
    tmp_path, chroma_url, monkeypatch, value
):
    """GNOME's `all_proxy=socks://…` (or `socks5://` without socksio) stopped a store on a `chroma run` at
    127.0.0.1 with the `ConfigError` naming the variable: Chroma made its own httpx client, which read the
    variable, though no request would go to that proxy. Chroma's client now takes Kilde's, which does not read
    the environment's proxies for a server on this machine."""
    for variable in PROXY_VARIABLES:
        monkeypatch.setenv(variable, value)
    store = ChromaStore.open(tmp_path, chroma_url, f"socks-{tmp_path.name[-20:].replace('_', '-')}")
    store.ensure_embedder("m", 8)
    assert store.counts() == (0, 0)
    store.reset()


def test_another_kilde_on_this_machine_is_searched_directly(api, proxy_named):
    """`KildeHTTPRetriever` at a `kilde serve` on 127.0.0.1, sync and async, is not sent to the proxy."""
    from assistant.langchain_retriever import KildeHTTPRetriever

    with FailingProxy(api.url) as proxy:
        proxy.failure = (502, "text/html", b"<html><body>502 Bad Gateway</body></html>")
        proxy_named(proxy.url)
        retriever = KildeHTTPRetriever(url=api.url, k=2)
        assert len(retriever.invoke(DEMO_QUESTION_NB)) == 2
        assert len(asyncio.run(retriever.ainvoke(DEMO_QUESTION_NB))) == 2
    assert proxy.requested == []


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("socks://kilde:s3cret@127.0.0.1:1080/", "name an http://, https:// or socks5:// proxy"),
        ("socks5://127.0.0.1:1080", "a SOCKS proxy needs the socksio package"),
    ],
)
def test_a_proxy_variable_httpx_cannot_use_stops_nothing_on_this_machine_and_is_named_for_a_remote_server(
    tmp_path, llm, monkeypatch, value, says
):
    """GNOME's `all_proxy=socks://…`, or a `socks5://` proxy without socksio: httpx raised a ValueError or an
    ImportError while any client was made, even one for 127.0.0.1, deep in a traceback. A server on this machine
    is now reached as if the variable were not there; a remote one is a `ConfigError` naming the variable,
    without the proxy's password."""
    monkeypatch.setenv("all_proxy", value)
    llm.script("Artikkel 4 sier at partene skal hjelpe hverandre.", "Hvem signerte forsvarspakten?")
    answer, _, status, _ = _ask_every_client(_generative(tmp_path, llm.url))
    assert answer == "Artikkel 4 sier at partene skal hjelpe hverandre." and status.ok
    with pytest.raises(ConfigError) as caught:
        build_chat_models(_generative(tmp_path, REMOTE))
    said = str(caught.value)
    assert said.startswith("all_proxy is ") and says in said and "unset all_proxy" in said
    assert "s3cret" not in said


@pytest.fixture
def self_signed_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate no authority signed, as a model server on an intranet machine
    may have: what `verify` decides whether to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_both_clients_to_a_server_on_this_machine_take_verify(self_signed_server):
    """`verify=False` reached the synchronous client's transport, and the asynchronous one dropped it: the
    transport made for a server on this machine checked the certificate whatever the caller said."""
    with http_client(self_signed_server, verify=False) as client:
        assert client.get(self_signed_server).text == "ok"

    async def fetch(verify: bool) -> str:
        async with async_http_client(self_signed_server, verify=verify) as client:
            return (await client.get(self_signed_server)).text

    assert asyncio.run(fetch(False)) == "ok"
    with pytest.raises(httpx.ConnectError):  # and the default still checks it
        asyncio.run(fetch(True))
