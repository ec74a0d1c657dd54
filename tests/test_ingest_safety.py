"""Round two of the reliability probes against `kilde ingest` (docs/RELIABILITY.md, "Round two"): --prune
removes only what a cleanly read file no longer holds, odd file names and odd files are handled by name,
one article cannot hog the embedder. Real embedder, real Chroma, the real `kilde` entry point."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from assistant.build import build_pipeline
from assistant.cli import RejectionLines, main
from assistant.testing.corpus import make_settings, write_small_corpus

BODY = (
    "Ferja mellom Moss og Horten er innstilt i dag på grunn av sterk vind. Bastø Fosen ber reisende "
    "følge med på nettsidene for oppdateringer om avgangene resten av uken."
)


def _txt(folder: Path, stem: str, title: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.txt"
    path.write_text(f"{title}\n\n{title}. {BODY}", encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    for i, title in enumerate(["Ferja er innstilt", "Vinden løyer", "Ny rute fra mai"]):
        _txt(folder, f"sak-{i}", title)
    articles = [{"id": f"rec-{i}", "title": f"Melding {i}", "text": f"Melding {i}. {BODY}"} for i in range(2)]
    (folder / "meldinger.json").write_text(json.dumps(articles, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture
def settings(tmp_path, tiktoken_cache):
    return make_settings(tmp_path / "index", tiktoken_cache)


@pytest.fixture
def kilde(settings, monkeypatch, capsys):
    """`kilde ARGS` in this process, against the test index; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("KILDE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KILDE_CACHE_DIR", str(settings.cache_dir))

    def run(*args: str):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _ids(settings, embedder) -> set[str]:
    return set(build_pipeline(settings, embedder=embedder).store.stored_articles())


ALL = {"sak-0", "sak-1", "sak-2", "rec-0", "rec-1"}


# -- 1. --prune removes only what a cleanly read file no longer holds ------------------------------------


def test_prune_with_a_mistyped_path_removes_nothing_and_says_so(corpus, kilde, settings, embedder):
    assert kilde("ingest", corpus, "--no-progress")[0] == 0
    code, _, err = kilde("ingest", corpus.parent / "corpsu", "--prune", "--yes", "--no-progress")
    assert code == 1
    assert "nothing pruned" in err and "corpsu" in err
    assert _ids(settings, embedder) == ALL


def test_prune_with_an_empty_folder_removes_nothing(corpus, kilde, settings, embedder, tmp_path):
    assert kilde("ingest", corpus, "--no-progress")[0] == 0
    (tmp_path / "tom").mkdir()
    _, _, err = kilde("ingest", tmp_path / "tom", "--prune", "--yes", "--no-progress")
    assert "nothing pruned" in err and "no files Kilde reads" in err
    assert _ids(settings, embedder) == ALL


def test_a_folder_with_no_file_kilde_reads_is_rejected_by_name(corpus, kilde, tmp_path):
    assert kilde("ingest", corpus, "--no-progress")[0] == 0
    office = tmp_path / "office"
    office.mkdir()
    (office / "rapport.pdf").write_bytes(b"%PDF-1.4")
    (office / "notat.docx").write_bytes(b"PK\x03\x04")
    code, out, err = kilde("ingest", office, "--no-progress")
    assert code == 1 and "1 rejected" in out
    assert f"rejected {office}: no files Kilde reads in this folder (it reads .txt" in err


def test_prune_with_an_unreadable_folder_removes_nothing(corpus, settings, embedder, monkeypatch):
    pipeline = build_pipeline(settings, embedder=embedder)
    sub = corpus / "arkiv"
    _txt(sub, "gammel", "Gammel sak om ferja")
    pipeline.ingest([corpus])
    real_scandir = os.scandir

    def scandir(path="."):  # what a folder without read permission does (the tests run as root)
        if isinstance(path, (str, os.PathLike)) and Path(path) == sub:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = pipeline.ingest([corpus], prune=True)
    assert report.removed == 0 and "gammel" in pipeline.store.stored_articles()
    assert any("arkiv" in e.source and "Permission denied" in e.reason for e in report.rejected)
    assert "nothing pruned" in (report.prune_note or "")


