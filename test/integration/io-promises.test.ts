/**
 * The loader keeps every safetensors promise and refuses bad checkpoints fast, naming the file,
 * tensor or field (issue #16, defects 2, 4 and 6): gaps, trailing bytes, a half-size F16 span,
 * invalid UTF-8, huge headers of empty tensors, absurd layer counts, NaN/Inf weights, FIFOs, a
 * tokenizer with ids beyond the model's vocabulary, a hook that returns something else than a Tensor.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFileSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { Model } from '../../src/runtime/model';
import { SafetensorsFile, writeSafetensors, WritableTensor } from '../../src/io';
import { copyCheckpoint, expectFactlensError, rawSafetensors } from '../support/checkpoint-copies';

const FIX = path.join(__dirname, '..', 'fixtures', 'tiny-mamba');
const DEMO = path.join(__dirname, '..', '..', 'data', 'models', 'mamba-facts');
let tmp: string;
let n = 0;
const fresh = (edit: (dir: string) => void) => copyCheckpoint(FIX, path.join(tmp, `c${n++}`), edit);
const weightsOf = (dir: string) => path.join(dir, 'model.safetensors');

/** Rewrite a copy's weights with `change` applied to its tensors (written by our writer: a valid file). */
function rewrite(dir: string, change: (t: Record<string, WritableTensor>) => void): void {
  const st = SafetensorsFile.open(weightsOf(dir));
  const tensors: Record<string, WritableTensor> = {};
  for (const name of st.names) tensors[name] = { dtype: 'F32', shape: st.info(name).shape, data: st.readFloat32(name) };
  st.close();
  change(tensors);
  writeSafetensors(weightsOf(dir), tensors);
}

/** The header JSON and data block of a copy's weights, to re-emit with changes. */
function parts(dir: string): { header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>; data: Buffer } {
  const bytes = fs.readFileSync(weightsOf(dir));
  const len = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + len).toString()), data: bytes.subarray(8 + len) };
}

