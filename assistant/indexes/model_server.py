"""What Kilde asks a model server besides chat completions: is it there and does it serve the model
(`GET {base_url}/models`), how many tokens does its own tokenizer count (`POST /tokenize` of llama.cpp
and vLLM, `/extras/tokenize/count` of llama-cpp-python), and how large is its context (llama.cpp's
`/props`, vLLM's `max_model_len`). Each optional endpoint is probed once and the answer cached."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from assistant.core.config import Settings
from assistant.core.errors import redact
from assistant.indexes.http_clients import http_client

log = logging.getLogger("kilde.model_server")

STATUS_TTL_S = 10.0


def server_root(base_url: str) -> str:
    """The server's root: tokenizer and property endpoints live beside `/v1`, not under it."""
    return re.sub(r"/v1/?$", "", base_url.rstrip("/"))


def error_excerpt(response: httpx.Response | None, body: object, secret: str | None, limit: int = 160) -> str:
    """A short, redacted, single-line excerpt of what the server said about an error."""
    text = ""
    if isinstance(body, dict):
        error = body.get("error", body)
        text = (
            str(error.get("message") or error.get("detail") or "") if isinstance(error, dict) else str(error)
        )
    elif isinstance(body, str):
        text = body
    if not text and response is not None:
        try:
            text = response.text
        except (httpx.ResponseNotRead, UnicodeDecodeError):
            text = ""
    text = redact(re.sub(r"\s+", " ", re.sub(r"[\x00-\x1f\x7f]", " ", text)).strip(), secret)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class ModelStatus:
    """`ok`: the server answered `/models`; `listed`: the configured model is among them (None: unknown)."""

    ok: bool
    detail: str
    listed: bool | None = None
    models: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "status": "ok" if self.ok else "unreachable",
            "detail": self.detail,
            "model_listed": self.listed,
        }


_TOKENIZERS = (  # (path under the root, body for `text`)
    ("/tokenize", lambda text, model: {"content": text, "add_special": False}),  # llama.cpp server
    ("/tokenize", lambda text, model: {"model": model, "prompt": text, "add_special_tokens": False}),  # vLLM
    ("/extras/tokenize/count", lambda text, model: {"input": text, "model": model}),  # llama-cpp-python
)


class ModelServer:
    """One per generative backend; thread-safe."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.base_url = (settings.llm_base_url or "https://api.openai.com/v1").rstrip("/")
        self.root = server_root(self.base_url)
        self.local = settings.llm_backend == "openai-compatible"
        self._lock = threading.Lock()
        self._tokenizer: int | bool | None = False  # False: not probed yet; None: none offered
        self._context: int | bool | None = False
        self._status: tuple[float, ModelStatus] | None = None

    def _headers(self) -> dict[str, str]:
        key = self.settings.llm_api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _client(self, timeout: float | None = None) -> httpx.Client:
        return http_client(
            self.base_url, timeout=timeout or min(self.settings.llm_timeout_s, 10.0), headers=self._headers()
        )

    def describe(self, exc: Exception, url: str) -> str:
        if isinstance(exc, httpx.ConnectError):
            return f"could not connect to {redact(url, self.settings.llm_api_key)}"
        if isinstance(exc, httpx.TimeoutException):
            return f"no reply from {redact(url, self.settings.llm_api_key)}"
        return redact(f"{type(exc).__name__} from {url}", self.settings.llm_api_key)

    # -- /models --------------------------------------------------------------------------------

    def status(self, fresh: bool = False) -> ModelStatus:
        """`GET {base_url}/models`, cached for a few seconds (readiness probes poll it)."""
        with self._lock:
            if self._status and not fresh and time.monotonic() - self._status[0] < STATUS_TTL_S:
                return self._status[1]
        status = self._fetch_status()
        with self._lock:
            self._status = (time.monotonic(), status)
        return status

    def _fetch_status(self) -> ModelStatus:
        url = f"{self.base_url}/models"
        try:
            with self._client() as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            return ModelStatus(False, self.describe(exc, url))
        if response.status_code != 200:
            hint = (
                " (does the base URL end in /v1?)"
                if response.status_code == 404 and not self.base_url.endswith("/v1")
                else ""
            )
            excerpt = error_excerpt(response, _json(response), self.settings.llm_api_key)
            return ModelStatus(
                False,
                f"{url} answered HTTP {response.status_code}{hint}" + (f": {excerpt}" if excerpt else ""),
            )
        body = _json(response)
        data = body.get("data") if isinstance(body, dict) else None
        models = (
            tuple(str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id"))
            if isinstance(data, list)
            else ()
        )
        if self._context is False:
            self._context = (
                next(
                    (
                        int(m["max_model_len"])
                        for m in data
                        if isinstance(m, dict)
                        and m.get("id") == self.settings.llm_model
                        and isinstance(m.get("max_model_len"), int)
                    ),
                    False,
                )
                if data
                else False
            )
        wanted = self.settings.llm_model
        listed = (
            any(m in (wanted, f"{wanted}:latest") for m in models) if models else None
        )  # Ollama adds tags
        detail = "the server is reachable"
        if listed is False:
            detail = (
                f"the server does not list the model {self.settings.llm_model!r} "
                f"(it lists {', '.join(models[:5])}); check KILDE_LLM_MODEL"
            )
        return ModelStatus(True, detail, listed, models)

    # -- the server's tokenizer -----------------------------------------------------------------------

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        """Token counts by the server's own tokenizer, or None where it offers none (probed once)."""
        if not self.local or self._tokenizer is None:
            return None
        with self._client() as client:
            if self._tokenizer is False:
                self._tokenizer = self._probe(client)
                if self._tokenizer is None:
                    return None
            try:
                return [self._count(client, self._tokenizer, text) for text in texts]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "the server's tokenizer failed (%s); estimating token counts instead",
                    redact(str(exc), self.settings.llm_api_key)[:200],
                )
                return None

    def _probe(self, client: httpx.Client) -> int | None:
        for i in range(len(_TOKENIZERS)):
            try:
                if self._count(client, i, "Kilde") > 0:
                    log.info("counting prompt tokens with %s%s", self.root, _TOKENIZERS[i][0])
                    return i
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                continue
        log.info("%s offers no tokenizer; prompt tokens are estimated with a safety margin", self.root)
        return None

    def _count(self, client: httpx.Client, which: int, text: str) -> int:
        path, body = _TOKENIZERS[which]
        response = client.post(self.root + path, json=body(text, self.settings.llm_model))
        response.raise_for_status()
        data = response.json()
        if isinstance(data.get("count"), int):
            return data["count"]
        return len(data["tokens"])

    # -- the server's context size --------------------------------------------------------------------

    def context_size(self) -> int | None:
        """The context the server runs with, where it says (llama.cpp `/props`, vLLM `/models`)."""
        if not self.local:
            return None
        if self._context is False:
            self._context = self._probe_context()
        return self._context or None

    def _probe_context(self) -> int | None:
        try:
            with self._client() as client:
                response = client.get(self.root + "/props")
                if response.status_code == 200:
                    settings = (_json(response) or {}).get("default_generation_settings") or {}
                    if isinstance(settings.get("n_ctx"), int):
                        return settings["n_ctx"]
        except httpx.HTTPError:
            pass
        self.status(fresh=True)  # vLLM: max_model_len in /models
        return self._context or None


def _json(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None
