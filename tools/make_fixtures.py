"""Make parity fixtures: tiny random HF Mamba and GPT-NeoX models, with reference activations and gradients.

Provenance: copied from the project's shared tools (shared/tools/make_fixtures.py, md5
6a6b25c39b3b6973493c77e6287e2e9f), which made test/fixtures/tiny-{mamba,neox}; extended for issue #14 with
the Mamba `embed`, `norm` and per-position `state` arrays and every GPT-NeoX hook point (ln1, q/k/v, scores, pattern,
z, ln2, mlp_pre, resid_post). The weights, the sequences and every array the original wrote are unchanged:
`--weights-from DIR` reuses the committed weights, and `--merge-into DIR` checks that a regeneration reproduces
every committed array (to float32 rounding) and adds only the missing arrays to DIR's reference.json.

Run on the side with torch + transformers (no part of factlens needs Python):
    python3 tools/make_fixtures.py OUTDIR shared                     # fresh fixtures
    python3 tools/make_fixtures.py OUTDIR shared --weights-from test/fixtures --merge-into test/fixtures
Writes OUTDIR/<name>/{config.json, model.safetensors, generation_config.json, reference.json}.
"""

import json, os, sys, math
import torch
from transformers import MambaConfig, MambaForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
OUT = sys.argv[1]
DEV = "cpu"  # reference on CPU in float32 (deterministic)


# Checkpoint names that transformers 5.18 loads under another module name.
SAVED_AS = {"embed_out.weight": "lm_head.weight"}


def adopt_weights(m, name):
    """With --weights-from DIR: use DIR/<name>/model.safetensors instead of the seeded weights just made.

    The seeds reproduce the committed weights only to rounding across torch versions (torch 2.13's log
    gives A_log 1 ulp (1.2e-7) away from the 2.11 fixtures'), so a regeneration that must keep every
    committed array takes the committed weights, after checking they are the seeded ones to 1e-6.
    """
    if "--weights-from" not in sys.argv:
        return
    from safetensors.torch import load_file
    old = load_file(os.path.join(sys.argv[sys.argv.index("--weights-from") + 1], name, "model.safetensors"))
    state = m.state_dict()
    with torch.no_grad():
        for k, v in old.items():
            k = SAVED_AS.get(k, k)
            assert (state[k] - v).abs().max().item() <= 1e-6, (name, k, "the seeded weights are not the committed ones")
            state[k].copy_(v)


def save(m, name):
    """Writes the checkpoint (with --weights-from, the committed weights) and returns its folder."""
    adopt_weights(m, name)
    d = os.path.join(OUT, name)
    m.save_pretrained(d, safe_serialization=True)
    return d


def nll_backward(m, x, module):
    """Sum of next-token NLL of x, backpropagated; returns it and its gradient wrt `module`'s output."""
    m.zero_grad()
    holder = {}
    def hook(mod, inp, out):
        out.retain_grad(); holder["o"] = out
        return out
    h = module.register_forward_hook(hook)
    out = m(x)
    h.remove()
    logp = torch.log_softmax(out.logits[0, :-1], -1)
    nll = -logp.gather(1, x[0, 1:, None]).sum()
    nll.backward()
    return nll, holder["o"].grad


def tolist(t):
    return t.detach().double().cpu().tolist()


