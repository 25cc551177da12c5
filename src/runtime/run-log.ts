/**
 * The durable store of checkpointed long runs: one JSON-lines file per run.
 *
 *   line 1   {"format":"factlens-run-log/1","run":"<what>","settings":{...}}
 *   line k   {"key":"<unit key>","row":<the unit's result>}
 *
 * Each finished group of units is appended in one write and fsync'ed before the run goes on, so a
 * kill (kernel restart, out-of-memory, power) loses at most the group in progress. Reopening with the
 * same settings resumes: the rows of finished units are read back and only missing units computed. A
 * last line torn by a kill mid-write is cut off; any other damage, or other settings, is refused.
 * Numbers that JSON cannot hold (NaN, ±Infinity) are stored as {"$num":"NaN"} and read back exactly.
 */
import fs from 'fs';
import path from 'path';
import { FactlensError } from '../errors';

export const RUN_LOG_FORMAT = 'factlens-run-log/1';

/** A run log that cannot be used: other settings, damage, or a file that is not a run log. */
export class RunLogError extends FactlensError {}

export type Settings = Record<string, unknown>;

export class RunLog<Row> {
  private constructor(
    readonly file: string,
    private readonly fd: number,
    private readonly rows: Map<string, Row>,
  ) {}

  /**
   * Open (creating it if absent) the log at `file` for a run `run` with these settings. Throws a
   * RunLogError naming the file when it holds another run or other settings, or is damaged.
   */
  static open<Row>(file: string, run: string, settings: Settings): RunLog<Row> {
    const header = { format: RUN_LOG_FORMAT, run, settings };
    let rows = new Map<string, Row>();
    if (fs.existsSync(file)) {
      rows = readLog<Row>(file, header);
    } else {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      writeDurably(file, `${encode(header)}\n`);
    }
    return new RunLog<Row>(file, fs.openSync(file, 'a'), rows);
  }

  has(key: string): boolean {
    return this.rows.has(key);
  }

  get(key: string): Row | undefined {
    return this.rows.get(key);
  }

  get size(): number {
    return this.rows.size;
  }

  /** Append finished units in one write, then fsync: they survive any later crash. */
  append(units: Array<[string, Row]>): void {
    const fresh = units.filter(([key]) => !this.rows.has(key));
    if (!fresh.length) return;
    const lines = fresh.map(([key, row]) => encode({ key, row }));
    fs.writeSync(this.fd, lines.map((l) => `${l}\n`).join(''));
    fs.fsyncSync(this.fd);
    // Keep what a resumed run would read back, so both return the same values (typed arrays become arrays).
    for (const line of lines) {
      const unit = parseLine(line) as { key: string; row: Row };
      this.rows.set(unit.key, unit.row);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/**
 * Rows of `keys` (in that order): read from the log at `file` where present, the rest computed by
 * `compute` in fixed groups of `group` consecutive keys, each group appended as it finishes. The
 * groups do not depend on what is already stored, so a resumed run batches every unit exactly as
 * an uninterrupted run does and gets the same numbers.
 */
export async function resumable<Row>(
  log: RunLog<Row>, keys: string[], group: number, compute: (indices: number[]) => Promise<Row[]>,
): Promise<Row[]> {
  if (!(group >= 1)) throw new FactlensError(`checkpoint ${log.file}: units are computed in groups of at least 1, got ${group}`);
  if (new Set(keys).size !== keys.length) throw new FactlensError(`checkpoint ${log.file}: two units of this run have the same key`);
  for (let from = 0; from < keys.length; from += group) {
    const indices = groupAt(from, group, keys.length);
    if (indices.every((i) => log.has(keys[i]))) continue;
    const rows = await compute(indices);
    log.append(indices.map((i, j) => [keys[i], rows[j]]));
  }
  return keys.map((k) => log.get(k)!);
}

/** Run `body` with the log open (closed however it ends). */
export async function withRunLog<Row, T>(file: string, run: string, settings: Settings, body: (log: RunLog<Row>) => Promise<T>): Promise<T> {
  const log = RunLog.open<Row>(file, run, settings);
  try {
    return await body(log);
  } finally {
    log.close();
  }
}

function readLog<Row>(file: string, header: { format: string; run: string; settings: Settings }): Map<string, Row> {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const complete = lines.length - 1; // the part after the last newline is empty, or torn by a kill
  const first = parseLine(lines[0]);
  if (complete === 0 || !isObject(first) || first.format !== RUN_LOG_FORMAT) {
    throw new RunLogError(`${file}: not a factlens run log (its first line is not a ${RUN_LOG_FORMAT} header); pass another checkpoint path`);
  }
  if (first.run !== header.run) throw new RunLogError(`${file}: a checkpoint of ${JSON.stringify(first.run)}, not of ${JSON.stringify(header.run)}; pass another checkpoint path`);
  const diff = settingsDiff(first.settings, header.settings);
  if (diff) throw new RunLogError(`${file}: this checkpoint was made with other settings (${diff}); rerun with the same settings to resume, or pass another checkpoint path`);
  const rows = new Map<string, Row>();
  for (let i = 1; i < complete; i++) {
    const unit = parseLine(lines[i]);
    if (!isObject(unit) || typeof unit.key !== 'string' || !('row' in unit)) {
      throw new RunLogError(`${file}: line ${i + 1} is damaged (not a {"key", "row"} record); the log cannot be resumed`);
    }
    rows.set(unit.key, unit.row as Row);
  }
  const tornBytes = Buffer.byteLength(lines[lines.length - 1]);
  if (tornBytes > 0) fs.truncateSync(file, Buffer.byteLength(text) - tornBytes); // a write cut short by a kill
  return rows;
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line, (_, v) => (isObject(v) && typeof v.$num === 'string' && Object.keys(v).length === 1 ? Number(v.$num) : v));
  } catch {
    return undefined;
  }
}

function encode(value: unknown): string {
  return JSON.stringify(value, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? { $num: String(v) } : v));
}

