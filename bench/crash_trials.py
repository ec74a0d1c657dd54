"""Crash trials: SIGKILL the real `kilde ingest` at random moments, re-run it, and check that the index
converges to exactly what an uninterrupted ingest builds.

    python -m bench.crash_trials --trials 20 [--seed 0] [--articles 12] [--out bench/RESULTS-crash.md]

A reference index is built once from a small corpus (the seed article and NorQuAD passages). Each trial
then kills one ingest into a fresh data dir, or kills two in a row into the same dir (the second starts
from what the first left half-written), and re-runs the ingest to completion. Kills come from a seeded
generator: 40% at a delay spread over the run, 20% just after the first article is written, 20% just
after the progress bar shows every chunk embedded (deletes, orphan sweep), 20% within 50 ms of a new
lexical snapshot folder appearing (the publish): windows too short for a timed kill to hit. Half the
trials write in batches of 16 chunks instead of 64 (bench/crash_trials_small_batches.toml), so a kill
can find some articles committed and others not. The killed runs draw their progress bar on a
pseudo-terminal, so the phase at the moment of the kill is read from it and from the data dir.

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

from assistant.core.config import resolve_settings
from assistant.testing.corpus import write_small_corpus as write_crash_corpus
from assistant.testing.servers import KILDE
from assistant.testing.snapshots import HNSW_LOAD_ERROR, differences, snapshot

ROOT = Path(__file__).resolve().parent.parent
SMALL_BATCHES = Path(__file__).with_name("crash_trials_small_batches.toml")
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

    def first_write_at(self) -> float | None:
        """The bar moves only after an article's chunks and record are written: writes are under way."""
        return next((at for at, phase, done, _ in self.events if phase == "Embedding" and done > 0), None)

    def embedding_done_at(self) -> float | None:
        return next(
            (at for at, phase, done, total in self.events if phase == "Embedding" and done == total), None
        )


@dataclass
class RunResult:
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    timeline: Timeline
    killed_at: float | None = None  # seconds from the start; None if it ended by itself
    publish_seen_at: float | None = None  # when a new lexical snapshot folder appeared


@dataclass(frozen=True)
class Trigger:
    """When to SIGKILL: `after` seconds past the run's start ("start"), past the first article written
    ("writing"), past its bar showing every chunk embedded ("embedded"), or past a new lexical snapshot
    folder appearing ("publish")."""

    event: str
    after: float

    def __str__(self) -> str:
        return {
            "start": "{:.2f} s",
            "writing": "first article written + {:.2f} s",
            "embedded": "embedding done + {:.2f} s",
            "publish": "lexical publish + {:.3f} s",
        }[self.event].format(self.after)


def _snapshot_folders(lexical_dir: Path) -> set[str]:
    try:
        return {e.name for e in os.scandir(lexical_dir) if e.name.startswith("snapshot-")}
    except OSError:
        return set()


def run_ingest(corpus: Path, env: dict, lexical_dir: Path, trigger: Trigger | None = None) -> RunResult:
    """`kilde ingest` with its stderr on a pseudo-terminal (so the progress bar is drawn), watched until
    it exits or `trigger` fires and it is SIGKILLed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # room for the whole bar
    folders_before = _snapshot_folders(lexical_dir)
    t0 = time.monotonic()
    process = subprocess.Popen(
        [KILDE, "ingest", str(corpus)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
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
    killed_at = publish_seen_at = None
    while True:
        try:
            process.wait(timeout=0.005)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic() - t0
        if publish_seen_at is None and _snapshot_folders(lexical_dir) - folders_before:
            publish_seen_at = now
        if trigger is None:
            continue
        since = {
            "start": 0.0,
            "writing": timeline.first_write_at(),
            "embedded": timeline.embedding_done_at(),
            "publish": publish_seen_at,
        }[trigger.event]
        if since is not None and now >= since + trigger.after:
            os.kill(process.pid, signal.SIGKILL)
            killed_at = now
            break
    stdout = process.communicate(timeout=1800)[0].decode("utf-8", "replace")
    seconds = time.monotonic() - t0
    reader.join(timeout=5)
    os.close(master)
    return RunResult(
        process.returncode, seconds, stdout, "".join(chunks), timeline, killed_at, publish_seen_at
    )


def killed_phase(result: RunResult, data_dir: Path) -> str:
    if result.killed_at is None:
        return "finished before the kill"
    if result.publish_seen_at is not None and result.killed_at >= result.publish_seen_at:
        # The dirty marker goes right after the publish: still there, the publish was cut short.
        return "lexical publish" if (data_dir / "ingest.dirty").exists() else "after publish (report, exit)"
    phase = result.timeline.phase_at(result.killed_at)
    return "after embedding (delete, sweep)" if phase == "after embedding" else phase


def close_chroma_clients() -> None:
    """This process opens each trial's store to read it back; Chroma would keep every one open."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def trial(
    number: int,
    rng: random.Random,
    corpus: Path,
    work: Path,
    base_env: dict,
    reference_run: RunResult,
    full_runs: list[float],
) -> tuple[list[dict], Path, dict]:
    data_dir = work / f"trial-{number:03d}"
    settings = resolve_settings({"data_dir": data_dir}, environ={}, config_file=Path("/nonexistent"))
    env = {**base_env, "KILDE_DATA_DIR": str(data_dir)}
    # Half the trials embed and write 16 chunks at a time instead of 64, so the writes (and the states a
    # kill can leave) are spread over the run rather than bunched at its end. Chunk ids do not depend on it.
    small_batches = rng.random() < 0.5
    if small_batches:
        env["KILDE_CONFIG"] = str(SMALL_BATCHES)
    # Timed kills spread over the expected run time; other workers change it, so it follows the quickest
    # of the last few complete runs seen. Event kills aim at the short tail, which a timed kill would rarely hit.
    expected = min(full_runs[-3:])
    embedded_at = reference_run.timeline.embedding_done_at() or reference_run.seconds
    to_publish = max((reference_run.publish_seen_at or reference_run.seconds) - embedded_at, 0.05)
    kills = []
    for attempt in range(2 if rng.random() < 1 / 3 else 1):  # one in three starts from a half-written dir
        draw = rng.random()
        if draw < 0.4:
            trigger = Trigger("start", rng.uniform(0.2, expected))
        elif draw < 0.6:
            trigger = Trigger("writing", rng.uniform(0.0, 0.3))
        elif draw < 0.8:
            trigger = Trigger("embedded", rng.uniform(0.0, to_publish))
        else:
            trigger = Trigger("publish", rng.uniform(0.0, 0.05))
        killed = run_ingest(corpus, env, settings.lexical_root, trigger)
        if killed.killed_at is None and attempt == 0 and not small_batches:
            full_runs.append(killed.seconds)
        kills.append(
            {
                "trigger": str(trigger),
                "phase": killed_phase(killed, data_dir),
                "killed_at_s": None if killed.killed_at is None else round(killed.killed_at, 2),
                "returncode": killed.returncode,
                "hnsw_error": HNSW_LOAD_ERROR in killed.stderr,
                "batch": 16 if small_batches else 64,
            }
        )
    return kills, data_dir, settings