def mamba_fixture(name, seed, cfg_kw, seqs):
    torch.manual_seed(seed)
    cfg = MambaConfig(**cfg_kw)
    m = MambaForCausalLM(cfg).float().eval()
    # randomise parameters away from init so every path matters
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("A_log"):
                p.copy_(torch.log(torch.rand_like(p) * 4 + 0.5))
            elif n.endswith(".D"):
                p.copy_(torch.randn_like(p) * 0.5 + 1.0)
            elif "norm" in n:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif n.endswith("dt_proj.bias"):
                p.copy_(torch.randn_like(p) * 0.5 - 2.0)
            else:
                p.copy_(torch.randn_like(p) * (0.6 / math.sqrt(max(p.shape[-1], 1))))
    d = save(m, name)
    cap = {}
    hooks = []
    for i, layer in enumerate(m.backbone.layers):
        mixer = layer.mixer
        def iph(mod, inp, out, i=i):
            cap[f"layers.{i}.in_proj"] = out
            cap[f"layers.{i}.norm"] = inp[0]  # the RMSNorm output
        hooks.append(mixer.in_proj.register_forward_hook(iph))
        def oph(mod, inp, out, i=i):
            cap[f"layers.{i}.out_proj_in"] = inp[0]
            cap[f"layers.{i}.mixer_out"] = out
        hooks.append(mixer.out_proj.register_forward_hook(oph))
    # MambaModel's hidden_states start at layer 0's output, so the embedding output is recorded here.
    hooks.append(m.backbone.embeddings.register_forward_hook(lambda mod, inp, out: cap.__setitem__("embed", out)))
    ref = {"model": name, "arch": "mamba", "config": cfg_kw, "cases": []}
    for ids in seqs:
        cap.clear()
        x = torch.tensor([ids])
        out = m(x, output_hidden_states=True)
        L = len(ids)
        case = {"input_ids": ids, "logits": tolist(out.logits[0]),
                "hidden_states": [tolist(h[0]) for h in out.hidden_states], "embed": tolist(cap["embed"][0])}
        di = cfg.intermediate_size if hasattr(cfg, "intermediate_size") else cfg.expand * cfg.hidden_size
        layers = []
        for i in range(cfg.num_hidden_layers):
            xz = cap[f"layers.{i}.in_proj"][0]
            xin, z = xz[:, :di], xz[:, di:]
            mx = m.backbone.layers[i].mixer
            F = torch.nn.functional
            conv = F.conv1d(xin.t()[None], mx.conv1d.weight, mx.conv1d.bias, padding=mx.conv1d.weight.shape[-1] - 1, groups=di)[0, :, :L].t()
            u = F.silu(conv)
            dbc = mx.x_proj(u)
            R, N = mx.time_step_rank, mx.ssm_state_size
            dt = F.softplus(mx.dt_proj(dbc[:, :R]))
            Bm, Cm = dbc[:, R:R + N], dbc[:, R + N:]
            A = -torch.exp(mx.A_log.float())
            hstate = torch.zeros(di, N)
            ys, states = [], []
            for t in range(L):
                hstate = torch.exp(dt[t][:, None] * A) * hstate + (dt[t][:, None] * Bm[t][None, :]) * u[t][:, None]
                states.append(hstate)
                ys.append(hstate @ Cm[t] + mx.D * u[t])
            ssm = torch.stack(ys)
            g = F.silu(z)
            y = cap[f"layers.{i}.out_proj_in"][0]
            err = (ssm * g - y).abs().max().item()
            assert err < 1e-4, ("scan mismatch", err)
            layers.append({"x_in_proj": tolist(xin), "z_in_proj": tolist(z), "conv_out": tolist(conv),
                           "ssm_in": tolist(u), "dt": tolist(dt), "B": tolist(Bm), "C": tolist(Cm), "ssm_out": tolist(ssm), "gate": tolist(g), "out_proj_in": tolist(y),
                           "mixer_out": tolist(cap[f"layers.{i}.mixer_out"][0]),
                           "norm": tolist(cap[f"layers.{i}.norm"][0]), "state": tolist(torch.stack(states))})
        case["layers"] = layers
        # gradient reference: NLL of next-token targets, wrt one mixer output and one weight
        tgt_layer = cfg.num_hidden_layers // 2
        nll, d_out = nll_backward(m, x, m.backbone.layers[tgt_layer].mixer.out_proj)
        case["grad"] = {"loss": "sum of next-token NLL over positions", "loss_value": float(nll),
                         "layer": tgt_layer,
                         "d_loss_d_mixer_out": tolist(d_out[0]),
                         "d_loss_d_out_proj_weight": tolist(m.backbone.layers[tgt_layer].mixer.out_proj.weight.grad)}
        ref["cases"].append(case)
    for hk in hooks: hk.remove()
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(name, "ok", sum(p.numel() for p in m.parameters()))


