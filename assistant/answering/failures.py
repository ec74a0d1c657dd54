"""Why a model failed, in words a user can act on, in the question's language.

Every failure of the model client becomes a `ModelFailure` whose reason names what went wrong: which
URL could not be reached, which deadline passed, what the server said (a short, redacted excerpt), and a
hint where one is known (a base URL without `/v1`, a context that ran out)."""

from __future__ import annotations

import json
import re

import httpx

from assistant.core.config import Settings
from assistant.core.errors import BackendError, ModelFailure, redact
from assistant.core.markup import without_tags
from assistant.indexes.llm import NotAnEventStream
from assistant.indexes.model_server import error_excerpt

CONTEXT_HINT = re.compile(
    r"context|n_ctx|too long|maximum.{0,20}length|exceeds|too many tokens", re.IGNORECASE
)


class StreamBroke(Exception):
    """The stream ended without a finish reason: the connection was cut mid-answer."""


class EmptyStream(Exception):
    """HTTP 200, then a stream with no answer in it."""


class DeadlinePassed(Exception):
    def __init__(self, kind: str, seconds: float):
        super().__init__(f"{kind} deadline of {seconds:g} s passed")
        self.kind = kind  # "first_token", "silence" or "total"
        self.seconds = seconds


def _reason(en: str, nb: str, nn: str, **values) -> ModelFailure:
    return ModelFailure(en.format(**values), {"nb": nb.format(**values), "nn": nn.format(**values)})


def is_model_failure(exc: BaseException) -> bool:
    import openai

    if isinstance(
        exc,
        (
            openai.OpenAIError,
            StreamBroke,
            EmptyStream,
            NotAnEventStream,
            DeadlinePassed,
            BackendError,
            json.JSONDecodeError,
            TimeoutError,
            ConnectionError,
        ),
    ):
        return True
    if isinstance(exc, ValueError) and "No generation chunks were returned" in str(exc):
        return True  # LangChain's word for a stream with nothing in it
    module = type(exc).__module__ or ""
    # Transport errors of the HTTP client, and LangChain's refusal / content-filter errors.
    return module.startswith(("httpx", "httpcore", "langchain_openai", "langchain_core.exceptions")) or type(
        exc
    ).__name__ in ("ModelRefusalError", "OpenAIRefusalError")


