/**
 * Tokenizer over @huggingface/tokenizers (pure JS, offline) for the GPT-NeoX
 * byte-level BPE that Mamba and Pythia share. Never adds special tokens:
 * GPT-NeoX adds none, and the experiments place <|endoftext|> themselves.
 */
import fs from 'fs';
import path from 'path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { CheckpointError } from './errors';
import { readJsonFile } from './config';

export class Tokenizer {
  private constructor(
    private readonly impl: HfTokenizer,
    /** The tokenizer.json this was read from. */
    readonly file: string,
    /** One past the largest token id (the model's vocab may be padded beyond it). */
    readonly vocabSize: number,
    readonly eosId: number | null,
    readonly padId: number | null,
  ) {}

  /** Reads tokenizer.json, and tokenizer_config.json / special_tokens_map.json beside it if present. */
  static fromFile(file: string): Tokenizer {
    const json = readJsonFile(file, 'tokenizer');
    if (typeof json !== 'object' || json === null || Array.isArray(json) || !('model' in json)) {
      throw new CheckpointError(`${file}: not a tokenizer.json (no "model" object)`);
    }
    const specials = readSpecialTokenNames(path.dirname(file));
    let impl: HfTokenizer;
    try {
      impl = new HfTokenizer(json, {});
    } catch (e) {
      throw new CheckpointError(`${file}: cannot build tokenizer (${(e as Error).message})`);
    }
    let maxId = -1;
    for (const id of impl.get_vocab(true).values()) maxId = Math.max(maxId, id);
    const idOf = (token: string | undefined): number | null => (token === undefined ? null : impl.token_to_id(token) ?? null);
    const eosId = idOf(specials.eos ?? '<|endoftext|>');
    return new Tokenizer(impl, file, maxId + 1, eosId, idOf(specials.pad));
  }

  static fromDir(dir: string): Tokenizer {
    return Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  }

  /** Token ids of text, no special tokens added; "<|endoftext|>" in the text still maps to its id. */
  encode(text: string): number[] {
    return this.impl.encode(text, { add_special_tokens: false }).ids;
  }

  /** Exact inverse of encode for ids it produced; special tokens are kept, spaces are not "cleaned up". */
  decode(ids: number[]): string {
    for (const id of ids) this.checkId(id);
    if (ids.length === 0) return ''; // the library rejects an empty list
    return this.impl.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /**
   * Each id decoded on its own, for axis labels. A multi-byte character split
   * across tokens shows as U+FFFD pieces. Ids past the tokenizer's vocab (a
   * model's padding rows) get a placeholder instead of an error.
   */
  tokenStrings(ids: number[]): string[] {
    return ids.map((id) => (Number.isInteger(id) && id >= 0 && id < this.vocabSize ? this.decode([id]) : `<|id ${id}|>`));
  }

  /** Id of an exact token string (e.g. "<|endoftext|>"), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.impl.token_to_id(token);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new CheckpointError(`${this.file}: token id ${id} is outside the tokenizer's vocabulary [0, ${this.vocabSize})`);
    }
  }
}

/** eos/pad token strings from tokenizer_config.json, else special_tokens_map.json. */
function readSpecialTokenNames(dir: string): { eos?: string; pad?: string } {
  const out: { eos?: string; pad?: string } = {};
  for (const name of ['special_tokens_map.json', 'tokenizer_config.json']) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    const json = readJsonFile(file, 'tokenizer config');
    if (typeof json !== 'object' || json === null) continue;
    const rec = json as Record<string, unknown>;
    out.eos = tokenContent(rec.eos_token) ?? out.eos;
    out.pad = tokenContent(rec.pad_token) ?? out.pad;
  }
  return out;
}

/** A special token is written either as a string or as an AddedToken dict {content}. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return undefined;
}
