"""The feedback file stays valid JSONL whatever happens to a write, and one client's vote on one answer
counts once (docs/RELIABILITY.md, "Round two", items 7 and 11)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading

import httpx
import pytest

from assistant.core.errors import BadInputError
from assistant.core.types import Answer, Citation, Turn
from assistant.indexes.storage import StorageError
from assistant.testing.corpus import DEMO_QUESTION_EN, DEMO_QUESTION_NB, ROOT
from assistant.testing.servers import KildeProcess
from ui.feedback import FeedbackLog, feedback_record


def _answer(text: str = "Partene skal yte bistand [1].") -> Answer:
    citation = Citation(
        n=1,
        article_id="sak",
        title="Sak",
        date=None,
        source=None,
        url=None,
        chunk_id="sak#0",
        quote="Partene skal yte bistand.",
        start=0,
        end=25,
        score=0.9,
    )
    return Answer(
        question="Hva lover partene?",
        answer=text,
        answerable=True,
        language="nb",
        citations=(citation,),
        sentences=(),
        retrieved=(),
        timings_ms={},
        backend="extractive",
    )


def _lines(path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
    ]  # each line valid JSON


def test_a_fragment_left_by_a_cut_write_is_removed_before_the_next_record(tmp_path):
    path = tmp_path / "feedback.jsonl"
    log = FeedbackLog(path)
    assert log.append(feedback_record(_answer(), (), "up", client="a"))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "fb-half", "question": "Hva')  # what a full disk left behind
    assert FeedbackLog(path).append(feedback_record(_answer(), (), "down", client="b"))
    assert [r["client"] for r in _lines(path)] == ["a", "b"]


def test_one_vote_per_answer_per_client(tmp_path):
    path = tmp_path / "feedback.jsonl"
    log = FeedbackLog(path)
    saved = [log.append(feedback_record(_answer(), (), "up", client="session:abc")) for _ in range(100)]
    assert saved.count(True) == 1
    assert log.append(feedback_record(_answer(), (), "up", client="session:def"))
    assert log.append(feedback_record(_answer("Et annet svar [1]."), (), "up", client="session:abc"))
    assert not FeedbackLog(path).append(feedback_record(_answer(), (), "down", client="session:abc"))
    assert len(_lines(path)) == 3


def _can_mount() -> bool:
    return (
        bool(shutil.which("unshare"))
        and subprocess.run(
            ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
            check=False,
            capture_output=True,
        ).returncode
        == 0
    )


@pytest.mark.skipif(not _can_mount(), reason="needs unshare -m and tmpfs mounts (root)")
def test_a_write_on_a_full_disk_leaves_no_fragment(tmp_path):
    """A real full file system: a 1 MB tmpfs filled to the last few hundred bytes."""
    program = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from assistant.indexes.storage import StorageError
        from assistant.core.types import Turn
        from tests.test_feedback_log import _answer
        from ui.feedback import FeedbackLog, feedback_record
        mnt = Path(sys.argv[1])
        path = mnt / "feedback.jsonl"
        log = FeedbackLog(path)
        log.append(feedback_record(_answer(), (), "up", client="a"))
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            os.close(fd)
        try:
            big = (Turn("user", "h" * 20000),)  # more than the page the file's tail has free
            log.append(feedback_record(_answer(), big, "up", client="b"))
            print("written")
        except StorageError as exc:
            print("refused:", exc)
        (mnt / "filler").unlink()
        log.append(feedback_record(_answer(), (), "up", client="d"))
        print(path.read_text())
    """)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f'mount -t tmpfs -o size=1m tmpfs "$1" && exec "{sys.executable}" -c "$2" "$1"'
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(mnt), program],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    status, _, content = run.stdout.partition("\n")
    assert status == (
        f"refused: The feedback could not be saved to {mnt / 'feedback.jsonl'} (No space left on device); answering "
        "is not affected. The disk is full: free some space."
    ), run.stdout
    assert [json.loads(line)["client"] for line in content.strip().splitlines()] == ["a", "d"]


