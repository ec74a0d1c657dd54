"""The small eval that CI runs: `seed.jsonl` plus 40 NorQuAD news validation questions
(`evals/data/ci_norquad_val.jsonl`: 20 official Norwegian questions and 20 of the English ones), on an index
of just the seed article and those questions' articles (about a minute to build), checked against
`evals/ci_thresholds.json`. The build fails when a metric falls below its floor (or above its ceiling).

The file's `reader` section gates Kilde's reader (off by default): the same questions are asked again with the
reading stage on, and its answers must not fall below those floors either. CI never trains: it loads the shipped
`assistant/models/reader.onnx`."""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from assistant.core.config import Settings
from evals.datasets import DATA, NORQUAD_CORPUS, ROOT, load_dataset

CI_SET = DATA / "ci_norquad_val.jsonl"
THRESHOLDS = Path(__file__).resolve().parent / "ci_thresholds.json"
SEED_DIR = ROOT / "corpus" / "seed"
DATASETS = (str(DATA / "seed.jsonl"), str(CI_SET))
PER_LANGUAGE = 20
READER_RUN = "reader-on"  # the run folder (under --out) and label of the reader's gate


def _order(item_id: str) -> str:
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()


def make_ci_set(path: Path = CI_SET) -> Path:
    """Pick the CI questions deterministically (by SHA-256 of the id) and write them in the eval format."""
    nb = sorted(load_dataset("norquad:news:validation"), key=lambda i: _order(i.id))[:PER_LANGUAGE]
    en = sorted(load_dataset(str(DATA / "norquad_news_val_en.jsonl")), key=lambda i: _order(i.id))[
        :PER_LANGUAGE
    ]
    lines = []
    for item in nb + en:
        lines.append(
            json.dumps(
                {
                    "id": item.id,
                    "language": item.language,
                    "question": item.question,
                    "answerable": True,
                    "answers": list(item.answers),
                    "gold_passages": list(item.gold_passages),
                    "gold_article_ids": list(item.gold_article_ids),
                    "source": "NorQuAD news validation (CC0-1.0)",
                },
                ensure_ascii=False,
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ci_articles() -> set[str]:
    return {a for spec in DATASETS for item in load_dataset(spec) for a in item.gold_article_ids}


def write_ci_corpus(folder: Path) -> Path:
    """The seed article plus the NorQuAD passages the CI questions need, as a corpus folder for ingest."""
    wanted = ci_articles()
    for seed in SEED_DIR.glob("*.txt"):
        (folder / seed.name).write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")
    for annotator in (1, 2):
        data = json.loads((NORQUAD_CORPUS / "news" / f"answers_{annotator}.json").read_text(encoding="utf-8"))
        kept = []
        for entry in data["data"]:
            paragraphs = [
                p for p in entry["paragraphs"] if f"news-a{annotator}-d{p['document_id']}" in wanted
            ]
            if paragraphs:
                kept.append({**entry, "paragraphs": paragraphs})
        target = folder / "news" / f"answers_{annotator}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({**data, "data": kept}, ensure_ascii=False), encoding="utf-8")
    return folder


def build_ci_index(settings: Settings, embedder=None) -> dict:
    """Ingest the CI corpus into settings.data_dir (idempotent: a second call embeds nothing). Refuses a folder
    that holds other articles, so a real index is never mixed with (or scored as) the CI index."""
    from assistant.build import build_pipeline
    from assistant.core.errors import ConfigError

    pipeline = build_pipeline(settings, embedder=embedder)
    wanted = ci_articles() | {p.stem for p in SEED_DIR.glob("*.txt")}
    others = sorted(set(pipeline.store.stored_articles()) - wanted) if pipeline.store.exists() else []
    if others:
        raise ConfigError(
            f"{settings.data_dir} holds {len(others)} articles outside the CI set (e.g. {others[0]}); "
            "the CI eval needs its own index folder: pass a fresh --data-dir, e.g. build/ci-index"
        )
    with tempfile.TemporaryDirectory(prefix="kilde-ci-corpus-") as tmp:
        report = pipeline.ingest([write_ci_corpus(Path(tmp))])
    if report.rejected:
        raise RuntimeError(f"CI corpus rejected: {report.rejected}")
    return report.to_dict()


@dataclass(frozen=True)
class CIReport:
    passed: bool
    text: str
    summary: dict


def check_thresholds(summary: dict, thresholds: dict) -> list[str]:
    """Every violated floor or ceiling, as one line each."""
    problems = []
    for variant, per_dataset in thresholds["variants"].items():
        data = summary["variants"].get(variant)
        if data is None:
            problems.append(f"{variant}: variant missing from the run")
            continue
        for dataset, bounds in per_dataset.items():
            agg = data["by_dataset"].get(dataset) if dataset != "overall" else data["overall"]
            if agg is None:
                problems.append(f"{variant}/{dataset}: dataset missing from the run")
                continue
            for name, floor in bounds.get("min", {}).items():
                value = agg["metrics"].get(name)
                if value is None or value < floor:
                    problems.append(f"{variant}/{dataset} {name} = {value} < floor {floor}")
            for name, ceiling in bounds.get("max", {}).items():
                value = agg["metrics"].get(name)
                if value is None or value > ceiling:
                    problems.append(f"{variant}/{dataset} {name} = {value} > ceiling {ceiling}")
        if data.get("errors"):
            problems.append(f"{variant}: {data['errors']} items raised errors")
    return problems


SHIPPED_GATE, READER_GATE = "shipped", "reader"


def run_ci(
    settings: Settings,
    out: Path,
    embedder=None,
    progress: bool = True,
    thresholds_path: Path = THRESHOLDS,
    gates: tuple[str, ...] = (SHIPPED_GATE, READER_GATE),
) -> CIReport:
    """Build (or reuse) the CI index and run the chosen gates: the shipped system's retrievers, and the reader
    (when the thresholds file has a `reader` section). Each gate is its own run folder and its own lines."""
    from assistant.build import build_assistant, build_embedder
    from evals.datasets import load_datasets
    from evals.report import overview
    from evals.runner import LastQueryCache, RunConfig, run_eval

    unknown = set(gates) - {SHIPPED_GATE, READER_GATE}
    if unknown:
        raise ValueError(f"unknown CI gates {sorted(unknown)}; choose from {SHIPPED_GATE!r}, {READER_GATE!r}")
    thresholds = json.loads(thresholds_path.read_text(encoding="utf-8"))
    gates = tuple(g for g in gates if g != READER_GATE or "reader" in thresholds)
    if not gates:
        raise ValueError(
            f"{thresholds_path.name} has no `reader` section: the reader's gate has nothing to check"
        )
    embedder = embedder or build_embedder(settings)
    build_ci_index(settings, embedder)
    config = RunConfig(
        datasets=DATASETS,
        retrievers=tuple(thresholds["variants"]),
        top_k=settings.top_k,
        command=f"kilde eval ci --data-dir {settings.data_dir} --out {out}",
    )
    items = load_datasets(list(DATASETS))
    problems: list[str] = []
    texts: list[str] = []
    summary: dict = {}
    if SHIPPED_GATE in gates:
        assistant = build_assistant(settings, embedder=LastQueryCache(embedder))
        summary = run_eval(assistant, items, config, out, progress=progress)
        problems += check_thresholds(summary, thresholds)
        texts.append(overview(summary))
    if READER_GATE in gates:
        reading = build_assistant(replace(settings, reader=True), embedder=LastQueryCache(embedder))
        reader_summary = run_eval(
            reading,
            items,
            replace(config, retrievers=(settings.retriever,), command=f"{config.command} (reader on)"),
            out / READER_RUN,
            progress=progress,
        )
        gate = {"variants": {settings.retriever: thresholds["reader"]}}
        problems += [f"{READER_RUN}: {p}" for p in check_thresholds(reader_summary, gate)]
        texts.append(f"with the reader on ({out / READER_RUN}):\n" + overview(reader_summary))
        summary = summary or reader_summary
    verdict = (
        "\n".join(f"REGRESSION: {p}" for p in problems)
        if problems
        else f"all thresholds in {thresholds_path.name} met"
    )
    return CIReport(not problems, "\n\n".join([*texts, verdict]), summary)


if __name__ == "__main__":
    print(make_ci_set())
