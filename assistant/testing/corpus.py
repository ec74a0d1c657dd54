"""The test corpus: the seed article, NorQuAD news distractors, the hostile articles, and the questions
the demo asks. Paths point into the source checkout (`corpus/`, `tests/fixtures/`)."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.core.config import Settings, resolve_settings

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "corpus" / "seed" / "geopolitika-2024-11-27-nord-korea-og-russland-inngar-forsvarspakt.txt"
SEED_ID = SEED.stem
NORQUAD_NEWS = ROOT / "corpus" / "norquad" / "news"
HOSTILE = ROOT / "tests" / "fixtures" / "hostile"
ARTICLE4_OPENING = "Artikkel 4 i avtalen sier"
DEMO_QUESTION_EN = "What does Article 4 commit each side to?"
DEMO_QUESTION_NB = "Hva forplikter artikkel 4 hver av partene til?"
DISTRACTORS = 24


def make_settings(data_dir: Path, cache_dir: Path, **overrides) -> Settings:
    """Settings for an index under `data_dir`, blind to the environment and to any config file."""
    return resolve_settings(
        {"data_dir": data_dir, "cache_dir": cache_dir, **overrides},
        environ={},
        config_file=Path("/nonexistent"),
    )


def write_distractors(folder: Path, count: int = DISTRACTORS) -> Path:
    """The first `count` NorQuAD news passages, written as a NorQuAD annotation file."""
    data = json.loads((NORQUAD_NEWS / "answers_1.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:count]
    target = folder / "news" / "answers_1.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return target


def write_small_corpus(folder: Path, articles: int = DISTRACTORS + 1) -> Path:
    """The seed article plus `articles - 1` NorQuAD news passages."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SEED.name).write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    write_distractors(folder, count=articles - 1)
    return folder


def hostile_cases() -> list[dict]:
    """The hostile articles (script tags, injections, odd links) with what each one attempts."""
    return json.loads((HOSTILE / "cases.json").read_text(encoding="utf-8"))


def commit_numbered_article(store, number: int, dim: int) -> None:
    """Commit "Sak {number}", one short Bokmål article of one chunk whose vector is the first axis of `dim`: a
    store that changes, for tests that need no embedder."""
    from assistant.core.types import Chunk
    from ingest.articles import make_article

    article = make_article(
        title=f"Sak {number}",
        body=f"Fergekaia nummer {number} i Vestrevik ble åpnet.",
        given_id=f"sak-{number}",
        language="nb",
    )
    chunk = Chunk(f"sak-{number}#0", article.id, 0, article.text, 0, len(article.text), 8)
    store.upsert_chunks(article, [chunk], [[1.0] + [0.0] * (dim - 1)])
    store.upsert_article(article, "sig", 1)
