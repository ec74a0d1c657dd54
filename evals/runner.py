"""Runs eval items through the same `Assistant` the CLI and UI use, one variant (retriever) at a time, and
writes `items.jsonl`, `summary.json` and `report.html` into the run folder."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from assistant.answering.assistant import Assistant
from assistant.answering.context import AskRequest
from assistant.core.config import Settings
from assistant.core.errors import ConfigError, KildeError
from assistant.core.types import Turn
from evals.datasets import EvalItem, dataset_name
from evals.machine import description
from evals.metrics import DEPTH, aggregate, chunk_hits, group_by, score_item

PREVIEW_CHARS = 300


class IndexCoverageError(KildeError):
    """The index lacks articles that the eval sets' gold passages come from."""


@dataclass(frozen=True)
class RunConfig:
    datasets: tuple[str, ...]
    retrievers: tuple[str, ...] = ("hybrid",)
    top_k: int = 5
    backend: str = "extractive"
    limit: int | None = None
    command: str = ""
    extra: dict = field(default_factory=dict)


class LastQueryCache:
    """Wraps the embedder so the untimed depth-10 retrieval right after an ask reuses the query vector the ask
    just computed. Only the most recent query is kept, so every timed ask still embeds its own query."""

    def __init__(self, embedder):
        self.inner = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self._last: tuple[str, object] | None = None

    def embed_passages(self, texts):
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str):
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        vector = self.inner.embed_query(text)
        self._last = (text, vector)
        return vector

    def forget(self) -> None:
        self._last = None


def build_eval_assistant(settings: Settings) -> Assistant:
    from assistant.build import build_assistant, build_embedder

    return build_assistant(settings, embedder=LastQueryCache(build_embedder(settings)))


def index_signature(assistant: Assistant) -> tuple[dict, set[str]]:
    """What the index holds: counts, chunker signature(s), and the article ids."""
    stored = assistant.store.stored_articles()
    signatures = sorted({s.signature for s in stored.values()})
    articles, chunks = assistant.store.counts()
    return (
        {
            "location": assistant.store.location,
            "articles": articles,
            "chunks": chunks,
            "signatures": signatures,
        },
        set(stored),
    )


