"""The first run as a new user has it: a fresh clone, `make install`, `make ingest` (the sample corpus, its
vectors from the shipped embedding cache), then `kilde serve` until `/api/ask` answers the demo question.

    python -m bench.first_run          # -> bench/RESULTS-first-run.md, bench/results/first_run.json

The clone's `.venv` is new, but pip's download cache on this machine is not: a machine with an empty
cache also downloads the wheels. Target (issue: the first ten minutes): the chat answers within 4 minutes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from assistant.testing.servers import free_port, stop
from bench.common import ROOT, git_commit, machine

RESULTS = ROOT / "bench" / "results"
TARGET_S = 240
QUESTION = "What does Article 4 commit each side to?"


def run(step: str, command: list[str], cwd: Path, env: dict, log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n== {step}: {' '.join(command)}\n")
        out.flush()
        subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t0


def first_answer(clone: Path, env: dict, log: Path, timeout_s: float = 600) -> tuple[float, dict]:
    port = free_port()
    t0 = time.perf_counter()
    with log.open("a") as out:
        server = subprocess.Popen(
            [str(clone / ".venv" / "bin" / "kilde"), "serve", "--port", str(port)],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        while time.perf_counter() - t0 < timeout_s:
            if server.poll() is not None:
                raise RuntimeError(f"kilde serve exited with {server.returncode}; see {log}")
            try:
                reply = httpx.post(
                    f"http://127.0.0.1:{port}/api/ask", json={"question": QUESTION}, timeout=60
                )
                if reply.status_code == 200:
                    return time.perf_counter() - t0, reply.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"no answer within {timeout_s} s")
    finally:
        stop(server)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="kilde-first-run-"))
    clone, log = work / "kilde", work / "first-run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILDE_", "VIRTUAL_ENV"))}
    env["KILDE_CACHE_DIR"] = str(work / "cache")  # a new user's cache: tiktoken files written afresh
    started = machine()
    try:
        steps = {
            "git clone": run("clone", ["git", "clone", "--quiet", str(ROOT), str(clone)], work, env, log),
            "make install": run("install", ["make", "install"], clone, env, log),
            "make ingest": run("ingest", ["make", "ingest"], clone, env, log),
        }
        steps["kilde serve until /api/ask answers"], answer = first_answer(clone, env, log)
        ingest_lines = [
            line
            for line in log.read_text().splitlines()
            if "embedding cache" in line or "chunks embedded" in line
        ]
    finally:
        shutil.rmtree(clone, ignore_errors=True)
    total = sum(steps.values())
    result = {
        "machine": started,
        "commit": git_commit(),
        "steps_s": {k: round(v, 1) for k, v in steps.items()},
        "total_s": round(total, 1),
        "target_s": TARGET_S,
        "answerable": answer.get("answerable"),
        "first_citation": (answer.get("citations") or [{}])[0].get("quote", "")[:120],
        "ingest_report": ingest_lines,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_run.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    lines = [
        "# First run: from a fresh clone to the first answer",
        "",
        "Written by `python -m bench.first_run`: a fresh `git clone` of this repository, `make install`, "
        "`make ingest`, then `kilde serve` until `POST /api/ask` answers the demo question. The clone's virtual "
        "environment is new; pip's download cache on the machine is not.",
        "",
        f"- machine: {started}",
        f"- commit: `{result['commit']}`",
        "",
        "| step | seconds |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in result["steps_s"].items()],
        f"| **total** | **{result['total_s']}** (target ≤ {TARGET_S}: {'met' if total <= TARGET_S else 'missed'}) |",
        "",
        "What `make ingest` printed about the embeddings:",
        "",
        "```",
        *ingest_lines,
        "```",
        "",
        f"The answer: answerable {result['answerable']}, first quote «{result['first_citation']}…».",
        "",
    ]
    (ROOT / "bench" / "RESULTS-first-run.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
