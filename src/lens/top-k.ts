/** The k most likely next tokens of a logits row, as an arquero table (rank, id, token, p, logit). */
import * as aq from 'arquero';
import { LogitsRow, rowOf, softmax, topKIndices } from '../runtime/logits';
import type { Model } from '../runtime/model';

/**
 * `topK(logitsRow, k)`: columns rank (1 = most likely), id, p (softmax over the whole row) and logit;
 * with a model, also token (the decoded token text, e.g. " Paris").
 */
export function topK(logitsRow: LogitsRow, k = 5, model?: Model) {
  const row = rowOf(logitsRow, 'topK');
  const ids = topKIndices(row, k);
  const probs = softmax(row); // [V]
  const columns: Record<string, unknown[]> = { rank: ids.map((_, i) => i + 1), id: ids };
  if (model) columns.token = ids.map((id) => model.decode([id]));
  columns.p = ids.map((id) => probs[id]);
  columns.logit = ids.map((id) => row[id]);
  return aq.table(columns);
}
