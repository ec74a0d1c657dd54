"""Parts of the load benchmark (bench/load.py): the question pool, a closed-loop HTTP driver, checks of
every answer and citation, and samplers of the serving process (RSS, CPU) and of article commits.

Nothing here is a stand-in: the driver speaks HTTP to a real `kilde serve`, commits are read from the
real Chroma server, and RSS comes from /proc/<pid>/status.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
from tqdm import tqdm

from assistant.testing.servers import KILDE

ROOT = Path(__file__).resolve().parent.parent
EVAL_FILES = (
    "seed.jsonl",
    "norquad_news_val_en.jsonl",
    "ci_norquad_val.jsonl",
    "unanswerable.jsonl",
    "followups.jsonl",
)
NORQUAD_FILE = re.compile(r"answers_(\d+)\.json$")
ANSWER_KEYS = {
    "question": str,
    "answer": str,
    "answerable": bool,
    "language": str,
    "backend": str,
    "citations": list,
    "sentences": list,
    "retrieved": list,
    "timings_ms": dict,
}
CITATION_KEYS = {
    "n": int,
    "article_id": str,
    "title": str,
    "chunk_id": str,
    "quote": str,
    "start": int,
    "end": int,
}


# -- questions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    text: str
    history: tuple[tuple[str, str], ...] = ()
    article_ids: tuple[str, ...] = ()  # the articles it was written about, when known
    origin: str = ""
    language: str = ""  # the question's own language, from the eval item

    def body(self) -> dict:
        return {"question": self.text, "history": [{"role": r, "content": c} for r, c in self.history]}


def eval_questions() -> list[Question]:
    """The eval sets' questions (English ones also in their Norwegian original where the file has it)."""
    out = []
    for name in EVAL_FILES:
        for line in (ROOT / "evals" / "data" / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            history = tuple((t["role"], t["content"]) for t in item.get("history", ()))
            ids = tuple(item.get("gold_article_ids") or ())
            for text, language in (
                (item["question"], item.get("language", "")),
                (item.get("question_nb"), "nb"),
            ):
                if text:
                    out.append(Question(text, history, ids, name, language))
    return out


def norquad_questions() -> list[Question]:
    """NorQuAD's own questions in the corpus annotation files, each tied to its passage's article id."""
    out = []
    for path in sorted((ROOT / "corpus" / "norquad" / "news").glob("answers_*.json")):
        annotator = int(NORQUAD_FILE.search(path.name).group(1))
        for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in entry.get("paragraphs", []):
                article_id = f"news-a{annotator}-d{paragraph.get('document_id')}"
                out += [
                    Question(qa["question"], (), (article_id,), "norquad-corpus", "nb")
                    for qa in paragraph.get("qas", [])
                    if qa.get("question")
                ]
    return out


def question_pool(indexed: set[str], seed: int = 7, exclude: set[str] = frozenset()) -> list[Question]:
    """Distinct questions about indexed articles (or about none: unanswerable ones), shuffled with `seed`
    and evenly mixed: any stretch of the pool holds languages and sources in the pool's proportions, so a
    60-question baseline asks the same mix as a 500-question run (an English question over Norwegian
    text costs several times more: its answer sentences are embedded). Questions about articles in
    `exclude` are left out."""
    seen: set[tuple] = set()
    groups: dict[tuple[str, str], list[Question]] = {}
    for q in eval_questions() + norquad_questions():
        key = (q.text, q.history)
        if key in seen or any(a in exclude for a in q.article_ids):
            continue
        if q.article_ids and not any(a in indexed for a in q.article_ids):
            continue
        seen.add(key)
        groups.setdefault((q.language, q.origin), []).append(q)
    rng = random.Random(seed)
    placed = []
    for group in groups.values():
        rng.shuffle(group)
        offset = rng.random()
        placed += [((i + offset) / len(group), rng.random(), q) for i, q in enumerate(group)]
    return [q for _, _, q in sorted(placed, key=lambda item: item[:2])]


class QuestionStream:
    """Hands out questions in pool order, cycling when the pool runs out, and counts the repeats."""

    def __init__(self, pool: Sequence[Question]):
        if not pool:
            raise ValueError("no questions")
        self.pool = pool
        self.position = 0

    def take(self, n: int) -> list[Question]:
        out = [self.pool[(self.position + i) % len(self.pool)] for i in range(n)]
        self.position += n
        return out

    @property
    def repeats_so_far(self) -> int:
        return max(0, self.position - len(self.pool))


# -- corpus subsets -------------------------------------------------------------------------------------


def corpus_articles() -> dict:
    from ingest.loaders import load_paths

    return {a.id: a for _, result in load_paths([ROOT / "corpus"]) for a in result.articles}


def write_articles(path: Path, articles: Iterable) -> int:
    """Articles as JSONL that `kilde ingest` reads back to the same ids and content hashes."""
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for a in articles:
            fh.write(
                json.dumps(
                    {
                        "id": a.id,
                        "title": a.title,
                        "text": a.text,
                        "date": a.date,
                        "source": a.source,
                        "language": a.language,
                        "url": a.url,
                        "author": a.author,
                    },
                    ensure_ascii=False,
                )
            )
            fh.write("\n")
            n += 1
    return n


def pick_articles(candidates: Iterable[str], n: int, seed: int, avoid: set[str] = frozenset()) -> list[str]:
    """n article ids that NorQuAD questions are about, chosen reproducibly."""
    asked = {a for q in norquad_questions() for a in q.article_ids}
    pool = sorted(a for a in candidates if a in asked and a not in avoid)
    return sorted(random.Random(seed).sample(pool, min(n, len(pool))))


# -- the driver --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    question: Question
    sent: float  # time.monotonic()
    received: float
    status: int | None
    problems: tuple[str, ...]
    answer: dict | None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def latency(self) -> float:
        return self.received - self.sent


def answer_problems(question: Question, body: object) -> list[str]:
    """What makes a 200 response not a well-formed `Answer` (docs: AnswerOut in ui/api.py)."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems = [
        f"{k}: missing or not {t.__name__}" for k, t in ANSWER_KEYS.items() if not isinstance(body.get(k), t)
    ]
    if problems:
        return problems
    if body["question"] != question.text.strip():
        problems.append("question not echoed")
    if not body["answer"].strip():
        problems.append("empty answer")
    citations = body["citations"]
    for c in citations:
        bad = [k for k, t in CITATION_KEYS.items() if not isinstance(c, dict) or not isinstance(c.get(k), t)]
        if bad:
            problems.append(f"citation fields {bad}")
        elif not (0 <= c["start"] < c["end"] and c["end"] - c["start"] == len(c["quote"])):
            problems.append(f"citation [{c['n']}] offsets {c['start']}-{c['end']} do not span its quote")
    if problems:
        return problems
    numbers = [c["n"] for c in citations]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"citation numbers {numbers}")
    if body["answerable"]:
        if not citations:
            problems.append("answerable without citations")
        problems += [f"[{n}] not in the answer text" for n in numbers if f"[{n}]" not in body["answer"]]
    elif citations:
        problems.append("not answerable, yet cites")
    return problems


def ask_one(client: httpx.Client, url: str, question: Question) -> Outcome:
    sent = time.monotonic()
    try:
        response = client.post(f"{url}/api/ask", json=question.body())
    except httpx.TimeoutException:
        return Outcome(question, sent, time.monotonic(), None, ("timeout",), None)
    except httpx.HTTPError as exc:
        return Outcome(question, sent, time.monotonic(), None, (f"{type(exc).__name__}: {exc}",), None)
    received = time.monotonic()
    if response.status_code != 200:
        return Outcome(
            question,
            sent,
            received,
            response.status_code,
            (f"HTTP {response.status_code}: {response.text[:200]}",),
            None,
        )
    try:
        body = response.json()
    except ValueError:
        return Outcome(question, sent, received, 200, ("body is not JSON",), None)
    return Outcome(question, sent, received, 200, tuple(answer_problems(question, body)), body)


def ask_all(
    url: str,
    questions: Iterable[Question],
    clients: int,
    timeout_s: float,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """`clients` closed-loop clients: each takes the next question when its previous answer is in, until
    `questions` (any iterable, so a caller can decide while the run goes how long it lasts) runs out."""
    source = iter(questions)
    lock = threading.Lock()
    outcomes: list[Outcome] = []

    def client_loop(client: httpx.Client) -> None:
        while True:
            with lock:
                question = next(source, None)
            if question is None:
                return
            try:
                outcome = ask_one(client, url, question)
            except Exception as exc:
                outcome = Outcome(
                    question,
                    time.monotonic(),
                    time.monotonic(),
                    None,
                    (f"driver error {type(exc).__name__}: {exc}",),
                    None,
                )
            with lock:
                outcomes.append(outcome)
                if progress:
                    progress(outcome)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    with httpx.Client(timeout=timeout_s, limits=limits) as client:
        threads = [threading.Thread(target=client_loop, args=(client,), daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return sorted(outcomes, key=lambda o: o.sent)


# -- citations after the run -------------------------------------------------------------------------------


@dataclass
class CitationCheck:
    checked: int = 0
    articles_fetched: int = 0
    problems: list[str] = field(default_factory=list)


def check_citations(url: str, outcomes: Iterable[Outcome], timeout_s: float = 60) -> CitationCheck:
    """Every citation's article exists (GET /api/articles/{id}) and its quote is text[start:end]."""
    result = CitationCheck()
    texts: dict[str, str | None] = {}
    with httpx.Client(timeout=timeout_s) as client:
        for outcome in outcomes:
            for c in (outcome.answer or {}).get("citations", ()):
                article_id = c["article_id"]
                if article_id not in texts:
                    response = client.get(f"{url}/api/articles/{quote(article_id, safe='')}")
                    texts[article_id] = response.json()["text"] if response.status_code == 200 else None
                    result.articles_fetched += 1
                result.checked += 1
                text = texts[article_id]
                if text is None:
                    result.problems.append(f"cited article {article_id} does not exist")
                elif text[c["start"] : c["end"]] != c["quote"]:
                    result.problems.append(
                        f"quote of [{c['n']}] is not {article_id}[{c['start']}:{c['end']}]"
                    )
    return result


# -- samplers ----------------------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def rss_split_kb(pid: int) -> dict[str, int]:
    """VmRSS split into anonymous memory (heap, stacks) and file-backed pages (mapped model and libraries)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
            fields[line.split(":")[0]] = int(line.split()[1])
    return fields


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Calls `probe()` every `every_s` seconds and keeps (time, value) pairs."""

    def __init__(self, probe: Callable[[], float], every_s: float):
        super().__init__(daemon=True)
        self.probe = probe
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            with contextlib.suppress(OSError, RuntimeError, httpx.HTTPError):
                self.samples.append((time.monotonic(), self.probe()))
            self._stop_event.wait(self.every_s)

    def stop(self) -> list[tuple[float, float]]:
        self._stop_event.set()
        self.join()
        return self.samples


def healthz_probe(url: str, timeout_s: float = 60) -> Callable[[], float]:
    client = httpx.Client(timeout=timeout_s)

    def probe() -> float:
        t0 = time.monotonic()
        client.get(f"{url}/healthz").raise_for_status()
        return time.monotonic() - t0

    return probe


class CommitWatcher(threading.Thread):
    """Polls the Chroma server for the article records (the commit points) of articles being ingested.

    For each article it keeps the start of the last poll that did not find it (`absent_at`: the article
    was not committed at that moment, nor before it) and the end of the first poll that did (`present_at`).
    An answer that cites the article and was received before `absent_at` cited a half-written article."""

    def __init__(
        self, chroma_url: str, article_ids: Iterable[str], collection: str = "kilde", every_s: float = 0.1
    ):
        super().__init__(daemon=True)
        from assistant.indexes.store import ChromaStore

        self.store = ChromaStore.open(None, chroma_url, collection)
        self.pending = set(article_ids)
        self.absent_at: dict[str, float] = {}
        self.present_at: dict[str, float] = {}
        self.every_s = every_s
        self.polls = 0
        self._stop_event = threading.Event()

    def poll(self) -> None:
        t0 = time.monotonic()
        found = self.store.article_hashes(sorted(self.pending)) if self.pending else {}
        t1 = time.monotonic()
        self.polls += 1
        for article_id in list(self.pending):
            if article_id in found:
                self.present_at[article_id] = t1
                self.pending.discard(article_id)
            else:
                self.absent_at[article_id] = t0

    def run(self) -> None:
        while not self._stop_event.is_set() and self.pending:
            self.poll()
            self._stop_event.wait(self.every_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# -- figures -------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass(frozen=True)
class PhaseFigures:
    clients: int
    questions: int
    seconds: float
    errors: int
    p50: float
    p95: float
    server_cpu_s: float
    stage_ms: dict[str, float]  # median server-side stage timings

    @property
    def throughput(self) -> float:
        return self.questions / self.seconds

    @classmethod
    def of(
        cls, clients: int, outcomes: Sequence[Outcome], seconds: float, server_cpu_s: float
    ) -> PhaseFigures:
        stages: dict[str, list[float]] = {}
        for o in outcomes:
            for stage, ms in ((o.answer or {}).get("timings_ms") or {}).items():
                stages.setdefault(stage, []).append(ms)
        latencies = [o.latency for o in outcomes]
        return cls(
            clients,
            len(outcomes),
            seconds,
            sum(not o.ok for o in outcomes),
            percentile(latencies, 0.5),
            percentile(latencies, 0.95),
            server_cpu_s,
            {k: percentile(v, 0.5) for k, v in sorted(stages.items())},
        )


# -- processes -------------------------------------------------------------------------------------------

SEED_ARTICLE = "geopolitika-2024-11-27-nord-korea-og-russland-inngar-forsvarspakt"
CHILD_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False"}


def kilde(args: list[str], env: dict[str, str], timeout_s: float = 3600) -> dict | list:
    """Run a `kilde` verb with --json in its own process and return its JSON output."""
    done = subprocess.run(
        [KILDE, *args, "--json"],
        env={**os.environ, **CHILD_ENV, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kilde {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def start_server(data_dir: Path, log: Path, **env: str):
    from assistant.core.config import resolve_settings
    from assistant.testing.servers import KildeProcess

    return KildeProcess(
        resolve_settings({"data_dir": data_dir}), log, KILDE_RATE_LIMIT="0", **CHILD_ENV, **env
    ).start(timeout=600)


def measure(
    url: str,
    questions: Iterable[Question],
    clients: int,
    pid: int,
    label: str,
    timeout_s: float,
    on_answer=None,
    total: int | None = None,
) -> tuple[PhaseFigures, list[Outcome]]:
    """Ask `questions` with `clients` clients, with a progress bar; figures include the server's CPU time."""
    bar = tqdm(total=total if total is not None else len(questions), desc=label, unit="q", dynamic_ncols=True)
    errors = 0

    def progress(outcome: Outcome) -> None:
        nonlocal errors
        errors += not outcome.ok
        bar.update(1)
        if errors:
            bar.set_postfix(errors=errors)
        if on_answer:
            on_answer(outcome)

    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    outcomes = ask_all(url, questions, clients, timeout_s, progress)
    seconds, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    bar.close()
    return PhaseFigures.of(clients, outcomes, seconds, cpu), outcomes
