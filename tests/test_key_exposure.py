"""A key in the environment appears in no log, error or page. `kilde serve` runs as a real subprocess with
OPENAI_API_KEY and KILDE_LLM_API_KEY set to a dummy key, its generative backend pointed at the scripted
server answering 401/500 with messages that echo the key (as a hostile or careless server might), and then
at a port where nothing listens. Every page, error and API face is fetched; stdout and stderr are kept. The
CLI is checked the same way. The first server is started without --host: it must listen on loopback only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from assistant.testing.corpus import DEMO_QUESTION_EN, ROOT
from assistant.testing.scripted_llm import Reply, ScriptedLLMServer
from assistant.testing.servers import KILDE, free_port, subprocess_env, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "sk-kilde-DUMMY-0123456789abcdef"
NEEDLES = (KEY, KEY[-8:])
CHAT = ["What does Article 4 commit each side to?", "", "", [], [], "en", None]


@pytest.fixture(scope="module")
def llm():
    """Refuses every request the way OpenAI does, but echoing the whole key."""
    with ScriptedLLMServer() as server:
        server.default = Reply.refused(
            401,
            f"Incorrect API key provided: {KEY}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
        )
        yield server


def kilde_env(index, tmp: Path, **extra: str) -> dict[str, str]:
    return subprocess_env(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp),
            "KILDE_CONFIG": os.devnull,
            "KILDE_DATA_DIR": str(index.data_dir),
            "KILDE_CACHE_DIR": str(index.cache_dir),
            "ANONYMIZED_TELEMETRY": "False",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "PYTHONUNBUFFERED": "1",
            "OPENAI_API_KEY": KEY,
            "KILDE_LLM_API_KEY": KEY,
            "KILDE_LLM_TIMEOUT": "3",
            **extra,
        }
    )


@dataclass
class Served:
    pid: int = 0
    port: int = 0
    pages: dict[str, str] = field(default_factory=dict)  # what was fetched -> status, headers and body
    asks: list[dict] = field(default_factory=list)
    log: str = ""
    listening: list[str] = field(default_factory=list)


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the LISTEN sockets on `port`, from /proc/net/tcp and tcp6."""
    found = []
    for name in ("tcp", "tcp6"):
        table = Path("/proc/net") / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            if len(address) == 8:
                found.append(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
            else:
                found.append("::1" if address == "00000000000000000000000001000000" else address)
    return found


def exercise(url: str, pid: int) -> tuple[dict[str, str], list[dict]]:
    """Fetch every face, the error paths included; return what each returned, and the /api/ask answers."""
    pages: dict[str, str] = {}
    asks: list[dict] = []

    def keep(label: str, response: httpx.Response) -> httpx.Response:
        pages[label] = f"{response.status_code}\n{response.headers}\n{response.text}"
        return response

    with httpx.Client(base_url=url, timeout=120) as client:
        for body in (
            {"question": DEMO_QUESTION_EN},
            {
                "question": "Hva sier artikkel 4?",
                "history": [
                    {"role": "user", "content": "Hvem signerte avtalen?"},
                    {"role": "assistant", "content": "Putin."},
                ],
            },
        ):
            response = keep(f"ask {body['question']}", client.post("/api/ask", json=body))
            assert response.status_code == 200, response.text
            asks.append(response.json())
        for label, method, path, payload in [
            ("empty question", "POST", "/api/ask", {"question": ""}),
            ("bad body", "POST", "/api/ask", {"question": 1, "colour": "blue"}),
            ("bad date", "POST", "/api/ask", {"question": "Hva?", "filters": {"since": "igår"}}),
            ("get ask", "GET", "/api/ask", None),
            ("no article", "GET", "/api/articles/nope", None),
            ("no route", "GET", "/api/nothing", None),
            ("no page", "GET", "/nothing/here", None),
            ("docs", "GET", "/docs", None),
            ("openapi", "GET", "/openapi.json", None),
            ("chat page", "GET", "/", None),
            ("widget page", "GET", "/widget/", None),
            ("config", "GET", "/config", None),
            ("widget config", "GET", "/widget/config", None),
            ("info", "GET", "/gradio_api/info", None),
            ("widget info", "GET", "/widget/gradio_api/info", None),
            ("healthz", "GET", "/healthz", None),
            ("readyz", "GET", "/readyz", None),
            ("gradio.js", "GET", "/gradio.js", None),
            ("manifest", "GET", "/manifest.json", None),
            ("environ", "GET", "/gradio_api/file=/proc/self/environ", None),
            ("server environ", "GET", f"/gradio_api/file=/proc/{pid}/environ", None),
            ("foreign origin", "POST", "/api/ask", {"question": "Hva?"}),
        ]:
            headers = {"Origin": "https://evil.example"} if label == "foreign origin" else None
            keep(label, client.request(method, path, json=payload, headers=headers))
        for base, name in (("", "chat"), ("/widget", "widget_chat")):  # the Gradio faces, through the model
            started = client.post(f"{base}/gradio_api/call/{name}", json={"data": CHAT})
            keep(f"{name} start", started)
            keep(f"{name} stream", client.get(f"{base}/gradio_api/call/{name}/{started.json()['event_id']}"))
    return pages, asks


def serve_and_exercise(env: dict[str, str], tmp: Path, *args: str) -> Served:
    served = Served(port=int(env["KILDE_PORT"]))
    log_path = tmp / f"serve-{served.port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [KILDE, "serve", *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        served.pid = process.pid
        try:
            url = f"http://127.0.0.1:{served.port}"
            wait_ready(url, 300, process)
            served.listening = listening_addresses(served.port)
            served.pages, served.asks = exercise(url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    served.log = log_path.read_text(errors="replace")
    return served


def assert_no_key(text: str, where: str) -> None:
    for needle in NEEDLES:
        assert needle not in text, f"the key ({needle}) is in {where}"


@pytest.fixture(scope="module")
def refusing(built_index, llm, tmp_path_factory) -> Served:
    """`kilde serve` (no --host) with backend `openai` at the scripted server: one 500 echoing the key, then 401s."""
    tmp = tmp_path_factory.mktemp("key-refusing")
    llm.script(Reply.server_error(), Reply(status=500, error=f"upstream rejected key {KEY}"))
    env = kilde_env(
        built_index, tmp, KILDE_LLM_BACKEND="openai", KILDE_LLM_BASE_URL=llm.url, KILDE_PORT=str(free_port())
    )
    return serve_and_exercise(env, tmp)


@pytest.fixture(scope="module")
def unreachable(built_index, tmp_path_factory) -> Served:
    tmp = tmp_path_factory.mktemp("key-unreachable")
    env = kilde_env(
        built_index,
        tmp,
        KILDE_LLM_BACKEND="openai-compatible",
        KILDE_LLM_MODEL="local-model",
        KILDE_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        KILDE_PORT=str(free_port()),
    )
    return serve_and_exercise(env, tmp, "--host", "127.0.0.1")


def test_the_key_reached_the_backend_and_nowhere_else(refusing, llm):
    chats = llm.chat_requests
    assert chats and all(r.headers["authorization"] == f"Bearer {KEY}" for r in chats)  # the key was in use
    assert all(KEY not in str(r.body) for r in chats)
    for answer in refusing.asks:  # the error path was taken: the extractive fallback with a notice
        assert answer["backend"] == "extractive" and re.search(r"HTTP (401|500)", answer["notice"])
    assert "generative backend failed" in refusing.log  # the failure was logged ...
    assert_no_key(refusing.log, "the server's stdout/stderr")  # ... without the key
    assert len(refusing.pages) >= 27
    for label, page in refusing.pages.items():
        assert_no_key(page, label)
    assert refusing.pages["environ"].startswith("403") and refusing.pages["server environ"].startswith("403")
    assert (
        "Kilde fetches no" not in refusing.pages["environ"]
    )  # a local path: Gradio's own allow-list refused it


def test_an_unreachable_backend_leaks_no_key_either(unreachable):
    for answer in unreachable.asks:  # the notice is in the question's language
        reason = {
            "en": "could not connect to http://127.0.0.1:",
            "nb": "fikk ikke kontakt med http://127.0.0.1:",
        }
        assert answer["backend"] == "extractive" and reason[answer["language"]] in answer["notice"]
    assert "generative backend failed" in unreachable.log
    assert_no_key(unreachable.log, "the server's stdout/stderr")
    for label, page in unreachable.pages.items():
        assert_no_key(page, label)


def test_kilde_serve_listens_on_loopback_only_by_default(refusing):
    assert refusing.listening == ["127.0.0.1"], refusing.listening
    assert f"http://127.0.0.1:{refusing.port}/" in refusing.log


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KILDE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_cli_output_and_errors_carry_no_key(built_index, llm, tmp_path):
    refusing = kilde_env(built_index, tmp_path, KILDE_LLM_BACKEND="openai", KILDE_LLM_BASE_URL=llm.url)
    gone = kilde_env(
        built_index,
        tmp_path,
        KILDE_LLM_BACKEND="openai-compatible",
        KILDE_LLM_MODEL="local-model",
        KILDE_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
    )
    no_url = kilde_env(
        built_index, tmp_path, KILDE_LLM_BACKEND="openai-compatible", KILDE_LLM_MODEL="local-model"
    )
    bad_timeout = kilde_env(built_index, tmp_path, KILDE_LLM_TIMEOUT="soon")
    runs = {
        "ask (401)": (run_cli(refusing, "ask", DEMO_QUESTION_EN), 0),
        "ask --json (unreachable)": (run_cli(gone, "ask", "--json", DEMO_QUESTION_EN), 0),
        "ask empty": (run_cli(refusing, "ask", " "), 1),
        "stats": (run_cli(refusing, "stats"), 0),
        "stats --json": (run_cli(refusing, "stats", "--json"), 0),
        "show": (run_cli(refusing, "show", "nope"), 1),
        "no base url": (run_cli(no_url, "ask", DEMO_QUESTION_EN), 2),
        "bad timeout": (run_cli(bad_timeout, "stats"), 2),
    }
    for label, (run, code) in runs.items():
        assert run.returncode == code, f"{label}: exit {run.returncode}\n{run.stderr[-2000:]}"
        assert_no_key(run.stdout + run.stderr, f"`kilde {label}`")
    assert "HTTP 401" in runs["ask (401)"][0].stdout
    assert "KILDE_LLM_BASE_URL" in runs["no base url"][0].stderr


class _EchoesTheKey(BaseHTTPRequestHandler):
    """Any POST (e.g. /v1/embeddings): 401 with the key it was sent in the message."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        sent = self.headers.get("authorization", "").removeprefix("Bearer ")
        body = json.dumps(
            {
                "error": {
                    "message": f"Incorrect API key provided: {sent}",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
        ).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_embedding_endpoint_echoing_the_key_is_redacted():
    """KILDE_EMBEDDER=openai: the endpoint's error reaches the user (API 502, CLI), but not the key."""
    from assistant.core.errors import BackendError
    from assistant.indexes.embeddings import OpenAIEmbedder

    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoesTheKey)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        embedder = OpenAIEmbedder(
            "text-embedding-3-small", f"http://127.0.0.1:{server.server_address[1]}/v1", KEY, 2, 0
        )
        for call in (
            lambda: embedder.embed_query("Hva sier artikkel 4?"),
            lambda: embedder.embed_passages(["x"]),
        ):
            with pytest.raises(BackendError) as failed:
                call()
            assert "401" in str(failed.value) and "Incorrect API key" in str(failed.value)
            assert_no_key(str(failed.value), "the embedding error")
    finally:
        server.shutdown()
        server.server_close()


CHROMA_TOKEN = "kilde-chroma-TOKEN-0123456789abcdef"


def test_a_chroma_server_behind_a_token_is_asked_with_it_and_the_token_is_shown_nowhere(
    built_index, chroma_url, tmp_path
):
    """`kilde ingest` and `kilde ask` through a proxy that asks for a token before a real `chroma run`: with
    KILDE_CHROMA_TOKEN set they ingest and answer; without it, or with a wrong one, each says in one line that the
    server refused Kilde's request and which setting to check (no traceback). The token is in no output."""
    from assistant.testing.corpus import write_small_corpus
    from assistant.testing.servers import FailingProxy

    corpus = write_small_corpus(tmp_path / "corpus", articles=3)
    needles = (CHROMA_TOKEN, CHROMA_TOKEN[-8:])
    with FailingProxy(chroma_url, token=("Authorization", f"Bearer {CHROMA_TOKEN}")) as proxy:
        base = kilde_env(
            built_index,
            tmp_path,
            KILDE_DATA_DIR=str(tmp_path / "data"),
            KILDE_CHROMA_URL=proxy.url,
            KILDE_COLLECTION="behind-a-token",
        )
        with_token = {**base, "KILDE_CHROMA_TOKEN": CHROMA_TOKEN}
        wrong = {**base, "KILDE_CHROMA_TOKEN": CHROMA_TOKEN[::-1]}
        ingested = run_cli(with_token, "ingest", str(corpus), "--no-progress", "--json")
        assert ingested.returncode == 0, ingested.stderr[-2000:]
        assert json.loads(ingested.stdout)["added"] == 3
        asked = run_cli(with_token, "ask", "--json", DEMO_QUESTION_EN)
        assert asked.returncode == 0, asked.stderr[-2000:]
        answer = json.loads(asked.stdout)
        assert answer["answerable"] and answer["citations"], answer
        assert proxy.refused == 0
        runs = {
            "ask (no token)": run_cli(base, "ask", DEMO_QUESTION_EN),
            "stats (no token)": run_cli(base, "stats"),
            "ask (wrong token)": run_cli(wrong, "ask", DEMO_QUESTION_EN),
            "ingest (wrong token)": run_cli(wrong, "ingest", str(corpus), "--no-progress"),
        }
    for label, run in runs.items():
        assert run.returncode == 2 and "Traceback" not in run.stderr, f"{label}: {run.stderr[-2000:]}"
        assert "refused Kilde's request (HTTP 401" in run.stderr and "KILDE_CHROMA_TOKEN" in run.stderr, label
        cause = "is wrong" if "wrong token" in label else "Kilde sent none"
        assert cause in run.stderr, label
    for label, run in {**runs, "ingest": ingested, "ask": asked}.items():
        for needle in needles:
            assert needle not in run.stdout + run.stderr, f"the token ({needle}) is in `kilde {label}`"
            assert needle[::-1] not in run.stdout + run.stderr, f"the wrong token is in `kilde {label}`"
