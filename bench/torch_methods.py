"""The PyTorch side of the method-level bench (bench/methods.ts; never used by the library or its tests).

A causal-tracing map of one prompt pair, every kind, done as a careful PyTorch + transformers user would:
forward hooks on the Hugging Face modules for the states that are module outputs (the residual stream,
GPT-NeoX's attention and MLP outputs, Mamba's out_proj), and for Mamba's s and g (no module outputs them)
the mixer's forward replaced by the same computation with those two tensors exposed, as romba does.
Cells are batched: every cell of one kind is a row of one batch (chunked), each row restoring its own
position at its own layers from the clean run.

    python torch_methods.py DIR < {"clean": [ids], "corrupt": [ids], "answer": id,
                                   "kinds": {kind: [[restored layers of centre 0], ...]}, "chunk": rows}
prints one JSON line: {"torch", "transformers", "ms": [warm-up, timed], "p": {kind: [[p per centre] per position]}}.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import AutoModelForCausalLM

# Row plans of the batch being run: kind -> layer -> list of (row, position) to restore; None records.
PLAN = {"record": None, "rows": {}}
CLEAN = {}  # (kind, layer) -> [T, width] clean state


def patch(kind, layer, value):
    """value [B, T, width]: record it (clean run) or restore the planned (row, position) cells."""
    if PLAN["record"]:
        CLEAN[(kind, layer)] = value[0].detach().clone()
        return value
    cells = PLAN["rows"].get(kind, {}).get(layer)
    if not cells:
        return value
    value = value.clone()
    rows = torch.tensor([r for r, _ in cells])
    pos = torch.tensor([t for _, t in cells])
    value[rows, pos] = CLEAN[(kind, layer)][pos]
    return value


def mamba_mixer_forward(mixer, layer):
    """MambaMixer's slow path with s (scan output incl. the D skip) and g = SiLU(z) exposed."""

    def forward(hidden_states, *args, **kwargs):
        B, T, _ = hidden_states.shape
        x, z = mixer.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # [B, E, T] each
        x = mixer.act(mixer.conv1d(x)[..., :T])  # [B, E, T]
        R, N = mixer.time_step_rank, mixer.ssm_state_size
        dt, Bm, Cm = torch.split(mixer.x_proj(x.transpose(1, 2)), [R, N, N], dim=-1)  # [B, T, R], [B, T, N] ×2
        dt = F.softplus(mixer.dt_proj(dt)).transpose(1, 2)  # [B, E, T]
        A = -torch.exp(mixer.A_log.float())  # [E, N]
        dA = torch.exp(A[None, :, None, :] * dt[..., None])  # [B, E, T, N]
        dBu = dt[..., None] * Bm[:, None, :, :] * x[..., None]  # [B, E, T, N]
        state = torch.zeros(B, x.shape[1], N)  # [B, E, N]
        ys = []
        for t in range(T):
            state = dA[:, :, t] * state + dBu[:, :, t]
            ys.append((state * Cm[:, None, t, :]).sum(-1))  # [B, E]
        s = torch.stack(ys, dim=-1) + x * mixer.D[None, :, None]  # [B, E, T]
        s = patch("ssm", layer, s.transpose(1, 2))  # [B, T, E]
        g = patch("gate", layer, mixer.act(z).transpose(1, 2))  # [B, T, E]
        return patch("out", layer, mixer.out_proj(s * g))  # [B, T, D]

    return forward


def output_hook(kind, layer):
    def hook(_module, _inputs, output):
        if isinstance(output, tuple):
            return (patch(kind, layer, output[0]),) + tuple(output[1:])
        return patch(kind, layer, output)

    return hook


def instrument(model):
    """Hooks on every layer; which cells they restore is read from PLAN at run time."""
    if hasattr(model, "backbone"):  # Mamba
        for l, block in enumerate(model.backbone.layers):
            block.mixer.forward = mamba_mixer_forward(block.mixer, l)
            block.register_forward_hook(output_hook("residual", l))
    else:  # GPT-NeoX
        for l, layer in enumerate(model.gpt_neox.layers):
            layer.register_forward_hook(output_hook("residual", l))
            layer.attention.register_forward_hook(output_hook("attn", l))
            layer.mlp.register_forward_hook(output_hook("mlp", l))


def trace_map(model, job):
    """p(answer) at the last position for every (kind, position, centre) cell."""
    clean = torch.tensor([job["clean"]])
    corrupt = torch.tensor(job["corrupt"])
    T = clean.shape[1]
    PLAN["record"] = True
    model(clean)
    PLAN["record"] = None
    out = {}
    for kind, windows in job["kinds"].items():
        cells = [(t, c) for t in range(T) for c in range(len(windows))]  # (position, centre)
        p = [[0.0] * len(windows) for _ in range(T)]
        for c0 in range(0, len(cells), job["chunk"]):
            chunk = cells[c0:c0 + job["chunk"]]
            plan = {}
            for row, (t, c) in enumerate(chunk):
                for layer in windows[c]:
                    plan.setdefault(layer, []).append((row, t))
            PLAN["rows"] = {kind: plan}
            logits = model(corrupt.expand(len(chunk), T)).logits[:, -1]  # [rows, V]
            probs = torch.softmax(logits.double(), dim=-1)[:, job["answer"]]  # [rows]
            for row, (t, c) in enumerate(chunk):
                p[t][c] = probs[row].item()
        PLAN["rows"] = {}
        out[kind] = p
    return out


def main() -> None:
    directory = sys.argv[1]
    job = json.load(sys.stdin)
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    instrument(model)
    ms = []
    with torch.inference_mode():
        for _ in range(2):  # warm-up, then the timed run
            t0 = time.perf_counter()
            p = trace_map(model, job)
            ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "ms": ms, "p": p}))


if __name__ == "__main__":
    main()
