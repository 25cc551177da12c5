"""Make parity fixtures for the adapter-table transformers: tiny random GPT-2, Llama (GQA), Mistral, Qwen2
(q/k/v biases, tied head) and Qwen3 (q/k norm, head_dim != hidden/heads) checkpoints, Llama with scaled rotary
(llama3, yarn) and Mistral / Qwen2 with sliding windows shorter than the sequence, with reference
activations at every hook point and gradients, from Hugging Face transformers (eager attention, float32, CPU).

Run on the side with torch + transformers (no part of factlens needs Python):
    python3 tools/make_transformer_fixtures.py OUTDIR
Writes OUTDIR/tiny-<arch>/{config.json, model.safetensors, generation_config.json, reference.json}.

How each array is taken (all [T][...] with the batch index dropped; see test/fixtures/README.md):
q/k/v/pattern are what transformers' eager attention function receives and returns (q, k after rotary and
q/k norm, k/v BEFORE repeat_kv, i.e. one per key/value head); `scores` is q·kᵀ·scaling with k repeated,
before the causal mask; the rest are module inputs/outputs recorded by forward hooks.
"""

import importlib, json, math, os, sys
import torch
import transformers

OUT = sys.argv[1]
torch.manual_seed(0)

# Per fixture: config class, keyword arguments, whether the head is tied.
COMMON_LLAMA = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                    max_position_embeddings=128, rms_norm_eps=1e-5)
FIXTURES = {
    "tiny-gpt2": ("GPT2Config", "GPT2LMHeadModel", "gpt2",
                  dict(vocab_size=512, n_embd=64, n_layer=4, n_head=4, n_positions=64, tie_word_embeddings=True, bos_token_id=0, eos_token_id=0), 11),
    "tiny-llama": ("LlamaConfig", "LlamaForCausalLM", "llama",
                   dict(COMMON_LLAMA, num_key_value_heads=2, rope_theta=500000.0, tie_word_embeddings=False), 12),
    "tiny-mistral": ("MistralConfig", "MistralForCausalLM", "mistral",
                     dict(COMMON_LLAMA, num_key_value_heads=1, rope_theta=10000.0, sliding_window=None, tie_word_embeddings=False), 13),
    "tiny-qwen2": ("Qwen2Config", "Qwen2ForCausalLM", "qwen2",
                   dict(COMMON_LLAMA, num_key_value_heads=2, rope_theta=1000000.0, tie_word_embeddings=True), 14),
    "tiny-qwen3": ("Qwen3Config", "Qwen3ForCausalLM", "qwen3",
                   dict(COMMON_LLAMA, num_key_value_heads=2, head_dim=32, rope_theta=1000000.0, tie_word_embeddings=False), 15),
    # Scaled rotary: Llama 3.1's "llama3" (original context 64, so short, blended and long wavelengths all occur)
    # and "yarn" (factor 4 over an original 32 positions: ramp between extrapolated and interpolated dims, and
    # cos/sin scaled by its attention factor).
    "tiny-llama31": ("LlamaConfig", "LlamaForCausalLM", "llama",
                     dict(COMMON_LLAMA, num_key_value_heads=2, tie_word_embeddings=False,
                          rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                                               high_freq_factor=4.0, original_max_position_embeddings=64)), 16),
    "tiny-llama-yarn": ("LlamaConfig", "LlamaForCausalLM", "llama",
                        dict(COMMON_LLAMA, num_key_value_heads=4, tie_word_embeddings=True,
                             rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0, original_max_position_embeddings=32)), 17),
    # Sliding-window attention with windows shorter than the 13-token case: Mistral windows every layer,
    # Qwen2 (use_sliding_window) the layers from max_window_layers on.
    "tiny-mistral-window": ("MistralConfig", "MistralForCausalLM", "mistral",
                            dict(COMMON_LLAMA, num_key_value_heads=2, rope_theta=10000.0, sliding_window=4, tie_word_embeddings=False), 18),
    "tiny-qwen2-window": ("Qwen2Config", "Qwen2ForCausalLM", "qwen2",
                          dict(COMMON_LLAMA, num_key_value_heads=2, rope_theta=1000000.0, use_sliding_window=True, sliding_window=5,
                               max_window_layers=2, tie_word_embeddings=True), 19),
}
# Fixtures whose layers must show a window in their attention pattern: name → (window, windowed layers).
WINDOWED = {"tiny-mistral-window": (4, [0, 1, 2, 3]), "tiny-qwen2-window": (5, [2, 3])}
SEQS = [[5], [3, 17, 250, 9, 41, 100, 7], [88, 2, 7, 301, 5, 42, 11, 12, 13, 400, 1, 99, 3]]


