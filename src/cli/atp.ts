/**
 * `atp`: attribution patching of one prompt pair from the command line.
 *   atp --model DIR --clean TEXT --corrupt TEXT --answer TEXT [--kinds k1,k2] [--metric prob|logprob]
 * prints { kinds: { KIND: [[estimate per position] per layer] } } for the denoising direction,
 * (a_clean − a_corrupt) · ∂metric/∂a on the corrupted run; metric p or log p of the answer's first
 * token at the last position (default prob). The prompts must have equal token length.
 */
import type { Model } from '../runtime/model';
import { attributionPatching } from '../methods/attribution/atp';
import { metricByName } from '../methods/attribution/metrics';

export const ATP_USAGE = 'atp         --model DIR --clean TEXT --corrupt TEXT --answer TEXT [--kinds k1,k2] [--metric prob|logprob]';

export async function atpCommand(model: Model, flags: Map<string, string>, need: (name: string) => string): Promise<{ kinds: Record<string, number[][]> }> {
  const metricName = flags.get('metric') ?? 'prob';
  if (metricName !== 'prob' && metricName !== 'logprob') throw new Error(`--metric must be prob or logprob, got "${metricName}"`);
  const clean = model.encode(need('clean'));
  const corrupt = model.encode(need('corrupt'));
  if (clean.length !== corrupt.length) throw new Error(`--clean has ${clean.length} tokens and --corrupt ${corrupt.length}: the prompts must have equal token length`);
  const answer = model.encode(need('answer'));
  if (!answer.length) throw new Error('--answer encodes to no token');
  const kinds = flags.has('kinds') ? need('kinds').split(',').map((k) => k.trim()).filter(Boolean) : undefined;
  const [res] = await attributionPatching(model, [{ clean, corrupt }], metricByName(metricName, [answer[0]]), { kinds });
  return { kinds: Object.fromEntries(Object.entries(res.kinds).map(([k, m]) => [k, m.estimate])) };
}