def neox_fixture(name, seed, cfg_kw, seqs):
    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(**cfg_kw)
    cfg._attn_implementation = "eager"
    m = GPTNeoXForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "layernorm" in n or "layer_norm" in n:
                p.copy_((1.0 if n.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * (0.8 / math.sqrt(max(p.shape[-1], 1))))
    d = save(m, name)
    cap = {}
    hooks = []
    # q/k/v after rotary reach the attention function as arguments: wrap it (eager) to record them per layer.
    import transformers.models.gpt_neox.modeling_gpt_neox as neox_mod
    eager = neox_mod.eager_attention_forward
    def recording_attention(module, query, key, value, attention_mask, scaling, **kw):
        i = module.layer_idx
        cap[f"{i}.q"], cap[f"{i}.k"], cap[f"{i}.v"] = query, key, value  # [B,H,T,Dh]
        cap[f"{i}.scores"] = torch.matmul(query, key.transpose(2, 3)) * scaling  # [B,H,T,T], before the mask
        out, weights = eager(module, query, key, value, attention_mask, scaling, **kw)
        cap[f"{i}.pattern"] = weights  # [B,H,T,T]
        return out, weights
    neox_mod.eager_attention_forward = recording_attention
    def put(key):
        return lambda mod, inp, out: cap.__setitem__(key, out)
    def put_input(key):
        return lambda mod, inp, out: cap.__setitem__(key, inp[0])
    for i, layer in enumerate(m.gpt_neox.layers):
        hooks.append(layer.input_layernorm.register_forward_hook(put(f"{i}.ln1")))
        hooks.append(layer.post_attention_layernorm.register_forward_hook(put(f"{i}.ln2")))
        hooks.append(layer.attention.dense.register_forward_hook(put_input(f"{i}.z")))
        hooks.append(layer.mlp.dense_h_to_4h.register_forward_hook(put(f"{i}.mlp_pre")))
        hooks.append(layer.register_forward_hook(lambda mod, inp, out, i=i: cap.__setitem__(f"{i}.resid_post", out[0] if isinstance(out, tuple) else out)))
        hooks.append(layer.attention.register_forward_hook(lambda mod, inp, out, i=i: cap.__setitem__(f"{i}.attn", out[0] if isinstance(out, tuple) else out)))
        hooks.append(layer.mlp.register_forward_hook(lambda mod, inp, out, i=i: cap.__setitem__(f"{i}.mlp", out)))
        hooks.append(layer.mlp.dense_4h_to_h.register_forward_hook(lambda mod, inp, out, i=i: cap.__setitem__(f"{i}.mlp_key", inp[0])))
    ref = {"model": name, "arch": "gpt_neox", "config": cfg_kw, "cases": []}
    for ids in seqs:
        cap.clear()
        x = torch.tensor([ids])
        out = m(x, output_hidden_states=True)
        case = {"input_ids": ids, "logits": tolist(out.logits[0]),
                "hidden_states": [tolist(h[0]) for h in out.hidden_states],
                "layers": [{"attn_out": tolist(cap[f"{i}.attn"][0]), "mlp_out": tolist(cap[f"{i}.mlp"][0]),
                            "mlp_key": tolist(cap[f"{i}.mlp_key"][0]),
                            **{k: tolist(cap[f"{i}.{k}"][0]) for k in NEOX_EXTRA}} for i in range(cfg.num_hidden_layers)]}
        tgt_layer = cfg.num_hidden_layers // 2
        nll, d_out = nll_backward(m, x, m.gpt_neox.layers[tgt_layer].mlp)
        case["grad"] = {"loss": "sum of next-token NLL over positions", "loss_value": float(nll), "layer": tgt_layer,
                         "d_loss_d_mlp_out": tolist(d_out[0]),
                         "d_loss_d_dense_4h_to_h_weight": tolist(m.gpt_neox.layers[tgt_layer].mlp.dense_4h_to_h.weight.grad)}
        ref["cases"].append(case)
    for hk in hooks: hk.remove()
    neox_mod.eager_attention_forward = eager
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(name, "ok", sum(p.numel() for p in m.parameters()))


NEOX_EXTRA = ["ln1", "q", "k", "v", "scores", "pattern", "z", "ln2", "mlp_pre", "resid_post"]


def merge_into(new_dir, old_dir, name):
    """Adds the arrays the committed fixture lacks, keeping every committed number as it is.

    First checks that the committed weights were used (bit for bit) and that every committed array
    was reproduced to float32 rounding (max |new − old| ≤ 1e-6 × the array's largest |value|: torch
    2.13's kernels round differently from 2.11's by a few ulps). Then writes old_dir/<name>/reference.json
    as the committed content plus the new keys, so no committed number changes at all.
    """
    with open(os.path.join(new_dir, name, "model.safetensors"), "rb") as a, open(os.path.join(old_dir, name, "model.safetensors"), "rb") as b:
        assert a.read() == b.read(), (name, "weights differ")
    new = json.load(open(os.path.join(new_dir, name, "reference.json")))
    old_path = os.path.join(old_dir, name, "reference.json")
    old = json.load(open(old_path))
    worst = {}

    def flat(x):
        return [v for y in x for v in flat(y)] if isinstance(x, list) else [x]

    def walk(o, n, where):
        if isinstance(o, dict):
            for k in o:
                assert k in n, (where, k, "missing")
                walk(o[k], n[k], k)
        elif isinstance(o, list) and o and isinstance(o[0], dict):
            assert len(o) == len(n), (where, "length")
            for a, b in zip(o, n):
                walk(a, b, where)
        elif isinstance(o, (list, float)):
            fo, fn = flat(o), flat(n)
            assert len(fo) == len(fn), (where, "size")
            scale = max(max(abs(v) for v in fo), 1e-30)
            rel = max(abs(a - b) for a, b in zip(fo, fn)) / scale
            assert rel <= 1e-6, (name, where, "reproduced only to", rel)
            worst[where] = max(worst.get(where, 0.0), rel)
        else:
            assert o == n, (where, o, n)

    def add_missing(o, n):
        if isinstance(o, dict):
            for k in n:
                if k not in o:
                    o[k] = n[k]
                else:
                    add_missing(o[k], n[k])
        elif isinstance(o, list) and o and isinstance(o[0], dict):
            for a, b in zip(o, n):
                add_missing(a, b)

    walk(old, new, name)
    print(name, "committed arrays reproduced; largest relative difference", max(worst.values()), "in", max(worst, key=worst.get))
    add_missing(old, new)
    with open(old_path, "w") as f:
        json.dump(old, f)


if __name__ == "__main__":
    import transformers
    print("torch", torch.__version__, "transformers", transformers.__version__)
    g = torch.Generator().manual_seed(0)
    def seqs(V, lens, seed):
        g = torch.Generator().manual_seed(seed)
        return [torch.randint(0, V, (n,), generator=g).tolist() for n in lens]
    which = sys.argv[2] if len(sys.argv) > 2 else "shared"
    if which == "shared":
        mamba_fixture("tiny-mamba", 1, dict(vocab_size=512, hidden_size=64, state_size=16, num_hidden_layers=4, expand=2, conv_kernel=4, use_bias=False, use_conv_bias=True, tie_word_embeddings=True, pad_vocab_size_multiple=8), seqs(512, [1, 7, 13], 11))
        neox_fixture("tiny-neox", 2, dict(vocab_size=512, hidden_size=64, num_attention_heads=4, num_hidden_layers=4, intermediate_size=256, rotary_pct=0.25, use_parallel_residual=True, max_position_embeddings=128, tie_word_embeddings=False, rotary_emb_base=10000), seqs(512, [1, 6, 12], 12))
    if "--merge-into" in sys.argv:
        old_dir = sys.argv[sys.argv.index("--merge-into") + 1]
        for name in ["tiny-mamba", "tiny-neox"]:
            merge_into(OUT, old_dir, name)
