"""Start-up cost of the `kilde` command, as ratios to a bare `python -c pass` measured in the same run.

    python -m bench.startup --data-dir data      # -> bench/RESULTS-startup.md, bench/results/startup.json

Each command runs `--repeat` times, interleaved with the baseline so that load on the machine hits both
alike; the medians are reported. Targets (issue: the first ten minutes): `kilde --help` and `kilde stats`
within 1.5 s."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from assistant.testing.servers import KILDE
from bench.common import ROOT, machine

RESULTS = ROOT / "bench" / "results"
TARGET_S = 1.5


def timed(command: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def measure(data_dir: str, repeat: int, question: str | None) -> dict:
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "kilde --help": [KILDE, "--help"],
        "kilde stats": [KILDE, "stats", "--data-dir", data_dir],
    }
    if question:
        commands["kilde ask (whole answer)"] = [KILDE, "ask", question, "--data-dir", data_dir]
    runs: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            runs[name].append(timed(command))
    base = statistics.median(runs["python -c pass"])
    return {
        "machine": machine(),
        "repeat": repeat,
        "baseline_s": round(base, 3),
        "commands": {
            name: {
                "median_s": round(statistics.median(v), 3),
                "ratio": round(statistics.median(v) / base, 1),
                "runs_s": [round(x, 3) for x in v],
            }
            for name, v in runs.items()
        },
    }


def report(result: dict) -> str:
    lines = [
        "# Start-up of the `kilde` command",
        "",
        "Written by `python -m bench.startup`; medians of interleaved runs, each beside the bare interpreter "
        "start (`python -c pass`) measured in the same run.",
        "",
        f"- machine: {result['machine']}",
        f"- runs per command: {result['repeat']}",
        "",
        "| command | median s | × `python -c pass` | target |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in result["commands"].items():
        target = (
            f"≤ {TARGET_S} s: {'met' if r['median_s'] <= TARGET_S else 'missed'}"
            if name in ("kilde --help", "kilde stats")
            else "–"
        )
        lines.append(f"| `{name}` | {r['median_s']} | {r['ratio']} | {target} |")
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", default="data", help="an ingested index (default ./data)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--question",
        default="Hva forplikter artikkel 4 partene til?",
        help="also time a whole `kilde ask` ('' to skip)",
    )
    args = parser.parse_args()
    result = measure(args.data_dir, args.repeat, args.question or None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(result, indent=1))
    (ROOT / "bench" / "RESULTS-startup.md").write_text(report(result), encoding="utf-8")
    print(report(result))


if __name__ == "__main__":
    main()
