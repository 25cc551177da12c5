/** Small read-outs for looking at an edit: top-k next tokens, greedy completions. */
import { generate } from '../../runtime/generate';
import type { Model } from '../../runtime/model';

export interface TopToken {
  token: string;
  id: number;
  p: number;
}

/** The k most likely next tokens after each prompt (one batch). */
export async function topTokens(model: Model, prompts: string[], k = 5): Promise<TopToken[][]> {
  const logits = (await model.run(prompts, { logits: 'last' })).logits!; // [B,1,V]
  const V = logits.shape[2];
  return prompts.map((_, b) => {
    const row = logits.data.subarray(b * V, (b + 1) * V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, row[v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(row[v] - max);
    const best: number[] = [];
    for (let v = 0; v < V; v++) {
      if (best.length < k || row[v] > row[best[best.length - 1]]) {
        best.push(v);
        best.sort((a, c) => row[c] - row[a]);
        if (best.length > k) best.pop();
      }
    }
    return best.map((id) => ({ token: model.decode([id]), id, p: Math.exp(row[id] - max) / z }));
  });
}

/** Greedy continuations of each prompt (prompt + new text). */
export async function greedyCompletions(model: Model, prompts: string[], maxNewTokens = 12): Promise<string[]> {
  const g = await generate(model, prompts, { maxNewTokens, topK: 0 });
  return g.texts.map((t, i) => prompts[i] + t);
}