def _cause(exc: BaseException | None, kind: type[Exception]):
    """`exc` or the first of its causes that is a `kind`: the client wraps what its transport raised."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, kind):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _refused(exc: BaseException) -> bool:
    """Whether the connection could not be made at all. The error arrives wrapped (LangChain's around
    openai's around the transport's), and openai may bring its own copy of httpx: match by name."""
    seen = 0
    while exc is not None and seen < 8:
        if any(kind.__name__ == "ConnectError" for kind in type(exc).__mro__) or isinstance(
            exc, ConnectionRefusedError
        ):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def context_ran_out() -> ModelFailure:
    return _reason(
        "the model's context ran out: set KILDE_LLM_CONTEXT_TOKENS to the server's context size",
        "modellens kontekst ble brukt opp: sett KILDE_LLM_CONTEXT_TOKENS til serverens kontekststørrelse",
        "konteksten til modellen vart brukt opp: set KILDE_LLM_CONTEXT_TOKENS til kontekststorleiken "
        "på tenaren",
    )


def describe(exc: BaseException, settings: Settings) -> ModelFailure:
    """The `ModelFailure` for a failure of the model client."""
    import openai

    key = settings.llm_api_key
    url = redact(settings.llm_base_url or "https://api.openai.com/v1", key)
    if isinstance(exc, ModelFailure):
        return exc
    if isinstance(exc, DeadlinePassed):
        if exc.kind == "total":
            return _reason(
                "the answer took longer than {s:g} s",
                "svaret tok lenger tid enn {s:g} s",
                "svaret tok lengre tid enn {s:g} s",
                s=exc.seconds,
            )
        return _reason(
            "no reply within {s:g} s",
            "ikke noe svar innen {s:g} s",
            "ikkje noko svar innan {s:g} s",
            s=exc.seconds,
        )
    if isinstance(exc, openai.APITimeoutError):
        return _reason(
            "no reply within {s:g} s",
            "ikke noe svar innen {s:g} s",
            "ikkje noko svar innan {s:g} s",
            s=max(settings.llm_timeout_s, settings.llm_first_token_timeout_s),
        )
    if isinstance(exc, openai.RateLimitError):
        return _reason(
            "rate limited, HTTP 429 after {n} retries",
            "for mange forespørsler, HTTP 429 etter {n} nye forsøk",
            "for mange førespurnader, HTTP 429 etter {n} nye forsøk",
            n=settings.llm_max_retries,
        )
    if isinstance(exc, openai.APIStatusError):
        excerpt = error_excerpt(exc.response, exc.body, key)
        if exc.status_code in (400, 413, 422) and CONTEXT_HINT.search(excerpt):
            failure = context_ran_out()
            return ModelFailure(
                f"{failure.reason} (HTTP {exc.status_code}: {excerpt})",
                {k: f"{v} (HTTP {exc.status_code}: {excerpt})" for k, v in failure.translations.items()},
            )
        said = f": «{excerpt}»" if excerpt else ""
        if (
            exc.status_code == 404
            and not (settings.llm_base_url or "").rstrip("/").endswith("/v1")
            and settings.llm_base_url
        ):
            return _reason(
                "the server answered HTTP 404 for {url} (does the base URL need /v1 at the end? try "
                "{url}/v1){said}",
                "serveren svarte HTTP 404 for {url} (mangler /v1 på slutten av adressen? prøv {url}/v1)"
                "{said}",
                "tenaren svarte HTTP 404 for {url} (manglar /v1 på slutten av adressa? prøv {url}/v1){said}",
                url=url.rstrip("/"),
                said=said,
            )
        return _reason(
            "the server refused the request, HTTP {code}{said}",
            "serveren avviste forespørselen, HTTP {code}{said}",
            "tenaren avviste førespurnaden, HTTP {code}{said}",
            code=exc.status_code,
            said=said,
        )
    whole = _cause(exc, NotAnEventStream)
    if whole is not None:
        excerpt = error_excerpt(None, without_tags(whole.body, " "), key)
        return _reason(
            "the server answered with a whole {kind} reply, not a stream of events (is {url} an "
            "OpenAI-compatible server that streams?){said}",
            "serveren svarte med et helt {kind}-svar, ikke en strøm av hendelser (er {url} en "
            "OpenAI-kompatibel server som strømmer?){said}",
            "tenaren svarte med eit heilt {kind}-svar, ikkje ein straum av hendingar (er {url} ein "
            "OpenAI-kompatibel tenar som strøymer?){said}",
            kind=whole.content_type,
            url=url,
            said=f": «{excerpt}»" if excerpt else "",
        )
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
        if _refused(exc):
            return _reason(
                "could not connect to {url}",
                "fikk ikke kontakt med {url}",
                "fekk ikkje kontakt med {url}",
                url=url,
            )
        return _reason(
            "the connection to {url} broke off",
            "forbindelsen til {url} brøt sammen",
            "sambandet til {url} braut saman",
            url=url,
        )
    if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIConnectionError):
        # An error event in the stream (`data: {"error": {...}}`): the server's own words say what broke.
        excerpt = error_excerpt(None, exc.body if exc.body is not None else exc.message, key)
        return _reason(
            "the server reported an error mid-answer: «{said}»",
            "serveren meldte en feil midt i svaret: «{said}»",
            "tenaren melde ein feil midt i svaret: «{said}»",
            said=excerpt or redact(type(exc).__name__, key),
        )
    if isinstance(exc, StreamBroke):
        return _reason(
            "the answer stream broke off before it finished (a single-slot server interrupts a "
            "stream when another request arrives: see KILDE_LLM_CONCURRENCY)",
            "svarstrømmen brøt av før den var ferdig (en server med én plass avbryter en strøm når en "
            "ny forespørsel kommer: se KILDE_LLM_CONCURRENCY)",
            "svarstraumen braut av før han var ferdig (ein tenar med éin plass avbryt ein straum når ein "
            "ny førespurnad kjem: sjå KILDE_LLM_CONCURRENCY)",
        )
    if isinstance(exc, EmptyStream) or (isinstance(exc, ValueError) and "No generation chunks" in str(exc)):
        return _reason(
            "the server sent an empty reply, most likely because the model's context ran out: set "
            "KILDE_LLM_CONTEXT_TOKENS to the server's context size",
            "serveren sendte et tomt svar, trolig fordi modellens kontekst ble brukt opp: sett "
            "KILDE_LLM_CONTEXT_TOKENS til serverens kontekststørrelse",
            "tenaren sende eit tomt svar, truleg fordi konteksten til modellen vart brukt opp: set "
            "KILDE_LLM_CONTEXT_TOKENS til kontekststorleiken på tenaren",
        )
    if isinstance(exc, (json.JSONDecodeError, ValueError)) and "JSON" in type(exc).__name__ + str(exc):
        return _reason(
            "the server sent a malformed reply",
            "serveren sendte et ugyldig svar",
            "tenaren sende eit ugyldig svar",
        )
    name = type(exc).__name__
    return _reason("{name}", "{name}", "{name}", name=redact(name, key))


def unsupported_answer() -> ModelFailure:
    failure = _reason(
        "no sentence of the generated answer was supported by a passage it cited",
        "ingen setning i det genererte svaret var støttet av et utdrag det viste til",
        "ingen setning i det genererte svaret var støtta av eit utdrag det viste til",
    )
    failure.replaced = True
    return failure


def model_busy(seconds: float) -> ModelFailure:
    return _reason(
        "the model server was busy with other questions for {s:g} s (KILDE_LLM_CONCURRENCY)",
        "modellserveren var opptatt med andre spørsmål i {s:g} s (KILDE_LLM_CONCURRENCY)",
        "modelltenaren var oppteken med andre spørsmål i {s:g} s (KILDE_LLM_CONCURRENCY)",
        s=seconds,
    )