function editConfig(dir: string, change: (c: Record<string, unknown>) => void): void {
  const p = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(p, 'utf8'));
  change(c);
  fs.writeFileSync(p, JSON.stringify(c));
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-promises-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('safetensors promises', () => {
  it('a gap between two tensors is refused, naming the bytes and the tensors around them', async () => {
    const dir = fresh((d) => {
      const { header, data } = parts(d);
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      const a = header[names[1]].data_offsets[0]; // 8 zero bytes go in front of the second tensor
      const shifted = Object.fromEntries(names.map((k) => {
        const [begin, end] = header[k].data_offsets;
        return [k, { ...header[k], data_offsets: [begin >= a ? begin + 8 : begin, end > a ? end + 8 : end] }];
      }));
      fs.writeFileSync(weightsOf(d), rawSafetensors(JSON.stringify(shifted), Buffer.concat([data.subarray(0, a), Buffer.alloc(8), data.subarray(a)])));
    });
    await expectFactlensError(() => Model.load(dir), /model\.safetensors/, /8 bytes \[\d+, \d+\) after tensor ".+" belong to no tensor/);
  });

  it('trailing bytes after the last tensor are refused', async () => {
    const dir = fresh((d) => fs.appendFileSync(weightsOf(d), Buffer.alloc(12)));
    await expectFactlensError(() => Model.load(dir), /model\.safetensors: 12 trailing bytes after the last tensor/);
  });

  it('a tensor re-declared as F16 over its F32 bytes (a half-size span) is refused, not read as garbage', async () => {
    const dir = fresh((d) => {
      const { header, data } = parts(d);
      const name = 'backbone.layers.3.mixer.D'; // a small tensor; the last one the writer placed? any will do
      const t = header[name];
      header[name] = { ...t, dtype: 'F16', data_offsets: [t.data_offsets[0], t.data_offsets[0] + (t.data_offsets[1] - t.data_offsets[0]) / 2] };
      fs.writeFileSync(weightsOf(d), rawSafetensors(JSON.stringify(header), data));
    });
    await expectFactlensError(() => Model.load(dir), /model\.safetensors/, /belong to no tensor/);
  });

  it('a header that is not valid UTF-8 is refused', async () => {
    const dir = fresh((d) => {
      const { header, data } = parts(d);
      const text = Buffer.from(JSON.stringify({ ...header, __metadata__: { format: 'pt', note: 'XX' } }));
      const at = text.indexOf('XX');
      text[at] = 0xc3; // a lead byte followed by an ASCII byte: an invalid sequence
      fs.writeFileSync(weightsOf(d), rawSafetensors(text, data));
    });
    await expectFactlensError(() => Model.load(dir), /model\.safetensors: safetensors header is not valid UTF-8/);
  });

  it('a 71 MB header of empty tensors is refused before it is parsed', async () => {
    const file = path.join(tmp, 'huge.safetensors');
    const entry = (i: number) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`;
    const count = Math.ceil(71e6 / entry(1e6).length);
    fs.writeFileSync(file, rawSafetensors(`{${Array.from({ length: count }, (_, i) => entry(i)).join(',')}}`));
    await expectFactlensError(() => SafetensorsFile.open(file), /huge\.safetensors: header length \d+ bytes is absurd \(limit 2097152\)/);
  });
});

describe('configs and weights', () => {
  it('num_hidden_layers = 1e9 fails at once, naming the field, before listing a weight per layer', async () => {
    const dir = fresh((d) => editConfig(d, (c) => (c.num_hidden_layers = 1e9)));
    await expectFactlensError(() => Model.load(dir), /config\.json says 1000000000 layers \(field "num_hidden_layers"/, /hold 4 layers/);
  }, 10_000); // before the fix this built 12e9 map entries (it never finished)

  it('a NaN weight is refused with the tensor name and element', async () => {
    const dir = fresh((d) => rewrite(d, (t) => { t['backbone.layers.2.mixer.D'].data[5] = NaN; }));
    await expectFactlensError(() => Model.load(dir), /model\.safetensors: tensor "backbone\.layers\.2\.mixer\.D" element 5 is NaN/, /allowNonFinite/);
  });

  it('an infinite weight is refused in packed mode too (scanned at load, never widened)', async () => {
    const dir = fresh((d) => rewrite(d, (t) => { t['backbone.layers.0.mixer.in_proj.weight'].data[7] = -Infinity; }));
    await expectFactlensError(() => Model.load(dir, { packed: true }), /tensor "backbone\.layers\.0\.mixer\.in_proj\.weight" element 7 is -Infinity/);
  });

  it('allowNonFinite loads it with a warning naming the tensor', async () => {
    const dir = fresh((d) => rewrite(d, (t) => { t['backbone.layers.2.mixer.D'].data[5] = Infinity; }));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const m = await Model.load(dir, { allowNonFinite: true });
      expect(m.weight('layers.2.mixer.D').data[5]).toBe(Infinity);
      expect(warn.mock.calls.map((c) => String(c[0])).join('\n')).toMatch(/"backbone\.layers\.2\.mixer\.D" element 5 is Infinity; loaded anyway/);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('files that are not regular files', () => {
  const fifo = (p: string) => {
    fs.rmSync(p);
    execFileSync('mkfifo', [p]);
  };
  it('a FIFO as model.safetensors is refused instead of blocking in open()', async () => {
    const dir = fresh((d) => fifo(weightsOf(d)));
    await expectFactlensError(() => Model.load(dir), /model\.safetensors: safetensors file is not a regular file \(a FIFO\)/);
  }, 10_000);

  it('a FIFO as config.json is refused', async () => {
    const dir = fresh((d) => fifo(path.join(d, 'config.json')));
    await expectFactlensError(() => Model.load(dir), /config\.json: config file is not a regular file \(a FIFO\)/);
  }, 10_000);
});

describe('tokenizer and hooks', () => {
  it('a tokenizer whose ids exceed the model vocabulary is refused at load', async () => {
    const dir = fresh((d) => fs.copyFileSync(path.join(DEMO, 'tokenizer.json'), path.join(d, 'tokenizer.json')));
    await expectFactlensError(() => Model.load(dir), /tokenizer\.json: the tokenizer has ids up to 8191, but the model's vocabulary .* is 512/);
  });

  it('a hook returning a non-Tensor names the hook', async () => {
    const m = await Model.load(FIX);
    await expectFactlensError(() => m.runWithHooks([[1, 2, 3]], [['layers.1.mixer.gate', () => [1, 2, 3] as never]]), /hook "layers\.1\.mixer\.gate" \(layer 1\) returned an array; a hook returns a Tensor/);
    await expectFactlensError(() => m.runWithHooks([[1, 2, 3]], [['layers.1.mixer.gate', () => 7 as never]]), /returned a number/);
  });
});
