import fs from 'fs';
import os from 'os';
import path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, writeSafetensors } from '../../src/io/safetensors';
import { f16BitsToF32Bits } from '../../src/io/half';

const root = path.resolve(__dirname, '..', '..');
const TINY_MAMBA = path.join(root, 'test/fixtures/tiny-mamba/model.safetensors');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'io-safetensors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
function tmpFile(name = 'x.safetensors'): string {
  return path.join(tmp, `${counter++}-${name}`);
}

/** A safetensors file built by hand (independent of writeSafetensors): header JSON (or raw text) + data. */
function rawFile(header: unknown, data: Uint8Array | number = 0): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const body = typeof data === 'number' ? Buffer.alloc(data) : Buffer.from(data);
  const p = tmpFile();
  fs.writeFileSync(p, Buffer.concat([len, h, body]));
  return p;
}

function u16Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(values).buffer);
}

function f32FromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

function bitsOf(v: Float32Array): Uint32Array {
  return new Uint32Array(v.buffer, v.byteOffset, v.length);
}

describe('SafetensorsFile on the tiny-mamba fixture', () => {
  const f = SafetensorsFile.open(TINY_MAMBA);
  afterAll(() => f.close());

  it('lists tensors, metadata and absolute offsets', () => {
    expect(f.names).toHaveLength(42); // 4 layers x 10 + embedding + norm_f (tied: no lm_head)
    expect(f.metadata).toEqual({ format: 'pt' });
    const emb = f.info('backbone.embeddings.weight');
    // header is 4208 bytes, and this tensor's data_offsets start at 0
    expect(emb).toEqual({ dtype: 'F32', shape: [512, 64], byteOffset: 8 + 4208, byteLength: 512 * 64 * 4 });
    expect(f.info('backbone.layers.0.mixer.conv1d.weight').shape).toEqual([128, 1, 4]);
  });

  it('reads the embedding that transformers used: row + layer-0 mixer output = hidden_states[0]', () => {
    // HF Mamba records hidden_states AFTER each block, so entry 0 is embedding + mixer_out of layer 0.
    const ref = JSON.parse(fs.readFileSync(path.join(root, 'test/fixtures/tiny-mamba/reference.json'), 'utf8'));
    const emb = f.readFloat32('backbone.embeddings.weight'); // [512, 64]
    const c = ref.cases[1];
    c.input_ids.forEach((id: number, t: number) => {
      for (let j = 0; j < 64; j++) expect(emb[id * 64 + j] + c.layers[0].mixer_out[t][j]).toBeCloseTo(c.hidden_states[0][t][j], 6);
    });
  });

  it('reads tiny-neox embed_in rows bit-exactly as transformers reported them in hidden_states[0]', () => {
    const dir = path.join(root, 'test/fixtures/tiny-neox');
    const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
    const g = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
    const emb = g.readFloat32('gpt_neox.embed_in.weight'); // [512, 64]
    g.close();
    const c = ref.cases[2];
    c.input_ids.forEach((id: number, t: number) => {
      expect(Array.from(emb.subarray(id * 64, id * 64 + 64))).toEqual(c.hidden_states[0][t]);
    });
  });

  it('names the file and tensor for an unknown name', () => {
    expect(() => f.info('nope')).toThrow(/tiny-mamba\/model\.safetensors.*"nope"/);
  });
});

describe('F16 and BF16 decoding (hand-made bytes)', () => {
  it('widens F16 exactly, including subnormals, infinities, nan and -0', () => {
    const halves = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x3555, 0x8000, 0x7c00, 0xfc00, 0x7e00];
    const p = rawFile({ t: { dtype: 'F16', shape: [halves.length], data_offsets: [0, 2 * halves.length] } }, u16Bytes(halves));
    const f = SafetensorsFile.open(p);
    const v = f.readFloat32('t');
    f.close();
    expect(Array.from(v.subarray(0, 7))).toEqual([1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 0x555 * 2 ** -10 / 4]);
    expect(Object.is(v[7], -0)).toBe(true);
    expect([v[8], v[9]]).toEqual([Infinity, -Infinity]);
    expect(Number.isNaN(v[10])).toBe(true);
  });

  it('widens BF16 by placing the 16 bits on top of a float32', () => {
    const bf = [0x3f80, 0xc040, 0x7f80, 0x0001, 0x4049];
    const p = rawFile({ t: { dtype: 'BF16', shape: [5], data_offsets: [0, 10] } }, u16Bytes(bf));
    const f = SafetensorsFile.open(p);
    const v = f.readFloat32('t');
    f.close();
    expect(Array.from(v)).toEqual([1, -3, Infinity, f32FromBits(0x00010000), 3.140625]);
  });
});

