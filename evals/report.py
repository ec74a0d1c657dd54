"""`report.html`: one self-contained page (plots inlined as base64 PNG, no external assets), all text escaped."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from html import escape

from evals.metrics import HIT_KS, METRIC_ORDER

MAX_FAILURES = 60
PERCENT = {
    "hit@1",
    "hit@3",
    "hit@5",
    "hit@10",
    "answer_found",
    "answer_first",
    "citation_precision",
    "quote_precision",
    "citation_support",
    "citation_recall",
    "false_refusal",
    "refusal_unanswerable",
    "cited_when_unanswerable",
    "repeated_quote",
}


INTERVAL_NOTE = (
    "The 95 % interval is a bootstrap over the questions (`evals.metrics.interval`): where it holds the target, "
    "this many questions cannot tell the measured figure from the target."
)


def fmt(name: str, value) -> str:
    if value is None:
        return "–"
    if name in PERCENT:
        return f"{100 * value:.1f}"
    return f"{value:.3f}" if name in ("mrr@10", "ndcg@10", "token_f1") else f"{value:.1f}"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return (
        f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode("ascii")}">'
    )


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def hit_curve(summary: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for variant, data in summary["variants"].items():
        for dataset, agg in data["by_dataset"].items():
            values = [agg["metrics"].get(f"hit@{k}") for k in HIT_KS]
            if all(v is not None for v in values):
                ax.plot(HIT_KS, [100 * v for v in values], marker="o", label=f"{variant} · {dataset}")
    ax.set_xlabel("k (chunks)")
    ax.set_ylabel("hit@k (%)")
    ax.set_xticks(HIT_KS)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    ax.set_title("Retrieval: share of questions with a gold passage in the first k chunks")
    return _png(fig)


def group_bars(summary: dict, key: str, metrics=("hit@5", "answer_found")) -> str:
    plt = _plt()
    variants = list(summary["variants"])
    groups = sorted({g for v in variants for g in summary["variants"][v][key]})
    bars = [(v, m) for v in variants for m in metrics]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(groups) * max(len(bars), 1) / 2), 3.6))
    width = 0.8 / max(len(bars), 1)
    for i, (variant, metric) in enumerate(bars):
        values = [summary["variants"][variant][key].get(g, {}).get("metrics", {}).get(metric) for g in groups]
        ax.bar(
            [x + i * width for x in range(len(groups))],
            [100 * (v or 0) for v in values],
            width,
            label=f"{variant} {metric}",
        )
    ax.set_xticks([x + width * (len(bars) - 1) / 2 for x in range(len(groups))])
    ax.set_xticklabels(groups, rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.set_title(f"Results {key.replace('_', ' ')}")
    return _png(fig)


def latency_histogram(records: Sequence[dict]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    by_variant: dict[str, list[float]] = {}
    for r in records:
        if r.get("timings_ms", {}).get("total") is not None:
            by_variant.setdefault(r["variant"], []).append(r["timings_ms"]["total"])
    for variant, values in by_variant.items():
        ax.hist(values, bins=30, alpha=0.55, label=variant)
    ax.set_xlabel("total latency per question (ms)")
    ax.set_ylabel("questions")
    if by_variant:
        ax.legend(fontsize=8)
    ax.set_title("Latency")
    return _png(fig)


def metrics_table(rows: dict[str, dict], first: str) -> str:
    names = [m for m in METRIC_ORDER if any(m in agg["metrics"] for agg in rows.values())]
    head = "".join(f"<th>{escape(n)}</th>" for n in [first, "n", *names])
    body = []
    for label, agg in rows.items():
        cells = "".join(f"<td>{fmt(n, agg['metrics'].get(n))}</td>" for n in names)
        body.append(f"<tr><th>{escape(label)}</th><td>{agg['n']}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def latency_table(summary: dict) -> str:
    rows = []
    for variant, data in summary["variants"].items():
        for stage, p in data["overall"]["latency_ms"].items():
            rows.append(
                f"<tr><td>{escape(variant)}</td><td>{escape(stage)}</td><td>{p['p50']}</td>"
                f"<td>{p['p95']}</td></tr>"
            )
    return (
        "<table><tr><th>variant</th><th>stage</th><th>p50 ms</th><th>p95 ms</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def failures(records: Sequence[dict]) -> list[dict]:
    """Answerable items whose gold passage was not retrieved or whose answer missed; unanswerable answered."""
    out = []
    for r in records:
        m = r.get("metrics") or {}
        if r.get("error"):
            out.append(r | {"why": "error"})
        elif r["answerable"] and (m.get("hit@5") == 0 or m.get("answer_found") == 0):
            out.append(
                r
                | {
                    "why": "gold not in top 5"
                    if m.get("hit@5") == 0
                    else ("refused" if r["refused"] else "answer missed")
                }
            )
        elif not r["answerable"] and not r["refused"]:
            out.append(r | {"why": "answered an unanswerable question"})
    return out


def failure_table(records: Sequence[dict]) -> str:
    rows = []
    found = failures(records)
    for r in found[:MAX_FAILURES]:
        gold = "<br>".join(escape(p) for p in r["gold_passages"]) or "<i>(unanswerable)</i>"
        if r["gold_article_ids"]:
            gold += f"<div class=small>{escape(', '.join(r['gold_article_ids']))}</div>"
        retrieved = "".join(
            f"<li{' class=hit' if c.get('hit') else ''}>{escape(c['article_id'])}: {escape(c['text'][:160])}…</li>"
            for c in r.get("retrieved", [])[:3]
        )
        cited = "".join(
            f"<li>[{c['n']}] {escape(c['article_id'])}: {escape(c['quote'][:200])}</li>"
            for c in r.get("citations", [])
        )
        rows.append(
            f"<tr><td>{escape(r['variant'])}<div class=small>{escape(r['dataset'])} {escape(r['id'])}</div></td>"
            f"<td>{escape(r['question'])}<div class=small>{escape(r['why'])}</div></td><td>{gold}</td>"
            f"<td><ol>{retrieved}</ol></td><td>{escape(r.get('answer') or r.get('error') or '')}<ul>{cited}</ul>"
            "</td></tr>"
        )
    note = f"<p>{len(found)} failures; the first {min(len(found), MAX_FAILURES)} are shown.</p>"
    return note + (
        "<table class=fail><tr><th>variant / item</th><th>question</th><th>gold passage</th>"
        "<th>retrieved instead (top 3)</th><th>answer and citations</th></tr>" + "".join(rows) + "</table>"
    )


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;
margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
.small{color:#666;font-size:11px}.hit{background:#dfd}.fail td{max-width:380px}img{max-width:100%}
pre{white-space:pre-wrap}"""


