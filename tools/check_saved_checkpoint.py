"""Side check (never run by the tests): a checkpoint written by Model.save loads in Hugging Face
transformers unchanged, every tensor not edited is byte-identical to the source's, and transformers'
logits equal ours on the saved directory.

    npm run -s cli -- activations --model EDITED --ids 1,2,3,... > ours.json
    python tools/check_saved_checkpoint.py SOURCE EDITED ours.json 1,2,3,...

`ours` is our forward on the saved directory, which test/integration/save-checkpoint.test.ts shows is bit-identical
to the edited view as stored (Model.asStored). Prints one JSON line; exits 1 if a check fails.
"""
import json
import sys

import numpy as np
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM


def tensors(path):
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def main(src, edited, ours_json, ids_csv):
    a, b = tensors(f"{src}/model.safetensors"), tensors(f"{edited}/model.safetensors")  # single-file checkpoints
    assert a.keys() == b.keys(), "tensor names differ"
    changed = sorted(k for k in a if a[k].dtype != b[k].dtype or a[k].numpy().tobytes() != b[k].numpy().tobytes())
    dtypes = sorted({str(b[k].dtype) for k in changed})
    ours = json.load(open(ours_json))
    ids = [int(x) for x in ids_csv.split(",")]
    model = AutoModelForCausalLM.from_pretrained(edited, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
    diff = float(np.abs(logits - np.array(ours["logits"], dtype=np.float32)).max())
    print(json.dumps({"class": type(model).__name__, "changed_tensors": changed, "changed_dtypes": dtypes, "max_abs_logit_diff": diff, "tokens": len(ids)}))
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
