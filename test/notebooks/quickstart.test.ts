// The quickstart (notebooks/src/00-quickstart.nb.ts) survives a prompt change: rerun with another fact
// and donor (FACTLENS_QUICKSTART), whose subjects sit elsewhere and span several tokens, every labelled
// result matches what the library computes directly for those prompts, and nothing of the default
// prompts leaks into the output.
import * as fs from 'fs';
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCells } from '../../scripts/build-notebooks';
import { Model } from '../../src/runtime/model';
import { topK } from '../../src/lens/top-k';
import { interventionHooks } from '../../src/runtime/interventions';
import { CellsRun, ROOT, runCells } from '../support/tslab-cells';

const fact = { prompt: 'Michael Jordan plays the sport of', subject: 'Michael Jordan' };
const other = { prompt: 'Wayne Gretzky plays the sport of', subject: 'Wayne Gretzky' };
const quote = (t: string) => '`' + JSON.stringify(t) + '`';

describe('quickstart with other prompts', () => {
  let run: CellsRun;
  let markdownOf: (cell: number) => string;
  let model: Model;

  beforeAll(async () => {
    const source = fs.readFileSync(path.join(ROOT, 'notebooks', 'src', '00-quickstart.nb.ts'), 'utf8');
    const cells = parseCells(source).filter((c) => c.kind === 'code').map((c) => c.lines.join('\n'));
    run = runCells(cells, { FACTLENS_QUICKSTART: JSON.stringify({ fact, other }) });
    markdownOf = (cell) => run.displayed[cell].filter(([mime]) => mime === 'text/markdown').map(([, text]) => text).join('\n');
    model = await Model.load(path.join(ROOT, 'data', 'models', 'mamba-facts'));
  }, 10 * 60_000);

  it('runs without a cell error', () => {
    expect(run.output).not.toContain('FAILED');
    expect(run.status, run.output).toBe(0);
  });

  it('labels the new subject\'s tokens and the prediction the model makes', async () => {
    const best = topK(await model.logits(fact.prompt, { last: true }), 1, model).get('token', 0) as string;
    expect(best).toBe(' basketball');
    expect(markdownOf(1)).toContain('the subject "Michael Jordan" is tokens 0, 1.');
    expect(markdownOf(1)).toContain(`The top prediction is ${quote(best)}`);
  });

  it('patches at the subject\'s last token from the donor\'s, as the same patch by index does', async () => {
    const early = Array.from({ length: model.nLayers / 2 }, (_, l) => l);
    const donor = await model.runWithCache(other.prompt, early.map((l) => `layers.${l}.mixer.out`));
    // By hand: " Jordan" is token 1, " Gretzky" ends at token 5 ("W","ayne"," G","ret","z","ky").
    expect(model.toStrTokens(other.prompt).slice(2, 6).join('')).toBe(' Gretzky');
    const hooks = interventionHooks(model, [{ hook: 'layers.{layer}.mixer.out', layers: early, positions: [1], op: 'replace', source: { cache: 'd', position: 5 } }], { caches: { d: donor.cache } });
    const after = topK((await model.runWithHooks(fact.prompt, hooks, { logits: 'last' })).logits!, 1, model);
    expect(markdownOf(3)).toContain('Patching o at the last token of "Michael Jordan" (token 1) with its value at "Wayne Gretzky"');
    expect(markdownOf(3)).toContain(`to ${quote(after.get('token', 0) as string)} (p = ${(after.get('p', 0) as number).toFixed(3)})`);
  });

  it('says why the token-by-token map needs prompts of equal length, and labels the lens with the answer', () => {
    expect(markdownOf(4)).toBe('"Michael Jordan plays the sport of" has 6 tokens and "Wayne Gretzky plays the sport of" has 10: pick an OTHER prompt of the same length for the token-by-token map.');
    expect(markdownOf(5)).toMatch(/^In Mamba the answer `" basketball"` (first passes|never passes) p = 0.5/);
    expect(markdownOf(6)).toMatch(/^\*\*Michael Jordan plays the sport of\*\* basketball/);
  });

  it('shows nothing of the default prompts', () => {
    const all = run.displayed.flat().map(([, text]) => text).join('\n');
    for (const word of ['France', 'Italy', 'Paris', 'Rome']) expect(all).not.toContain(word);
  });
});
