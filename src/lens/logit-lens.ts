/**
 * The logit lens (nostalgebraist 2020; TransformerLens's cache.accumulated_resid + apply_ln): the
 * residual stream after each layer, decoded with the model's final norm and unembedding, so one can
 * watch where the answer appears. Positions are picked by index, 'last', 'all' or by subject.
 */
import * as aq from 'arquero';
import { FactlensError } from '../errors';
import { isSubjectPositions, Positions, subjectPositionsIn } from '../runtime/intervention-select';
import { argmax, logSoftmax } from '../runtime/logits';
import type { Model, ModelInput } from '../runtime/model';
import { Tensor } from '../runtime/tensor';

export interface LensOptions {
  /** Positions to read: 'last' (default), 'all', token indices, or { subjectLast: 'France' }. */
  at?: Positions;
  /** Batch row to read (default 0). */
  row?: number;
}

export interface AccumulatedResid {
  /** [L+1, P, D]: the embeddings, then the residual stream after each layer, at the chosen positions. */
  resid: Tensor;
  /** Per entry of axis 0: -1 for the embeddings, else the layer after which the stream is read. */
  layers: number[];
  /** The token positions of axis 1. */
  positions: number[];
  /** The row's token ids and token strings. */
  ids: number[];
  tokens: string[];
}

function lensPositions(model: Model, input: ModelInput, at: Positions, row: number): { positions: number[]; length: number; ids: number[] } {
  const batch = model.batch(input);
  if (!(Number.isInteger(row) && row >= 0 && row < batch.B)) throw new FactlensError(`logit lens: row ${row} is out of range (the input has ${batch.B} rows)`);
  const length = batch.lengths[row];
  const ids = batch.rows[row];
  if (at === 'last') return { positions: [length - 1], length, ids };
  if (at === 'all') return { positions: [...Array(length).keys()], length, ids };
  if (isSubjectPositions(at)) return { positions: subjectPositionsIn(model, batch, row, at, 'logit lens'), length, ids };
  if (!Array.isArray(at)) throw new FactlensError(`logit lens: at must be 'last', 'all', positions or { subjectLast: S }, got ${JSON.stringify(at)}`);
  for (const t of at) if (!(Number.isInteger(t) && t >= 0 && t < length)) throw new FactlensError(`logit lens: position ${t} is out of range (the prompt has ${length} tokens)`);
  return { positions: at, length, ids };
}

/** The residual stream entering layer 0 and after every layer at the chosen positions of one row. */
export async function accumulatedResid(model: Model, input: ModelInput, opts: LensOptions = {}): Promise<AccumulatedResid> {
  const row = opts.row ?? 0;
  const batch = model.batch(input);
  const { positions, ids } = lensPositions(model, batch, opts.at ?? 'last', row);
  const L = model.nLayers;
  const names = ['embed', ...Array.from({ length: L }, (_, l) => `layers.${l}.resid_post`)];
  const { cache } = await model.runWithCache(batch, names, { logits: 'none' });
  const D = model.config.dModel;
  const P = positions.length;
  const out = new Float32Array((L + 1) * P * D); // [L+1,P,D]
  names.forEach((n, i) => {
    const t = cache.get(n); // [B,T,D]
    const T = t.shape[1];
    positions.forEach((pos, j) => out.set(t.data.subarray((row * T + pos) * D, (row * T + pos + 1) * D), (i * P + j) * D));
  });
  return { resid: new Tensor(out, [L + 1, P, D]), layers: [-1, ...Array.from({ length: L }, (_, l) => l)], positions, ids, tokens: model.tokenStrings(ids) };
}

/**
 * The logit lens as a table, one row per (layer, position): layer (-1 = embeddings), position, token
 * (the input token there), top_token and p_top (the lens's most likely next token), answer and
 * p_answer. The answer is `answer` (a token id, or a string whose first token is used) or, by
 * default, the model's own prediction at that position, so the last layer's p_answer is the model's.
 */
export async function logitLens(model: Model, input: ModelInput, opts: LensOptions & { answer?: string | number } = {}) {
  const acc = await accumulatedResid(model, input, opts);
  const [S, P, D] = acc.resid.shape;
  const V = model.config.vocabSize;
  const lens = await model.unembed(acc.resid.reshape([S * P, D])); // [S*P,V]
  const logp = Array.from({ length: S * P }, (_, i) => logSoftmax(lens.data.subarray(i * V, (i + 1) * V))); // each [V]
  const answers = acc.positions.map((_, j) => answerToken(model, opts.answer) ?? argmax(logp[(S - 1) * P + j]));
  const rows: Record<string, unknown>[] = [];
  for (let s = 0; s < S; s++) {
    for (let j = 0; j < P; j++) {
      const lp = logp[s * P + j];
      const top = argmax(lp);
      rows.push({
        layer: acc.layers[s], position: acc.positions[j], token: acc.tokens[acc.positions[j]],
        top_token: model.decode([top]), p_top: Math.exp(lp[top]), answer: model.decode([answers[j]]), p_answer: Math.exp(lp[answers[j]]),
      });
    }
  }
  return aq.from(rows);
}

function answerToken(model: Model, answer: string | number | undefined): number | null {
  if (answer === undefined) return null;
  if (typeof answer === 'number') {
    if (!(Number.isInteger(answer) && answer >= 0 && answer < model.config.vocabSize)) throw new FactlensError(`logit lens: answer token ${answer} is outside the vocabulary 0..${model.config.vocabSize - 1}`);
    return answer;
  }
  const ids = model.encode(answer);
  if (!ids.length) throw new FactlensError(`logit lens: the answer ${JSON.stringify(answer)} has no tokens`);
  return ids[0];
}
