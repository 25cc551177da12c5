/**
 * User hooks run inside the forward pass, where a bare error or a wrong return value would surface
 * far from its cause. Each hook is wrapped so that a throw becomes one line naming the hook and its
 * layer (the original error kept as `cause`), and a return value that is neither a Tensor nor
 * undefined is rejected at once (a number or a plain array would otherwise be ignored or crash later).
 */
import { FactlensError } from '../errors';
import { Tensor } from './tensor';

export class HookError extends FactlensError {}

const where = (name: string, layer: number | null) => `hook "${name}"${layer === null ? '' : ` (layer ${layer})`}`;

export function guardHook<C>(fn: (act: Tensor, ctx: C) => unknown, name: string, layer: number | null): (act: Tensor, ctx: C) => Promise<Tensor | void> {
  return async (act, ctx) => {
    let r: unknown;
    try {
      r = await fn(act, ctx);
    } catch (e) {
      if (e instanceof HookError) throw e;
      const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      throw new HookError(`${where(name, layer)} threw ${message}`, { cause: e });
    }
    if (r === undefined || r === null || r instanceof Tensor) return r ?? undefined;
    const what = Array.isArray(r) ? 'an array' : typeof r === 'object' ? `a ${(r as object).constructor?.name ?? 'object'}` : `a ${typeof r}`;
    throw new HookError(`${where(name, layer)} returned ${what}; a hook returns a Tensor (a replacement of the same shape) or nothing`);
  };
}
