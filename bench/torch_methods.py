"""The PyTorch side of the method-level bench (bench/methods.ts; never used by the library or its tests).

Two experiments, each done as a careful PyTorch + transformers user would.

Causal tracing: the map of one prompt pair, every kind:
forward hooks on the Hugging Face modules for the states that are module outputs (the residual stream,
GPT-NeoX's attention and MLP outputs, Mamba's out_proj), and for Mamba's s and g (no module outputs them)
the mixer's forward replaced by the same computation with those two tensors exposed, as romba does.
Cells are batched: every cell of one kind is a row of one batch (chunked), each row restoring its own
position at its own layers from the clean run.


Knockout: every (source set, window centre) variant of one prompt as a row of one batch (chunked).
GPT-NeoX: attention knockout (Geva et al.): in the window's layers the last token's pre-softmax scores
to the source positions are set to -1e9 in every head, through transformers' own eager attention
function wrapped per layer. Mamba: the paper's mean ablation of a (the conv input, in_proj's x half): in
the window's layers a := the given mean at the sources, every other non-final position clamped to its
clean a, the last position free.

ROME: one edit at the paper's settings (ROME's compute_u / compute_v, on the same context templates and the
same C as ours, both given: statistics are cached in practice), with Adam on δ through a forward hook.

LRE Jacobians: J_k = ∂(stream e at the last token)/∂(stream k at the subject's last token) for several k
(stream k = the residual entering layer k), from one forward with the streams captured by pre-hooks and
D cotangents pushed back at once with torch.autograd.grad(..., is_grads_batched=True).

    python torch_methods.py causal-trace DIR < {"clean": [ids], "corrupt": [[ids]], "answer": id,
                                                "kinds": {kind: [[restored layers of centre 0], ...]}, "chunk": rows}
    python torch_methods.py knockout DIR < {"ids": [ids], "answer": id, "variants": [{"layers": [...], "positions": [...]}],
                                            "means": [[E] per layer] (Mamba) or null, "chunk": rows}
    python torch_methods.py lre-jacobian DIR < {"ids": [ids], "subjectLast": t, "ks": [k...], "e": e}
    python torch_methods.py rome-edit DIR < {"module": name, "rows": [r0, r1], "keyDim": K, "cFile": raw float32 C [K,K],
                                             "keyRows", "rewrite", "kl": [{"ids", "lookup"(, "predictFrom")}], "bare": {...},
                                             "targetIds", "steps", "lr", "klFactor", "weightDecay", "clampFactor", "stopLoss", "stopProb", "stopProbAfter"}
print one JSON line: {"torch", "transformers", "ms": [warm-up, timed], "p": {kind: [[p per centre] per position]}}
or {..., "p": [p per variant]} (knockout) or {..., "J": {k: {"rows": sampled row indices, "values": those rows of J_k, "frobenius": ‖J_k‖_F}}}
or {..., "u", "w", "vStar", "steps"} (rome-edit).
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


def conv_scan(mixer, a):
    """MambaMixer's slow path from a (in_proj's x half, the conv input) [B, E, T] to s, the scan output incl. the D skip [B, E, T]."""
    B, _, T = a.shape
    x = mixer.act(mixer.conv1d(a)[..., :T])  # [B, E, T]
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
    return torch.stack(ys, dim=-1) + x * mixer.D[None, :, None]  # [B, E, T]


def mamba_mixer_forward(mixer, layer):
    """MambaMixer's slow path with s (scan output incl. the D skip) and g = SiLU(z) exposed."""

    def forward(hidden_states, *args, **kwargs):
        x, z = mixer.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # [B, E, T] each
        s = conv_scan(mixer, x)  # [B, E, T]
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


# Knockout rows of the batch being run: layer -> list of (row, source positions); "clean_x": layer -> [E, T].
KNOCK = {"rows": {}, "means": None, "clean_x": {}, "record": False}


def knock_scores(layer, scores):
    """scores [B, H, T, T] before the mask: the last query's scores to each row's sources := -1e9."""
    for row, positions in KNOCK["rows"].get(layer, []):
        scores[row, :, -1, positions] = -1e9
    return scores


def instrument_knockout(model):
    if hasattr(model, "backbone"):  # Mamba: a (in_proj's x half) is not a module output, so the mixer's slow path is rewritten
        for l, block in enumerate(model.backbone.layers):
            block.mixer.forward = mamba_knock_forward(block.mixer, l)
        return
    import transformers.models.gpt_neox.modeling_gpt_neox as neox

    def knocked(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        scores = knock_scores(module.layer_idx, torch.matmul(query, key.transpose(2, 3)) * scaling)  # [B, H, T, T]
        if attention_mask is not None:
            scores = scores + attention_mask
        else:
            T = scores.shape[-1]
            scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)  # [B, H, T, T]
        return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights

    neox.eager_attention_forward = knocked  # looked up at call time by GPTNeoXAttention.forward