def test_a_comment_with_a_lone_surrogate_is_refused_by_name(tmp_path):
    """It reached the UTF-8 encoding of the line: a `UnicodeEncodeError`, a 500 and a traceback (round thirteen)."""
    with pytest.raises(BadInputError, match="comment: contains a lone surrogate"):
        feedback_record(_answer(), (), "up", "bra \ud800 svar", client="a")
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    assert log.append(
        feedback_record(_answer(), (), "up", 'linje\n{"id": "forged"}\r\n=HYPERLINK("x")\x00', client="a")
    )
    [record] = _lines(tmp_path / "feedback.jsonl")  # one line: the comment's line breaks are escaped
    assert record["comment"] == 'linje\n{"id": "forged"}\r\n=HYPERLINK("x")\x00'


@pytest.mark.parametrize("blocked", ["a folder in its place", "a file in its folder's place"])
def test_a_log_that_cannot_be_written_is_a_storage_error_and_the_next_append_works(tmp_path, blocked):
    """Opening or reading the file raised a bare `OSError` (`IsADirectoryError`, `FileExistsError`): a 500 with a
    traceback in the chat's feedback call, where a full disk was already a `StorageError` (round thirteen)."""
    path = tmp_path / "data" / "feedback.jsonl"
    if blocked == "a folder in its place":
        path.mkdir(parents=True)
    else:
        path.parent.write_text("not a folder")
    log = FeedbackLog(path)
    for _ in range(2):  # the votes are read before the write, and neither may escape as an OSError
        with pytest.raises(StorageError, match="could not be saved"):
            log.append(feedback_record(_answer(), (), "up", client="a"))
    if blocked == "a folder in its place":
        path.rmdir()
    else:
        path.parent.unlink()
    assert log.append(feedback_record(_answer(), (), "up", client="a"))
    assert [r["client"] for r in _lines(path)] == ["a"]


def test_two_logs_writing_one_file_lose_no_record(tmp_path):
    """Two servers on one data directory each hold a `FeedbackLog` of the same file. One took the other's record,
    half written, for a fragment a crash left, and cut it off: records were lost (round thirteen)."""
    path = tmp_path / "feedback.jsonl"
    logs = [FeedbackLog(path), FeedbackLog(path)]
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(12):
                history = (Turn("user", "h" * (40_000 + 7_000 * i)),)  # large lines: writes take a while
                record = feedback_record(
                    _answer(f"Svar {worker}-{i} [1]."), history, "up", client=f"c{worker}"
                )
                assert logs[worker % 2].append(record)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    answers = [r["answer"] for r in _lines(path)]
    assert sorted(answers) == sorted(f"Svar {w}-{i} [1]." for w in range(8) for i in range(12))


def _gradio_fn(url: str, elem_id: str) -> tuple[int, int]:
    """The chat's event (its fn_index) that a click on the element `elem_id` triggers, and the element's id."""
    config = httpx.get(url + "/config", timeout=60).json()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    for index, dependency in enumerate(config["dependencies"]):
        for target, _event in dependency["targets"]:
            if ids.get(target) == elem_id:
                return index, target
    raise AssertionError(f"no event on {elem_id}")


def _ask_in_the_chat(url: str, session: str, question: str) -> None:
    fn, trigger = _gradio_fn(url, "kilde-ask")
    body = {"fn_index": fn, "data": [question, "", "", [], [], "en", None], "session_hash": session}
    joined = httpx.post(url + "/gradio_api/queue/join", json={**body, "trigger_id": trigger}, timeout=60)
    assert joined.status_code == 200, joined.text
    with httpx.stream("GET", f"{url}/gradio_api/queue/data?session_hash={session}", timeout=300) as events:
        for line in events.iter_lines():
            if "process_completed" in line:
                assert json.loads(line.removeprefix("data:"))["success"], line
                return
    raise AssertionError("the question was not answered")


