"""Fairness under a heavy client: `python -m bench.fairness` (section C of bench/RESULTS-load.md).

One `kilde serve` (proxy auth, so each client is a user named by X-Forwarded-User from the trusted
loopback proxy; the documented rate limit, `--rate-limit` a minute per client). A normal client asks
NorQuAD test questions one after another, first alone (solo), then, a minute later so that its own
rate-limit window is clear, while a heavy client runs `--heavy-threads` closed loops of the heaviest
request the API accepts: a 2,000-character question with 40 history turns of 20,000 characters. Target:
the normal client's p95 latency with the heavy client running stays within 2x its solo p95."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import ROOT, git_commit, machine, percentile, test_items, write_bench_corpus

KILDE = str(Path(sys.executable).with_name("kilde"))
RESULTS = ROOT / "bench" / "RESULTS-load.md"
TARGET_RATIO = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def heavy_body() -> dict:
    turn = "Fortell mer om avtalen og hva den betyr for partene. " * 380  # ~20,000 characters
    return {
        "question": ("Hva betyr dette for partene? " * 70)[:2000],
        "history": [
            {"role": "user" if i % 2 == 0 else "assistant", "content": turn[:20_000]} for i in range(40)
        ],
    }


def ask(client: httpx.Client, url: str, user: str, body: dict | bytes) -> tuple[float, int]:
    t0 = time.monotonic()
    headers = {"X-Forwarded-User": user, "content-type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        status = client.post(f"{url}/api/ask", content=content, headers=headers).status_code
    except httpx.HTTPError:
        status = 0
    return time.monotonic() - t0, status


def normal_phase(url: str, questions: list[str]) -> tuple[list[float], list[int]]:
    latencies, statuses = [], []
    with httpx.Client(timeout=600) as client:
        for question in questions:
            seconds, status = ask(client, url, "normal", {"question": question})
            latencies.append(seconds)
            statuses.append(status)
    return latencies, statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=12, help="normal questions per phase")
    parser.add_argument("--rate-limit", type=int, default=30, help="KILDE_RATE_LIMIT (0: off)")
    parser.add_argument("--heavy-threads", type=int, default=4)
    parser.add_argument(
        "--data-dir", help="an index to copy (default: build one from the test questions' articles)"
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not rewrite RESULTS-load.md")
    args = parser.parse_args(argv)

    items = test_items(limit=args.questions * 2)
    questions = [item.question for item in items]
    work = Path(tempfile.mkdtemp(prefix="kilde-fairness-"))
    env = {
        **os.environ,
        "KILDE_DATA_DIR": str(work / "data"),
        "KILDE_AUTH_MODE": "proxy",
        "KILDE_TRUSTED_PROXIES": "127.0.0.1",
        "KILDE_RATE_LIMIT": str(args.rate_limit),
    }
    try:
        if args.data_dir:
            shutil.copytree(args.data_dir, work / "data", ignore=shutil.ignore_patterns("ingest.lock"))
            index = f"a copy of `{args.data_dir}`"
        else:
            ids = {a for item in items for a in item.gold_article_ids}
            corpus = write_bench_corpus(work / "corpus", ids)
            subprocess.run(
                [KILDE, "ingest", str(corpus), "--no-progress"], env=env, check=True, capture_output=True
            )
            index = f"built by this run: the seed article and the {len(ids)} NorQuAD news articles behind the questions"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (work / "serve.log").open("w")
        server = subprocess.Popen([KILDE, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz", headers={"X-Forwarded-User": "probe"}).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(1)
            else:
                raise SystemExit(f"kilde serve did not get ready; see {work / 'serve.log'}")
            normal_phase(url, questions[:3])  # warm-up, not counted
            solo, solo_status = normal_phase(url, questions[: args.questions])

            heavy_bytes = json.dumps(
                heavy_body()
            ).encode()  # encoded once: the client's own work is not measured
            stop = threading.Event()
            heavy: list[tuple[float, int]] = []

            def heavy_loop():
                with httpx.Client(timeout=600) as client:
                    while not stop.is_set():
                        heavy.append(ask(client, url, "heavy", heavy_bytes))

            threads = [threading.Thread(target=heavy_loop, daemon=True) for _ in range(args.heavy_threads)]
            for thread in threads:
                thread.start()
            time.sleep(62)  # the normal client's own window clears; the heavy one is well under way
            loaded, loaded_status = normal_phase(
                url, questions[args.questions : 2 * args.questions] or questions
            )
            stop.set()
            for thread in threads:
                thread.join(timeout=600)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    solo_p95, loaded_p95 = percentile(solo, 0.95), percentile(loaded, 0.95)
    ratio = loaded_p95 / solo_p95
    heavy_ok = [s for s, status in heavy if status == 200]
    result = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "commit": git_commit(),
        "index": index,
        "questions": args.questions,
        "heavy_threads": args.heavy_threads,
        "rate_limit": args.rate_limit,
        "rate_limited_429": sum(status == 429 for _, status in heavy),
        "solo": {"p50": percentile(solo, 0.5), "p95": solo_p95, "errors": sum(s != 200 for s in solo_status)},
        "loaded": {
            "p50": percentile(loaded, 0.5),
            "p95": loaded_p95,
            "errors": sum(s != 200 for s in loaded_status),
        },
        "heavy": {
            "requests": len(heavy),
            "answered": len(heavy_ok),
            "busy_503": sum(status == 503 for _, status in heavy),
            "p50": percentile(heavy_ok, 0.5) if heavy_ok else None,
        },
        "ratio_p95": ratio,
        "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_section(result)
    return 0 if result["met"] else 1


def write_section(r: dict) -> None:
    verdict = "**Target met.**" if r["met"] else "**Target missed.**"
    heavy = r["heavy"]
    section = f"""<!-- C -->
{verdict}