def reader_note(meta: dict) -> str:
    """ " with Kilde's reader (top N chunks)" for a run whose answers read with it; nothing otherwise, or for a run
    made before runs recorded it."""
    settings = meta.get("settings", {})
    return f" with Kilde's reader (top {settings['reader_chunks']} chunks)" if settings.get("reader") else ""


def render(summary: dict, records: Sequence[dict]) -> str:
    meta = summary["meta"]
    parts = [
        (
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Kilde eval {escape(meta['run'])}"
            f"</title><style>{CSS}</style></head><body><h1>Kilde eval: {escape(meta['run'])}</h1>"
        ),
        (
            f"<p>{escape(meta['started'])} · commit {escape(str(meta.get('git_commit')))} · backend "
            f"{escape(meta['backend'])}{reader_note(meta)} · top-k {meta['top_k']} · index "
            f"{escape(meta['index']['location'])} "
            f"({meta['index']['articles']} articles, {meta['index']['chunks']} chunks) · {meta['seconds']} s</p>"
        ),
        f"<pre>{escape(meta['command'])}</pre>",
        "<h2>Overall</h2>",
        metrics_table({v: d["overall"] for v, d in summary["variants"].items()}, "variant"),
    ]
    for variant, data in summary["variants"].items():
        parts.append(f"<h2>{escape(variant)}: by dataset and language</h2>")
        parts.append(metrics_table(data["by_dataset_language"], "dataset / language"))
    parts += [
        "<h2>Plots</h2>",
        hit_curve(summary),
        group_bars(summary, "by_language"),
        group_bars(summary, "by_dataset"),
        latency_histogram(records),
        "<h2>Latency per stage</h2>",
        latency_table(summary),
        "<h2>Failures</h2>",
        failure_table(records),
        "</body></html>",
    ]
    return "\n".join(parts)


def overview(summary: dict) -> str:
    names = (
        "hit@1",
        "hit@5",
        "mrr@10",
        "answer_found",
        "citation_precision",
        "false_refusal",
        "refusal_unanswerable",
    )
    lines = [
        f"{'variant':8} {'dataset':28} {'n':>4} " + " ".join(f"{n:>12}" for n in names) + f" {'p50 ms':>8}"
    ]
    for variant, data in summary["variants"].items():
        for scope, agg in [("(all)", data["overall"]), *data["by_dataset"].items()]:
            p50 = agg["latency_ms"].get("total", {}).get("p50")
            lines.append(
                f"{variant:8} {scope[:28]:28} {agg['n']:>4} "
                + " ".join(f"{fmt(n, agg['metrics'].get(n)):>12}" for n in names)
                + f" {p50 or '–':>8}"
            )
    return "\n".join(lines)