def test_prune_keeps_the_articles_of_a_truncated_or_unreadable_file(corpus, settings, embedder, monkeypatch):
    pipeline = build_pipeline(settings, embedder=embedder)
    pipeline.ingest([corpus])
    records = corpus / "meldinger.json"
    records.write_text(records.read_text(encoding="utf-8")[:40], encoding="utf-8")  # a truncated copy
    report = pipeline.ingest([corpus], prune=True)
    assert report.removed == 0 and {"rec-0", "rec-1"} <= set(pipeline.store.stored_articles())
    assert any("meldinger.json" in e.source for e in report.rejected)

    real_read = Path.read_bytes

    def failing_read(self):
        if self.name == "sak-1.txt":
            raise OSError(5, "Input/output error")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", failing_read)
    report = pipeline.ingest([corpus], prune=True)
    assert report.removed == 0 and "sak-1" in pipeline.store.stored_articles()


def test_prune_removes_what_a_cleanly_read_file_dropped_and_files_that_are_gone(
    corpus, settings, embedder, tmp_path
):
    pipeline = build_pipeline(settings, embedder=embedder)
    elsewhere = _txt(tmp_path / "annet", "annen", "En annen sak om ferja")
    pipeline.ingest([corpus, elsewhere])
    records = corpus / "meldinger.json"
    records.write_text(json.dumps(json.loads(records.read_text(encoding="utf-8"))[:1]), encoding="utf-8")
    (corpus / "sak-2.txt").unlink()
    report = pipeline.ingest([corpus], prune=True)
    # rec-1 left a file that was read cleanly; sak-2's file is gone; `annen` lies outside the given path
    assert report.removed == 2
    assert set(pipeline.store.stored_articles()) == {"sak-0", "sak-1", "rec-0", "annen"}


def test_prune_goes_by_the_file_an_article_came_from_not_by_its_name_from_another_folder(
    tmp_path, kilde, settings, embedder, monkeypatch
):
    """Two projects, each with `c/news.json` and `c/notat.txt`, share one index. Pruning from the second removed
    the first's articles: their files' names, relative to the folder the first ingest ran in, matched files the
    second run read. Nor did a prune from another folder remove what the files really dropped."""
    for project in ("p1", "p2"):
        records = [
            {"id": f"{project}-{i}", "title": f"Melding {i}", "text": f"{project} {i}. {BODY}"}
            for i in (0, 1)
        ]
        _txt(tmp_path / project / "c", "notat", f"Notat fra {project}")
        (tmp_path / project / "c" / "news.json").write_text(json.dumps(records), encoding="utf-8")
    monkeypatch.chdir(tmp_path / "p1")
    assert kilde("ingest", "c", "--no-progress")[0] == 0
    monkeypatch.chdir(tmp_path / "p2")
    code, out, _ = kilde("ingest", "c", "--prune", "--yes", "--no-progress")
    assert code == 0 and "0 removed" in out
    assert _ids(settings, embedder) == {"p1-0", "p1-1", "notat", "p2-0", "p2-1", "notat~c"}

    news = tmp_path / "p1" / "c" / "news.json"
    news.write_text(json.dumps(json.loads(news.read_text(encoding="utf-8"))[:1]), encoding="utf-8")
    (tmp_path / "p1" / "c" / "notat.txt").unlink()
    monkeypatch.chdir(tmp_path)
    code, out, _ = kilde("ingest", "p1/c", "--prune", "--yes", "--no-progress")
    assert code == 0 and "2 removed" in out
    assert _ids(settings, embedder) == {"p1-0", "p2-0", "p2-1", "notat~c"}


def test_prune_of_a_large_share_asks_first(corpus, kilde, settings, embedder):
    assert kilde("ingest", corpus, "--no-progress")[0] == 0
    for name in ("sak-1.txt", "sak-2.txt"):
        (corpus / name).unlink()
    code, _, err = kilde("ingest", corpus, "--prune", "--no-progress")  # stdin is not a terminal here
    assert code == 1 and "--yes" in err and _ids(settings, embedder) == ALL
    code, out, err = kilde("ingest", corpus, "--prune", "--yes", "--no-progress")
    assert code == 0 and "2 removed" in out
    assert _ids(settings, embedder) == ALL - {"sak-1", "sak-2"}


