"""Two `kilde serve` replicas against one `chroma run` server: an article ingested by the single
writer is answered by a replica that never saw the ingest (docs/scale-out.md)."""

import json
import subprocess
import time
import urllib.request

import pytest

from assistant.testing.corpus import write_small_corpus
from assistant.testing.servers import KILDE, chroma_server, free_port, stop, subprocess_env, wait_http

NEW_ARTICLE = (
    "4. mars, 2025\n\nBrattvik får ny svevebane\n\nKommunestyret i Brattvik vedtok tirsdag å bygge en "
    "svevebane fra sentrum til toppen av Lyngfjellet. Banen skal koste 412 millioner kroner og åpne i "
    "2028.\n\nOrdfører Inga Solum sier svevebanen blir et løft for reiselivet i hele regionen."
)


def post(port: int, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def ask(port: int, question: str) -> dict:
    return post(port, "/api/ask", {"question": question})


def bm25_search(port: int, query: str, first: str, within_s: float = 30) -> list[str]:
    """The articles a replica's BM25 side finds for `query`, asked again for a few of its generation checks
    until `first` comes first."""
    deadline = time.monotonic() + within_s
    while True:
        found = [
            p["article_id"]
            for p in post(port, "/api/search", {"query": query, "retriever": "bm25"})["passages"]
        ]
        if found[:1] == [first] or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.integration
@pytest.mark.slow
def test_article_ingested_by_the_writer_is_answered_by_another_replica(tmp_path, tiktoken_cache):
    corpus = write_small_corpus(tmp_path / "corpus", articles=3)
    base_env = subprocess_env(
        KILDE_CACHE_DIR=str(tiktoken_cache), GRADIO_ANALYTICS_ENABLED="False", KILDE_RATE_LIMIT="1000"
    )

    with chroma_server(tmp_path / "chroma") as url:
        base_env["KILDE_CHROMA_URL"] = url
        writer = {**base_env, "KILDE_DATA_DIR": str(tmp_path / "writer")}
        subprocess.run(
            [KILDE, "ingest", str(corpus), "--json"], env=writer, check=True, capture_output=True, timeout=600
        )

        replicas = []
        try:
            for name in ("replica-a", "replica-b"):
                port = free_port()
                env = {**base_env, "KILDE_DATA_DIR": str(tmp_path / name)}
                log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with its replica, below
                process = subprocess.Popen(
                    [KILDE, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
                )
                replicas.append((process, port, log))
                wait_http(f"http://127.0.0.1:{port}/readyz", timeout_s=180, process=process)

            question = "Hva skal svevebanen i Brattvik koste?"
            before = ask(replicas[1][1], question)
            assert not any(c["article_id"] == "svevebane" for c in before["citations"])

            (corpus / "svevebane.txt").write_text(NEW_ARTICLE, encoding="utf-8")
            report = subprocess.run(
                [KILDE, "ingest", str(corpus), "--json"],
                env=writer,
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert json.loads(report.stdout)["added"] == 1

            for _, port, _ in replicas:  # neither replica ran the ingest; both see the new article
                answer = ask(port, question)
                assert answer["answerable"], answer
                assert answer["citations"][0]["article_id"] == "svevebane"
                assert answer["citations"][0]["quote"] in NEW_ARTICLE
                # Its BM25 side too, through the shared generation: it searched the snapshot it started with.
                found = bm25_search(port, "svevebane Lyngfjellet", first="svevebane")
                assert found[:1] == ["svevebane"], (port, found)
        finally:
            for process, _, log in replicas:
                stop(process)
                log.close()