Measured {r["measured"]}.

Command: `python -m bench.fairness`
Machine: {r["machine"]}. The machine is shared with other engineers' jobs.
Code: commit {r["commit"]}

Setup: `kilde serve` in proxy auth mode (each client a user named by X-Forwarded-User from the trusted loopback
proxy), `KILDE_RATE_LIMIT={r["rate_limit"]}`, `ui_concurrency` 4 (the default); index {r["index"]}. The normal client asks
{r["questions"]} NorQuAD news test questions one after another, alone and then with the heavy client running
{r["heavy_threads"]} closed loops of a 2,000-character question with 40 history turns of 20,000 characters.

| phase | normal client p50 | normal client p95 | errors |
| --- | ---: | ---: | ---: |
| solo | {r["solo"]["p50"]:.2f} s | {r["solo"]["p95"]:.2f} s | {r["solo"]["errors"]} |
| with the heavy client | {r["loaded"]["p50"]:.2f} s | {r["loaded"]["p95"]:.2f} s | {r["loaded"]["errors"]} |

- **p95 ratio** (with heavy client / solo): **{r["ratio_p95"]:.2f}×** (target ≤ {r["target"]:.0f}×)
- Heavy client: {heavy["requests"]} requests, {heavy["answered"]} answered, {r["rate_limited_429"]} refused 429 by \
the rate limit, {heavy["busy_503"]} answered 503 busy \
(no turn within the request budget){f", p50 {heavy['p50']:.2f} s" if heavy["p50"] else ""}
<!-- /C -->"""
    text = RESULTS.read_text(encoding="utf-8")
    if "<!-- C -->" in text:
        start, end = text.index("<!-- C -->"), text.index("<!-- /C -->") + len("<!-- /C -->")
        text = text[:start] + section + text[end:]
    else:
        marker = "<!-- notes:"
        head = "## C. Fairness: one heavy client and one normal client\n\n"
        text = (
            text.replace(marker, head + section + "\n" + marker, 1)
            if marker in text
            else text + "\n" + head + section
        )
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
