"""Parity fixtures for the SSM architectures beyond Mamba-1: Falcon-Mamba and Mamba-2 (issue #17).

Tiny random transformers models on CPU in float32, with reference activations for every hook point and
gradients, the same layout as tools/make_fixtures.py (whose helpers this imports). Falcon-Mamba reuses
make_fixtures.mamba_fixture with transformers' FalconMamba classes (its reference scan applies the
weightless mixer norms). Mamba-2 runs transformers' torch path (the chunked SSD `torch_forward`, with a
chunk_size smaller than the sequences) and the script's own per-step recurrence, which must agree with
transformers' scan output to 1e-4 as it runs (so the fixture also shows chunk_size does not change results).

Run on the side with torch + transformers (no part of factlens needs Python):
    python3 tools/make_ssm_fixtures.py test/fixtures
Writes test/fixtures/<name>/{config.json, model.safetensors, generation_config.json, reference.json}.
"""

import json, math, os, sys
import torch
import torch.nn.functional as F
from transformers import FalconMambaConfig, FalconMambaForCausalLM, Mamba2Config, Mamba2ForCausalLM

import make_fixtures as mf  # OUT = sys.argv[1], as here


def mamba2_reference_layer(mx, cfg, proj, L):
    """Every hook array of one Mamba2Mixer from its in_proj output [T, ...], by a per-step recurrence."""
    E, G, N, H, P = mx.intermediate_size, cfg.n_groups, cfg.state_size, cfg.num_heads, cfg.head_dim
    z, xBC, dt_in = proj.split([E, mx.conv_dim, H], dim=-1)
    K = mx.conv1d.weight.shape[-1]
    conv = F.conv1d(xBC.t()[None], mx.conv1d.weight, mx.conv1d.bias, padding=K - 1, groups=mx.conv_dim)[0, :, :L].t()
    act = F.silu(conv)
    x, Bm, Cm = act.split([E, G * N, G * N], dim=-1)
    dt = F.softplus(dt_in + mx.dt_bias).clamp(cfg.time_step_limit[0], cfg.time_step_limit[1])  # [T,H]
    A = -torch.exp(mx.A_log.float())  # [H]
    group = torch.arange(H) // (H // G)  # head -> its B/C group
    xh = x.view(L, H, P)
    Bg, Cg = Bm.view(L, G, N)[:, group], Cm.view(L, G, N)[:, group]  # [T,H,N]
    state = torch.zeros(H, P, N)
    ys, states = [], []
    for t in range(L):
        state = torch.exp(dt[t] * A)[:, None, None] * state + (dt[t][:, None, None] * xh[t][:, :, None]) * Bg[t][:, None, :]
        states.append(state)
        ys.append((state @ Cg[t][:, :, None])[..., 0] + mx.D[:, None] * xh[t])  # [H,P]
    ssm = torch.stack(ys).reshape(L, E)
    return {"z": z, "x": xBC[:, :E], "B_in": xBC[:, E:E + G * N], "C_in": xBC[:, E + G * N:], "dt_in": dt_in,
            "conv": conv, "ssm_in": x, "B": Bm, "C": Cm, "dt": dt, "state": torch.stack(states), "ssm_out": ssm,
            "gate": F.silu(z)}


