/**
 * The relation data sets of Hernandez et al. 2023 ("Linearity of Relation Decoding", evandez/relations,
 * bundled in data/lre_relations/{factual,commonsense,linguistic,bias}/*.json) and romba's extra
 * `place_in_city` (data/romba_extra_relations/). Each file is one relation: a name, prompt templates
 * with a "{}" for the subject, and (subject, object) samples.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FactlensError } from '../errors';

export type RelationType = 'factual' | 'commonsense' | 'linguistic' | 'bias';

export interface RelationSample {
  subject: string;
  object: string;
}

export interface Relation {
  /** The file's stem, e.g. "person_occupation" (the id used everywhere in this library). */
  id: string;
  /** The file's own name field, e.g. "person occupation". */
  name: string;
  type: RelationType;
  /** Templates with "{}" for the subject; the paper's causal tracing uses promptTemplates[0]. */
  promptTemplates: string[];
  /** Zero-shot variants (the LRE code's prompt_templates_zs). */
  promptTemplatesZs: string[];
  properties: { relationType: string; domainName: string; rangeName: string; symmetric: boolean };
  samples: RelationSample[];
  /** Where it was read from. */
  file: string;
}

/** The project's data/ folder (src/data/ → ../../data), wherever the caller's working directory is. */
export const DATA_DIR = path.resolve(__dirname, '..', '..', 'data');
export const LRE_RELATIONS_DIR = path.join(DATA_DIR, 'lre_relations');
export const EXTRA_RELATIONS_DIR = path.join(DATA_DIR, 'romba_extra_relations');

/** The nine relations of the paper's causal-tracing figures (paper-spec §2.4). */
export const PAPER_TRACING_RELATIONS = [
  'place_in_city', 'country_capital_city', 'person_occupation', 'person_plays_pro_sport', 'company_ceo',
  'company_hq', 'landmark_in_country', 'product_by_company', 'person_native_language',
];

const TYPES: RelationType[] = ['factual', 'commonsense', 'linguistic', 'bias'];

/** Relation ids available, optionally of one type ("place_in_city" counts as factual). */
export function listRelations(type?: RelationType): string[] {
  const out: string[] = [];
  for (const t of type ? [type] : TYPES) {
    const dir = path.join(LRE_RELATIONS_DIR, t);
    if (fs.existsSync(dir)) out.push(...fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)));
  }
  if (!type || type === 'factual') out.push(...fs.readdirSync(EXTRA_RELATIONS_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)));
  return out.sort();
}

/** The file of a relation id (e.g. "company_hq"), or the path itself if given a path to a .json file. */
export function relationFile(idOrPath: string): { file: string; type: RelationType } {
  if (idOrPath.endsWith('.json')) {
    if (!fs.existsSync(idOrPath)) throw new FactlensError(`relation file ${idOrPath} not found`);
    const parent = path.basename(path.dirname(idOrPath)) as RelationType;
    return { file: idOrPath, type: TYPES.includes(parent) ? parent : 'factual' };
  }
  const id = idOrPath.replace(/ /g, '_');
  for (const t of TYPES) {
    const file = path.join(LRE_RELATIONS_DIR, t, `${id}.json`);
    if (fs.existsSync(file)) return { file, type: t };
  }
  const extra = path.join(EXTRA_RELATIONS_DIR, `${id}.json`);
  if (fs.existsSync(extra)) return { file: extra, type: 'factual' };
  throw new FactlensError(`unknown relation "${idOrPath}"; known: ${listRelations().join(', ')}`);
}

/**
 * Reads one relation. Objects and subjects are whitespace-trimmed, and the source's double-escaped
 * "\u00ed"-style text (country_capital_city: "Bras\\u00edlia") is decoded once more.
 */
export function loadRelation(idOrPath: string): Relation {
  const { file, type } = relationFile(idOrPath);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FactlensError(`relation file ${file} is not valid JSON (${(e as Error).message})`);
  }
  const templates = json.prompt_templates;
  const samples = json.samples;
  if (!Array.isArray(templates) || !templates.length || !Array.isArray(samples)) {
    throw new FactlensError(`relation file ${file}: needs "prompt_templates" (non-empty) and "samples" arrays`);
  }
  for (const t of templates) if (typeof t !== 'string' || !t.includes('{}')) throw new FactlensError(`relation file ${file}: template ${JSON.stringify(t)} has no "{}"`);
  const props = (json.properties ?? {}) as Record<string, unknown>;
  return {
    id: path.basename(file, '.json'),
    name: String(json.name ?? path.basename(file, '.json')),
    type,
    promptTemplates: templates as string[],
    promptTemplatesZs: Array.isArray(json.prompt_templates_zs) ? (json.prompt_templates_zs as string[]) : [],
    properties: {
      relationType: String(props.relation_type ?? type),
      domainName: String(props.domain_name ?? ''),
      rangeName: String(props.range_name ?? ''),
      symmetric: Boolean(props.symmetric),
    },
    samples: (samples as Array<Record<string, unknown>>).map((s, i) => {
      if (typeof s.subject !== 'string' || typeof s.object !== 'string') throw new FactlensError(`relation file ${file}: sample ${i} needs string subject and object`);
      return { subject: unescapeUnicode(s.subject.trim()), object: unescapeUnicode(s.object.trim()) };
    }),
    file,
  };
}

/** Several relations by id (default: the paper's nine causal-tracing relations). */
export function loadRelations(ids: string[] = PAPER_TRACING_RELATIONS): Relation[] {
  return ids.map(loadRelation);
}

/** A template filled with a subject: "{} plays the sport of" → "Michael Jordan plays the sport of". */
export function fillTemplate(template: string, subject: string): string {
  const i = template.indexOf('{}');
  if (i < 0) throw new FactlensError(`template ${JSON.stringify(template)} has no "{}" for the subject`);
  return template.slice(0, i) + subject + template.slice(i + 2);
}

function unescapeUnicode(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
