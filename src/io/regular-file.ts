/**
 * Opening files that must be regular files. open(2) on a FIFO blocks until a
 * writer appears (and a device may never end), so every checkpoint file is
 * opened non-blocking and refused unless fstat says it is a regular file.
 */
import fs from 'fs';
import { CheckpointError } from './errors';

/** O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer (no effect on regular files). */
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/** An fd open for reading on a regular file (symlinks followed); `what` names the file's role in errors. */
export function openRegularFile(file: string, what: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CheckpointError(`${file}: ${what} file not found`);
    throw new CheckpointError(`${file}: cannot open ${what} file (${(e as Error).message})`);
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) {
    fs.closeSync(fd);
    throw new CheckpointError(`${file}: ${what} file is not a regular file (${kindOf(stat)}); refusing to read it`);
  }
  return fd;
}

/** The whole text of a regular file, strictly UTF-8. */
export function readRegularText(file: string, what: string): string {
  const fd = openRegularFile(file, what);
  try {
    return decodeUtf8(fs.readFileSync(fd), `${file}: ${what} file`);
  } finally {
    fs.closeSync(fd);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes as text; invalid sequences are an error (a lenient decoder would turn them into U+FFFD silently). */
export function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new CheckpointError(`${where} is not valid UTF-8`);
  }
}

function kindOf(s: fs.Stats): string {
  if (s.isFIFO()) return 'a FIFO';
  if (s.isDirectory()) return 'a directory';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a plain file';
}
