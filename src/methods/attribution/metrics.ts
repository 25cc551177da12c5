/**
 * The scalar an attribution explains: a function of one pair's next-token logits at its last
 * position, with its gradient. Built-ins: p(answer), log p(answer), logit(answer) − logit(foil);
 * any other scalar of the logits comes as a value-and-gradient function.
 */
import { FactlensError } from '../../errors';
import { softmaxRow } from '../../runtime/grad';
import type { LogitLoss } from '../../runtime/grad';
import { Tensor } from '../../runtime/tensor';

/** Value and ∂value/∂logits of pair `pair`'s logits [V] at its last position. */
export type AttributionMetric = (logits: Float32Array, pair: number) => { value: number; grad: Float32Array };

function checkedId(ids: number[], pair: number, V: number, what: string): number {
  const id = ids[pair];
  if (!Number.isInteger(id) || id < 0 || id >= V) throw new FactlensError(`attribution metric: ${what} of pair ${pair} is ${id}, not a token id in 0..${V - 1}`);
  return id;
}

/** p(answer): ∂p/∂z_v = p (1[v = a] − p_v). */
export function probMetric(answers: number[]): AttributionMetric {
  return (logits, pair) => {
    const a = checkedId(answers, pair, logits.length, 'answer');
    const { probs } = softmaxRow(logits, 0, logits.length); // [V]
    const pa = probs[a];
    const grad = probs.map((p) => -pa * p); // [V]
    grad[a] += pa;
    return { value: pa, grad };
  };
}

/** log p(answer): ∂/∂z_v = 1[v = a] − p_v. */
export function logProbMetric(answers: number[]): AttributionMetric {
  return (logits, pair) => {
    const a = checkedId(answers, pair, logits.length, 'answer');
    const { logZ, probs } = softmaxRow(logits, 0, logits.length); // [V]
    const grad = probs.map((p) => -p); // [V]
    grad[a] += 1;
    return { value: logits[a] - logZ, grad };
  };
}

/** logit(answer) − logit(foil). */
export function logitDiffMetric(answers: number[], foils: number[]): AttributionMetric {
  return (logits, pair) => {
    const a = checkedId(answers, pair, logits.length, 'answer');
    const f = checkedId(foils, pair, logits.length, 'foil');
    const grad = new Float32Array(logits.length); // [V]
    grad[a] += 1;
    grad[f] -= 1;
    return { value: logits[a] - logits[f], grad };
  };
}

export type MetricName = 'prob' | 'logprob' | 'logit-diff';

/** A built-in metric by name (the CLI's --metric). */
export function metricByName(name: string, answers: number[], foils?: number[]): AttributionMetric {
  if (name === 'prob') return probMetric(answers);
  if (name === 'logprob') return logProbMetric(answers);
  if (name === 'logit-diff') {
    if (!foils) throw new FactlensError('attribution metric "logit-diff" needs a foil token per pair');
    return logitDiffMetric(answers, foils);
  }
  throw new FactlensError(`attribution: unknown metric "${name}" (use prob, logprob or logit-diff)`);
}

/**
 * The metric summed over the rows of logits [B,1,V] (row b is pair pairOf[b]) as a loss for
 * `gradients`: rows are independent, so each row's gradient is its own metric's.
 */
export function metricLoss(metric: AttributionMetric, pairOf: number[]): LogitLoss {
  return (logits) => {
    const [B, P, V] = logits.shape;
    if (P !== 1) throw new FactlensError('attribution: the metric reads logits at one position per row (logits: "last")');
    const grad = new Float32Array(logits.size); // [B,1,V]
    let loss = 0;
    for (let b = 0; b < B; b++) {
      const m = metric(logits.data.subarray(b * V, (b + 1) * V), pairOf[b]);
      loss += m.value;
      grad.set(m.grad, b * V);
    }
    return { loss, grad: new Tensor(grad, [B, P, V]) };
  };
}