def tolist(t):
    return t.detach().double().cpu().tolist()


def randomise(m):
    """Push every parameter away from its init so that every path (biases, norms) matters."""
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n or n.split(".")[-2].startswith("ln"):
                p.copy_((1.0 + 0.1 * torch.randn_like(p)) if n.endswith("weight") else 0.1 * torch.randn_like(p))
            elif n.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * (0.6 / 8.0))


class AttentionRecorder:
    """Wraps the modeling module's eager_attention_forward to record what each layer's attention sees."""

    def __init__(self, modeling):
        self.modeling, self.inner, self.calls = modeling, modeling.eager_attention_forward, []
        rec = self

        def wrapped(module, query, key, value, attention_mask, *args, **kwargs):
            out = rec.inner(module, query, key, value, attention_mask, *args, **kwargs)
            groups = query.shape[1] // key.shape[1]
            k_all = key.repeat_interleave(groups, dim=1)
            scaling = kwargs.get("scaling", None)
            if scaling is None:
                scaling = module.scaling if hasattr(module, "scaling") else 1 / math.sqrt(query.shape[-1])
            rec.calls.append({"q": query[0], "k": key[0], "v": value[0], "scores": (query @ k_all.transpose(2, 3) * scaling)[0], "pattern": out[1][0]})
            return out

        modeling.eager_attention_forward = wrapped


def layer_modules(m, arch):
    if arch == "gpt2":
        return m.transformer.h, m.transformer.ln_f
    return m.model.layers, m.model.norm


# Per family: (module inside a layer, fixture key, its output or its input).
RECORDED = {
    "gpt2": [("ln_1", "ln1", "out"), ("ln_2", "ln2", "out"), ("attn", "attn_out", "out"), ("attn.c_proj", "z", "in"),
             ("mlp.c_fc", "mlp_pre", "out"), ("mlp.c_proj", "mlp_key", "in")],
    "llama": [("input_layernorm", "ln1", "out"), ("post_attention_layernorm", "ln2", "out"), ("self_attn", "attn_out", "out"),
              ("self_attn.o_proj", "z", "in"), ("mlp.gate_proj", "mlp_pre", "out"), ("mlp.up_proj", "mlp_pre_linear", "out"),
              ("mlp.down_proj", "mlp_key", "in")],
}
for family in ["mistral", "qwen2", "qwen3"]:
    RECORDED[family] = RECORDED["llama"]


