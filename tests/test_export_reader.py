"""The reader's export keeps only the weights in int8 (`evals.export_reader.float_activations`): checked on a
small two-layer graph through the same `quantize_dynamic` call the export makes (torch is not needed)."""

from __future__ import annotations

import hashlib
import json
from argparse import Namespace

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402

from evals.export_reader import QUANTISATION, float_activations, mean_weights, requantise  # noqa: E402

RNG = np.random.default_rng(7)
W1 = RNG.normal(0, 0.3, (8, 16)).astype(np.float32)
W2 = RNG.normal(0, 0.3, (16, 2)).astype(np.float32)


def reference(x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ W1, 0) @ W2


@pytest.fixture
def int8_model(tmp_path):
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w2"], ["y"]),
        ],
        "two_layers",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "tokens", 2])],
        [numpy_helper.from_array(W1, "w1"), numpy_helper.from_array(W2, "w2")],
    )
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(fp32))
    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
    return int8


def run(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def ops(path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_only_the_weights_stay_int8(int8_model):
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops(int8_model)
    assert float_activations(int8_model) == 2
    kinds = ops(int8_model)
    assert not kinds & {"DynamicQuantizeLinear", "MatMulInteger"}
    assert "DequantizeLinear" in kinds
    weights = {t.name: t.data_type for t in onnx.load(str(int8_model)).graph.initializer}
    assert sorted(t for name, t in weights.items() if name.endswith("_quantized")) == [TensorProto.INT8] * 2


def test_float_activations_follow_the_float_model_closer(int8_model, tmp_path):
    x = RNG.normal(0, 1.0, (3, 5, 8)).astype(np.float32)
    x[0, 0] *= 40  # one outlier token: dynamic quantisation scales the whole batch by it
    dynamic_error = np.abs(run(int8_model, x) - reference(x))[1:].max()
    float_activations(int8_model)
    weight_only_error = np.abs(run(int8_model, x) - reference(x))[1:].max()
    assert weight_only_error < dynamic_error / 4
    assert weight_only_error < 0.05


def test_a_reading_no_longer_depends_on_the_rest_of_the_batch(int8_model):
    x = RNG.normal(0, 1.0, (2, 5, 8)).astype(np.float32)
    x[1] *= 40
    before_alone, before_together = run(int8_model, x[:1]), run(int8_model, x)[:1]
    assert np.abs(before_alone - before_together).max() > 1e-3  # what the rewrite removes
    float_activations(int8_model)
    np.testing.assert_allclose(run(int8_model, x[:1]), run(int8_model, x)[:1], atol=1e-5)


def test_a_second_rewrite_names_the_problem(int8_model):
    float_activations(int8_model)
    with pytest.raises(SystemExit, match="no int8 activations to rewrite"):
        float_activations(int8_model)


def test_requantise_keeps_the_training_record(int8_model, tmp_path):
    settings = tmp_path / "reader.json"
    record = {
        "training": [{"steps": 380}],
        "quantisation": QUANTISATION["int8"],
        "max_abs_logit_drift_int8_vs_torch": 1.7,
    }
    settings.write_text(json.dumps(record), encoding="utf-8")
    assert requantise(Namespace(model=int8_model, settings=settings, activations="float")) == 0
    written = json.loads(settings.read_text(encoding="utf-8"))
    # the rewritten file's digest, which the reader checks the file against (`reader.json`'s `model`)
    pin = {"file": int8_model.name, "sha256": hashlib.sha256(int8_model.read_bytes()).hexdigest()}
    assert written == {"training": [{"steps": 380}], "quantisation": QUANTISATION["float"], "model": pin}
    with pytest.raises(SystemExit, match="only rewrites"):
        requantise(Namespace(model=int8_model, settings=settings, activations="int8"))


def test_the_shipped_export_reads_back_into_the_torch_reader():
    """`ReaderNet.from_export` (training on from a shipped file): the dequantised weights compute what the file
    computes, without ONNX Runtime's graph rewrites, which change the arithmetic."""
    torch = pytest.importorskip("torch")
    from assistant.answering.reader import MODEL_FILE
    from assistant.indexes.e5_weights import load_e5
    from evals.reader_model import ReaderNet

    weights, _ = load_e5()
    net = ReaderNet.from_export(weights, MODEL_FILE).eval()
    embeds = weights.word_embeddings(np.arange(5, 85).reshape(2, 40))
    mask = np.ones((2, 40), dtype=np.float32)
    mask[1, 30:] = 0
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(MODEL_FILE), options, providers=["CPUExecutionProvider"])
    want = session.run(["start_logits", "end_logits"], {"inputs_embeds": embeds, "attention_mask": mask})
    with torch.no_grad():
        got = net(torch.from_numpy(embeds), torch.from_numpy(mask))
    for g, w in zip(got, want, strict=True):
        assert np.abs(g.numpy()[0] - w[0]).max() < 1e-3
        assert np.abs(g.numpy()[1, :30] - w[1, :30]).max() < 1e-3


def test_averaged_checkpoints_hold_the_mean_of_each_weight_and_keep_integer_buffers():
    positions = np.arange(4, dtype=np.int64)
    runs = [{"w": np.full((2, 3), v, dtype=np.float32), "positions": positions} for v in (1.0, 2.0, 6.0)]
    mean = mean_weights(runs)
    np.testing.assert_allclose(mean["w"], np.full((2, 3), 3.0))
    assert mean["positions"].dtype == np.int64 and (mean["positions"] == positions).all()
    assert mean_weights(runs[:1])["w"] is runs[0]["w"]


@pytest.mark.parametrize(
    "other, complaint",
    [
        ({"w": np.zeros((2, 3), np.float32)}, "different layers"),
        ({"w": np.zeros((3, 2), np.float32), "positions": np.arange(4)}, "shape of w"),
        ({"w": np.zeros((2, 3), np.float32), "positions": np.arange(4) + 1}, "differ in positions"),
    ],
)
def test_checkpoints_of_different_networks_are_not_averaged(other, complaint):
    run = {"w": np.ones((2, 3), np.float32), "positions": np.arange(4)}
    with pytest.raises(SystemExit, match=complaint):
        mean_weights([run, other])


def test_a_stage_started_from_the_mean_of_runs_records_each_of_their_stages_once(tmp_path):
    torch = pytest.importorskip("torch")
    from evals.export_reader import stages

    def checkpoint(name: str, init, seed: int) -> str:
        path = tmp_path / f"{name}.pt"
        torch.save({"step": 10, "elapsed_s": 5.0, "plan": {"steps": 10, "seed": seed, "init": init}}, path)
        return str(path)

    root = checkpoint("stage6", None, 6)
    siblings = [checkpoint("stage7", root, 7), checkpoint("stage8", [root], 8)]
    grouped = torch.load(checkpoint("stage12", siblings, 12), weights_only=False)
    assert [stage["seed"] for stage in stages(grouped)] == [6, 7, 8, 12]


def test_a_weights_file_carries_the_mean_in_float16_matrices_and_the_training_record(tmp_path):
    """What travels off a machine lent for training (`--weights-out`): the siblings' mean, the layers' matrices in
    float16, and every stage behind them, which the export then records as if it had the checkpoints."""
    torch = pytest.importorskip("torch")
    from evals.export_reader import main, stages

    paths = []
    for seed in (7, 8):
        path = tmp_path / f"stage{seed}.pt"
        model = {"layers.0.q.weight": torch.full((4, 4), float(seed)), "pos": torch.full((3, 4), float(seed))}
        plan = {"steps": 10, "seed": seed, "init": None}
        torch.save({"model": model, "step": 10, "elapsed_s": 5.0, "plan": plan}, path)
        paths.append(str(path))
    out = tmp_path / "weights.pt"
    assert main(["--checkpoint", *paths, "--weights-out", str(out)]) == 0
    carried = torch.load(out, weights_only=False)
    assert carried["model"]["layers.0.q.weight"].dtype == torch.float16
    assert carried["model"]["pos"].dtype == torch.float32  # frozen rows stay as they were
    assert float(carried["model"]["layers.0.q.weight"][0, 0]) == 7.5
    assert [stage["seed"] for stage in stages(carried)] == [7, 8]
    assert carried["averaged_over"] == paths
