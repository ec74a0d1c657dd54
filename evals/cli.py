"""`kilde eval run|compare|ci`: registered into the `kilde` CLI by `assistant.cli`; `main` runs them alone."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from assistant.core.config import add_reader_option, chunk_tokens_argument, count_argument, path_argument

EXAMPLES = """examples:
  kilde eval run --dataset evals/data/seed.jsonl --dataset norquad:news:validation --out evals/runs/val
  kilde eval run --dataset norquad:news:test --retriever hybrid --retriever bm25 --retriever dense \\
      --data-dir /tmp/kilde-full-index --out evals/runs/test-ablation
  kilde eval run --dataset evals/data/followups.jsonl --top-k 8 --limit 10 --backend openai-compatible
  kilde eval compare evals/runs/before evals/runs/after
  kilde eval ci --data-dir /tmp/kilde-ci-index     # the small CI eval with its regression thresholds

datasets: a .jsonl file in the eval format (evals/data/*.jsonl), standalone:PATH or live:PATH (its
dialogues asked alone, or with Kilde's own answers as history), english:PATH (English versions of NorQuAD
train questions) or norquad:{news,wiki}:{validation,test} (NorQuAD's official files; their corpus is
corpus/norquad, ingested by `kilde ingest corpus/`); evals/datasets.py says more. Each run folder gets
items.jsonl, summary.json and report.html; a folder that holds a run already is refused unless --overwrite."""


CI_INDEX = Path("build/ci-index")


def _store_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps `kilde eval --data-dir X run` and `kilde eval run --data-dir X` both working.
    parser.add_argument("--data-dir", default=argparse.SUPPRESS, help="index folder (env KILDE_DATA_DIR)")
    parser.add_argument(
        "--chroma-url", default=argparse.SUPPRESS, help="Chroma server URL (env KILDE_CHROMA_URL)"
    )


def register(sub, command) -> None:
    parser = command("eval", "Evaluate retrieval, answers, citations, abstention and latency on eval sets.")
    parser.epilog = EXAMPLES
    verbs = parser.add_subparsers(dest="eval_command", required=True, metavar="ACTION")

    run = verbs.add_parser(
        "run",
        help="run eval sets through the assistant and write a run folder",
        description="Run eval sets through the assistant; write items.jsonl, summary.json, report.html.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _store_options(run)
    run.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="SPEC",
        help="eval set: a .jsonl path, standalone:PATH, live:PATH, english:PATH or "
        "norquad:{news,wiki}:{validation,test} (repeatable)",
    )
    run.add_argument(
        "--retriever",
        action="append",
        choices=["hybrid+rerank", "hybrid", "dense", "bm25"],
        help="retriever variant; repeat for side-by-side ablations (default hybrid+rerank)",
    )
    run.add_argument("--top-k", type=int, default=None, help="passages handed to the answerer (default 5)")
    run.add_argument(
        "--chunk-tokens",
        type=chunk_tokens_argument,
        default=None,
        help="expected chunk size of the index; refuses an index chunked differently",
    )
    run.add_argument(
        "--backend",
        choices=["extractive", "openai", "openai-compatible"],
        help="answer backend (env KILDE_LLM_BACKEND)",
    )
    run.add_argument(
        "--limit", type=count_argument, default=None, help="first N items of each dataset (default: all)"
    )
    run.add_argument(
        "--out", type=path_argument, default=None, help="run folder (default evals/runs/<timestamp>)"
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (without it, a folder holding a run is refused)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_reader_option(run)
    run.set_defaults(handler=cmd_run)

    compare = verbs.add_parser(
        "compare",
        help="metric deltas and flipped questions between two runs",
        description="Metric deltas per retriever variant and dataset between two run folders of "
        "`kilde eval run`, over the questions both asked, and the questions that flipped. Reads only the "
        "run folders.",
        epilog="examples:\n  kilde eval compare evals/runs/a evals/runs/b\n"
        "  kilde eval compare RUN RUN --variant-a bm25 --variant-b hybrid",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Accepted only to be refused by name (`cmd_compare`): compare reads no index; hidden from --help.
    compare.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    compare.add_argument("--chroma-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    compare.add_argument("run_a", type=path_argument, metavar="RUN_A")
    compare.add_argument("run_b", type=path_argument, metavar="RUN_B")
    compare.add_argument("--variant-a", help="retriever variant of RUN_A (default: every common variant)")
    compare.add_argument("--variant-b", help="retriever variant of RUN_B")
    compare.add_argument(
        "--max-flips",
        type=count_argument,
        default=40,
        metavar="N",
        help="list at most N flipped questions (default 40)",
    )
    compare.set_defaults(handler=cmd_compare, parser=compare)

    ci = verbs.add_parser(
        "ci",
        help="the small CI eval (seed + 40 NorQuAD validation questions) with thresholds",
        description="Build (once) a small index of the seed and the CI questions' articles in "
        "--data-dir (default build/ci-index), run seed.jsonl + ci_norquad_val.jsonl, and exit 1 "
        "when a metric crosses evals/ci_thresholds.json.",
        epilog="examples:\n  kilde eval ci\n  kilde eval ci --data-dir /tmp/kilde-ci-index --out evals/runs/ci",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Not _store_options: KILDE_DATA_DIR names the user's own index, which the CI eval never scores.
    ci.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help=f"the CI eval's own index folder (default {CI_INDEX}; KILDE_DATA_DIR is not read)",
    )
    ci.add_argument(
        "--chroma-url", default=argparse.SUPPRESS, help="Chroma server URL (env KILDE_CHROMA_URL)"
    )
    ci.add_argument(
        "--out", type=path_argument, default=Path("evals/runs/ci"), help="run folder (default evals/runs/ci)"
    )
    ci.add_argument("--no-progress", action="store_true", help="no progress bar")
    ci.set_defaults(handler=cmd_ci)


def _settings(args, **extra):
    from assistant.core.config import settings_from

    return settings_from(args, **extra)


def cmd_run(args) -> int:
    from assistant.answering.assistant import check_top_k
    from assistant.core.errors import BadInputError
    from evals.datasets import load_datasets
    from evals.runner import RUN_FILES, RunConfig, build_eval_assistant, run_eval

    check_top_k(args.top_k, "--top-k")
    out = args.out or Path("evals/runs") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    # Checked before the assistant loads, not when the run is done: a file at --out or above it, or an earlier
    # run that a typo or a reused name would overwrite.
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise BadInputError(str(existing), "--out is a file, not a folder; name the run folder")
    earlier = [name for name in RUN_FILES if (out / name).exists()]
    if earlier and not args.overwrite:
        raise BadInputError(
            str(out),
            f"already holds a run ({', '.join(earlier)}); name another folder with --out, "
            "or add --overwrite to replace that run",
        )
    items = load_datasets(args.dataset, args.limit)
    try:  # before the index loads, not once it has: a path no folder can be made at was a traceback then
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(
            str(out), f"cannot make the run folder ({exc.strerror}); name a folder you can write with --out"
        ) from None
    settings = _settings(args, llm_backend=args.backend)
    config = RunConfig(
        datasets=tuple(args.dataset),
        retrievers=tuple(dict.fromkeys(args.retriever or ["hybrid+rerank"])),
        top_k=args.top_k or settings.top_k,
        backend=settings.llm_backend,
        limit=args.limit,
        command=command_line(args, reader=settings.reader),
        extra={"chunk_tokens": args.chunk_tokens},
    )
    summary = run_eval(build_eval_assistant(settings), items, config, out, progress=not args.no_progress)
    from evals.report import overview

    print(overview(summary))
    print(f"\nwrote {out}/items.jsonl, summary.json, report.html")
    return 1 if warn_of_failed_questions(out, summary) else 0


def warn_of_failed_questions(out: Path, summary: dict) -> bool:
    """Say on stderr which questions raised an error when asked: each is left out of its variant's figures,
    which are then not the set's. True when any did (the run exits 1; its files are kept, to be read)."""
    import json

    if not any(data["errors"] for data in summary["variants"].values()):
        return False  # the run's records (tens of MB for `make eval`) are read back only to name failures
    failed = [json.loads(line) for line in (out / "items.jsonl").open(encoding="utf-8")]
    failed = [r for r in failed if r.get("error")]
    for variant, data in summary["variants"].items():
        if data["errors"]:
            asked = data["overall"]["n"] + data["errors"]
            print(
                f"kilde: {data['errors']} of {asked} questions failed when asked and are left out of "
                f"{variant}'s figures (items.jsonl holds each error):",
                file=sys.stderr,
            )
            for record in [r for r in failed if r["variant"] == variant][:5]:
                print(f"  {record['dataset']}/{record['id']}: {record['error'][:200]}", file=sys.stderr)
    return bool(failed)


def command_line(args, reader: bool = False) -> str:
    """The run command, rebuilt from the parsed flags (so it is exact however kilde was invoked); `--reader` where
    the reader was on, whether by the flag, KILDE_READER or the config file."""
    words = ["kilde", "eval", "run"]
    for spec in args.dataset:
        words += ["--dataset", spec]
    for retriever in args.retriever or ["hybrid+rerank"]:
        words += ["--retriever", retriever]
    for flag in ("top_k", "chunk_tokens", "backend", "limit", "out", "data_dir", "chroma_url"):
        value = getattr(args, flag, None)
        if value is not None:
            words += [f"--{flag.replace('_', '-')}", str(value)]
    if reader:
        words.append("--reader")
    return shlex.join(words)


def cmd_compare(args) -> int:
    from evals.compare import compare_runs

    # `kilde eval --data-dir X compare …` or `… compare A B --chroma-url U`: accepted, and ignored unseen.
    for flag in ("data_dir", "chroma_url"):
        if getattr(args, flag, None) is not None:
            args.parser.error(
                f"--{flag.replace('_', '-')} does nothing here: compare reads only the two run folders, "
                "never an index (leave it out)"
            )
    print(compare_runs(args.run_a, args.run_b, args.variant_a, args.variant_b, args.max_flips))
    return 0


def cmd_ci(args) -> int:
    from evals.ci import run_ci

    if getattr(args, "data_dir", None) is None:
        args.data_dir = str(CI_INDEX)  # never the default index: the CI eval builds its own small one
    report = run_ci(_settings(args), args.out, progress=not args.no_progress)
    print(report.text)
    return 0 if report.passed else 1


def main(argv: Sequence[str]) -> int:
    """`kilde eval ...` in-process, without the rest of the kilde CLI (`evals.results` runs it so)."""
    from assistant.core.errors import KildeError

    parser = argparse.ArgumentParser(prog="kilde")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, formatter_class=argparse.RawDescriptionHelpFormatter)
        _store_options(p)
        return p

    register(sub, command)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KildeError as exc:
        print(f"kilde: {exc}", file=sys.stderr)
        return exc.exit_code