def verify(
    number: int, kills: list[dict], corpus: Path, data_dir: Path, settings, base_env: dict, reference: dict
) -> dict:
    env = {**base_env, "KILDE_DATA_DIR": str(data_dir)}
    rerun = subprocess.run(
        [KILDE, "ingest", str(corpus), "--json"],
        check=False,
        env=env,  # default batches
        capture_output=True,
        text=True,
        timeout=1800,
    )
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
        except Exception as exc:
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
        "# Crash trials",
        "",
        (
            f"Command: `python -m bench.crash_trials --trials {args.trials} --seed {args.seed} "
            f"--articles {args.articles}`  "
        ),
        (
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"load average at the end {os.getloadavg()[0]:.2f}; wall time {seconds / 60:.1f} min"
        ),
        "",
        (
            f"Reference: an uninterrupted `kilde ingest` of {articles} articles ({chunks} chunks) took "
            f"{reference_run.seconds:.1f} s (embedding finished at "
            f"{reference_run.timeline.embedding_done_at() or float('nan'):.1f} s, the lexical publish began at "
            f"{reference_run.publish_seen_at or float('nan'):.2f} s)."
        ),
        "",
        (
            f"**{len(results) - len(failed)} of {len(results)} trials converged.** "
            f"Kills by phase: {', '.join(f'{p}: {n}' for p, n in sorted(phases.items()))}."
        ),
        "",
        (
            "| trial | batch (chunks) | kills: trigger (time of kill): phase | re-run: added / updated / unchanged / "
            "orphans swept | re-run s | outcome |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        kills = "; ".join(f"{k['trigger']} (at {k['killed_at_s']} s): {k['phase']}" for k in r["kills"])
        batch = r["kills"][0]["batch"]
        rerun = r["rerun"]
        counts = " / ".join(str(rerun.get(k)) for k in ("added", "updated", "unchanged", "orphans_swept"))
        outcome = "converged" if not r["problems"] else "**NOT converged**: " + "; ".join(r["problems"])
        lines.append(f"| {r['trial']} | {batch} | {kills} | {counts} | {rerun.get('seconds')} | {outcome} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--articles", type=int, default=12, help="corpus size: the seed plus NorQuAD passages"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-crash.md")
    args = parser.parse_args()

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="kilde-crash-"))
    corpus = write_crash_corpus(work / "corpus", args.articles)
    base_env = {
        **os.environ,
        "KILDE_CACHE_DIR": os.environ.get("KILDE_CACHE_DIR", str(work / "cache")),
        "ANONYMIZED_TELEMETRY": "False",
    }
    base_env.pop("KILDE_CHROMA_URL", None)

    reference_settings = resolve_settings(
        {"data_dir": work / "reference"}, environ={}, config_file=Path("/nonexistent")
    )
    reference_run = run_ingest(
        corpus, {**base_env, "KILDE_DATA_DIR": str(work / "reference")}, reference_settings.lexical_root
    )
    if reference_run.returncode != 0:
        print(reference_run.stderr[-2000:], file=sys.stderr)
        return 2
    reference = snapshot(reference_settings)
    close_chroma_clients()
    print(f"reference: {reference['counts']} in {reference_run.seconds:.1f} s", file=sys.stderr)

    rng = random.Random(args.seed)
    results = []
    full_runs = [reference_run.seconds]
    for number in range(1, args.trials + 1):
        kills, data_dir, settings = trial(number, rng, corpus, work, base_env, reference_run, full_runs)
        result = verify(number, kills, corpus, data_dir, settings, base_env, reference)
        results.append(result)
        print(f"trial {number}: {result['kills']} -> {result['problems'] or 'converged'}", file=sys.stderr)

    args.out.write_text(
        render(args, results, reference, reference_run, time.monotonic() - started), encoding="utf-8"
    )
    shutil.rmtree(work, ignore_errors=True)
    failed = sum(bool(r["problems"]) for r in results)
    print(f"{len(results) - failed}/{len(results)} converged; wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
