import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/io/tokenizer';
import { openCheckpoint } from '../../src/io/checkpoint';

const root = path.resolve(__dirname, '..', '..');
const NEOX_20B = path.join(root, 'data/gpt_neox_20b_tokenizer/tokenizer.json');
const DEMO = path.join(root, 'data/models/mamba-facts/tokenizer.json');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-tokenizer-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface RefCase {
  text: string;
  ids: number[];
  decoded: string;
}
const reference: { tokenizers: Record<string, RefCase[]> } = JSON.parse(
  fs.readFileSync(path.join(root, 'test/fixtures/tokenizer-reference.json'), 'utf8'),
);

const tokenizers: [string, string][] = [
  ['gpt_neox_20b', NEOX_20B],
  ['demo_8192', DEMO],
];

describe.each(tokenizers)('%s matches the Rust tokenizers reference', (key, file) => {
  const tok = Tokenizer.fromFile(file);
  const cases = reference.tokenizers[key];

  it('has all 22 reference strings', () => expect(cases).toHaveLength(22));

  it('encodes every string to the same ids', () => {
    for (const c of cases) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
  });

  it('decodes every id list to the same text', () => {
    for (const c of cases) expect(tok.decode(c.ids), JSON.stringify(c.text)).toBe(c.decoded);
  });

  it('adds no special tokens and keeps those written in the text', () => {
    expect(tok.encode('')).toEqual([]);
    expect(tok.decode([])).toBe('');
    const ids = tok.encode('a<|endoftext|>');
    expect(ids[ids.length - 1]).toBe(0);
    expect(ids).toHaveLength(2);
  });

  it('tokenStrings decodes each token on its own', () => {
    const ids = tok.encode('Hello world, the capital city');
    const pieces = tok.tokenStrings(ids);
    expect(ids.length).toBeGreaterThan(3);
    expect(pieces.join('')).toBe('Hello world, the capital city');
    expect(pieces.every((p, i) => p === tok.decode([ids[i]]))).toBe(true);
    // A character split over byte-level tokens shows as replacement characters, piece by piece.
    const ja = tok.encode('首');
    expect(ja.length).toBeGreaterThan(1);
    expect(tok.tokenStrings(ja).join('')).toMatch(/^\ufffd+$/);
  });
});

describe('vocab and special ids', () => {
  it('GPT-NeoX-20B: 50277 tokens, eos <|endoftext|> = 0, no pad without a tokenizer_config', () => {
    const tok = Tokenizer.fromFile(NEOX_20B);
    expect(tok.vocabSize).toBe(50277);
    expect(tok.eosId).toBe(0);
    expect(tok.padId).toBeNull();
    expect(tok.tokenToId('<|padding|>')).toBe(1);
  });

  it('demo tokenizer: 8192 tokens, pad <|padding|> = 1 from tokenizer_config.json', () => {
    const tok = Tokenizer.fromDir(path.dirname(DEMO));
    expect([tok.vocabSize, tok.eosId, tok.padId]).toEqual([8192, 0, 1]);
  });

  it('ids outside the vocabulary: decode refuses, tokenStrings labels them', () => {
    const tok = Tokenizer.fromFile(DEMO);
    expect(() => tok.decode([5, 8192])).toThrow(`${DEMO}: token id 8192 is outside the tokenizer's vocabulary [0, 8192)`);
    expect(() => tok.decode([1.5])).toThrow(/token id 1.5 is outside/);
    expect(tok.tokenStrings([8195, 0])).toEqual(['<|id 8195|>', '<|endoftext|>']);
  });
});

describe('special tokens are never added', () => {
  it('even when tokenizer.json has a post-processor that would prepend one', () => {
    const json = JSON.parse(fs.readFileSync(DEMO, 'utf8'));
    const bos = { id: '<|endoftext|>', ids: [0], tokens: ['<|endoftext|>'] };
    json.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|endoftext|>': bos },
    };
    const dir = fs.mkdtempSync(path.join(tmp, 'bos-'));
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
    const plain = Tokenizer.fromFile(DEMO).encode('The capital city of France is');
    expect(Tokenizer.fromDir(dir).encode('The capital city of France is')).toEqual(plain);
    expect(plain[0]).not.toBe(0);
  });
});

describe('the demo models reference prompts', () => {
  for (const name of ['mamba-facts', 'neox-facts']) {
    it(`${name}: loadTokenizer encodes each prompt to reference input_ids and labels the top-5 tokens`, () => {
      const dir = path.join(root, 'data/models', name);
      const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
      const ckpt = openCheckpoint(dir);
      const tok = ckpt.loadTokenizer();
      ckpt.close();
      expect(ref.reference_next_tokens.length).toBeGreaterThan(3);
      for (const r of ref.reference_next_tokens) {
        expect(tok.encode(r.prompt)).toEqual(r.input_ids);
        expect(tok.decode(r.input_ids)).toBe(r.prompt);
        expect(tok.tokenStrings(r.top5_ids)).toEqual(r.top5_tokens);
      }
    });
  }
});

describe('tokenizer file errors name the file', () => {
  function write(name: string, text: string): string {
    const dir = fs.mkdtempSync(path.join(tmp, 'tok-'));
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  }

  it('missing file', () => {
    const file = path.join(tmp, 'none', 'tokenizer.json');
    expect(() => Tokenizer.fromFile(file)).toThrow(`${file}: tokenizer file not found`);
    expect(() => Tokenizer.fromDir(path.join(tmp, 'none'))).toThrow(`${file}: tokenizer file not found`);
  });

  it('invalid JSON', () => {
    const file = write('tokenizer.json', '{"model": ');
    expect(() => Tokenizer.fromFile(file)).toThrow(`${file}: tokenizer file is not valid JSON`);
  });

  it('JSON that is not a tokenizer', () => {
    const file = write('tokenizer.json', '{"vocab": {}}');
    expect(() => Tokenizer.fromFile(file)).toThrow(`${file}: not a tokenizer.json (no "model" object)`);
  });

  it('a tokenizer the library cannot build', () => {
    const file = write('tokenizer.json', '{"model": {"type": "BPE", "vocab": {}, "merges": []}}');
    expect(() => Tokenizer.fromFile(file)).toThrow(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}: cannot build tokenizer \\(`));
  });

  it('a malformed tokenizer_config.json beside it', () => {
    const file = write('tokenizer.json', fs.readFileSync(DEMO, 'utf8'));
    const cfg = path.join(path.dirname(file), 'tokenizer_config.json');
    fs.writeFileSync(cfg, '{');
    expect(() => Tokenizer.fromFile(file)).toThrow(`${cfg}: tokenizer config file is not valid JSON`);
  });
});
