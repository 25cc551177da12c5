"""AtP reference estimates from PyTorch autograd for test/unit/attribution-torch.test.ts.

For the tiny fixtures (test/fixtures/tiny-{mamba,neox}), one clean/corrupted pair: the denoising estimate
(a_clean - a_corrupt) . d log p(answer | last position) / d a on the corrupted run, per (layer, position), for
the block outputs HF modules expose: the residual after each layer (layer output), and Mamba's mixer output /
GPT-NeoX's attention and MLP outputs. Gradients come from torch, activations from forward hooks: nothing is
shared with factlens' engine.

Run on the side (no part of factlens needs Python):
    python3 tools/atp_fixture.py test/fixtures > test/fixtures/atp-reference.json
"""

import json, os, sys
import torch
from transformers import AutoModelForCausalLM

FIX = sys.argv[1]
CLEAN = [191, 80, 91, 337, 439, 269, 332, 17, 250]
CORRUPT = [191, 80, 11, 402, 439, 269, 332, 17, 250]
ANSWER = 42


def modules(name, m):
    if name == "tiny-mamba":
        layers = m.backbone.layers
        return {"resid_post": list(layers), "mixer.out": [l.mixer for l in layers]}
    layers = m.gpt_neox.layers
    return {"resid_post": list(layers), "attn.out": [l.attention for l in layers], "mlp.out": [l.mlp for l in layers]}


def first(o):
    return o[0] if isinstance(o, tuple) else o


def run(m, mods, ids, keep_grad):
    acts, handles = {}, []
    for kind, ms in mods.items():
        for l, mod in enumerate(ms):
            def hook(_mod, _inp, out, key=(kind, l)):
                t = first(out)
                if keep_grad:
                    t.retain_grad()
                acts[key] = t
            handles.append(mod.register_forward_hook(hook))
    logits = m(torch.tensor([ids])).logits[0, -1]
    for h in handles:
        h.remove()
    return acts, torch.log_softmax(logits, -1)[ANSWER]


out = {}
for name in ["tiny-mamba", "tiny-neox"]:
    m = AutoModelForCausalLM.from_pretrained(os.path.join(FIX, name), torch_dtype=torch.float32).eval()
    mods = modules(name, m)
    with torch.no_grad():
        clean, _ = run(m, mods, CLEAN, False)
    corrupt, metric = run(m, mods, CORRUPT, True)
    metric.backward()
    kinds = {}
    for kind, ms in mods.items():
        kinds[kind] = [((clean[(kind, l)] - corrupt[(kind, l)].detach()) * corrupt[(kind, l)].grad)[0].sum(-1).tolist() for l in range(len(ms))]
    out[name] = {"clean": CLEAN, "corrupt": CORRUPT, "answer": ANSWER, "metric": "logprob", "base": metric.item(), "kinds": kinds}
json.dump(out, sys.stdout)
print()