/** The first setting that differs, as `name: stored → now`, or null. */
function settingsDiff(stored: unknown, now: Settings): string | null {
  if (!isObject(stored)) return 'no settings stored';
  for (const key of new Set([...Object.keys(stored), ...Object.keys(now)])) {
    const a = encode(stored[key]);
    const b = encode(now[key]);
    if (a !== b) return `${key}: ${clip(a)} → ${clip(b)}`;
  }
  return null;
}

function clip(s: string | undefined): string {
  if (s === undefined) return 'absent';
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Create `file` with `text` atomically (a temporary file renamed into place), fsync'ed with its directory entry. */
function writeDurably(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(path.resolve(file)), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

/** resumable() on the log at `file`, opened for this run and settings and closed at the end. */
export function checkpointed<Row>(
  file: string, run: string, settings: Settings, keys: string[], group: number, compute: (indices: number[]) => Promise<Row[]>,
): Promise<Row[]> {
  return withRunLog<Row, Row[]>(file, run, settings, (log) => resumable(log, keys, group, compute));
}

/** Where a method's finished units go: a run-log path, or (for a sweep over method calls) an open log and a key prefix. */
export type CheckpointOption = string | { log: RunLog<unknown>; prefix: string };

/**
 * The rows of `keys` (computed by `compute` in fixed groups of `group` consecutive indices, each
 * returning one row per index), checkpointed as `checkpoint` says; without one, simply computed.
 */
export async function checkpointedRows<Row>(
  checkpoint: CheckpointOption | undefined, run: string, settings: () => Settings, keys: string[], group: number,
  compute: (indices: number[]) => Promise<Row[]>,
): Promise<Row[]> {
  group = Math.max(1, group);
  if (checkpoint === undefined) {
    const rows: Row[] = [];
    for (let from = 0; from < keys.length; from += group) rows.push(...(await compute(groupAt(from, group, keys.length))));
    return rows;
  }
  if (typeof checkpoint === 'string') return checkpointed(checkpoint, run, settings(), keys, group, compute);
  return resumable(checkpoint.log as RunLog<Row>, keys.map((k) => `${checkpoint.prefix}${k}`), group, compute);
}

/** Indices from, from + 1, ... of one group (at most `group` of them, below n). */
function groupAt(from: number, group: number, n: number): number[] {
  return Array.from({ length: Math.min(group, n - from) }, (_, i) => from + i);
}

/**
 * Run `body` with a `unit(key, compute)` that reads a finished unit back from the checkpoint or
 * computes and appends it (for loops whose units are decided as they go); without a checkpoint,
 * `unit` just computes.
 */
export async function withOptionalLog<Row>(
  checkpoint: CheckpointOption | undefined, run: string, settings: () => Settings,
  body: (unit: (key: string, compute: () => Promise<Row>) => Promise<Row>) => Promise<void>,
): Promise<void> {
  const unitOf = (log: RunLog<unknown>, prefix: string) => async (key: string, compute: () => Promise<Row>): Promise<Row> => {
    const k = `${prefix}${key}`;
    if (log.has(k)) return log.get(k) as Row;
    log.append([[k, await compute()]]);
    return log.get(k) as Row;
  };
  if (checkpoint === undefined) return body((_, compute) => compute());
  if (typeof checkpoint !== 'string') return body(unitOf(checkpoint.log, checkpoint.prefix));
  await withRunLog<unknown, void>(checkpoint, run, settings(), (log) => body(unitOf(log, '')));
}
