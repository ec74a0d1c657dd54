"""Reading commands pointed at a folder with no index say so and create nothing there; pointed at a Chroma
server that is not running, every command says that, naming the server."""

from __future__ import annotations

import os

import pytest

from assistant.cli import main
from assistant.testing.servers import free_port, silent_port


@pytest.mark.parametrize("argv", [["ask", "Hva sier artikkel 4?"], ["stats"], ["articles"], ["show", "x"]])
def test_a_missing_index_is_reported_and_not_created(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.setenv("KILDE_CACHE_DIR", str(tmp_path / "cache"))
    missing = tmp_path / "MISSING"
    assert main([*argv, "--data-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"No Kilde index found at {missing}" in err and "kilde ingest" in err
    assert not missing.exists()


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys, tiktoken_cache):
    """`kilde ARGS` in this process, in an empty folder; returns (exit code, stderr)."""
    monkeypatch.setenv("KILDE_CACHE_DIR", str(tiktoken_cache))
    monkeypatch.setenv("KILDE_CONFIG", os.devnull)
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        capsys.readouterr()
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err

    return run


def test_remove_with_a_mistyped_data_dir_creates_nothing(cli, tmp_path):
    code, err = cli("remove", "j1", "--data-dir", "typo_dir")
    assert code == 2 and "No Kilde index found at typo_dir" in err
    assert not (tmp_path / "typo_dir").exists()


def test_ingest_of_nothing_readable_creates_no_index(cli, tmp_path):
    (tmp_path / "pdfs").mkdir()
    (tmp_path / "pdfs" / "report.pdf").write_bytes(b"%PDF-1.4")
    code, err = cli("ingest", "/nonexistent", "pdfs", "--data-dir", "fresh1", "--no-progress")
    assert code == 1 and "Traceback" not in err
    assert "/nonexistent: no such file or directory" in err and "pdfs: no files Kilde reads" in err
    assert "fresh1: no index was created" in err
    assert not (tmp_path / "fresh1").exists()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["remove", "j1"], 2, "No Kilde index found at afile.txt"),
        (["ingest", "afile.txt", "--no-progress"], 1, "afile.txt: --data-dir is a file, not a folder"),
    ],
)
def test_a_data_dir_that_is_a_file_is_reported_in_one_line(cli, tmp_path, argv, code, message):
    (tmp_path / "afile.txt").write_text("Tittel\n\nEn kort tekst om ferja.\n", encoding="utf-8")
    got, err = cli(*argv, "--data-dir", "afile.txt")
    assert got == code and message in err and "Traceback" not in err
    assert (tmp_path / "afile.txt").is_file()


@pytest.mark.parametrize("verb", ["show", "remove"])
def test_an_article_id_that_is_not_utf8_is_refused_in_one_line(cli, tmp_path, verb):
    code, err = cli(verb, "\udcff", "--data-dir", "idx")  # what Python makes of the argument b"\xff"
    assert code == 1 and "article id: holds bytes that are not UTF-8" in err
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_articles_limit_below_one_is_refused_not_read_as_all(cli, capsys, limit):
    with pytest.raises(SystemExit) as exit_:
        cli("articles", "--limit", limit, "--data-dir", "idx")
    assert exit_.value.code == 2 and "--limit: must be 1 or more" in capsys.readouterr().err


def test_articles_limit_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["articles", "--help"])
    assert "only the N most recent articles" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["ask", "Hva sier artikkel 4?"], ["stats"], ["articles"], ["ingest", "corpus", "--no-progress"]]
)
def test_a_chroma_server_that_is_not_running_is_named_not_a_traceback(cli, tmp_path, argv):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "sak.txt").write_text("Fergekaia\n\nFergekaia i Vestrevik ble åpnet i går.\n")
    port = free_port()  # nothing listens there
    code, err = cli(*argv, "--chroma-url", f"http://kilde:s3cret@127.0.0.1:{port}")
    assert code == 2 and "Traceback" not in err, err
    assert f"The Chroma server at http://127.0.0.1:{port} cannot be reached" in err and "s3cret" not in err


