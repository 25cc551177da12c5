/**
 * Seeded fuzzing of the loader (issue #16): random byte changes in the header (length prefix
 * included) and random digit changes in the header's numbers (shapes, offsets) of a tiny checkpoint.
 * Every case must load or fail with a CheckpointError: never a crash, a hang or another exception.
 * 600 cases, a few seconds; the seed makes a failure reproducible (the case's label says which).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { CheckpointError, SafetensorsFile } from '../../src/io';
import { rng } from '../../src/runtime/generate';
import { copyCheckpoint } from '../support/checkpoint-copies';

const FIX = path.join(__dirname, '..', 'fixtures', 'tiny-mamba');
const CASES = 600;
let dir: string;
let original: Buffer;
let headerEnd: number;
beforeAll(() => {
  dir = copyCheckpoint(FIX, fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-fuzz-')));
  original = fs.readFileSync(path.join(dir, 'model.safetensors'));
  headerEnd = 8 + Number(original.readBigUInt64LE(0));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

type Mutation = (b: Buffer, random: () => number) => string;
const pick = (random: () => number, n: number) => Math.floor(random() * n);

/** Overwrite 1–4 bytes of the length prefix or header with random bytes. */
const flipBytes: Mutation = (b, random) => {
  const at: number[] = [];
  for (let k = 1 + pick(random, 4); k > 0; k--) {
    const i = pick(random, headerEnd);
    b[i] = pick(random, 256);
    at.push(i);
  }
  return `bytes ${at.join(',')}`;
};

/** Change the digits of one number in the header: replace one, append some (bigger), or drop one. */
const changeDigits: Mutation = (b, random) => {
  const digits: number[] = [];
  for (let i = 8; i < headerEnd; i++) if (b[i] >= 0x30 && b[i] <= 0x39) digits.push(i);
  const i = digits[pick(random, digits.length)];
  const how = pick(random, 3);
  if (how === 0) b[i] = 0x30 + pick(random, 10);
  else if (how === 1) b[i] = 0x39; // a larger number of the same length
  else b[i] = 0x20; // a number split by a space (or shortened)
  return `digit at ${i} (${['replaced', 'raised to 9', 'blanked'][how]})`;
};

it(`${CASES} fuzzed headers: each loads or throws a CheckpointError`, async () => {
  const random = rng(2024);
  const file = path.join(dir, 'model.safetensors');
  const outcomes = { loaded: 0, refused: 0 };
  for (let c = 0; c < CASES; c++) {
    const bytes = Buffer.from(original);
    const label = (c % 2 ? changeDigits : flipBytes)(bytes, random);
    fs.writeFileSync(file, bytes);
    try {
      if (c % 3 === 0) {
        const m = await Model.load(dir);
        expect(m.nLayers).toBe(4);
      } else {
        const f = SafetensorsFile.open(file);
        for (const name of f.names) if (['F32', 'F16', 'BF16'].includes(f.info(name).dtype)) f.readFloat32(name);
        f.close();
      }
      outcomes.loaded++;
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw new Error(`case ${c} (${label}): ${(e as Error)?.constructor?.name}: ${(e as Error).message}`);
      expect((e as Error).message).toContain(dir); // names the file
      outcomes.refused++;
    }
  }
  expect(outcomes.refused).toBeGreaterThan(CASES / 4); // the mutations did hit something
}, 60_000);