describe('writeSafetensors round trips', () => {
  function roundTrip(dtype: 'F32' | 'F16' | 'BF16', data: Float32Array, shape = [data.length]): Float32Array {
    const p = tmpFile();
    writeSafetensors(p, { t: { dtype, shape, data } }, { note: 'hi' });
    const f = SafetensorsFile.open(p);
    expect(f.metadata).toEqual({ note: 'hi' });
    expect(f.info('t')).toMatchObject({ dtype, shape });
    const out = f.readFloat32('t');
    f.close();
    return out;
  }

  it('F32 is bit-exact, specials included', () => {
    const data = new Float32Array([0, -0, 1.5, -1e-30, 3.4e38, Infinity, -Infinity, 1e-45, Math.PI]);
    expect(Array.from(bitsOf(roundTrip('F32', data)))).toEqual(Array.from(bitsOf(data)));
  });

  it('every F16 and BF16 value survives float32 -> file -> float32 (signalling nans come back quiet)', () => {
    for (const dtype of ['F16', 'BF16'] as const) {
      const bits = new Uint32Array(65536);
      for (let h = 0; h < 65536; h++) bits[h] = dtype === 'F16' ? f16BitsToF32Bits(h) : h << 16;
      const data = new Float32Array(bits.buffer);
      const back = roundTrip(dtype, data, [256, 256]);
      const backBits = bitsOf(back);
      for (let h = 0; h < 65536; h++) {
        if (Number.isNaN(data[h])) expect(Number.isNaN(back[h])).toBe(true);
        else if (backBits[h] !== bits[h]) throw new Error(`${dtype} pattern ${h.toString(16)} came back as ${backBits[h].toString(16)}`);
      }
    }
  });

  it('rounds to the nearest F16, ties to even (checked against a search over all halves)', () => {
    const positives = new Float64Array(0x7c00); // every finite non-negative half, increasing
    for (let h = 0; h < 0x7c00; h++) positives[h] = f32FromBits(f16BitsToF32Bits(h));
    const nearest = (x: number): number => {
      const a = Math.abs(x);
      if (a >= 65520) return x < 0 ? -Infinity : Infinity; // from the midpoint of 65504 and 65536 on
      let lo = 0;
      let hi = 0x7bff;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (positives[mid] <= a) lo = mid;
        else hi = mid;
      }
      const dLo = a - positives[lo];
      const dHi = positives[hi] - a;
      const pick = dLo < dHi || (dLo === dHi && lo % 2 === 0) ? lo : hi;
      return x < 0 ? -positives[pick] : positives[pick];
    };
    let seed = 12345;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const values = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -26, 65519, 65520, -65520, 2049, 2051, 1e-9];
    for (let i = 0; i < 4000; i++) values.push((rand() - 0.5) * 2 ** (Math.floor(rand() * 44) - 28));
    const data = Float32Array.from(values);
    const back = roundTrip('F16', data);
    data.forEach((x, i) => expect(back[i]).toBe(nearest(x)));
    expect(Array.from(back.subarray(0, 8))).toEqual([1, 1 + 2 ** -9, 0, 2 ** -24, 65504, Infinity, -Infinity, 2048]);
  });

  it('rounds to the nearest BF16, ties to even', () => {
    const data = new Float32Array(5000);
    const bits = bitsOf(data);
    for (let i = 0; i < bits.length; i++) bits[i] = (Math.imul(i, 2654435761) >>> 0) & 0xbfffffff; // spread patterns, no nan
    bits[0] = 0x3f808000; // exactly halfway, even below -> 0x3f80
    bits[1] = 0x3f818000; // exactly halfway, odd below -> 0x3f82
    const back = roundTrip('BF16', data);
    const backBits = bitsOf(back);
    for (let i = 0; i < data.length; i++) {
      const lo = bits[i] & 0xffff0000;
      const hi = lo + 0x10000;
      const x = Math.abs(data[i]);
      const dLo = Math.abs(x - Math.abs(f32FromBits(lo)));
      const dHi = Math.abs(Math.abs(f32FromBits(hi)) - x);
      const expected = dLo < dHi || (dLo === dHi && ((lo >>> 16) & 1) === 0) ? lo : hi;
      if (backBits[i] !== expected >>> 0) throw new Error(`bf16 of ${bits[i].toString(16)}: got ${backBits[i].toString(16)}`);
    }
    expect([backBits[0], backBits[1]]).toEqual([0x3f800000, 0x3f820000]);
  });

  it('pads the header to 8 bytes and lays tensors out back to back', () => {
    const p = tmpFile();
    writeSafetensors(p, {
      a: { dtype: 'F16', shape: [3], data: new Float32Array([1, 2, 3]) },
      b: { dtype: 'F32', shape: [2, 1], data: new Float32Array([4, 5]) },
    });
    const buf = fs.readFileSync(p);
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString());
    expect(header.a.data_offsets).toEqual([0, 6]);
    expect(header.b.data_offsets).toEqual([6, 14]);
    expect(buf.length).toBe(8 + n + 14);
    expect(buf.readFloatLE(8 + n + 6)).toBe(4);
  });

  it('streams an F16 tensor larger than its 16 MiB read buffer', () => {
    const n = 8 * 1024 * 1024 + 3; // 16 MiB + 6 bytes of F16
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (i % 2048) - 1024;
    const back = roundTrip('F16', data);
    for (const i of [0, 1, 8 * 1024 * 1024 - 1, 8 * 1024 * 1024, n - 1]) expect(back[i]).toBe((i % 2048) - 1024);
  });

  it('refuses data that does not match the shape', () => {
    const p = tmpFile();
    expect(() => writeSafetensors(p, { w: { dtype: 'F16', shape: [2, 2], data: new Float32Array(3) } })).toThrow(/"w".*\[2, 2\] needs 4 values/);
  });

  it('makes lazy tensors one at a time when they are written, and checks what they make against the shape', () => {
    const p = tmpFile();
    const made: string[] = [];
    const lazy = (name: string, n: number) => ({ dtype: 'F32' as const, shape: [2], make: () => (made.push(name), Float32Array.from({ length: n }, (_, i) => i + 1)) });
    writeSafetensors(p, { a: lazy('a', 2), b: lazy('b', 2) });
    expect(made).toEqual(['a', 'b']);
    const f = SafetensorsFile.open(p);
    expect(Array.from(f.readFloat32('b'))).toEqual([1, 2]);
    f.close();
    expect(() => writeSafetensors(tmpFile(), { a: lazy('a', 3) })).toThrow(/"a".*\[2\] needs 2 values, data has 3/);
  });
});

