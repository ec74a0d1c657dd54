"""Crash trials: SIGKILL the real `kilde ingest` at random moments, re-run it, and check that the index
converges to exactly what an uninterrupted ingest builds.

    python -m bench.crash_trials --trials 20 [--seed 0] [--articles 12] [--out bench/RESULTS-crash.md]

A reference index is built once from a small corpus (the seed article and NorQuAD passages). Each trial
then kills one ingest into a fresh data dir, or kills two in a row into the same dir (the second starts
from what the first left half-written), and re-runs the ingest to completion. Kill delays come from a
seeded generator and cover the whole run; a share of them aims at the window after embedding (orphan
sweep and lexical publish), which is short and would be hit rarely otherwise. The killed runs draw their
progress bar on a pseudo-terminal, so the phase at the moment of the kill is read from it.

Converged means: same article ids and hashes, same chunk ids and counts, a lexical snapshot stamped with
the store's generation holding exactly the store's chunks, no dirty marker left, and no
"Error loading hnsw index" from Chroma. Exits 1 if any trial does not converge."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import pty
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from assistant.build import lexical_root
from assistant.config import resolve_settings
from tests.index_snapshot import HNSW_LOAD_ERROR, KILDE, differences, snapshot, write_crash_corpus

ROOT = Path(__file__).resolve().parent.parent
_BAR = re.compile(r"(Reading|Embedding):\s*\d+%\|[^|\r\n]*\|\s*(\d+)/(\d+)")


@dataclass
class Timeline:
    """When a run showed each progress state, in seconds from its start, as read from its terminal."""

    events: list[tuple[float, str, int, int]] = field(default_factory=list)

    def feed(self, at: float, text: str) -> None:
        for m in _BAR.finditer(text):
            self.events.append((at, m.group(1), int(m.group(2)), int(m.group(3))))

    def phase_at(self, at: float) -> str:
        seen = [e for e in self.events if e[0] <= at]
        if not seen:
            return "startup"
        _, phase, done, total = seen[-1]
        if phase == "Reading":
            return "reading"
        if done < total:
            return f"embedding {done}/{total}"
        return "after embedding"

    def embedding_done_at(self) -> float | None:
        return next((at for at, phase, done, total in self.events if phase == "Embedding" and done == total),
                    None)


@dataclass
class RunResult:
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    timeline: Timeline
    killed_at: float | None = None  # seconds from the start; None if it ended by itself


def run_ingest(corpus: Path, env: dict, kill_after_s: float | None = None,
               kill_after_embedding_s: float | None = None) -> RunResult:
    """`kilde ingest` with its stderr on a pseudo-terminal (so the progress bar is drawn). SIGKILLed
    `kill_after_s` after its start, or `kill_after_embedding_s` after its bar shows all chunks embedded."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # room for the whole bar
    t0 = time.monotonic()
    process = subprocess.Popen([KILDE, "ingest", str(corpus)], env=env, stdout=subprocess.PIPE, stderr=slave,
                               stdin=subprocess.DEVNULL)
    os.close(slave)
    timeline, chunks = Timeline(), []

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child's end closed
                return
            if not data:
                return
            text = data.decode("utf-8", "replace")
            chunks.append(text)
            timeline.feed(time.monotonic() - t0, text)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    killed_at = None
    while killed_at is None and (kill_after_s is not None or kill_after_embedding_s is not None):
        try:
            process.wait(timeout=0.01)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic() - t0
        embedded_at = timeline.embedding_done_at()
        if (kill_after_s is not None and now >= kill_after_s) or (
                kill_after_embedding_s is not None and embedded_at is not None
                and now >= embedded_at + kill_after_embedding_s):
            os.kill(process.pid, signal.SIGKILL)
            killed_at = now
    stdout = process.communicate(timeout=1800)[0].decode("utf-8", "replace")
    seconds = time.monotonic() - t0
    reader.join(timeout=5)
    os.close(master)
    return RunResult(process.returncode, seconds, stdout, "".join(chunks), timeline, killed_at)


def lexical_leftovers(settings) -> bool:
    """A killed lexical publish leaves a snapshot folder CURRENT does not name, or a pointer temp file."""
    root = lexical_root(settings)
    if not root.exists():
        return False
    current = (root / "CURRENT").read_text().strip() if (root / "CURRENT").exists() else None
    return any(p.name != current for p in root.glob("snapshot-*")) or any(root.glob("CURRENT.*.tmp"))


def killed_phase(result: RunResult, settings) -> str:
    if result.killed_at is None:
        return "finished before the kill"
    phase = result.timeline.phase_at(result.killed_at)
    if phase == "after embedding" and lexical_leftovers(settings):
        return "lexical publish"
    if phase == "after embedding":
        return "after embedding (delete, sweep or publish)"
    return phase


