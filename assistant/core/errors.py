"""Kilde's error hierarchy. Each message names the next step; the edges (CLI, UI, API) translate them."""

import re


def redact(text: str, secret: str | None) -> str:
    """`text` without `secret` or anything shaped like an OpenAI key (a server may echo the key it got)."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    return re.sub(r"\b(sk-[A-Za-z0-9_-]{6})[A-Za-z0-9_-]+", r"\1…", text)


# Characters of a caller's id an error message repeats (the MCP server cuts at the same length).
MAX_ECHOED = 80


def shortened(text: str) -> str:
    """`text` as a message repeats it: whole up to MAX_ECHOED characters, else cut there, saying so and how long
    it was (`kilde show` of a 100,000-character id printed all of it)."""
    if len(text) <= MAX_ECHOED:
        return text
    return f"{text[:MAX_ECHOED]}… (cut; {len(text):,} characters in all)"


def clipped(value: object, limit: int = 40) -> str:
    """`value` as a short message names it (a filter's value, a date): its first `limit` characters, "…" after a
    longer one, so a large value is never echoed whole."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


class KildeError(Exception):
    """Base class for every error Kilde reports to a user. `code`: its name in a JSON error body
    (`{"error": code, "message": text}`, the HTTP API's shape, also `kilde ask --json`'s)."""

    exit_code = 2
    code = "error"


class ConfigError(KildeError):
    """A setting is missing, malformed or contradicts another one."""

    code = "config_error"


class IndexMissingError(KildeError):
    """No index exists yet where the settings point."""

    code = "not_ready"

    def __init__(self, where: str):
        super().__init__(f"No Kilde index found at {where}. Build one first: kilde ingest corpus/")


class IndexGoneError(IndexMissingError):
    """The index a running Kilde opened was removed from disk: its folder deleted or emptied, or its Chroma
    files removed. `path`: the file found missing."""

    def __init__(self, where: str, path: str):
        KildeError.__init__(
            self,
            f"The Kilde index at {where} is gone: {path} was removed while Kilde ran. Build it again: "
            "kilde ingest corpus/ (a running server picks the new index up; no restart needed)",
        )


class IndexDamagedError(KildeError):
    """Chroma cannot read the index's files and no ingest is writing them: a disk error, a copy or a restore cut
    short, files of another Chroma version. `detail`: what Chroma said. Not an `IndexMissingError`: an ingest
    must not read it as a folder where no index is yet."""

    code = "not_ready"

    def __init__(self, where: str, detail: str):
        super().__init__(
            f"The Kilde index at {where} cannot be read ({detail}): its files are damaged, or were written by "
            f"another version of Chroma. Move {where} aside (or restore it from a backup) and build the index "
            "again: kilde ingest corpus/",
        )


class EmbedderMismatchError(ConfigError):
    """The index was built with another embedder than the one configured now."""

    def __init__(self, recorded: str, configured: str):
        super().__init__(
            f"The index was built with embedder {recorded!r}, but {configured!r} is configured. "
            "Mixing them gives meaningless results: re-index with `kilde ingest --reset PATH...` "
            "or point KILDE_DATA_DIR elsewhere."
        )


class BadInputError(KildeError):
    """An input file or request cannot be used. `source` names it."""

    exit_code = 1
    code = "bad_request"

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class FilterMatchesNothingError(BadInputError):
    """A source or language filter names a value no article has, so it could only ever find nothing. It carries
    what the message says, so an interface can say it in its own language: `value`, the first value wanted that
    no article has; `known`, the archive's values named (at most a few); `more`, how many more it holds."""

    def __init__(self, source: str, reason: str, *, value: str, known: tuple[str, ...], more: int = 0):
        super().__init__(source, reason)
        self.value = value
        self.known = known
        self.more = more


class UnusableQuestionError(BadInputError):
    """A question (or search query) with nothing to search for, or too long. It carries why, so an interface can
    say it in its own language: `kind`, one of `empty`, `only_markup`, `too_long`, `no_words`; for `too_long`,
    the question's `length` and the `limit`."""

    def __init__(self, source: str, reason: str, *, kind: str, length: int = 0, limit: int = 0):
        super().__init__(source, reason)
        self.kind = kind
        self.length = length
        self.limit = limit


class NotTextError(BadInputError):
    """A text that holds a lone surrogate (half of a UTF-16 pair), which no UTF-8 writer accepts. It carries the
    field it was found in (`source`), so an interface can say it in its own language."""

    def __init__(self, source: str):
        super().__init__(
            source,
            "contains a lone surrogate (half of a UTF-16 pair), which is not text; send the text as valid UTF-8",
        )


class TextTooLongError(BadInputError):
    """A text longer than its field takes (a feedback comment), carrying its `length` and the `limit`, so an
    interface can say it in its own language."""

    def __init__(self, source: str, noun: str, length: int, limit: int):
        super().__init__(source, f"the {noun} is {length} characters; the limit is {limit}")
        self.length = length
        self.limit = limit


class BackendError(KildeError):
    """A generation or embedding backend failed (timeout, refused, malformed reply)."""

    code = "backend_error"


class RetryLaterError(KildeError):
    """A Kilde server refused a request for now; the same request succeeds later, so a caller catching this
    waits and asks again. `retry_after`: the seconds the server asked to wait, None if it did not say."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(RetryLaterError):
    """Over the server's per-client rate limit (HTTP 429). Not bad input."""

    code = "rate_limited"


class ServerBusyError(RetryLaterError, BackendError):
    """The server had no turn free for the request within its time budget (HTTP 503 `busy`). Still a
    `BackendError`, as every other failure of the server is to its client."""

    code = "busy"


class StoreUnreachableError(RetryLaterError, BackendError):
    """The Chroma server that holds the index (KILDE_CHROMA_URL) did not answer: stopped, restarting, hung (no
    answer within KILDE_CHROMA_TIMEOUT), or cut off on the network. Not a missing index: the same request succeeds
    once the server answers again, so the HTTP faces answer it 503 `not_ready` with Retry-After. `where`: the
    server's URL, without credentials."""

    code = "not_ready"

    def __init__(self, where: str, reason: str, retry_after: int = 5):
        super().__init__(
            f"The Chroma server at {where} cannot be reached ({reason}). Start it again or point "
            "KILDE_CHROMA_URL at one that runs, then try again; a running `kilde serve` reconnects by itself.",
            retry_after,
        )
        self.where = where


class StoreFailedError(StoreUnreachableError):
    """The Chroma server, or a proxy before it, answered with a server error (5xx) or with what is no JSON. Like
    an unreachable server, the same request may succeed once it answers again: 503 `not_ready` too."""

    def __init__(self, where: str, reason: str, retry_after: int = 5):
        RetryLaterError.__init__(
            self,
            f"The Chroma server at {where} answered with an error ({reason}). Its log, or its proxy's, says why; "
            "try again once it answers, or point KILDE_CHROMA_URL at one that works. A running `kilde serve` "
            "reconnects by itself.",
            retry_after,
        )
        self.where = where


class StoreRefusedError(StoreFailedError):
    """The Chroma server, or a proxy before it, refused Kilde's request (401, 403 or 407): most likely a token
    that is missing (KILDE_CHROMA_TOKEN unset) or wrong (or sent in another header than the one the server reads,
    KILDE_CHROMA_TOKEN_HEADER). `token_header`: the header Kilde sent a token in, None if it sent none. 503
    `not_ready` as well: once the server lets Kilde through, the next request is answered. The token is never
    in the message."""

    def __init__(self, where: str, reason: str, token_header: str | None = None, retry_after: int = 5):
        if token_header is None:
            cause = (
                "most likely it asks for a token, and Kilde sent none: set KILDE_CHROMA_TOKEN in Kilde's "
                "environment to the token the server or its proxy expects (sent as `Authorization: Bearer`; "
                "KILDE_CHROMA_TOKEN_HEADER names another header, such as X-Chroma-Token)"
            )
        else:
            cause = (
                f"most likely the token Kilde sent in {token_header} is wrong: check KILDE_CHROMA_TOKEN, and "
                "KILDE_CHROMA_TOKEN_HEADER if the server reads the token from another header"
            )
        RetryLaterError.__init__(
            self,
            f"The Chroma server at {where} refused Kilde's request ({reason}): {cause}. A running `kilde serve` "
            "reads the token when it starts: start it again once the token is set.",
            retry_after,
        )
        self.where = where
        self.token_header = token_header


class StoreBusyError(KildeError):
    """Another process holds the single-writer lock on the index."""

    code = "not_ready"


class ModelFailure(BackendError):
    """The language model failed (timeout, refusal, broken stream); `reason` says how, for the notice, in
    English, and `translations` in other languages ("nb", "nn"). `replaced`: the model answered, but the
    answer was unusable and is replaced (not broken off). `cited`: the `Citation`s that the generated text
    already shown cites, so that its markers still resolve after the fallback."""

    def __init__(self, reason: str, translations: dict[str, str] | None = None, *, replaced: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.translations = dict(translations or {})
        self.replaced = replaced
        self.cited: tuple = ()

    def reason_in(self, language: str) -> str:
        return (
            self.translations.get(language)
            or (self.translations.get("nb") if language == "nn" else None)
            or self.reason
        )
