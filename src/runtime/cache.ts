/**
 * Activations kept from a run, by canonical hook name. Only the names asked
 * for are kept (a full cache of a 2.8b model is gigabytes).
 */
import { FactlensError } from '../errors';
import { Tensor } from './tensor';
import { Arch, resolveHook } from './hooks';

export class ActivationCache {
  private readonly map = new Map<string, Tensor>();

  constructor(
    private readonly arch: Arch,
    private readonly nLayers: number,
    private readonly parallelResidual = true,
  ) {}

  set(name: string, t: Tensor): void {
    this.map.set(name, t);
  }

  /** Any accepted spelling of a hook name (romba, TransformerLens, fixture keys). */
  get(name: string): Tensor {
    const canonical = resolveHook(name, this.arch, this.nLayers, this.parallelResidual).name;
    const t = this.map.get(canonical);
    if (!t) {
      const kept = [...this.map.keys()];
      throw new FactlensError(`activation "${canonical}" was not cached; this run kept: ${kept.length ? kept.slice(0, 12).join(', ') + (kept.length > 12 ? ', …' : '') : 'nothing (pass cache: [...] to keep activations)'}`);
    }
    return t;
  }

  has(name: string): boolean {
    return this.map.has(resolveHook(name, this.arch, this.nLayers, this.parallelResidual).name);
  }

  get names(): string[] {
    return [...this.map.keys()];
  }

  /** `local` at every layer, stacked: [L,...shape]. */
  stack(local: string): Tensor {
    const parts: Tensor[] = [];
    for (let l = 0; l < this.nLayers; l++) parts.push(this.get(`layers.${l}.${local}`));
    const size = parts[0].size;
    const out = new Float32Array(size * parts.length); // [L,...]
    parts.forEach((p, l) => out.set(p.data, l * size));
    return new Tensor(out, [parts.length, ...parts[0].shape]);
  }
}
