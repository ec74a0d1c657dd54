"""Loading a Markdown file of unclosed markup against loading an ordinary one of the same size, in one run.

    python -m bench.markup [--openings 30000] [--out bench/RESULTS-markup.md]

Each opening of a link, photo, footnote mark, bold or struck text, comment or script that never closes was once
read to the end of its line (a comment: of its file) looking for its close, so such a file cost the square of its
size (30,000 unclosed "[" took 12 s, a 1 MB file hours). The figure that matters is each file's load time as a
multiple of the ordinary file's, measured on this machine in the same run."""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, write_results
from ingest.loaders import load_file

OPENINGS = {
    "link": "[",
    "photo": "![",
    "footnote": "[^",
    "bold": "**a ",
    "underscores": "__a ",
    "struck": "~~a ",
    "comment": "<!--",
    "script": "<script>",
}
SENTENCE = "Kommunestyret vedtok budsjettet torsdag kveld, og eiendomsskatten økes med to promille."
BOUND = 10.0  # a file of unclosed markup may take at most this many times the ordinary file's time


def load_seconds(path: Path, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        load_file(path)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(openings: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        figures = {}
        for name, opening in {"ordinary prose": None, **OPENINGS}.items():
            body = (
                opening * openings
                if opening
                else " ".join([SENTENCE] * (len("[" * openings) // len(SENTENCE) + 1))
            )
            path = folder / f"{name.replace(' ', '-')}.md"
            path.write_text(f"Overskrift\n\n{body} {SENTENCE}\n", encoding="utf-8")
            figures[name] = {"bytes": path.stat().st_size, "seconds": round(load_seconds(path), 4)}
    base = figures.pop("ordinary prose")
    for figure in figures.values():
        figure["per_byte_ratio"] = round(
            (figure["seconds"] / figure["bytes"]) / (base["seconds"] / base["bytes"]), 2
        )
    return {
        "openings": openings,
        "ordinary": base,
        "unclosed": figures,
        "machine": platform.processor() or platform.machine(),
    }


def report(result: dict) -> str:
    base = result["ordinary"]
    lines = [
        "# Loading Markdown of unclosed markup",
        "",
        f"`python -m bench.markup --openings {result['openings']}` on {result['machine']}: each file holds "
        f"{result['openings']:,} openings that never close, then one sentence; the ordinary file is prose of about "
        f"the same size ({base['bytes']:,} bytes, {base['seconds']:.4f} s). Time per byte as a multiple of the "
        f"ordinary file's, measured in the same run; bound {BOUND:g}x.",
        "",
        "| opening | bytes | seconds | per byte vs ordinary | within bound |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, figure in result["unclosed"].items():
        within = "yes" if figure["per_byte_ratio"] <= BOUND else "**no**"
        lines.append(
            f"| {name} | {figure['bytes']:,} | {figure['seconds']:.4f} | {figure['per_byte_ratio']:.2f}x | {within} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--openings", type=int, default=30_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-markup.md")
    args = parser.parse_args()
    result = measure(args.openings)
    write_results(result, "markup.json", report(result), args.out)


if __name__ == "__main__":
    main()
