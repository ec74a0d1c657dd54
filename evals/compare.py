"""`kilde eval compare RUN_A RUN_B`: metric deltas per variant and dataset, and the questions that flipped."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from assistant.core.errors import BadInputError
from evals.metrics import METRIC_ORDER
from evals.runner import load_run, summarise

# A question flips when one of these per-item outcomes changes between the runs.
FLIP_METRICS = ("hit@5", "answer_found", "refused")


def _pairs(a: dict, b: dict, variant_a: str | None, variant_b: str | None) -> list[tuple[str, str]]:
    if variant_a or variant_b:
        return [(variant_a or variant_b, variant_b or variant_a)]
    common = [v for v in a["variants"] if v in b["variants"]]
    if common:
        return [(v, v) for v in common]
    if len(a["variants"]) == 1 and len(b["variants"]) == 1:
        return [(next(iter(a["variants"])), next(iter(b["variants"])))]
    return []


def _variants(summary: dict) -> str:
    return ", ".join(summary["variants"])


def _check_named(
    path_a: Path, path_b: Path, a: dict, b: dict, variant_a: str | None, variant_b: str | None
) -> None:
    """A variant named with --variant-a/-b that its run lacks is refused with the run's variants; the flag the user
    typed is checked first, as a lone one names the variant of both runs."""
    checks = [
        (path_a, a, variant_a or variant_b, "--variant-a"),
        (path_b, b, variant_b or variant_a, "--variant-b"),
    ]
    for path, summary, variant, flag in checks if variant_a else checks[::-1]:
        if variant not in summary["variants"]:
            raise BadInputError(
                str(path),
                f"the run has no retriever variant {variant}; it has {_variants(summary)} (choose with {flag})",
            )


def metric_deltas(agg_a: dict, agg_b: dict) -> list[tuple[str, float | None, float | None, float | None]]:
    rows = []
    for name in METRIC_ORDER:
        x, y = agg_a["metrics"].get(name), agg_b["metrics"].get(name)
        if x is None and y is None:
            continue
        rows.append((name, x, y, None if x is None or y is None else y - x))
    for stage in ("total", "retrieve", "answer"):
        if stage in agg_a["latency_ms"] and stage in agg_b["latency_ms"]:
            for q in ("p50", "p95"):
                x, y = agg_a["latency_ms"][stage][q], agg_b["latency_ms"][stage][q]
                rows.append((f"latency {stage} {q} ms", x, y, y - x))
    return rows


def flips(records_a: list[dict], records_b: list[dict], variant_a: str, variant_b: str) -> list[dict]:
    index = {(r["dataset"], r["id"]): r for r in records_a if r["variant"] == variant_a}
    out = []
    for rb in records_b:
        if rb["variant"] != variant_b or (rb["dataset"], rb["id"]) not in index:
            continue
        ra = index[(rb["dataset"], rb["id"])]
        for name in FLIP_METRICS:
            x = ra.get("refused") if name == "refused" else (ra.get("metrics") or {}).get(name)
            y = rb.get("refused") if name == "refused" else (rb.get("metrics") or {}).get(name)
            if x is not None and y is not None and bool(x) != bool(y):
                better = bool(y) != (name == "refused" and rb["answerable"])
                out.append(
                    {
                        "dataset": rb["dataset"],
                        "id": rb["id"],
                        "question": rb["question"],
                        "metric": name,
                        "a": bool(x),
                        "b": bool(y),
                        "better": better,
                    }
                )
    return out


def _asked(records: list[dict], variant: str) -> dict[tuple[str, str], dict]:
    return {(r["dataset"], r["id"]): r for r in records if r["variant"] == variant}


def _only_in(side: str, keys: set[tuple[str, str]]) -> str:
    per_set = Counter(dataset for dataset, _ in keys)
    return f"{len(keys)} only in {side} ({', '.join(f'{name} {n}' for name, n in sorted(per_set.items()))})"


def compare_runs(
    path_a: Path,
    path_b: Path,
    variant_a: str | None = None,
    variant_b: str | None = None,
    max_flips: int = 40,
) -> str:
    summary_a, records_a = load_run(path_a)
    summary_b, records_b = load_run(path_b)
    if variant_a or variant_b:
        _check_named(path_a, path_b, summary_a, summary_b, variant_a, variant_b)
    pairs = _pairs(summary_a, summary_b, variant_a, variant_b)
    if not pairs:
        raise BadInputError(
            f"{path_a} / {path_b}",
            "the runs share no retriever variant; name one of each with "
            f"--variant-a ({_variants(summary_a)}) and --variant-b ({_variants(summary_b)})",
        )
    lines = [
        f"A = {path_a}  ({summary_a['meta'].get('started')}, commit {summary_a['meta'].get('git_commit')})",
        f"B = {path_b}  ({summary_b['meta'].get('started')}, commit {summary_b['meta'].get('git_commit')})",
    ]
    for va, vb in pairs:
        da, db = summary_a["variants"][va], summary_b["variants"][vb]
        asked_a, asked_b = _asked(records_a, va), _asked(records_b, vb)
        shared = asked_a.keys() & asked_b.keys()
        if not shared:
            raise BadInputError(
                f"{path_a} / {path_b}",
                f"the runs share no question ({va} -> {vb}), so there is nothing to compare; "
                "compare runs of the same eval sets",
            )
        if len(shared) < max(len(asked_a), len(asked_b)):
            # Each run's own aggregates would set different questions side by side: both are recomputed on the
            # questions they share, as the flips are.
            differences = [
                _only_in(side, asked.keys() - shared)
                for side, asked in (("A", asked_a), ("B", asked_b))
                if len(asked) > len(shared)
            ]
            lines.append(
                f"\nwarning: A and B did not ask the same questions ({va} -> {vb}): {'; '.join(differences)}; "
                f"every figure below is over the {len(shared)} questions both asked"
            )
            da = summarise([asked_a[key] for key in sorted(shared)], {})["variants"][va]
            db = summarise([asked_b[key] for key in sorted(shared)], {})["variants"][vb]
        scopes = [("overall", da["overall"], db["overall"])]
        scopes += [
            (f"dataset {k}", da["by_dataset"][k], db["by_dataset"][k])
            for k in da["by_dataset"]
            if k in db["by_dataset"]
        ]
        for scope, agg_a, agg_b in scopes:
            lines.append(f"\n== {va} -> {vb}: {scope} (n {agg_a['n']} -> {agg_b['n']})")
            lines.append(f"{'metric':28} {'A':>10} {'B':>10} {'B-A':>10}")
            for name, x, y, d in metric_deltas(agg_a, agg_b):

                def cell(v):
                    return "–" if v is None else f"{v:.4f}" if abs(v) < 1.5 else f"{v:.1f}"

                lines.append(
                    f"{name:28} {cell(x):>10} {cell(y):>10} {('+' if (d or 0) > 0 else '') + cell(d):>10}"
                )
        flipped = flips(records_a, records_b, va, vb)
        better = sum(1 for f in flipped if f["better"])
        lines.append(
            f"\n{len(flipped)} flips ({better} better, {len(flipped) - better} worse) on "
            f"{', '.join(FLIP_METRICS)}:"
        )
        for f in flipped[:max_flips]:
            mark = "+" if f["better"] else "-"
            lines.append(
                f"  {mark} {f['dataset']}/{f['id']} {f['metric']}: {f['a']} -> {f['b']}  {f['question'][:90]}"
            )
        if len(flipped) > max_flips:
            lines.append(f"  … and {len(flipped) - max_flips} more (see items.jsonl)")
    return "\n".join(lines)