def capture_hooks(m, arch, cap):
    layers, final = layer_modules(m, arch)
    hs = []
    def put(key):
        return lambda mod, inp, out: cap.__setitem__(key, out[0] if isinstance(out, tuple) else out)
    def put_in(key):
        return lambda mod, inp: cap.__setitem__(key, inp[0])
    def embed_in(mod, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        cap["embed"] = x
    hs.append(layers[0].register_forward_pre_hook(embed_in, with_kwargs=True))
    for i, layer in enumerate(layers):
        p = f"{i}."
        hs.append(layer.register_forward_hook(put(p + "resid_post")))
        for module, key, side in RECORDED[arch]:
            mod = layer.get_submodule(module)
            hs.append(mod.register_forward_hook(put(p + key)) if side == "out" else mod.register_forward_pre_hook(put_in(p + key)))
        hs.append(layer.mlp.register_forward_hook(put(p + "mlp_out")))
    hs.append(final.register_forward_hook(put("final_ln")))
    return hs


def make(name):
    cfg_cls, model_cls, arch, kw, seed = FIXTURES[name]
    torch.manual_seed(seed)
    cfg = getattr(transformers, cfg_cls)(**kw)
    cfg._attn_implementation = "eager"
    m = getattr(transformers, model_cls)(cfg).float().eval()
    randomise(m)
    if cfg.tie_word_embeddings:
        assert m.lm_head.weight.data_ptr() == layer_embed(m, arch).weight.data_ptr(), "tied head should share the embedding"
    d = os.path.join(OUT, name)
    m.save_pretrained(d, safe_serialization=True)
    modeling = importlib.import_module(type(m).__module__)
    recorder = AttentionRecorder(modeling)
    cap = {}
    hooks = capture_hooks(m, arch, cap)
    layers, _ = layer_modules(m, arch)
    L = len(layers)
    ref = {"model": name, "arch": arch, "transformers": transformers.__version__, "torch": torch.__version__, "cases": []}
    try:
        for ids in SEQS:
            cap.clear(); recorder.calls.clear()
            x = torch.tensor([ids])
            with torch.no_grad():
                out = m(x)
            assert len(recorder.calls) == L, "eager attention was not used"
            if name in WINDOWED:  # transformers did apply the window: keys further back than w-1 get no weight
                w, windowed = WINDOWED[name]
                for i in range(L):
                    p = recorder.calls[i]["pattern"]
                    far = torch.ones(p.shape[-2:], dtype=torch.bool).tril(-w)
                    assert not far.any() or (p[:, far] == 0).all() == (i in windowed), f"layer {i}: window {w} not as expected"
            case = {"input_ids": ids, "logits": tolist(out.logits[0]), "embed": tolist(cap["embed"][0]), "final_ln": tolist(cap["final_ln"][0]), "layers": []}
            for i in range(L):
                a = recorder.calls[i]
                layer = {k: tolist(cap[f"{i}.{k}"][0]) for k in ["ln1", "z", "attn_out", "ln2", "mlp_pre", "mlp_key", "mlp_out", "resid_post"]}
                if arch != "gpt2":
                    layer["mlp_pre_linear"] = tolist(cap[f"{i}.mlp_pre_linear"][0])
                layer.update({k: tolist(v) for k, v in a.items()})
                case["layers"].append(layer)
            case["grad"] = gradients(m, arch, x, cap, layers)
            ref["cases"].append(case)
    finally:
        modeling.eager_attention_forward = recorder.inner
        for hk in hooks:
            hk.remove()
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(name, "written", os.path.getsize(os.path.join(d, "model.safetensors")), "bytes of weights")


def layer_embed(m, arch):
    return m.transformer.wte if arch == "gpt2" else m.model.embed_tokens


def gradients(m, arch, x, cap, layers):
    """Sum of next-token NLL, backpropagated: gradients wrt the embedding output (layer 0's input), the middle
    layer's MLP output and its down-projection weight, in PyTorch Linear layout [out][in] (GPT-2's Conv1D
    weight gradient is transposed to it)."""
    m.zero_grad()
    l = len(layers) // 2
    held = {}
    def keep(mod, inp, out):
        out.retain_grad(); held["mlp_out"] = out
    def keep_embed(mod, a, k):
        t = a[0] if a else k["hidden_states"]
        t.retain_grad(); held["embed"] = t
    h1 = layers[l].mlp.register_forward_hook(keep)
    h2 = layers[0].register_forward_pre_hook(keep_embed, with_kwargs=True)
    out = m(x)
    h1.remove(); h2.remove()
    logp = torch.log_softmax(out.logits[0, :-1], -1)
    nll = -logp.gather(1, x[0, 1:, None]).sum()
    nll.backward()
    down = layers[l].mlp.c_proj if arch == "gpt2" else layers[l].mlp.down_proj
    gw = down.weight.grad.t() if arch == "gpt2" else down.weight.grad
    zero = lambda t: torch.zeros_like(t) if t is None else t
    return {"loss": "sum of next-token NLL over positions", "loss_value": float(nll.detach()), "layer": l,
            "d_loss_d_embed": tolist(zero(held["embed"].grad)[0]), "d_loss_d_mlp_out": tolist(zero(held["mlp_out"].grad)[0]),
            "d_loss_d_down_weight": tolist(zero(gw))}


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name in (sys.argv[2:] or FIXTURES):
        make(name)