def mamba_knock_forward(mixer, layer):
    """MambaMixer's slow path with a (the conv input) replaced per knockout row."""

    def forward(hidden_states, *args, **kwargs):
        T = hidden_states.shape[1]
        x, z = mixer.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # [B, E, T] each
        if KNOCK["record"]:
            KNOCK["clean_x"][layer] = x[0].detach().clone()  # [E, T]
        elif KNOCK["rows"].get(layer):
            x = x.clone()
            mean = KNOCK["means"][layer]  # [E]
            clean = KNOCK["clean_x"][layer]  # [E, T]
            for row, positions in KNOCK["rows"][layer]:
                others = [t for t in range(T - 1) if t not in positions]
                x[row, :, others] = clean[:, others]
                x[row, :, positions] = mean[:, None]
        s = conv_scan(mixer, x)  # [B, E, T]
        return mixer.out_proj((s * mixer.act(z)).transpose(1, 2))  # [B, T, D]

    return forward


def knockout(model, job):
    """p(answer) at the last position for every variant."""
    ids = torch.tensor([job["ids"]])
    T = ids.shape[1]
    KNOCK["means"] = torch.tensor(job["means"]) if job.get("means") else None  # [L, E]
    KNOCK["record"] = True
    model(ids)
    KNOCK["record"] = False
    variants = job["variants"]
    out = []
    for v0 in range(0, len(variants), job["chunk"]):
        chunk = variants[v0:v0 + job["chunk"]]
        plan = {}
        for row, v in enumerate(chunk):
            for layer in v["layers"]:
                plan.setdefault(layer, []).append((row, v["positions"]))
        KNOCK["rows"] = plan
        logits = model(ids.expand(len(chunk), T)).logits[:, -1]  # [rows, V]
        out += torch.softmax(logits.double(), dim=-1)[:, job["answer"]].tolist()
    KNOCK["rows"] = {}
    return out


def layers_of(model):
    return model.backbone.layers if hasattr(model, "backbone") else model.gpt_neox.layers