describe('non-float dtypes', () => {
  const p = rawFile(
    {
      ids: { dtype: 'I64', shape: [3], data_offsets: [0, 24] },
      mask: { dtype: 'BOOL', shape: [2], data_offsets: [24, 26] },
    },
    new Uint8Array([...new Uint8Array(new BigInt64Array([5n, -7n, 2147483647n]).buffer), 1, 0]),
  );

  it('parses them but refuses to read them as float32', () => {
    const f = SafetensorsFile.open(p);
    expect(f.info('mask')).toMatchObject({ dtype: 'BOOL', shape: [2] });
    expect(() => f.readFloat32('ids')).toThrow(/\.safetensors: tensor "ids" has dtype I64; only F32, F16 and BF16/);
    expect(() => f.readFloat32('mask')).toThrow(/tensor "mask" has dtype BOOL/);
    expect(Array.from(f.readInt32('ids'))).toEqual([5, -7, 2147483647]);
    f.close();
    expect(() => f.readInt32('ids')).toThrow(/"ids" after close/);
  });
});

describe('SafetensorsFile.open rejects bad files, naming file and tensor', () => {
  const entry = (o: object = {}) => ({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16], ...o } });
  const cases: [string, () => string, RegExp][] = [
    ['missing file', () => path.join(tmp, 'absent.safetensors'), /absent\.safetensors: safetensors file not found/],
    ['shorter than 8 bytes', () => { const p = tmpFile(); fs.writeFileSync(p, Buffer.from([1, 2, 3])); return p; }, /only 3 bytes/],
    ['header past the end', () => { const p = tmpFile(); const b = Buffer.alloc(20); b.writeBigUInt64LE(1000n); fs.writeFileSync(p, b); return p; }, /header length 1000 bytes runs past the end of the 20-byte file/],
    ['absurd header length', () => { const p = tmpFile(); const b = Buffer.alloc(16); b.writeBigUInt64LE(2n ** 40n); fs.writeFileSync(p, b); return p; }, /header length 1099511627776 bytes is absurd/],
    ['invalid JSON', () => rawFile('{"w": {'), /header is not valid JSON/],
    ['JSON array', () => rawFile('[1, 2]'), /header must be a JSON object, got an array/],
    ['missing dtype', () => rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w": missing "dtype"/],
    ['missing shape', () => rawFile({ w: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /tensor "w": missing "shape"/],
    ['missing data_offsets', () => rawFile({ w: { dtype: 'F32', shape: [1] } }, 4), /tensor "w": missing "data_offsets"/],
    ['entry not an object', () => rawFile({ w: 3 }), /tensor "w": entry must be an object/],
    ['unknown dtype', () => rawFile(entry({ dtype: 'F8_E4M3' }), 16), /tensor "w": unknown dtype "F8_E4M3" \(known: .*BF16/],
    ['negative shape', () => rawFile(entry({ shape: [2, -2] }), 16), /tensor "w": shape must be an array of non-negative integers, got \[2,-2\]/],
    ['fractional shape', () => rawFile(entry({ shape: [2.5] }), 16), /tensor "w": shape must be/],
    ['offsets not a pair', () => rawFile(entry({ data_offsets: [0] }), 16), /tensor "w": data_offsets must be \[begin, end\]/],
    ['offsets not integers', () => rawFile(entry({ data_offsets: ['0', 16] }), 16), /tensor "w": data_offsets must be/],
    ['end before begin', () => rawFile(entry({ data_offsets: [16, 0] }), 16), /tensor "w": data_offsets end 0 is before begin 16/],
    ['length mismatch', () => rawFile(entry({ data_offsets: [0, 12] }), 16), /tensor "w": data_offsets \[0, 12\] span 12 bytes, but F32 shape \[2, 2\] needs 16/],
    ['truncated data', () => rawFile(entry(), 10), /tensor "w": data ends at byte \d+ but the file has only \d+ bytes \(truncated/],
    [
      'overlapping tensors',
      () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
      /tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/,
    ],
    ['metadata not strings', () => rawFile({ __metadata__: { format: 1 } }), /"__metadata__\.format" must be a string/],
  ];
  for (const [label, make, message] of cases) {
    it(label, () => {
      const p = make();
      let err: Error | undefined;
      try {
        SafetensorsFile.open(p).close();
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).toMatch(message);
      expect(err?.message.startsWith(p)).toBe(true); // every message starts with the file path
    });
  }

  it('accepts __metadata__ and zero-sized tensors', () => {
    const p = rawFile({ __metadata__: { format: 'pt' }, e: { dtype: 'F16', shape: [0, 3], data_offsets: [0, 0] }, w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(new Float32Array([7]).buffer));
    const f = SafetensorsFile.open(p);
    expect(f.names).toEqual(['e', 'w']);
    expect(f.readFloat32('e')).toHaveLength(0);
    expect(Array.from(f.readFloat32('w'))).toEqual([7]);
    f.close();
  });

  it('refuses a tensor over 2 GiB as float32 before allocating it', () => {
    const n = 2 ** 29 + 1; // F16 on disk: 1 GiB; as float32: just over 2 GiB
    const header = Buffer.from(JSON.stringify({ big: { dtype: 'F16', shape: [n], data_offsets: [0, 2 * n] } }));
    const p = tmpFile();
    const fd = fs.openSync(p, 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeSync(fd, len);
    fs.writeSync(fd, header);
    fs.ftruncateSync(fd, 8 + header.length + 2 * n); // sparse: no disk used
    fs.closeSync(fd);
    const f = SafetensorsFile.open(p);
    expect(() => f.readFloat32('big')).toThrow(/\.safetensors: tensor "big" \[536870913\] is 2147483652 bytes as float32, over the 2 GiB limit/);
    f.close();
  });
});

describe('readRowsFloat32 (embedding lookups without the whole matrix)', () => {
  it('returns the requested rows in order, repeats included, for F32 and half dtypes, equal to readFloat32', () => {
    const data = Float32Array.from({ length: 5 * 3 }, (_, i) => (i - 7) / 8); // [5,3], exact in every dtype
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const p = tmpFile();
      writeSafetensors(p, { w: { dtype, shape: [5, 3], data } });
      const f = SafetensorsFile.open(p);
      const full = f.readFloat32('w');
      const rows = [1, 4, 0, 4, 2, 1]; // repeats of rows first read at other positions than 0
      const got = f.readRowsFloat32('w', rows);
      const want = rows.flatMap((r) => Array.from(full.subarray(r * 3, r * 3 + 3)));
      expect(Array.from(got)).toEqual(want);
      f.close();
    }
  });

  it('names the file, tensor and row when a row is out of range or the tensor is not 2-D', () => {
    const p = tmpFile();
    writeSafetensors(p, { w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) }, v: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
    const f = SafetensorsFile.open(p);
    expect(() => f.readRowsFloat32('w', [0, 2])).toThrow(`${p}: row 2 of tensor "w" is out of range 0..1`);
    expect(() => f.readRowsFloat32('w', [-1])).toThrow(/row -1 of tensor "w"/);
    expect(() => f.readRowsFloat32('v', [0])).toThrow(`${p}: tensor "v" (F32 [4]) is not a 2-D float tensor`);
    f.close();
  });
});