def _vote(url: str, session: str, comment_json: str) -> httpx.Response:
    """A click on thumbs-up as the chat's page sends it; `comment_json` is the comment's JSON, written raw."""
    fn, trigger = _gradio_fn(url, "kilde-up")
    body = (
        f'{{"fn_index": {fn}, "data": [{comment_json}, "en", null], "session_hash": "{session}", '
        f'"trigger_id": {trigger}}}'
    )
    return httpx.post(
        url + "/gradio_api/run/predict",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )


@pytest.mark.integration
def test_the_chats_feedback_call_says_what_went_wrong_and_answering_goes_on(api, ui_index):
    """Over HTTP, as the chat's page calls it: a comment with a lone surrogate and a log with a folder in its
    place were each a 500 `{"error": null}` (a traceback in the server's log); now each says why, and the chat
    and /api/ask answer on (round thirteen). The comment's refusal is the status line's text (round twenty-five), and
    so is the vote that could not be saved (round twenty-seven)."""
    path = ui_index.feedback_path
    kept = path.read_bytes() if path.exists() else None
    _ask_in_the_chat(api.url, "h5-surrogate", DEMO_QUESTION_EN)
    refused = _vote(api.url, "h5-surrogate", '"bra \\ud800 svar"')
    # Said on the feedback's status line, the comment kept (round twenty-five: Gradio's page shows no message of an
    # error raised off the queue).
    assert refused.status_code == 200, refused.text
    kept_comment, status = refused.json()["data"]
    assert kept_comment == {"__type__": "update"}
    assert "comment: contains a lone surrogate" in status, refused.text
    _ask_in_the_chat(api.url, "h5-folder", "Who signed the pact?")
    path.unlink(missing_ok=True)
    path.mkdir()
    try:
        unsaved = _vote(api.url, "h5-folder", '"fint"')
        # Said on the status line too, the comment kept (round twenty-seven: raised, the page showed "Error").
        assert unsaved.status_code == 200, unsaved.text
        assert unsaved.json()["data"][0] == {"__type__": "update"}
        assert "Your feedback could not be saved; answering is not affected." in unsaved.json()["data"][1]
        assert str(path) not in unsaved.text and "Traceback" not in unsaved.text
        _ask_in_the_chat(api.url, "h5-folder", DEMO_QUESTION_NB)
        asked = httpx.post(api.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
        assert asked.status_code == 200 and asked.json()["answerable"]
    finally:
        path.rmdir()
        if kept is not None:
            path.write_bytes(kept)
    saved = _vote(api.url, "h5-folder", '"fint"')
    assert "your feedback was saved" in saved.json()["data"][1], saved.text


def _call(url: str, body: dict, path: str = "/gradio_api/run/predict") -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=60)


@pytest.mark.integration
def test_a_call_that_names_no_event_or_sends_too_few_inputs_is_a_4xx_without_a_traceback(api, capfd):
    """A feedback call with an fn_index no event has, none at all, or fewer inputs than the event takes was
    Gradio's own 500 (`Internal Server Error`, or `{"error": null}`) with a traceback in the server's log (round
    thirteen); now each is a 404 or 422 saying why, and a call the page sends is answered as before."""
    fn, trigger = _gradio_fn(api.url, "kilde-up")
    config = httpx.get(api.url + "/config", timeout=60).json()
    browser_only = next(d["id"] for d in config["dependencies"] if not d["backend_fn"])
    beyond = max(d["id"] for d in config["dependencies"]) + 1
    session = {"session_hash": "r16-calls", "trigger_id": trigger}
    capfd.readouterr()
    for body, path in [
        ({"fn_index": beyond, "data": ["", "en", None]}, "/gradio_api/run/predict"),
        ({"fn_index": -1, "data": []}, "/gradio_api/api/predict"),
        ({"fn_index": str(beyond), "data": []}, "/gradio_api/run/predict"),
        ({"fn_index": browser_only, "data": ["en"]}, "/gradio_api/run/predict"),
        ({"data": ["", "en", None]}, "/gradio_api/run/predict"),
        ({"data": ["x"]}, "/gradio_api/run/no_such_event"),
        ({"fn_index": beyond, "data": []}, "/gradio_api/queue/join"),
        ({"fn_index": 10**30, "data": []}, "/widget/gradio_api/run/predict"),
    ]:
        refused = _call(api.url, {**session, **body}, path)
        assert refused.status_code == 404, (path, body, refused.text)
        assert refused.json()["error"] == "not_found" and "fn_index" in refused.json()["message"], (
            refused.text
        )
    for data in ([], ["a comment", "en"]):
        short = _call(api.url, {**session, "fn_index": fn, "data": data})
        assert short.status_code == 422, short.text
        assert short.json() == {
            "error": "invalid_request",
            "message": f"data: event {fn} takes 3 input values, got {len(data)}.",
        }
    # As the page sends it, and with a value more (Gradio ignores it): answered, not refused.
    for data in (["", "en", None], ["", "en", None, "more"]):
        answered = _call(api.url, {**session, "fn_index": fn, "data": data})
        assert answered.status_code == 200 and "Ask a question first" in answered.text, answered.text
    logged = capfd.readouterr()
    assert "Traceback" not in logged.out + logged.err