def check_index(assistant: Assistant, items: Sequence[EvalItem], chunk_tokens: int | None) -> dict:
    """Fail early, naming the fix, when the index cannot answer the eval sets fairly."""
    info, ids = index_signature(assistant)
    location = info["location"]
    needed = sorted({a for item in items for a in item.gold_article_ids})
    missing = [a for a in needed if a not in ids]
    if missing:
        raise IndexCoverageError(
            f"The index at {location} lacks {len(missing)} of the {len(needed)} articles these eval sets need "
            f"(e.g. {', '.join(missing[:3])}). Build it with: kilde ingest corpus/ --data-dir {location} "
            "(or pass --data-dir pointing at a full index)."
        )
    if chunk_tokens is not None:
        sizes = {s.split("|")[0].split(":")[1] for s in info["signatures"] if s.count(":") >= 2}
        if sizes and sizes != {str(chunk_tokens)}:
            raise ConfigError(
                f"The index at {location} was chunked at {', '.join(sorted(sizes))} tokens, not {chunk_tokens}. Chunk size is "
                f"fixed at ingest: KILDE_CHUNK_TOKENS={chunk_tokens} kilde ingest corpus/ --data-dir NEW_DIR, then "
                "eval with --data-dir NEW_DIR."
            )
    near = {item.extra.get("near_miss_article_id") for item in items} - {None}
    info["near_miss_missing"] = sorted(a for a in near if a not in ids)
    return info


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return (out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def replayed_history(assistant: Assistant, item: EvalItem, variant: str, top_k: int) -> tuple[Turn, ...]:
    """A `live:` dialogue's history: each of its questions asked in turn, with the answers given so far, and
    answered by `assistant` as the chat would (not timed)."""
    turns: list[Turn] = []
    for turn in item.history:
        if turn.role == "user":
            answer = assistant.ask(
                AskRequest(question=turn.content, history=tuple(turns), top_k=top_k, retriever=variant)
            )
            turns += [turn, Turn("assistant", answer.answer)]
    return tuple(turns)


def evaluate_item(assistant: Assistant, item: EvalItem, variant: str, top_k: int) -> dict:
    if item.extra.get("live_history"):
        item = replace(item, history=replayed_history(assistant, item, variant, top_k))
    request = AskRequest(question=item.question, history=item.history, top_k=top_k, retriever=variant)
    cache = getattr(assistant.retriever, "embedder", None)
    if isinstance(cache, LastQueryCache):
        cache.forget()  # the timed ask always embeds its query
    record = {
        "variant": variant,
        "dataset": item.dataset,
        "id": item.id,
        "language": item.language,
        "question": item.question,
        "history": [t.__dict__ for t in item.history],
        "answerable": item.answerable,
        "answers": list(item.answers),
        "gold_passages": list(item.gold_passages),
        "gold_article_ids": list(item.gold_article_ids),
        "error": None,
    }
    try:
        answer = assistant.ask(request).to_dict()
    except KildeError as exc:
        record.update(
            error=str(exc), metrics={}, timings_ms={}, answer=None, refused=None, citations=[], retrieved=[]
        )
        return record
    standalone = answer.get("standalone_question") or item.question
    ranked = answer["retrieved"]
    best_dense = None
    if top_k < DEPTH:  # the same ranking, deeper, for hit@10 / MRR@10 / nDCG@10 (not timed)
        deeper = assistant.retriever.retrieve(standalone, DEPTH, mode=variant)
        best_dense = deeper.best_dense if deeper.query_vector is not None else None
        ranked = [
            {
                "chunk_id": h.chunk.id,
                "article_id": h.chunk.article_id,
                "text": h.chunk.text,
                "dense_score": h.dense_score,
                "lexical_score": h.lexical_score,
            }
            for h in deeper.hits
        ]
        used = [c["chunk_id"] for c in answer["retrieved"]]
        if [c["chunk_id"] for c in ranked[: len(used)]] != used:
            # A follow-up is ranked from two searches: score the passages the answerer was given, in
            # their order, then the deeper ranking's others.
            ranked = [*answer["retrieved"], *(c for c in ranked if c["chunk_id"] not in used)][:DEPTH]
    metrics = score_item(item, answer, ranked)
    shown = {c["chunk_id"] for c in answer["retrieved"]}
    record.update(
        answer=answer["answer"],
        refused=not answer["answerable"],
        best_dense=best_dense,
        standalone_question=answer.get("standalone_question"),
        backend=answer["backend"],
        citations=[
            {
                k: c.get(k)
                for k in (
                    "n",
                    "article_id",
                    "chunk_id",
                    "quote",
                    "start",
                    "end",
                    "answer_start",
                    "answer_end",
                )
            }
            for c in answer["citations"]
        ],
        retrieved=[
            {
                "rank": i + 1,
                "chunk_id": c["chunk_id"],
                "article_id": c["article_id"],
                "hit": chunk_hits(c["text"], item) if item.gold_passages else None,
                "dense_score": c.get("dense_score"),
                "lexical_score": c.get("lexical_score"),
                "text": c["text"] if c["chunk_id"] in shown else c["text"][:PREVIEW_CHARS],
            }
            for i, c in enumerate(ranked)
        ],
        ranking_consistent=[c["chunk_id"] for c in ranked[: len(answer["retrieved"])]]
        == [c["chunk_id"] for c in answer["retrieved"]],
        metrics=metrics,
        timings_ms=answer["timings_ms"],
    )
    return record


def summarise(records: Sequence[dict], meta: dict) -> dict:
    variants = {}
    for variant, rows in group_by(records, "variant").items():
        ok = [r for r in rows if not r["error"]]
        variants[variant] = {
            "overall": aggregate(ok),
            "errors": len(rows) - len(ok),
            "by_dataset": {k: aggregate(v) for k, v in group_by(ok, "dataset").items()},
            "by_language": {k: aggregate(v) for k, v in group_by(ok, "language").items()},
            "by_dataset_language": {k: aggregate(v) for k, v in group_by(ok, "dataset", "language").items()},
        }
    return {"meta": meta, "variants": variants}


# What a run writes into its folder (`run_eval`, then `evals/report.py`).
RUN_FILES = ("items.jsonl", "summary.json", "report.html")
PARTIAL_ITEMS = "items.jsonl.partial"


def run_eval(
    assistant: Assistant, items: Sequence[EvalItem], config: RunConfig, out: Path, progress: bool = True
) -> dict:
    """Evaluate every item under every retriever variant; write the run folder; return the summary."""
    settings: Settings = assistant.settings
    index = check_index(assistant, items, config.extra.get("chunk_tokens"))
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    load_start = _load()
    records: list[dict] = []
    total = len(items) * len(config.retrievers)
    bar = progress_bar(total, progress)
    t0 = time.perf_counter()
    # Written beside the run and renamed into place once every item is asked (`_commit_run`): a run stopped
    # halfway leaves the earlier run in `out` whole, not its summary.json over a new run's first items.
    partial = out / PARTIAL_ITEMS
    with partial.open("w", encoding="utf-8") as fh:
        for variant in config.retrievers:
            for item in items:
                record = evaluate_item(assistant, item, variant, config.top_k)
                records.append(record)
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                if bar:
                    bar.set_postfix_str(f"{variant} {item.dataset}", refresh=False)
                    bar.update(1)
    if bar:
        bar.close()
    meta = {
        "run": out.name,
        "load_average": [load_start, _load()],
        "machine": description(),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "command": config.command,
        "git_commit": git_commit(),
        "datasets": {
            dataset_name(s): sum(1 for i in items if i.dataset == dataset_name(s)) for s in config.datasets
        },
        "dataset_specs": list(config.datasets),
        "retrievers": list(config.retrievers),
        "top_k": config.top_k,
        "backend": settings.llm_backend,
        "limit": config.limit,
        "settings": {
            "answerable_threshold": settings.answerable_threshold,
            "rerank_floors": settings.rerank_floors,
            "reader_rerank_floors": settings.reader_rerank_floors,
            "rerank_sure": settings.rerank_sure,
            "candidates": settings.candidates,
            "rrf_k": settings.rrf_k,
            "max_answer_sentences": settings.max_answer_sentences,
            # Kilde's reader: whether this run's answers read the top `reader_chunks` chunks with it
            "reader": assistant.reading is not None,
            "reader_chunks": settings.reader_chunks if assistant.reading is not None else None,
            "embedder": settings.embedder,
            "llm_model": settings.llm_model if settings.llm_backend != "extractive" else None,
        },
        "index": index,
    }
    summary = summarise(records, meta)
    _commit_run(out, partial, summary, records)
    return summary


def _commit_run(out: Path, items: Path, summary: dict, records: Sequence[dict]) -> None:
    """Put a finished run in place. The earlier summary.json goes first and the new one comes last, each file
    whole by a rename: stopped at any point, the folder holds either a whole run or none that `load_run`
    accepts."""
    from evals.report import render

    staged = {}
    for name, text in (
        ("report.html", render(summary, records)),
        ("summary.json", json.dumps(summary, ensure_ascii=False, indent=2)),
    ):
        staged[name] = out / f"{name}.partial"
        staged[name].write_text(text, encoding="utf-8")
    (out / "summary.json").unlink(missing_ok=True)
    os.replace(items, out / "items.jsonl")
    os.replace(staged["report.html"], out / "report.html")
    os.replace(staged["summary.json"], out / "summary.json")


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="eval",
        unit="q",
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 10.0,
    )


