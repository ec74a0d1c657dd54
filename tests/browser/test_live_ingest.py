"""`kilde ingest` run while `kilde serve` runs, as a newsroom adds the day's articles: the running server searches
the new articles on both sides, offers their source in the chat's filters on the next page load, and follows a
`--reset` to the new index instead of failing on collections that no longer exist."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import httpx
from playwright.sync_api import expect

from assistant.testing.corpus import DEMO_QUESTION_EN, SEED_ID
from assistant.testing.servers import KILDE, KildeProcess, subprocess_env
from tests.browser.chat import open_filters

NEW_SOURCE = "Harbour Gazette"
NEW_ARTICLE = {
    "id": "harbour-2024-12-01",
    "title": "Harbour reopens after the storm",
    "date": "2024-12-01",
    "source": NEW_SOURCE,
    "language": "en",
    "text": "The harbour at Brattvik reopened on Sunday after the storm. Ferries run to the islands again, "
    "and the harbour master expects the quay to be repaired by March.",
}


def search(server: KildeProcess, query: str, retriever: str) -> list[str]:
    response = httpx.post(
        f"{server.url}/api/search", json={"query": query, "k": 3, "retriever": retriever}, timeout=120
    )
    response.raise_for_status()
    return [passage["article_id"] for passage in response.json()["passages"]]


def found_soon(server: KildeProcess, query: str, retriever: str, article_id: str) -> list[str]:
    """The articles `query` finds once the server has looked at the store's generation (every 2 s)."""
    deadline = time.monotonic() + 30
    while article_id not in (found := search(server, query, retriever)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def ingest(settings, *args: str) -> dict:
    env = subprocess_env(KILDE_DATA_DIR=str(settings.data_dir), KILDE_CACHE_DIR=str(settings.cache_dir))
    done = subprocess.run(
        [KILDE, "ingest", *args, "--json", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout)


def source_options(page, server: KildeProcess) -> list[str]:
    page.goto(f"{server.url}/?lang=en")
    open_filters(page)
    page.locator("#kilde-sources input").first.click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    return options.all_inner_texts()


def test_a_running_server_follows_ingests_and_a_reset(page, built_index, artifacts, tmp_path):
    settings = built_index.replace(data_dir=tmp_path / "index")
    shutil.copytree(built_index.data_dir, settings.data_dir)
    server = KildeProcess(
        settings, artifacts / "kilde-serve-live-ingest.log", KILDE_RATE_LIMIT="1000"
    ).start()
    try:
        assert NEW_SOURCE not in source_options(page, server)
        query = "Brattvik harbour ferries quay"

        new_file = tmp_path / "harbour.json"
        new_file.write_text(json.dumps(NEW_ARTICLE), encoding="utf-8")
        assert ingest(settings, str(new_file))["added"] == 1
        # The BM25 side too: it answered from the snapshot the server started with.
        assert found_soon(server, query, "bm25", NEW_ARTICLE["id"])[0] == NEW_ARTICLE["id"]
        assert NEW_ARTICLE["id"] in search(server, "When will the harbour quay be repaired?", "dense")
        assert NEW_SOURCE in source_options(page, server)

        assert ingest(settings, "--reset", str(new_file))["added"] == 1
        assert found_soon(server, query, "hybrid", NEW_ARTICLE["id"]) == [NEW_ARTICLE["id"]]
        answer = httpx.post(f"{server.url}/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
        assert answer.status_code == 200, answer.text
        assert SEED_ID not in answer.text  # the reset index holds the new article alone
    finally:
        server.stop()