@pytest.mark.parametrize(
    "argv", [["ask", "Hva sier artikkel 4?"], ["stats"], ["ingest", "corpus", "--no-progress"]]
)
def test_a_chroma_server_that_never_answers_is_named_after_the_timeout_not_waited_for(
    cli, tmp_path, monkeypatch, argv
):
    """A server that takes the connection and never answers (hung, SIGSTOPped) held every command for ever."""
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "sak.txt").write_text("Fergekaia\n\nFergekaia i Vestrevik ble åpnet i går.\n")
    monkeypatch.setenv("KILDE_CHROMA_TIMEOUT", "0.5")
    with silent_port() as port:
        code, err = cli(*argv, "--chroma-url", f"http://kilde:s3cret@127.0.0.1:{port}")
    assert code == 2 and "Traceback" not in err, err
    assert f"The Chroma server at http://127.0.0.1:{port} cannot be reached (no answer within 0.5 s" in err
    assert "KILDE_CHROMA_TIMEOUT" in err and "s3cret" not in err


@pytest.mark.parametrize("verb", ["show", "remove"])
def test_an_empty_article_id_is_refused_by_name(cli, tmp_path, verb):
    code, err = cli(verb, "", "--data-dir", "idx")  # `kilde remove ""` said ": no such article"
    assert code == 1 and "article id: is empty" in err and "kilde articles" in err
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize("verb", ["show", "remove"])
def test_a_long_unknown_article_id_is_cut_in_the_message(cli, built_index, verb):
    long_id = "x" * 100_000
    code, err = cli(verb, long_id, "--data-dir", built_index.data_dir)
    assert code == 1 and "no such article" in err
    assert "x" * 80 + "… (cut; 100,000 characters in all)" in err and "x" * 81 not in err


def test_ingest_yes_without_prune_is_a_usage_error(cli, tmp_path, capsys):
    (tmp_path / "a.txt").write_text("Tittel\n\nEn kort tekst om ferja.\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:  # --yes was accepted and did nothing
        cli("ingest", "a.txt", "--yes", "--data-dir", "idx", "--no-progress")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--yes does nothing without --prune" in err
    assert not (tmp_path / "idx").exists()


def _damaged_copy(built_index, tmp_path, cut: bool = True):
    """A copy of the session's index, its Chroma records cut short (`_cut_records`) unless `cut` is False."""
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(built_index.data_dir, copy)
    (copy / "ingest.lock").unlink(missing_ok=True)
    if cut:
        _cut_records(copy)
    return copy


def _cut_records(data_dir) -> None:
    """Chroma's records cut short, in place, as a disk error or a restore that stopped leaves them."""
    with open(data_dir / "chroma" / "chroma.sqlite3", "r+b") as fh:
        fh.truncate(40000)


def test_a_damaged_index_is_named_with_what_to_do(cli, built_index, tmp_path):
    """Chroma's records cut short (a disk error, a restore that stopped): a 37-line traceback ending in Chroma's
    "database disk image is malformed", and in a process that had tried once, Chroma's ValueError about the
    tenant. Each command now names the index, says its files are damaged and how to build it again."""
    damaged = _damaged_copy(built_index, tmp_path)
    for command in [("ask", "Hva sier artikkel 4?"), ("articles",), ("ask", "Hva sier artikkel 4?")]:
        code, err = cli(*command, "--data-dir", damaged)
        assert code == 2 and "Traceback" not in err, (command, err[-600:])
        assert f"The Kilde index at {damaged} cannot be read (" in err, (command, err)
        assert "its files are damaged" in err and "build the index again: kilde ingest" in err, command


def test_an_index_damaged_under_a_reader_is_not_called_busy(built_index, tmp_path):
    """Records damaged after a reader (a server, `kilde ask`) opened the index: the reader said it "cannot be read
    while an ingest rewrites it", though no ingest ran, so waiting would never help. With no ingest holding the
    writer lock it is now the damaged index's error; with one holding it, still busy."""
    import fcntl

    from assistant.core.errors import IndexDamagedError, StoreBusyError
    from assistant.indexes.store import ChromaStore

    copy = _damaged_copy(built_index, tmp_path, cut=False)
    store = ChromaStore.open(copy, None, built_index.collection, create=False)
    assert store.counts()[0] > 0
    _cut_records(copy)
    with pytest.raises(IndexDamagedError, match="its files are damaged"):
        store.counts()
    with open(copy / "ingest.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as an ingest's writer does
        with pytest.raises(StoreBusyError, match="while an ingest rewrites it"):
            store.counts()


def test_a_damaged_index_is_not_ready_on_the_http_api():
    """The API's status for the damaged index's error: 503 `not_ready`, as for a missing index, not a 500."""
    from assistant.core.errors import IndexDamagedError
    from ui.api import status_of

    assert status_of(IndexDamagedError("/srv/kilde", "database disk image is malformed")) == (
        503,
        "not_ready",
    )