def mamba2_fixture(name, seed, cfg_kw, seqs):
    torch.manual_seed(seed)
    cfg = Mamba2Config(**cfg_kw)
    m = Mamba2ForCausalLM(cfg).float().eval()
    mf.randomise_mamba(m)
    d = mf.save(m, name)
    cap, hooks = {}, []
    for i, layer in enumerate(m.backbone.layers):
        mx = layer.mixer
        hooks.append(mx.in_proj.register_forward_hook(lambda mod, inp, out, i=i: cap.update({f"{i}.norm": inp[0], f"{i}.in_proj": out})))
        hooks.append(mx.norm.register_forward_hook(lambda mod, inp, out, i=i: cap.update({f"{i}.scan": inp[0], f"{i}.out_proj_in": out})))
        hooks.append(mx.out_proj.register_forward_hook(lambda mod, inp, out, i=i: cap.update({f"{i}.mixer_out": out})))
    hooks.append(m.backbone.embeddings.register_forward_hook(lambda mod, inp, out: cap.__setitem__("embed", out)))
    ref = {"model": name, "arch": "mamba2", "config": cfg_kw, "cases": []}
    for ids in seqs:
        cap.clear()
        x = torch.tensor([ids])
        out = m(x, output_hidden_states=True)
        L = len(ids)
        case = {"input_ids": ids, "logits": mf.tolist(out.logits[0]),
                "hidden_states": [mf.tolist(h[0]) for h in out.hidden_states], "embed": mf.tolist(cap["embed"][0])}
        layers = []
        for i in range(cfg.num_hidden_layers):
            arrays = mamba2_reference_layer(m.backbone.layers[i].mixer, cfg, cap[f"{i}.in_proj"][0], L)
            err = (arrays["ssm_out"] - cap[f"{i}.scan"][0].reshape(L, -1)).abs().max().item()
            assert err < 1e-4, ("recurrent scan differs from transformers' chunked scan", name, i, err)
            arrays.update(norm=cap[f"{i}.norm"][0], out_proj_in=cap[f"{i}.out_proj_in"][0], mixer_out=cap[f"{i}.mixer_out"][0])
            layers.append({k: mf.tolist(v) for k, v in arrays.items()})
        case["layers"] = layers
        tgt = cfg.num_hidden_layers // 2
        nll, d_out = mf.nll_backward(m, x, m.backbone.layers[tgt].mixer.out_proj)
        mixer = m.backbone.layers[tgt].mixer
        case["grad"] = {"loss": "sum of next-token NLL over positions", "loss_value": float(nll), "layer": tgt,
                        "d_loss_d_mixer_out": mf.tolist(d_out[0]),
                        "d_loss_d_out_proj_weight": mf.tolist(mixer.out_proj.weight.grad),
                        "d_loss_d_in_proj_weight": mf.tolist(mixer.in_proj.weight.grad),
                        "d_loss_d_A_log": mf.tolist(mixer.A_log.grad)}
        ref["cases"].append(case)
    for hk in hooks:
        hk.remove()
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(name, "ok", sum(p.numel() for p in m.parameters()))


if __name__ == "__main__":
    import transformers
    print("torch", torch.__version__, "transformers", transformers.__version__)

    def seqs(V, lens, seed):
        g = torch.Generator().manual_seed(seed)
        return [torch.randint(0, V, (n,), generator=g).tolist() for n in lens]

    mf.mamba_fixture("tiny-falcon-mamba", 3, dict(vocab_size=256, hidden_size=32, state_size=8, num_hidden_layers=3, expand=2, conv_kernel=4,
                                                  use_bias=False, use_conv_bias=True, tie_word_embeddings=False, mixer_rms_eps=1e-6, use_mambapy=False),
                     seqs(256, [1, 7, 12], 13), classes=(FalconMambaConfig, FalconMambaForCausalLM))
    # n_groups 2 of 4 heads, chunk_size 4 < T (= 7, 12): transformers' chunked SSD spans several chunks.
    common = dict(vocab_size=256, hidden_size=32, state_size=8, num_hidden_layers=3, expand=2, head_dim=16, num_heads=4, n_groups=2,
                  conv_kernel=4, chunk_size=4, use_bias=False, use_conv_bias=True, layer_norm_epsilon=1e-5)
    mamba2_fixture("tiny-mamba2", 4, dict(common, tie_word_embeddings=False), seqs(256, [1, 7, 12], 14))
    mamba2_fixture("tiny-mamba2-tied", 5, dict(common, tie_word_embeddings=True, use_bias=True, n_groups=4, chunk_size=3), seqs(256, [1, 5, 9], 15))
