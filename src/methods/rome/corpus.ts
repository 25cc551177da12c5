/**
 * Text corpora for ROME's second-moment statistics: the bundled WikiText-2 (test + validation
 * articles, detokenised; ROME used Wikipedia) or any text files / strings a user gives. A corpus is
 * a list of documents (paragraphs) in a seeded random order (ROME samples documents at random),
 * with an id that changes when the text or the options change (part of the statistics cache key).
 */
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { FactlensError } from '../../errors';
import { rng } from '../../runtime/generate';

export interface Corpus {
  /** Short name used in cache file names, e.g. "wikitext2". */
  name: string;
  /** Content hash (text and options): changes when the corpus does. */
  id: string;
  documents: string[];
}

const DATA_DIR = path.resolve(__dirname, '..', '..', '..', 'data');
export const WIKITEXT_FILES = [
  path.join(DATA_DIR, 'english_text', 'wikitext-2-raw.wiki.test.raw.txt'),
  path.join(DATA_DIR, 'english_text', 'wikitext-2.valid.tokens.txt'),
];

/** Undo WikiText's tokenisation spacing (" @-@ " → "-", " , " → ", ", ...) and drop <unk>. */
export function detokenizeWikitext(s: string): string {
  return s
    .replace(/ ?<unk> ?/g, ' ')
    .replace(/ @([-,.])@ /g, '$1')
    .replace(/ ([,.;:!?)\]}%])/g, '$1')
    .replace(/([(\[{$]) /g, '$1')
    .replace(/ (n't|'s|'re|'ve|'m|'ll|'d)\b/g, '$1')
    .replace(/" (.*?) "/g, '"$1"')
    .replace(/\s+/g, ' ')
    .trim();
}

/** WikiText paragraphs: non-empty lines that are not " = Heading = " lines. */
export function wikitextDocuments(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^=.*=$/.test(l))
    .map(detokenizeWikitext)
    .filter((l) => l.length > 0);
}

/** The bundled WikiText-2 corpus (about 4,300 paragraphs, 0.5 M tokens), shuffled with `seed`. */
const wikitextMemo = new Map<number, Corpus>();

export function wikitextCorpus(opts: { seed?: number } = {}): Corpus {
  const seed = opts.seed ?? 1;
  let c = wikitextMemo.get(seed);
  if (!c) {
    const texts = WIKITEXT_FILES.map((f) => fs.readFileSync(f, 'utf8'));
    wikitextMemo.set(seed, (c = makeCorpus('wikitext2', texts.flatMap(wikitextDocuments), seed)));
  }
  return c;
}

/**
 * A corpus from text files (paths) or raw strings: documents are paragraphs separated by blank
 * lines. WikiText-looking files (" = Title = " headings) are read as WikiText.
 */
export function textCorpus(sources: string | string[], opts: { name?: string; seed?: number } = {}): Corpus {
  const list = Array.isArray(sources) ? sources : [sources];
  const docs: string[] = [];
  for (const s of list) {
    const isFile = !s.includes('\n') && s.length < 4096 && fs.existsSync(s);
    const text = isFile ? fs.readFileSync(s, 'utf8') : s;
    if (/^ ?= [^=].* = ?$/m.test(text)) docs.push(...wikitextDocuments(text));
    else docs.push(...text.split(/\r?\n\s*\r?\n/).map((p) => p.replace(/\s+/g, ' ').trim()).filter(Boolean));
  }
  if (!docs.length) throw new FactlensError('the corpus has no text');
  const name = opts.name ?? (list.length === 1 && fs.existsSync(list[0]) ? path.basename(list[0]).replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 32) : 'text');
  return makeCorpus(name, docs, opts.seed ?? 1);
}

function makeCorpus(name: string, docs: string[], seed: number): Corpus {
  const h = crypto.createHash('sha256');
  for (const d of docs) h.update(d).update('\u0000');
  h.update(`seed=${seed}`);
  const order = docs.slice();
  const random = rng(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return { name, id: h.digest('hex').slice(0, 12), documents: order };
}