def _check_summary(summary: dict) -> None:
    """The parts of summary.json that `kilde eval compare` reads, each of its shape: a KeyError or TypeError
    traceback, not a message, told of any other."""
    if not isinstance(summary.get("meta"), dict):
        raise ValueError("summary.json holds no meta")
    for name, data in summary["variants"].items():
        scopes = [data.get("overall"), *data.get("by_dataset", {}).values()] if isinstance(data, dict) else []
        if not scopes or not all(
            isinstance(a, dict)
            and isinstance(a.get("metrics"), dict)
            and isinstance(a.get("latency_ms"), dict)
            for a in scopes
        ):
            raise ValueError(f"summary.json: variant {str(name)[:40]!r} holds no figures")


# What each line of items.jsonl gives `kilde eval compare` (flips, and the figures over shared questions).
RECORD_FIELDS = {"variant": str, "dataset": str, "id": str, "question": str, "answerable": bool}
RECORD_TABLES = ("metrics", "timings_ms")


def _checked_record(record, lineno: int) -> dict:
    if (
        not isinstance(record, dict)
        or not all(isinstance(record.get(k), kind) for k, kind in RECORD_FIELDS.items())
        or not all(isinstance(record.get(k), dict) for k in RECORD_TABLES)
    ):
        raise ValueError(f"items.jsonl line {lineno} is no item of a run")
    return record


def load_run(path: Path) -> tuple[dict, list[dict]]:
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        from assistant.core.errors import BadInputError

        raise BadInputError(
            str(path), "not a run folder (no summary.json); make one with `kilde eval run --out DIR`"
        )
    from assistant.core.errors import BadInputError

    items_path = path / "items.jsonl"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if not isinstance(summary, dict) or not isinstance(summary.get("variants"), dict):
            raise ValueError("it holds no variants")
        _check_summary(summary)
        if not items_path.is_file():
            raise ValueError("items.jsonl is missing, so no question can be compared")
        records = []
        # Split at "\n" only: a question may hold U+2028 or U+0085, which items.jsonl keeps unescaped.
        for lineno, line in enumerate(items_path.read_text(encoding="utf-8").split("\n"), 1):
            if line.strip():
                records.append(_checked_record(json.loads(line), lineno))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BadInputError(
            str(path), f"not a run folder `kilde eval run` wrote ({exc}); run it again with --out"
        ) from None
    return summary, records