# Serves `kilde serve` (the command after these words) with its data directory ($1) bind-mounted read-only over
# itself, in a mount namespace of its own: only the server sees it read-only.
READ_ONLY_DATA = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'


@pytest.mark.integration
@pytest.mark.skipif(not _can_mount(), reason="needs unshare -m and bind mounts (root)")
def test_a_vote_on_a_read_only_data_directory_is_said_and_nothing_is_lost(built_index, tmp_path):
    """A read-only disk, not reproduced before (the tests run as root, whom file permissions do not stop): `kilde
    serve` over a data directory mounted read-only. The vote is said not saved on the chat's status line, the comment
    kept, the log's records untouched, and the chat and /api/ask answer on; once the directory is writable again, the
    same vote is saved (it was not counted as given)."""
    data = tmp_path / "data"
    shutil.copytree(built_index.data_dir, data)
    FeedbackLog(data / "feedback.jsonl").append(feedback_record(_answer(), (), "up", client="earlier"))
    kept = (data / "feedback.jsonl").read_bytes()
    wrapper = ["unshare", "-m", "sh", "-c", READ_ONLY_DATA, "sh", str(data)]
    server = KildeProcess(built_index.replace(data_dir=data), tmp_path / "serve.log", wrapper=wrapper).start()
    try:
        _ask_in_the_chat(server.url, "r28-read-only", DEMO_QUESTION_EN)
        unsaved = _vote(server.url, "r28-read-only", '"fint"')
        assert unsaved.status_code == 200, unsaved.text
        comment, status = unsaved.json()["data"]
        assert comment == {"__type__": "update"}  # the comment stays in its box
        assert "Your feedback could not be saved; answering is not affected." in status
        assert str(data) not in unsaved.text and "Traceback" not in unsaved.text
        assert (data / "feedback.jsonl").read_bytes() == kept
        # the file, the cause and the fix, for whoever runs the server; the data directory's line spoke of ingest
        assert (
            f"The feedback could not be saved to {data / 'feedback.jsonl'} (Read-only file system); answering is "
            f"not affected. It cannot be written: make {data} writable." in server.log()
        )
        _ask_in_the_chat(server.url, "r28-read-only", DEMO_QUESTION_NB)
        asked = httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
        assert asked.status_code == 200 and asked.json()["answerable"]
        writable = [
            "nsenter",
            "-t",
            str(server.process.pid),
            "-m",
            "mount",
            "-o",
            "remount,rw,bind",
            str(data),
        ]
        subprocess.run(writable, check=True, capture_output=True)
        saved = _vote(server.url, "r28-read-only", '"fint"')
        assert "your feedback was saved" in saved.json()["data"][1], saved.text
    finally:
        server.stop()
    assert [r["client"] for r in _lines(data / "feedback.jsonl")][:1] == ["earlier"]
    assert len(_lines(data / "feedback.jsonl")) == 2
