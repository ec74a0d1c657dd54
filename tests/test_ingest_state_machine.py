"""Ingestion as a state machine (hypothesis, as Chroma tests itself): random sequences of add, update,
remove, unchanged re-ingest and prune against a model (article id -> file text), with the real embedder
and real Chroma, embedded and `chroma run`. After every step the index must hold exactly the model.

    KILDE_STATE_MACHINE_EXAMPLES=5 KILDE_STATE_MACHINE_STEPS=8   # the defaults (CI); `make soak` runs more
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from assistant.answering.context import AskRequest
from assistant.build import build_assistant, build_pipeline
from assistant.indexes.lexical import LexicalIndex
from assistant.testing.corpus import make_settings
from ingest.loaders import load_file
from tests.reliability_report import env_count, record
from tests.sample_text import sentence_pool

EXAMPLES = env_count("KILDE_STATE_MACHINE_EXAMPLES", 5)
STEPS = env_count("KILDE_STATE_MACHINE_STEPS", 8)

POOL = sentence_pool()  # short sentences: an article of one to four makes one or two chunks
BODIES = st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True).flatmap(
    lambda sentences: st.sampled_from([" ".join(sentences), "\n\n".join(sentences)])
)


def machine_for(embedder, settings_for, stats: Counter):
    """A state machine class bound to one backend. `settings_for(name)` gives Settings for a fresh
    collection per example; `stats` counts examples, steps and questions across them."""

    class IngestMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            stats["examples"] += 1
            self.name = f"sm{stats['examples']}-{time.monotonic_ns() % 10**8}"
            self.settings = settings_for(self.name)
            self.folder = self.settings.data_dir / "corpora" / self.name
            self.folder.mkdir(parents=True)
            self.pipeline = build_pipeline(self.settings, embedder=embedder)
            self.model: dict[str, str] = {}  # article id -> its file's text, what the index must hold
            self.removed: dict[str, str] = {}  # removed article id -> its last text
            self.serial = 0

        # -- helpers ------------------------------------------------------------------------------

        def _write(self, article_id: str, body: str) -> Path:
            path = self.folder / f"{article_id}.txt"
            path.write_text(f"{self._title(article_id)}\n\n{body}", encoding="utf-8")
            self.model[article_id] = path.read_text(encoding="utf-8")
            self.removed.pop(article_id, None)
            return path

        @staticmethod
        def _title(article_id: str) -> str:
            return f"Saken om {article_id.replace('-', ' ')}"

        def _forget(self, article_id: str) -> None:
            self.removed[article_id] = self.model.pop(article_id)
            (self.folder / f"{article_id}.txt").unlink()

        def _expected(self) -> dict:
            """What the loader makes of the model's files: the articles the index must hold."""
            return {aid: load_file(self.folder / f"{aid}.txt").articles[0] for aid in self.model}

        def _ingest(self, paths, prune=False):
            stats["steps"] += 1
            report = self.pipeline.ingest(paths, prune=prune)
            # Every file removed: the folder is rejected by name (tests/test_ingest_safety.py), nothing else is.
            emptied = not self.model and self.folder in paths
            rejected = [e.reason.startswith("no files Kilde reads") for e in report.rejected]
            assert rejected == ([True] if emptied else []), report.rejected
            return report

        # -- rules --------------------------------------------------------------------------------

        @initialize(bodies=st.lists(BODIES, min_size=1, max_size=3))
        def start(self, bodies):
            for body in bodies:
                self.serial += 1
                self._write(f"sak-{self.serial}", body)
            report = self._ingest([self.folder])
            assert report.added == len(bodies)

        @rule(body=BODIES, whole_folder=st.booleans(), reuse_removed=st.booleans(), data=st.data())
        def add(self, body, whole_folder, reuse_removed, data):
            if reuse_removed and self.removed:  # an id that was removed comes back with new text
                article_id = data.draw(st.sampled_from(sorted(self.removed)))
            else:
                self.serial += 1
                article_id = f"sak-{self.serial}"
            path = self._write(article_id, body)
            report = self._ingest([self.folder] if whole_folder else [path])
            assert (report.added, report.updated) == (1, 0)

        @precondition(lambda self: self.model)
        @rule(body=BODIES, data=st.data())
        def update(self, body, data):
            article_id = data.draw(st.sampled_from(sorted(self.model)))
            before = self._expected()[article_id].content_hash
            self._write(article_id, body)
            changed = self._expected()[article_id].content_hash != before
            report = self._ingest([self.folder])
            assert (report.updated, report.added) == (int(changed), 0)
            assert report.unchanged == len(self.model) - changed

        @precondition(lambda self: self.model)
        @rule(data=st.data())
        def remove(self, data):
            """What `kilde remove ID` does; the file goes too, or the next ingest would bring it back."""
            stats["steps"] += 1
            article_id = data.draw(st.sampled_from(sorted(self.model)))
            assert self.pipeline.remove(article_id)
            assert not self.pipeline.remove(article_id), "a second remove finds nothing"
            self._forget(article_id)

        @rule()
        def reingest_unchanged(self):
            generation = self.pipeline.store.generation()
            report = self._ingest([self.folder])
            assert (report.added, report.updated, report.removed, report.chunks_embedded) == (0, 0, 0, 0)
            assert report.unchanged == len(self.model)
            assert self.pipeline.store.generation() == generation, "nothing changed, nothing republished"

        @rule(data=st.data())
        def prune(self, data):
            # One file stays: --prune on a folder left empty prunes nothing (tests/test_ingest_safety.py).
            most = min(2, len(self.model) - 1)
            gone = (
                data.draw(st.sets(st.sampled_from(sorted(self.model)), max_size=most)) if most > 0 else set()
            )
            for article_id in gone:
                self._forget(article_id)
            report = self._ingest([self.folder], prune=True)
            assert report.removed == len(gone) and report.chunks_embedded == 0

        @precondition(lambda self: self.removed)
        @rule(data=st.data())
        def ask_about_a_removed_article(self, data):
            stats["asks"] += 1
            article_id = data.draw(st.sampled_from(sorted(self.removed)))
            first_sentence = self.removed[article_id].split("\n\n", 1)[1].split("\n")[0][:300]
            question = f"{self._title(article_id)}: {first_sentence}"
            assistant = build_assistant(self.settings, embedder=embedder, store=self.pipeline.store)
            answer = assistant.ask(AskRequest(question, top_k=8))
            assert article_id not in {c.article_id for c in answer.citations}
            assert article_id not in {h.chunk.article_id for h in answer.retrieved}

        # -- invariants ---------------------------------------------------------------------------

        @invariant()
        def index_holds_exactly_the_model(self):
            store = self.pipeline.store
            if not store.exists():
                return
            expected = self._expected()
            stored = store.stored_articles()
            assert set(stored) == set(expected)
            assert {aid: s.meta.content_hash for aid, s in stored.items()} == {
                aid: a.content_hash for aid, a in expected.items()
            }
            want_chunks = {c.id for a in expected.values() for c in self.pipeline.chunker.split(a)}

            rows = list(store.iter_chunks())
            chunk_ids = [chunk.id for chunk, _ in rows]
            assert len(chunk_ids) == len(set(chunk_ids)), "duplicate chunk ids"
            assert set(chunk_ids) == want_chunks, "chunk ids differ from what the chunker makes of the model"
            assert store.counts() == (len(expected), len(want_chunks))
            assert sum(s.chunk_count for s in stored.values()) == len(want_chunks)
            texts = {aid: store.get_article(aid).text for aid in stored}
            assert texts == {aid: a.text for aid, a in expected.items()}
            for chunk, meta in rows:
                assert chunk.article_id in stored, f"chunk {chunk.id} outlived its article"
                assert meta.content_hash == stored[chunk.article_id].meta.content_hash
                assert texts[chunk.article_id][chunk.start : chunk.end] == chunk.text

            lexical = LexicalIndex.load(self.settings.lexical_root)
            assert lexical is not None and lexical.generation == store.generation()
            assert sorted(lexical.chunk_ids) == sorted(chunk_ids)

        def teardown(self):
            if self.pipeline.store.exists():
                self.pipeline.store.reset()
            shutil.rmtree(self.folder, ignore_errors=True)
            shutil.rmtree(self.settings.lexical_root, ignore_errors=True)

    return IngestMachine


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", pytest.param("server", marks=pytest.mark.integration)])
def test_ingestion_state_machine(backend, request, tmp_path, tiktoken_cache, embedder):
    url = request.getfixturevalue("chroma_url") if backend == "server" else None
    data_dir = tmp_path / "data"  # one embedded Chroma for all examples; each gets its own collection

    def settings_for(name: str):
        return make_settings(data_dir, tiktoken_cache, collection=name, chroma_url=url)

    stats: Counter = Counter()
    started = time.perf_counter()
    try:
        run_state_machine_as_test(
            machine_for(embedder, settings_for, stats),
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            ),
        )
    finally:
        record(
            f"state-machine-{backend}",
            {
                "backend": backend,
                "max_examples": EXAMPLES,
                "max_steps": STEPS,
                "examples_run": stats["examples"],
                "ingest_and_remove_steps": stats["steps"],
                "asks": stats["asks"],
                "seconds": round(time.perf_counter() - started, 1),
            },
        )
    assert stats["examples"] >= 1 and stats["steps"] >= stats["examples"]