def test_yes_says_in_help_what_prune_does_without_it(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "without it --prune asks at a terminal, and elsewhere prunes nothing and exits 1" in help_text
    assert "without asking" not in help_text


def test_reset_checks_its_paths_before_emptying_the_index(corpus, kilde, settings, embedder):
    assert kilde("ingest", corpus, "--no-progress")[0] == 0
    code, _, err = kilde("ingest", corpus.parent / "corpsu", "--reset", "--no-progress")
    assert code == 1 and "nothing was reset" in err and "\nTraceback" not in err
    assert _ids(settings, embedder) == ALL


def test_an_empty_path_is_refused_not_read_as_the_folder_kilde_runs_in(
    corpus, kilde, settings, embedder, tmp_path, monkeypatch, capsys
):
    # Path("") is ".": `kilde ingest --reset "$CORPUS"` with CORPUS unset wiped the index and ingested the folder
    # it ran in, and `--data-dir ""` wrote an index there.
    assert kilde("ingest", corpus, "--no-progress")[0] == 0
    elsewhere = tmp_path / "elsewhere"
    _txt(elsewhere, "notat", "Et notat")
    monkeypatch.chdir(elsewhere)
    for args in (
        ["ingest", "", "--reset"],
        ["ingest", str(corpus), "", "--prune", "--yes"],
        ["ingest", str(corpus), "--embedding-cache", ""],
        ["eval", "run", "--dataset", "evals/data/seed.jsonl", "--out", ""],
        ["eval", "compare", "", "evals/runs/b"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(args)
        err = capsys.readouterr().err
        assert exited.value.code == 2 and "is empty (an unset shell variable?)" in err, (args, err)
    code, _, err = kilde("ingest", "notat.txt", "--data-dir", "", "--no-progress")
    assert code == 2 and "'data_dir' has an invalid value '': it is empty" in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["notat.txt"]  # no index written here
    assert _ids(settings, embedder) == ALL  # nothing reset, nothing of this folder ingested


# -- 2, 3. odd names and odd files ------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_gets_a_safe_id_and_the_rest_lands(corpus, settings, embedder):
    latin1 = corpus / os.fsdecode(b"bl\xf8tt.txt")  # a Latin-1 'ø' in the name
    latin1.write_text(f"Bløtt føre\n\n{BODY}", encoding="utf-8")
    pipeline = build_pipeline(settings, embedder=embedder)
    report = pipeline.ingest([corpus])
    assert report.added == 6 and not report.rejected
    stored = pipeline.store.stored_articles()
    assert "bløtt" in stored and stored["bløtt"].origin.endswith("bløtt.txt")
    assert not pipeline.dirty_marker.exists()
    again = pipeline.ingest([corpus], prune=True)
    assert (again.unchanged, again.removed) == (6, 0)


def test_symlinks_out_of_the_given_paths_are_skipped_by_name(corpus, settings, embedder, tmp_path):
    secret = _txt(tmp_path / "utenfor", "hemmelig", "Hemmelig notat om ferja")
    (corpus / "passwd.txt").symlink_to(secret)
    (corpus / "borte.txt").symlink_to(tmp_path / "finnes-ikke.txt")
    os.mkfifo(corpus / "kø.txt")
    pipeline = build_pipeline(settings, embedder=embedder)
    report = pipeline.ingest([corpus])
    assert "passwd" not in pipeline.store.stored_articles()
    skipped = {Path(e.source).name: e.reason for e in report.skipped}
    assert set(skipped) == {"passwd.txt", "borte.txt", "kø.txt"}
    assert "--follow-symlinks" in skipped["passwd.txt"] and "dangling" in skipped["borte.txt"]
    assert "FIFO" in skipped["kø.txt"]

    followed = pipeline.ingest([corpus], follow_symlinks=True)
    assert followed.added == 1 and "passwd" in pipeline.store.stored_articles()


def test_ids_lose_control_characters_and_stay_fetchable_when_long(tmp_path, settings, embedder):
    folder = tmp_path / "ids"
    folder.mkdir()
    hostile = "a\x00b\x1b[31mc\nd"
    long_id = "x" * 100_000
    records = [
        {"id": hostile, "title": "Kontrolltegn", "text": BODY},
        {"id": long_id, "title": "Lang id", "text": BODY},
        {"id": long_id + "y", "title": "Lang id to", "text": BODY},
    ]
    (folder / "rare.json").write_text(json.dumps(records), encoding="utf-8")
    pipeline = build_pipeline(settings, embedder=embedder)
    report = pipeline.ingest([folder])
    assert report.added == 3 and not report.rejected
    ids = set(pipeline.store.stored_articles())
    assert all(len(i) <= 200 and not any(ord(ch) < 32 or ord(ch) == 127 for ch in i) for i in ids)
    assert r"a\x00b\x1b[31mc\x0ad" in ids
    for article_id in ids:
        assert pipeline.store.get_article(article_id) is not None


def test_the_index_folder_inside_a_given_folder_is_not_read_as_articles(
    tmp_path, kilde, settings, monkeypatch
):
    """`cd articles && kilde ingest .` with the default data directory `./data`: from the second run on, every
    JSON file of the index's own snapshot was read as articles and rejected (11 for three articles; one per
    chunk row on a real index), and every run exited 1. An older index beside the articles did the same."""
    folder = tmp_path / "artikler"
    _txt(folder, "a", "Ferja er innstilt")
    monkeypatch.chdir(folder)
    for data_dir in ("gammel", "data", "data"):
        monkeypatch.setenv("KILDE_DATA_DIR", data_dir)
        code, out, err = kilde("ingest", ".", "--no-progress")
        assert (code, err) == (0, ""), data_dir
        assert out.startswith("1 files, 1 articles")
    assert (folder / "data" / "lexical").is_dir() and (folder / "gammel" / "lexical").is_dir()


# -- 4. the same name in another folder ---------------------------------------------------------------------


def test_two_files_of_one_name_in_two_folders_land_as_two_articles_in_one_run(
    tmp_path, kilde, settings, embedder
):
    """`a/notat.txt` and `b/notat.txt` both took the id `notat`: the second replaced the first (a warning said
    so). The first keeps the name, the second takes its folder's too; a second run changes nothing."""
    _txt(tmp_path / "a", "notat", "Første notat om ferja")
    _txt(tmp_path / "b", "notat", "Andre notat om ferja")
    (tmp_path / "b" / "index.html").write_text(f"<title>Vind</title><p>{BODY}</p>", encoding="utf-8")
    (tmp_path / "a" / "index.html").write_text(f"<title>Nytt</title><p>Nytt. {BODY}</p>", encoding="utf-8")
    code, out, err = kilde("ingest", tmp_path / "a", tmp_path / "b", "--no-progress")
    assert code == 0 and "4 added" in out and "rejected" not in err and "warning" not in err
    assert _ids(settings, embedder) == {"notat", "notat~b", "index", "index~b"}
    assert "Første notat" in kilde("show", "notat")[1] and "Andre notat" in kilde("show", "notat~b")[1]
    code, out, err = kilde("ingest", tmp_path / "b", tmp_path / "a", "--no-progress")  # another order
    assert code == 0 and "4 unchanged" in out and "warning" not in err


def test_a_file_of_a_stored_name_in_another_folder_lands_beside_it_in_a_later_run(
    tmp_path, kilde, settings, embedder
):
    first = _txt(tmp_path / "a", "notat", "Første notat om ferja")
    assert kilde("ingest", first.parent, "--no-progress")[0] == 0
    second = _txt(tmp_path / "b", "notat", "Andre notat om ferja")
    code, out, err = kilde("ingest", second.parent, "--no-progress")
    assert code == 0 and "1 added" in out and "warning" not in err
    assert _ids(settings, embedder) == {"notat", "notat~b"}
    for paths in ([first.parent, second.parent], [second.parent, first.parent], [second.parent]):
        code, out, err = kilde("ingest", *paths, "--prune", "--yes", "--no-progress")
        assert code == 0 and f"{len(paths)} unchanged, 0 removed" in out and "warning" not in err
    assert "Første notat" in kilde("show", "notat")[1] and kilde("remove", "notat~b")[0] == 0
    assert _ids(settings, embedder) == {"notat"}


def test_prune_removes_the_article_of_a_deleted_file_and_not_its_namesake(
    tmp_path, kilde, settings, embedder
):
    first = _txt(tmp_path / "a", "notat", "Første notat om ferja")
    _txt(tmp_path / "a", "annet", "Et annet notat")
    second = _txt(tmp_path / "b", "notat", "Andre notat om ferja")
    assert kilde("ingest", tmp_path / "a", tmp_path / "b", "--no-progress")[0] == 0
    first.unlink()
    code, out, _ = kilde("ingest", tmp_path / "a", tmp_path / "b", "--prune", "--yes", "--no-progress")
    assert code == 0 and "1 removed" in out
    assert _ids(settings, embedder) == {"annet", "notat~b"}
    code, out, _ = kilde("ingest", tmp_path / "a", second.parent, "--prune", "--yes", "--no-progress")
    assert code == 0 and "2 unchanged" in out and _ids(settings, embedder) == {"annet", "notat~b"}


def test_a_moved_file_keeps_its_id_and_is_named_when_it_replaces_its_old_place(
    tmp_path, kilde, settings, embedder
):
    first = _txt(tmp_path / "a", "notat", "Første notat om ferja")
    assert kilde("ingest", first.parent, "--no-progress")[0] == 0
    (tmp_path / "c").mkdir()
    moved = first.rename(tmp_path / "c" / "notat.txt")
    code, out, err = kilde("ingest", moved.parent, "--no-progress")
    assert (
        code == 0 and "1 unchanged" in out and "warning:" in err and str(first) in err and str(moved) in err
    )
    assert _ids(settings, embedder) == {"notat"}


def test_a_file_named_twice_is_read_once(tmp_path, kilde, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _txt(tmp_path / "t1", "a", "Ferja er innstilt")
    code, out, err = kilde("ingest", "t1/a.txt", "t1/a.txt", path, "t1", "--no-progress")
    assert code == 0 and out.startswith("1 files, 1 articles: 1 added") and "rejected" not in err


def test_a_folder_named_with_a_folder_inside_it_is_not_called_empty(tmp_path, kilde, monkeypatch):
    """`kilde ingest t1 t1/sub` (or `t1 t1/`): the second folder, walked already with the first, was rejected as
    holding "no files Kilde reads", the run exited 1, and --prune and --reset refused to run."""
    monkeypatch.chdir(tmp_path)
    _txt(tmp_path / "t1", "a", "Ferja er innstilt")
    _txt(tmp_path / "t1" / "sub", "b", "Vinden løyer")
    (tmp_path / "t1" / "tom").mkdir()
    code, out, err = kilde("ingest", "t1", "t1/sub", "t1/", "--prune", "--no-progress")
    assert code == 0 and out.startswith("2 files, 2 articles: 2 added") and "rejected" not in err
    assert "prune:" not in err
    code, _, err = kilde("ingest", "t1", "t1/tom", "--no-progress")  # a folder that is empty still is
    assert code == 1 and "rejected t1/tom: no files Kilde reads" in err


def test_the_same_files_ingested_from_another_folder_are_not_said_to_replace_themselves(
    tmp_path, kilde, monkeypatch
):
    for stem, title in (("a", "Ferja er innstilt"), ("b", "Vinden løyer")):
        _txt(tmp_path / "p1", stem, title)
    monkeypatch.chdir(tmp_path)
    assert kilde("ingest", "p1", "--no-progress")[0] == 0
    monkeypatch.chdir(tmp_path / "p1")
    code, out, err = kilde("ingest", ".", "--no-progress")
    assert code == 0 and "2 unchanged" in out and "warning" not in err


def test_a_date_ingest_does_not_understand_is_a_warning_and_the_article_lands(
    tmp_path, kilde, settings, embedder
):
    folder = tmp_path / "dated"
    folder.mkdir()
    article = {"id": "udatert", "title": "Ferja er innstilt", "text": f"Ferja er innstilt. {BODY}"}
    (folder / "saker.jsonl").write_text(
        json.dumps({**article, "date": "2024-13-45"}) + "\n", encoding="utf-8"
    )
    code, out, err = kilde("ingest", folder, "--no-progress")
    assert code == 0 and "1 added" in out
    assert "warning:" in err and "saker.jsonl:1" in err and "'2024-13-45' not understood" in err
    assert _ids(settings, embedder) == {"udatert"}


# -- 5. one article cannot hog the embedder ---------------------------------------------------------------


def test_an_article_over_the_size_cap_is_rejected_by_name(tmp_path, tiktoken_cache, embedder):
    settings = make_settings(tmp_path / "index", tiktoken_cache, max_article_chars=5000)
    folder = tmp_path / "store"
    _txt(folder, "kort", "Kort sak om ferja")
    (folder / "enorm.txt").write_text("Enorm\n\n" + "ord " * 3000, encoding="utf-8")
    report = build_pipeline(settings, embedder=embedder).ingest([folder])
    assert report.added == 1
    assert [Path(e.source).name for e in report.rejected] == ["enorm.txt"]
    assert "KILDE_MAX_ARTICLE_CHARS" in report.rejected[0].reason


def test_progress_is_reported_per_chunk_batch_inside_one_long_article(tmp_path, settings, embedder):
    from ingest.pipeline import Progress

    class Recorder(Progress):
        def __init__(self):
            self.events = []

        def advance(self, articles, chunks):
            self.events.append((articles, chunks))

    pipeline = build_pipeline(settings, embedder=embedder)
    pipeline.batch_chunks = 8
    folder = tmp_path / "lang"
    sentences = " ".join(f"Setning nummer {i} handler om ferja mellom Moss og Horten." for i in range(250))
    (folder).mkdir()
    (folder / "lang.txt").write_text(f"Lang sak\n\n{sentences}", encoding="utf-8")
    recorder = Recorder()
    report = pipeline.ingest([folder], progress=recorder)
    embedding = [e for e in recorder.events if e != (0, 0)]
    assert report.chunks_embedded > 2 * pipeline.batch_chunks
    assert len([e for e in embedding if e[1]]) >= report.chunks_embedded // pipeline.batch_chunks
    assert sum(chunks for _, chunks in embedding) == report.chunks_embedded


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path):
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_file_of_many_bad_records_names_the_first_and_counts_the_rest(tmp_path, kilde):
    """A JSON array of 200,000 bad records printed 200,000 "rejected" lines, burying the summary."""
    folder = tmp_path / "records"
    folder.mkdir()
    good = {"title": "Budsjettet er vedtatt", "text": "Kommunestyret vedtok budsjettet torsdag kveld. " * 3}
    records = [{"title": n} for n in range(120)] + [good]
    (folder / "many.json").write_text(json.dumps(records), encoding="utf-8")
    code, out, err = kilde("ingest", folder, "--no-progress")
    named = [line for line in err.splitlines() if line.startswith(f"rejected {folder / 'many.json'}[")]
    assert code == 1 and len(named) == RejectionLines.shown
    assert "rejected 120 in all, 70 not shown above" in err
    assert "1 added" in out and "120 rejected" in out
    code, out, _ = kilde("ingest", folder, "--no-progress", "--json")
    assert code == 1 and len(json.loads(out)["rejected"]) == 120


# -- Ctrl-C ------------------------------------------------------------------------------------------------------


def test_an_ingest_stopped_by_ctrl_c_says_how_to_finish(tmp_path, settings, monkeypatch, capsys):
    """A Ctrl-C while `kilde ingest` writes said `kilde: interrupted` and no more: not what the index then holds,
    nor that running the command again finishes the work (that a rerun does: section 2's crash tests). The Ctrl-C
    is raised inside the writing, where a real one lands, so the test does not race the ingest's end (a signal
    sent from outside came after a fast ingest had ended, on a busy machine)."""
    from assistant import cli
    from ingest.pipeline import IngestPipeline

    corpus = write_small_corpus(tmp_path / "corpus", articles=2)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(IngestPipeline, "ingest", interrupted)
    monkeypatch.setenv("KILDE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KILDE_CACHE_DIR", str(settings.cache_dir))
    assert cli.main(["ingest", str(corpus), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "kilde: interrupted; the articles it wrote before are kept" in err
    assert "run the same kilde ingest again to finish" in err and "Traceback" not in err