def lre_jacobians(model, job):
    """{k: J_k [D, D] row-major} for one prompt."""
    ids = torch.tensor([job["ids"]])
    layers = layers_of(model)
    L, e, at = len(layers), job["e"], job["subjectLast"]
    streams = {}
    def capture(k):
        def hook(_module, args, kwargs):
            streams[k] = args[0] if args else kwargs["hidden_states"]
        return hook

    handles = [layers[k].register_forward_pre_hook(capture(k), with_kwargs=True) for k in range(L)]
    if e == L:
        handles.append(layers[L - 1].register_forward_hook(lambda _m, _a, out: streams.__setitem__(L, out[0] if isinstance(out, tuple) else out)))
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_()  # [1, T, D]: the graph's leaf
    model(inputs_embeds=embeds)
    for h in handles:
        h.remove()
    z = streams[e][0, -1]  # [D]
    D = z.shape[0]
    ks = [k for k in job["ks"] if k < e]
    grads = torch.autograd.grad(z, [streams[k] for k in ks], grad_outputs=torch.eye(D), is_grads_batched=True)  # each [D, 1, T, D]
    rows = list(range(0, D, max(1, D // 32)))  # a sample of J's rows keeps the JSON small at D = 768
    return {str(k): {"rows": rows, "values": g[rows, 0, at].tolist(), "frobenius": g[:, 0, at].norm().item()} for k, g in zip(ks, grads)}


def module_named(model, suffix):
    """The one module whose dotted name ends with our weight name's module part (e.g. "layers.6.mixer.out_proj")."""
    found = [m for name, m in model.named_modules() if name == suffix or name.endswith("." + suffix)]
    if len(found) != 1:
        raise SystemExit(f"rome-edit: {len(found)} modules named *{suffix}")
    return found[0]


def padded(rows):
    """Right-padded ids [B, T] and attention mask of rows [{"ids": [...]}]."""
    T = max(len(r["ids"]) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r["ids"])] = torch.tensor(r["ids"])
        mask[b, : len(r["ids"])] = 1
    return ids, mask


def read_site(model, module, r0, r1, rows):
    """The module's input (key) and output rows r0:r1 (value) at each row's lookup position."""
    seen = {}
    h_in = module.register_forward_pre_hook(lambda m, args: seen.__setitem__("k", args[0].detach()))
    h_out = module.register_forward_hook(lambda m, args, out: seen.__setitem__("v", out.detach()))
    ids, mask = padded(rows)
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    h_in.remove()
    h_out.remove()
    at = torch.arange(len(rows)), torch.tensor([r["lookup"] for r in rows])
    return seen["k"][at], seen["v"][at][:, r0:r1]


def rome_edit(model, job):
    """One ROME edit as ROME's compute_u / compute_v do it: k̄ over the context rows, u = C⁻¹k̄/‖C⁻¹k̄‖,
    δ by Adam on nll + kl_factor·KL(now‖init) + weight_decay·‖δ‖/‖v_init‖² (clamped to clamp·‖v_init‖),
    w = (v* − v_cur)/(uᵀk_cur) at the bare prompt; returns u, w and v*."""
    model.requires_grad_(False)  # only δ is optimised
    module = module_named(model, job["module"])
    r0, r1 = job["rows"]
    K = job["keyDim"]
    C = torch.frombuffer(bytearray(open(job["cFile"], "rb").read()), dtype=torch.float32).reshape(K, K).double()
    keys, _ = read_site(model, module, r0, r1, job["keyRows"])
    k_bar = keys.double().mean(0)
    c_inv_k = torch.linalg.solve(C, k_bar)
    u = (c_inv_k / c_inv_k.norm()).float()
    rewrite, kl_rows, target = job["rewrite"], job["kl"], job["targetIds"]
    rows = rewrite + kl_rows
    ids, mask = padded(rows)
    lookups = torch.tensor([r["lookup"] for r in rows])
    delta = torch.zeros(r1 - r0, requires_grad=True)
    state = {"v_init": None}

    def add_delta(m, args, out):
        if state["v_init"] is None:
            state["v_init"] = out[0, lookups[0], r0:r1].detach().clone()  # the bare prompt "{}"
        out = out.clone()
        out[torch.arange(len(rows)), lookups, r0:r1] += delta
        return out

    hook = module.register_forward_hook(add_delta)
    opt = torch.optim.Adam([delta], lr=job["lr"])
    kl_init = None
    nr = len(rewrite)
    tgt = torch.tensor(target)
    for step in range(job["steps"]):
        opt.zero_grad()
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, -1)  # [B, T, V]
        pos = torch.tensor([[r["predictFrom"] + m for m in range(len(target))] for r in rewrite])  # [nr, M]
        nll_each = -logp[torch.arange(nr)[:, None], pos, tgt[None, :]].mean(1)  # [nr]
        kl_logp = logp[torch.arange(nr, len(rows)), lookups[nr:]]  # [nKl, V]
        if kl_init is None:
            kl_init = kl_logp.detach().clone()
        kl = job["klFactor"] * F.kl_div(kl_init, kl_logp, log_target=True, reduction="batchmean")
        decay = job["weightDecay"] * delta.norm() / state["v_init"].norm() ** 2
        loss = nll_each.mean() + kl + decay
        prob = torch.exp(-nll_each).mean().item()
        if loss.item() < job["stopLoss"] or step == job["steps"] - 1 or (step > job["stopProbAfter"] and prob > job["stopProb"]):
            break
        loss.backward()
        opt.step()
        with torch.no_grad():
            max_norm = job["clampFactor"] * state["v_init"].norm()
            if delta.norm() > max_norm:
                delta.mul_(max_norm / delta.norm())
    hook.remove()
    v_star = state["v_init"] + delta.detach()
    k_cur, v_cur = read_site(model, module, r0, r1, [job["bare"]])
    w = (v_star - v_cur[0]) / (u @ k_cur[0])
    with torch.no_grad():
        edited = module.weight.detach().clone()  # the edited matrix, the model untouched (as our edited view)
        edited[r0:r1] += torch.outer(w, u)
    return {"u": u.tolist(), "w": w.tolist(), "vStar": v_star.tolist(), "steps": step + 1}


def main() -> None:
    method, directory = sys.argv[1], sys.argv[2]
    job = json.load(sys.stdin)
    torch.set_num_threads(2)
    eager = {"attn_implementation": "eager"} if method == "knockout" else {}
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **eager)
    model.eval()
    ms = []
    if method == "causal-trace":
        instrument(model)
        with torch.inference_mode():
            for _ in range(2):  # warm-up, then the timed run
                t0 = time.perf_counter()
                result = {"p": trace_map(model, job)}
                ms.append((time.perf_counter() - t0) * 1000)
    elif method == "knockout":
        instrument_knockout(model)
        with torch.inference_mode():
            for _ in range(2):
                t0 = time.perf_counter()
                result = {"p": knockout(model, job)}
                ms.append((time.perf_counter() - t0) * 1000)
    elif method == "rome-edit":
        for _ in range(2):
            t0 = time.perf_counter()
            result = rome_edit(model, job)
            ms.append((time.perf_counter() - t0) * 1000)
    elif method == "lre-jacobian":
        for _ in range(2):
            t0 = time.perf_counter()
            result = {"J": lre_jacobians(model, job)}
            ms.append((time.perf_counter() - t0) * 1000)
    else:
        raise SystemExit(f"unknown method {method!r}")
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "ms": ms, **result}))


if __name__ == "__main__":
    main()
