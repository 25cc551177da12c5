/** Small read-outs for looking at an edit: top-k next tokens, greedy completions. */
import { generate } from '../../runtime/generate';
import type { Model } from '../../runtime/model';
import { logitsAt, probOf, topKIndices } from '../../runtime/logits';

export interface TopToken {
  token: string;
  id: number;
  p: number;
}

/** The k most likely next tokens after each prompt (one batch). */
export async function topTokens(model: Model, prompts: string[], k = 5): Promise<TopToken[][]> {
  const logits = (await model.run(prompts, { logits: 'last' })).logits!; // [B,1,V]
  return prompts.map((_, b) => {
    const row = logitsAt(logits, b, 0); // [V]
    return topKIndices(row, k).map((id) => ({ token: model.decode([id]), id, p: probOf(row, id) }));
  });
}

/** Greedy continuations of each prompt (prompt + new text). */
export async function greedyCompletions(model: Model, prompts: string[], maxNewTokens = 12): Promise<string[]> {
  const g = await generate(model, prompts, { maxNewTokens, topK: 0 });
  return g.texts.map((t, i) => prompts[i] + t);
}
