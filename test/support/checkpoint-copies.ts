/**
 * Test helpers: throwaway copies of a checkpoint directory with one thing changed, raw
 * safetensors bytes built by hand (to write what our writer never would), and the expectation
 * that loading fails with a FactlensError whose message matches.
 */
import { expect } from 'vitest';
import fs from 'fs';
import path from 'path';
import { FactlensError } from '../../src/errors';

/** A copy of the checkpoint directory `from` at `to` (reference.json left out), then `edit` applied. */
export function copyCheckpoint(from: string, to: string, edit: (dir: string) => void = () => {}): string {
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) if (f !== 'reference.json') fs.copyFileSync(path.join(from, f), path.join(to, f));
  edit(to);
  return to;
}

/** safetensors bytes: u64 header length, the header text as given (any bytes), then `data`. */
export function rawSafetensors(header: string | Uint8Array, data: Uint8Array = new Uint8Array(0)): Buffer {
  const h = typeof header === 'string' ? Buffer.from(header) : Buffer.from(header);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, Buffer.from(data)]);
}

/** `load()` rejects with a FactlensError whose message matches every pattern; returns the message. */
export async function expectFactlensError(load: () => unknown, ...patterns: RegExp[]): Promise<string> {
  let err: unknown;
  try {
    await load();
  } catch (e) {
    err = e;
  }
  expect(err, 'no error').toBeInstanceOf(FactlensError);
  const msg = (err as Error).message;
  for (const p of patterns) expect(msg).toMatch(p);
  return msg;
}
