"""Make tokenizer fixtures in the GPT-2 and Llama-3 styles with the Hugging Face `tokenizers` package (Rust),
and the ids it gives for the 22 reference strings of test/fixtures/tokenizer-reference.json.

Both are byte-level BPE trained on a small corpus (the reference strings and this repository's README), so the
files are small. gpt2-bpe: GPT-2's pre-tokenizer (ByteLevel with its regex, no prefix space) and
<|endoftext|>. llama3-bpe: Llama 3's pre-tokenizer (a Split on its regex, then ByteLevel without regex)
and its special tokens <|begin_of_text|>, <|end_of_text|>.

Run on the side (no part of factlens needs Python):
    python3 tools/make_transformer_tokenizers.py test/fixtures/tokenizers
Writes OUT/{gpt2-bpe,llama3-bpe}/tokenizer.json and OUT/reference.json.
"""

import json, os, sys
import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
REF = json.load(open(os.path.join(HERE, "..", "test", "fixtures", "tokenizer-reference.json")))
TEXTS = [c["text"] for c in REF["tokenizers"]["demo_8192"]]
# Strings whose pre-tokenization differs between the two styles (digit runs, upper-case contractions, space runs), in
# the corpus too so that merges exist across the boundaries one style draws and the other does not.
EXTRA = ["a<|endoftext|>b", "<|begin_of_text|>Paris is", "  two  spaces\n\nand lines", "It's 12345 o'clock", "IT'S 2024-11-05, HE'LL see",
         "Call 5551234567 now", "x\n\n   y"]
CORPUS = TEXTS + EXTRA * 20 + open(os.path.join(HERE, "..", "README.md"), encoding="utf8").read().split("\n")
LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def gpt2_style():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def llama3_style():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return tok


if __name__ == "__main__":
    ref = {"made_with": f"tokenizers {tokenizers.__version__} (HF, Rust)", "tokenizers": {}}
    for name, make in [("gpt2-bpe", gpt2_style), ("llama3-bpe", llama3_style)]:
        tok = make()
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        cases = []
        for text in TEXTS + EXTRA:
            ids = tok.encode(text, add_special_tokens=False).ids
            cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
        ref["tokenizers"][name] = cases
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
