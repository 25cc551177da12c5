/** torch.optim.Adam (β = 0.9, 0.999; ε = 1e-8; no weight decay) on one parameter vector. */

export interface AdamState {
  m: Float64Array;
  v: Float64Array;
  t: number;
}

export function adamState(n: number): AdamState {
  return { m: new Float64Array(n), v: new Float64Array(n), t: 0 };
}

/** One Adam step on x in place, with gradient g and learning rate lr. */
export function adamStep(s: AdamState, x: Float32Array, g: Float64Array, lr: number): void {
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  s.t++;
  const c1 = 1 - b1 ** s.t, c2 = 1 - b2 ** s.t;
  for (let i = 0; i < x.length; i++) {
    s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
    x[i] -= (lr / c1) * (s.m[i] / (Math.sqrt(s.v[i]) / Math.sqrt(c2) + eps));
  }
}
