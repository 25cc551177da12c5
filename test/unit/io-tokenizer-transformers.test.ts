/**
 * GPT-2- and Llama-3-style tokenizer.json files (byte-level BPE; Llama 3's Split pre-tokenizer and
 * ignore_merges) load through the same Tokenizer as GPT-NeoX's and give the ids of the Rust
 * `tokenizers` library (tools/make_transformer_tokenizers.py), for 29 strings each.
 */
import fs from 'fs';
import path from 'path';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/io/tokenizer';

const DIR = path.join(__dirname, '..', 'fixtures', 'tokenizers');
const reference = JSON.parse(fs.readFileSync(path.join(DIR, 'reference.json'), 'utf8'));

describe.each(['gpt2-bpe', 'llama3-bpe'])('%s matches the Rust tokenizers reference', (name) => {
  const tok = Tokenizer.fromDir(path.join(DIR, name));
  const cases = reference.tokenizers[name] as { text: string; ids: number[]; decoded: string }[];

  it('has all 29 reference strings, and they really are split into several tokens', () => {
    expect(cases).toHaveLength(29);
    expect(cases.filter((c) => c.ids.length > 3).length).toBeGreaterThan(15);
  });

  it('encodes every string to the same ids and decodes them back to the same text', () => {
    for (const c of cases) {
      expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
      expect(tok.decode(c.ids), JSON.stringify(c.text)).toBe(c.decoded);
    }
  });
});
