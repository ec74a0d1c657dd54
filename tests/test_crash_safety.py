"""SIGKILL during an ingest, then a re-run: the store converges to exactly what an uninterrupted ingest
builds (same article ids, chunk ids and counts), and Chroma loads cleanly. `bench/crash_trials.py` runs
many such trials with kills spread over the whole ingest."""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from assistant.testing.corpus import make_settings
from assistant.testing.servers import KILDE, subprocess_env
from assistant.testing.snapshots import HNSW_LOAD_ERROR, differences, snapshot


def kill_during_ingest(corpus: Path, env: dict, delay_s: float) -> int:
    process = subprocess.Popen(
        [KILDE, "ingest", str(corpus), "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(delay_s)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return process.returncode


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(int(os.environ.get("KILDE_CRASH_TRIALS", "1"))))
def test_rerun_after_sigkill_converges_to_the_uninterrupted_store(
    trial, tmp_path, small_corpus, built_index, tiktoken_cache
):
    reference = snapshot(built_index)
    data_dir = tmp_path / "data"
    env = subprocess_env(KILDE_DATA_DIR=str(data_dir), KILDE_CACHE_DIR=str(tiktoken_cache))
    rng = random.Random(trial)
    outcome = kill_during_ingest(small_corpus, env, delay_s=rng.uniform(3.0, 12.0))

    rerun = subprocess.run(
        [KILDE, "ingest", str(small_corpus), "--json"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert HNSW_LOAD_ERROR not in rerun.stderr
    report = json.loads(rerun.stdout)
    after = snapshot(make_settings(data_dir, tiktoken_cache))
    problems = differences(after, reference)
    assert not problems, f"killed with {outcome}, rerun {report}: {problems}"
    assert after["lexical_matches_store"]
