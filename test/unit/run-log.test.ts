/**
 * The durable store of checkpointed runs (runtime/run-log.ts): rows survive a reopen exactly (NaN
 * and ±Infinity included); a resumed run computes only missing groups; other settings, another
 * run's log, or a damaged middle line are refused with a message naming the file; a torn last line
 * (a kill mid-write) is cut off and that unit recomputed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { checkpointed, RunLog, RunLogError } from '../../src/runtime/run-log';

let tmp: string;
let n = 0;
const file = () => path.join(tmp, `log${n++}.jsonl`);
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factlens-runlog-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A computation that records which indices it was asked for. */
function squares(asked: number[][]) {
  return async (ix: number[]) => {
    asked.push(ix);
    return ix.map((i) => ({ i, sq: i * i, odd: i % 2 ? NaN : -Infinity }));
  };
}
const KEYS = ['a', 'b', 'c', 'd', 'e'];

describe('RunLog', () => {
  it('resumes: a second run with the same settings computes nothing and returns the same rows, NaN and -Infinity included', async () => {
    const f = file();
    const first: number[][] = [];
    const a = await checkpointed(f, 'test', { x: 1 }, KEYS, 2, squares(first));
    expect(first).toEqual([[0, 1], [2, 3], [4]]);
    const again: number[][] = [];
    const b = await checkpointed(f, 'test', { x: 1 }, KEYS, 2, squares(again));
    expect(again).toEqual([]);
    expect(b).toEqual(a);
    expect(Number.isNaN(b[1].odd)).toBe(true);
    expect(b[0].odd).toBe(-Infinity);
  });

  it('computes only the groups that are missing', async () => {
    const f = file();
    const log = RunLog.open<{ i: number }>(f, 'test', { x: 1 });
    log.append([['a', { i: 0 }], ['b', { i: 1 }]]);
    log.close();
    const asked: number[][] = [];
    await checkpointed(f, 'test', { x: 1 }, KEYS, 2, squares(asked));
    expect(asked).toEqual([[2, 3], [4]]);
  });

  it('refuses other settings, naming the file and the setting', async () => {
    const f = file();
    await checkpointed(f, 'test', { x: 1, kinds: ['ssm'] }, KEYS, 2, squares([]));
    await expect(checkpointed(f, 'test', { x: 1, kinds: ['gate'] }, KEYS, 2, squares([]))).rejects.toThrow(/log\d+\.jsonl: this checkpoint was made with other settings \(kinds: \["ssm"\] → \["gate"\]\)/);
    await expect(checkpointed(f, 'other', { x: 1, kinds: ['ssm'] }, KEYS, 2, squares([]))).rejects.toThrow(RunLogError);
  });

  it('refuses a file that is not a run log', async () => {
    const f = file();
    fs.writeFileSync(f, 'hello\nworld\n');
    await expect(checkpointed(f, 'test', {}, KEYS, 1, squares([]))).rejects.toThrow(/not a factlens run log/);
  });

  it('cuts off a torn last line and recomputes that unit', async () => {
    const f = file();
    await checkpointed(f, 'test', {}, KEYS, 1, squares([]));
    const text = fs.readFileSync(f, 'utf8');
    fs.writeFileSync(f, text.slice(0, text.length - 7)); // the last unit's line, cut mid-way
    const asked: number[][] = [];
    const rows = await checkpointed(f, 'test', {}, KEYS, 1, squares(asked));
    expect(asked).toEqual([[4]]);
    expect(rows.map((r) => r.sq)).toEqual([0, 1, 4, 9, 16]);
    expect(fs.readFileSync(f, 'utf8')).toBe(text); // and the file is whole again
  });

  it('refuses a damaged line in the middle (not a torn tail), naming the line', async () => {
    const f = file();
    await checkpointed(f, 'test', {}, KEYS, 1, squares([]));
    const lines = fs.readFileSync(f, 'utf8').split('\n');
    lines[2] = lines[2].slice(0, 10);
    fs.writeFileSync(f, lines.join('\n'));
    await expect(checkpointed(f, 'test', {}, KEYS, 1, squares([]))).rejects.toThrow(/line 3 is damaged/);
  });

  it('refuses duplicate unit keys', async () => {
    await expect(checkpointed(file(), 'test', {}, ['a', 'a'], 1, squares([]))).rejects.toThrow(/same key/);
  });
});
