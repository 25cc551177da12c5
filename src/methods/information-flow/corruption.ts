/**
 * Alternative-subject corruption (paper-spec §2.1), a minimal version for the path-blocking figure:
 * the causal-tracing module of this project was not there to reuse when this was written.
 *
 * For each known fact, s′ is drawn (seeded) from the known facts of the same relation with a different
 * subject and a different object; x* is the same template with s′. o = the clean answer, high = p(o|x),
 * low = p(o|x*). Pairs with high − low < minGap are dropped (romba keeps them, and its relative IE can
 * blow up; paper-spec §8 leaves this open).
 *
 * Alignment: romba left-pads the 2-row batch with EOS tokens that Mamba really processes. Here each
 * prompt runs unpadded and positions are matched by role (the subject's last token, the last token),
 * which is all the path-blocking figure needs; for GPT-NeoX with relative (rotary) positions and masked
 * padding the two are the same, for Mamba it leaves out the pad tokens' effect on the state.
 */
import { FactlensError } from '../../errors';
import type { Model } from '../../runtime/model';
import { rng } from '../../runtime/generate';
import { fillTemplate } from '../../data/relations';
import { FactPrompt, subjectRange } from './prompts';
import { runVariants } from './runner';

export interface CorruptedPair {
  clean: FactPrompt;
  altSubject: string;
  altPrompt: string;
  altIds: number[];
  altSubjectRange: [number, number];
  /** p(o | clean prompt), p(o | corrupted prompt). */
  high: number;
  low: number;
}

export interface PairOptions {
  seed?: number;
  /** Drop pairs with high − low below this (default 0.05). */
  minGap?: number;
  /** Text before every prompt (must match the one the facts were made with; default none). */
  prefix?: string;
  /** Known facts to draw alternative subjects from (default: `facts` themselves). */
  pool?: FactPrompt[];
}

export async function altSubjectPairs(model: Model, facts: FactPrompt[], opts: PairOptions = {}): Promise<CorruptedPair[]> {
  const random = rng(opts.seed ?? 0);
  const prefix = opts.prefix ?? '';
  const drafts: Array<Omit<CorruptedPair, 'low'>> = [];
  for (const f of facts) {
    const pool = (opts.pool ?? facts).filter((g) => g.relation === f.relation && g.subject !== f.subject && g.object !== f.object);
    if (!pool.length) continue;
    const alt = pool[Math.floor(random() * pool.length)];
    const altPrompt = prefix + fillTemplate(f.template, alt.subject);
    if (!f.prompt.startsWith(prefix)) throw new FactlensError(`fact prompt ${JSON.stringify(f.prompt)} does not start with the prefix ${JSON.stringify(prefix)}`);
    drafts.push({
      clean: f, altSubject: alt.subject, altPrompt, altIds: model.encode(altPrompt),
      altSubjectRange: subjectRange(model, altPrompt, alt.subject, prefix.length + f.template.indexOf('{}')), high: f.pClean,
    });
  }
  const lows = await runVariants(model, drafts.map((d) => ({ ids: d.altIds, target: d.clean.answer })));
  const minGap = opts.minGap ?? 0.05;
  return drafts.map((d, i) => ({ ...d, low: lows[i] })).filter((d) => d.high - d.low >= minGap);
}