def close_chroma_clients() -> None:
    """This process opens each trial's store to read it back; Chroma would keep every one open."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def trial(number: int, rng: random.Random, corpus: Path, work: Path, base_env: dict, reference: dict,
          reference_run: RunResult) -> dict:
    data_dir = work / f"trial-{number:03d}"
    settings = resolve_settings({"data_dir": data_dir}, environ={}, config_file=Path("/nonexistent"))
    env = {**base_env, "KILDE_DATA_DIR": str(data_dir)}
    total = reference_run.seconds
    kills = []
    for _ in range(2 if rng.random() < 1 / 3 else 1):  # one in three starts from a half-written dir
        if rng.random() < 0.3:
            # Aim at the short tail (deletes, orphan sweep, lexical publish) from the run's own progress:
            # a delay from the start would rarely land there.
            after = rng.uniform(0.0, 1.5)
            killed = run_ingest(corpus, env, kill_after_embedding_s=after)
            trigger = f"embedding done + {after:.2f} s"
        else:
            delay = rng.uniform(0.2, total * 1.05)
            killed = run_ingest(corpus, env, kill_after_s=delay)
            trigger = f"{delay:.2f} s"
        kills.append({"trigger": trigger, "phase": killed_phase(killed, settings),
                      "killed_at_s": None if killed.killed_at is None else round(killed.killed_at, 2),
                      "returncode": killed.returncode, "hnsw_error": HNSW_LOAD_ERROR in killed.stderr})

    rerun = subprocess.run([KILDE, "ingest", str(corpus), "--json"], check=False, env=env,
                           capture_output=True, text=True, timeout=1800)
    problems = []
    report = {}
    if rerun.returncode != 0:
        problems.append(f"re-run exited {rerun.returncode}: {rerun.stderr.strip()[-400:]}")
    else:
        report = json.loads(rerun.stdout)
    if HNSW_LOAD_ERROR in rerun.stderr or any(k["hnsw_error"] for k in kills):
        problems.append("Chroma reported 'Error loading hnsw index'")
    if rerun.returncode == 0:
        try:
            problems += differences(snapshot(settings), reference)
        except Exception as exc:  # noqa: BLE001 - an unreadable store is this trial's finding, not a crash
            problems.append(f"reading the store back failed: {exc!r}")
        close_chroma_clients()
    if (data_dir / "ingest.dirty").exists():
        problems.append("dirty marker left after a complete re-run")
    shutil.rmtree(data_dir, ignore_errors=True)
    rerun_figures = {k: report.get(k) for k in ("added", "updated", "unchanged", "orphans_swept", "seconds")}
    return {"trial": number, "kills": kills, "rerun": rerun_figures, "problems": problems}


def render(args, results: list[dict], reference: dict, reference_run: RunResult, seconds: float) -> str:
    failed = [r for r in results if r["problems"]]
    phases: dict[str, int] = {}
    for r in results:
        for k in r["kills"]:
            key = re.sub(r" \d+/\d+$", "", k["phase"])
            phases[key] = phases.get(key, 0) + 1
    articles, chunks = reference["counts"]
    lines = [
        "# Crash trials", "",
        (f"Command: `python -m bench.crash_trials --trials {args.trials} --seed {args.seed} "
         f"--articles {args.articles}`  "),
        (f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
         f"load average at the end {os.getloadavg()[0]:.2f}; wall time {seconds / 60:.1f} min"), "",
        (f"Reference: an uninterrupted `kilde ingest` of {articles} articles ({chunks} chunks) took "
         f"{reference_run.seconds:.1f} s (embedding finished at "
         f"{reference_run.timeline.embedding_done_at() or float('nan'):.1f} s)."), "",
        (f"**{len(results) - len(failed)} of {len(results)} trials converged.** "
         f"Kills by phase: {', '.join(f'{p}: {n}' for p, n in sorted(phases.items()))}."), "",
        ("| trial | kills: trigger (time of kill): phase | re-run: added / updated / unchanged / orphans swept "
         "| re-run s | outcome |"),
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        kills = "; ".join(f"{k['trigger']} (at {k['killed_at_s']} s): {k['phase']}" for k in r["kills"])
        rerun = r["rerun"]
        counts = " / ".join(str(rerun.get(k)) for k in ("added", "updated", "unchanged", "orphans_swept"))
        outcome = "converged" if not r["problems"] else "**NOT converged**: " + "; ".join(r["problems"])
        lines.append(f"| {r['trial']} | {kills} | {counts} | {rerun.get('seconds')} | {outcome} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--articles", type=int, default=12, help="corpus size: the seed plus NorQuAD passages")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-crash.md")
    args = parser.parse_args()

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="kilde-crash-"))
    corpus = write_crash_corpus(work / "corpus", args.articles)
    base_env = {**os.environ, "KILDE_CACHE_DIR": os.environ.get("KILDE_CACHE_DIR", str(work / "cache")),
                "ANONYMIZED_TELEMETRY": "False"}
    base_env.pop("KILDE_CHROMA_URL", None)

    reference_settings = resolve_settings({"data_dir": work / "reference"}, environ={},
                                          config_file=Path("/nonexistent"))
    reference_run = run_ingest(corpus, {**base_env, "KILDE_DATA_DIR": str(work / "reference")})
    if reference_run.returncode != 0:
        print(reference_run.stderr[-2000:], file=sys.stderr)
        return 2
    reference = snapshot(reference_settings)
    close_chroma_clients()
    print(f"reference: {reference['counts']} in {reference_run.seconds:.1f} s", file=sys.stderr)

    rng = random.Random(args.seed)
    results = []
    for number in range(1, args.trials + 1):
        result = trial(number, rng, corpus, work, base_env, reference, reference_run)
        results.append(result)
        print(f"trial {number}: {result['kills']} -> {result['problems'] or 'converged'}", file=sys.stderr)

    args.out.write_text(render(args, results, reference, reference_run, time.monotonic() - started),
                        encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    failed = sum(bool(r["problems"]) for r in results)
    print(f"{len(results) - failed}/{len(results)} converged; wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
