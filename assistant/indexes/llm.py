"""Chat-model clients for the generative backend (OpenAI or any OpenAI-compatible server)."""

from __future__ import annotations

import re

from assistant.core.config import Settings


def encoding_for_model(model: str) -> str:
    """tiktoken encoding of OpenAI's model families; other (local) models are estimated with cl100k."""
    name = model.lower().split("/")[-1]
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o")) or re.match(r"^o\d", name):
        return "o200k_base"
    return "cl100k_base"


class NotAnEventStream(Exception):
    """A streaming request answered HTTP 200 with a whole body instead of a stream of events: a proxy's or a
    login page's HTML, or a server that ignores `stream: true`. Read as a stream, it holds no event, which
    would look like an empty reply."""

    def __init__(self, content_type: str, body: str):
        super().__init__(f"{content_type}: {body[:200]}")
        self.content_type = content_type
        self.body = body


# Whole bodies a stream never comes as. A server that sends its events under another type, or none, is trusted.
_WHOLE_BODY_TYPES = ("text/html", "application/json", "application/xhtml")


def _expect_event_stream(response) -> None:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if response.status_code == 200 and content_type.startswith(_WHOLE_BODY_TYPES):
        response.read()
        raise NotAnEventStream(content_type, response.text)


def build_chat_models(settings: Settings):
    """The two ChatOpenAI clients: streaming for answers, plain for condensing follow-ups."""
    import httpx
    from langchain_openai import ChatOpenAI

    from assistant.indexes.http_clients import async_http_client, http_client

    # The client's read timeout is one number for the first byte and every later one; the answerer enforces
    # the first-token, silence and total deadlines itself (answering/deadlines.py), so this only bounds a
    # read it has given up on. Retries are the answerer's too: a timed-out request is never retried.
    read = max(settings.llm_timeout_s, settings.llm_first_token_timeout_s)
    common = {
        "model": settings.llm_model,
        "api_key": settings.llm_api_key or "not-needed",
        "base_url": settings.llm_base_url,
        "timeout": httpx.Timeout(read, connect=settings.llm_timeout_s),
        "max_retries": 0,
        "temperature": 0,
    }
    extra = {}
    if settings.llm_backend == "openai-compatible":
        # Local servers (llama.cpp, older Ollama and vLLM builds) read `max_tokens`, not only the newer
        # `max_completion_tokens` that ChatOpenAI sends; send both with the same value.
        extra = {"extra_body": {"max_tokens": settings.llm_max_tokens}}
    # Kilde's own clients (`http_clients`): a server on this machine is reached without the environment's proxies,
    # another through them. No socket options: langchain-openai would warn that they shadow the proxies.
    common["http_async_client"] = async_http_client(settings.llm_base_url, timeout=common["timeout"])
    common["http_socket_options"] = ()
    streaming_client = http_client(
        settings.llm_base_url, timeout=common["timeout"], event_hooks={"response": [_expect_event_stream]}
    )
    chat = ChatOpenAI(
        streaming=True,
        max_tokens=settings.llm_max_tokens,
        http_client=streaming_client,
        **common,
        **extra,
    )
    condense_extra = {"extra_body": {"max_tokens": 200}} if extra else {}
    condense = ChatOpenAI(
        streaming=False,
        max_tokens=200,
        http_client=http_client(settings.llm_base_url, timeout=common["timeout"]),
        **common,
        **condense_extra,
    )
    return chat, condense
