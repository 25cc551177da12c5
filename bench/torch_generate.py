"""The PyTorch side of the bench's generation rows (never used by the library or its tests).

Times transformers' greedy `generate` (its own cache: MambaCache / DynamicCache) on CPU with 2
threads, on the same checkpoint and prompt ids as the TypeScript side: one warm-up generation of
one row and 2 tokens, then timed generations of exactly NEW tokens per row until the budget is spent.

    python torch_generate.py DIR NEW BUDGET_MS < {"1": [[ids...]], "32": [[...], ...]}
prints one JSON line: {"results": [{"batch", "ms", "tokens"}]} (tokens: row 0's new tokens).
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    directory, new, budget_ms = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    batches = json.load(sys.stdin)
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    # Exactly `new` tokens per row whatever is generated: no end-of-text stop.
    gen = dict(do_sample=False, max_new_tokens=new, min_new_tokens=new, eos_token_id=None, pad_token_id=0, use_cache=True)
    results = []
    with torch.inference_mode():
        for key, rows in batches.items():
            ids = torch.tensor(rows, dtype=torch.long)
            mask = torch.ones_like(ids)
            model.generate(ids[:1], attention_mask=mask[:1], **{**gen, "max_new_tokens": 2, "min_new_tokens": 2})  # warm-up
            times, tokens = [], []
            start = time.perf_counter()
            while not times or ((time.perf_counter() - start) * 1000 < budget_ms and len(times) < 20):
                t0 = time.perf_counter()
                out = model.generate(ids, attention_mask=mask, **gen)
                times.append((time.perf_counter() - t0) * 1000)
                tokens = out[0, ids.shape[1]:].tolist()
            results.append({"batch": int(key), "ms": times, "tokens": tokens})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
