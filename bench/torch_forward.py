"""The PyTorch side of the bench (never used by the library or its tests).

Times transformers' MambaForCausalLM / GPTNeoXForCausalLM on CPU with 2 threads on the same checkpoint
and the same token ids as the TypeScript side: one warm-up forward of one row, then timed forwards (logits at every
position, as a plain model(ids) call computes them) until the time budget is spent.

    python torch_forward.py DIR BUDGET_MS < {"1": [[ids...]], "32": [[...], ...]}
prints one JSON line: {"torch": version, "transformers": version, "results": [{"batch", "ms", "probe"}]}.
"""
import json
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def main() -> None:
    directory, budget_ms = sys.argv[1], float(sys.argv[2])
    batches = json.load(sys.stdin)
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    results = []
    with torch.inference_mode():
        for key, rows in batches.items():
            ids = torch.tensor(rows, dtype=torch.long)
            model(ids[:1])  # warm-up, one row (as on the TypeScript side)
            times, probe = [], []
            start = time.perf_counter()
            while not times or ((time.perf_counter() - start) * 1000 < budget_ms and len(times) < 50):
                t0 = time.perf_counter()
                logits = model(ids).logits
                times.append((time.perf_counter() - t0) * 1000)
                if not probe:
                    probe = logits[0, -1, :256].tolist()
            results.append({"batch": int(key), "ms": times, "probe": probe})
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "results": results}))


if __name__ == "__main__":
    main()
