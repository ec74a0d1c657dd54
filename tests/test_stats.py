"""`kilde stats` reads the summary the last finished ingest wrote beside its lexical snapshot, so it answers
without importing Chroma, and it says exactly what the store says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from assistant.cli import local_stats, store_stats
from assistant.testing.corpus import DISTRACTORS, ROOT
from assistant.testing.servers import subprocess_env

pytestmark = pytest.mark.integration


def test_the_summary_tells_what_the_store_holds(built_index):
    summary = local_stats(built_index)
    assert summary is not None
    assert summary == store_stats(built_index)
    assert summary["articles"] == DISTRACTORS + 1 and summary["chunks"] > summary["articles"]
    assert sum(summary["languages"].values()) == summary["articles"]


def test_an_unfinished_ingest_sends_stats_to_the_store(built_index, tmp_path):
    copy = built_index.replace(data_dir=tmp_path / "index")
    shutil.copytree(built_index.data_dir, copy.data_dir)
    copy.ingest_dirty_path.touch()  # what a killed writer leaves behind
    assert local_stats(copy) is None
    assert store_stats(copy)["articles"] == DISTRACTORS + 1


def test_after_a_killed_ingest_stats_counts_only_committed_chunks(built_index, tmp_path, embedder):
    from assistant.build import build_store
    from assistant.core.tokens import get_encoding
    from ingest.articles import make_article
    from ingest.chunking import Chunker

    copy = built_index.replace(data_dir=tmp_path / "index")
    shutil.copytree(built_index.data_dir, copy.data_dir)
    before = store_stats(copy)["chunks"]
    # What a writer killed between an article's chunks and its record leaves: chunks of no committed article.
    article = make_article(
        title="Ferja er innstilt", body="Ferja mellom Moss og Horten er innstilt i dag. " * 40
    )
    chunks = Chunker(
        get_encoding(copy.encoding, copy.tiktoken_cache_dir), copy.chunk_tokens, copy.chunk_overlap
    ).split(article)
    store = build_store(copy, embedder)
    store.upsert_chunks(article, chunks, embedder.embed_passages([c.text for c in chunks]))
    copy.ingest_dirty_path.touch()
    assert store.counts()[1] == before + len(chunks)
    assert store_stats(copy)["chunks"] == before


def test_stats_does_not_import_chroma(built_index):
    probe = (
        "import sys; from assistant.cli import main; code = main(['stats', '--json']); "
        "print('chromadb' in sys.modules, file=sys.stderr); sys.exit(code)"
    )
    env = subprocess_env(
        {
            "PATH": "/usr/bin:/bin",
            "KILDE_DATA_DIR": str(built_index.data_dir),
            "KILDE_CACHE_DIR": str(built_index.cache_dir),
            "KILDE_CONFIG": os.devnull,
            "ANONYMIZED_TELEMETRY": "False",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "False"
    assert json.loads(result.stdout)["articles"] == DISTRACTORS + 1
