/**
 * A loaded model: its config, tokenizer, float32 weights (one copy, in JS
 * typed arrays fed to ONNX sessions zero-copy; see weight-store.ts) and its
 * stage definitions. An edited model is a view with some weights overridden;
 * the original is never touched, so restoring an edit is free.
 */
import { FactlensError } from '../errors';
import type { Mamba2Config, MambaConfig, ModelConfig, NeoxConfig, TransformerConfig } from '../io/config';
import type { Tokenizer } from '../io/tokenizer';
import { Checkpoint, openCheckpoint } from '../io/checkpoint';
import { asStoredValues, rememberSource, saveCheckpoint, SaveReport, sourceOf } from '../io/save-checkpoint';
import { embeddingName, expectedWeights, isStoredTransposed, unembeddingName } from '../io/weights';
import { mambaHeadStage, mambaLayerStage } from '../models/mamba';
import { nativeAddon } from '../graph/native-addon';
import { transformerHeadStage, transformerLayerStage } from '../models/transformer';
import { TRANSFORMER_ADAPTERS } from '../models/transformer-adapters';
import { mamba2LayerStage } from '../models/mamba2';
import { isSsmConfig, ssmLayout } from '../models/ssm';
import { Batch, makeBatch } from './batch';
import { runModel, RunOptions, RunResult } from './forward';
import { StageDef } from './stage';
import { Tensor } from './tensor';
import { gatherRows, WeightStore } from './weight-store';
import { PackedWeights } from './packed-weights';
import { allHookNames, Arch } from './hooks';
import { generate, GenerateOptions, Generation } from './generate';
import { checkCacheFits, defaultCacheBudget } from './cache-size';
import { summarizeModel } from './model-summary';
import { inspect } from 'util';

export interface LoadOptions {
  name?: string;
  nativeScan?: boolean;
  packed?: boolean;
  /** Load weights that hold NaN or ±Inf, with a warning (refused by default: every output would be non-finite). */
  allowNonFinite?: boolean;
}

export type ModelInput = string | string[] | number[] | number[][] | Batch;

export class Model {
  readonly layerStage: StageDef;
  readonly headStage: StageDef;

  constructor(
    readonly config: ModelConfig,
    private readonly base: WeightStore,
    readonly tokenizer: Tokenizer | null = null,
    readonly name: string = config.arch,
    private readonly overrides: Map<string, Tensor> = new Map(),
    /** Mamba: use the native selective scan when the addon is built (default). */
    readonly nativeScan = nativeAddon() !== null,
    private readonly packed: PackedWeights | null = null,
  ) {
    if (config.arch === 'mamba') {
      this.layerStage = mambaLayerStage(config, nativeScan);
      this.headStage = mambaHeadStage(config);
    } else if (config.arch === 'mamba2') {
      this.layerStage = mamba2LayerStage(config, nativeScan);
      this.headStage = mambaHeadStage(config);
    } else {
      this.layerStage = transformerLayerStage(config);
      this.headStage = transformerHeadStage(config);
    }
  }

  /**
   * Load a Hugging Face checkpoint directory (config.json + safetensors [+ tokenizer.json]).
   * `packed: true` runs plain forwards on weights that onnxruntime reads from the checkpoint and
   * packs itself (faster at small batches, see packed-weights.ts); at load the files are only scanned
   * for NaN/±Inf (refused unless `allowNonFinite`), in bounded chunks, and nothing is kept. The
   * first hook, gradient or edit switches the model to float32 weights for good (the packed
   * sessions are freed, so it does not hold both), read from the checkpoint, which must stay.
   */
  static async load(dir: string, opts: LoadOptions = {}): Promise<Model> {
    const ckpt = openCheckpoint(dir, { allowNonFinite: opts.allowNonFinite });
    try {
      return await Model.fromCheckpoint(ckpt, dir, opts);
    } catch (e) {
      ckpt.close();
      throw e;
    }
  }

  private static async fromCheckpoint(ckpt: Checkpoint, dir: string, opts: LoadOptions): Promise<Model> {
    ckpt.validate();
    rememberSource(ckpt.config, dir);
    const shapes = new Map([...expectedWeights(ckpt.config)].filter(([name]) => ckpt.has(name))); // a tied head is resolved in weight()
    const tokenizer = ckpt.hasTokenizer() ? ckpt.loadTokenizer() : null;
    if (tokenizer) ckpt.checkTokenizer(tokenizer);
    const name = opts.name ?? dir.split('/').filter(Boolean).pop();
    const nativeScan = opts.nativeScan ?? nativeAddon() !== null;
    if (!opts.packed) {
      const weights = new Map<string, Tensor>();
      for (const [n, shape] of shapes) weights.set(n, new Tensor(ckpt.readFloat32(n), shape));
      ckpt.close();
      return new Model(ckpt.config, WeightStore.resident(weights), tokenizer, name, new Map(), nativeScan);
    }
    for (const n of shapes.keys()) ckpt.checkFinite(n); // onnxruntime will read them: scan the files once now
    // Nothing else is read now: onnxruntime reads the packed weights from the checkpoint's files itself, and
    // the token lookup reads embedding rows (a tied head's matrix resolves to the embedding).
    const store = WeightStore.lazy(shapes, ckpt);
    const head = unembeddingName(ckpt.config.arch);
    const packed = new PackedWeights(store.bytes((n) => n.startsWith('layers.0.')), (n) => ckpt.external(n === head ? ckpt.outputEmbeddingName() : n), (n) => isStoredTransposed(n, ckpt.config.arch));
    return new Model(ckpt.config, store, tokenizer, name, new Map(), nativeScan, packed);
  }

  /** Packed graphs for plain forwards; null unless loaded with `packed: true`, once retired, and for edited views. */
  get packedWeights(): PackedWeights | null {
    return this.overrides.size || !this.packed || this.packed.retired ? null : this.packed;
  }

  /** Free this model's packed sessions and their memory (the next plain forward compiles them again). */
  async releasePacked(): Promise<void> {
    await this.packed?.release();
  }

  get arch(): Arch {
    return this.config.arch;
  }

  get nLayers(): number {
    return this.config.nLayer;
  }

  get parallelResidual(): boolean {
    if (isSsmConfig(this.config)) return true;
    return this.config.arch === 'gpt_neox' ? this.config.parallelResidual : false;
  }

  /** Does the model carry a recurrent state between tokens (Mamba, Mamba-2), which generation and resumed runs reuse? */
  get recurrent(): boolean {
    return ssmLayout(this.config) !== null;
  }

  /** Positions the model can read: learned or trained rotary positions (undefined for Mamba: no limit). */
  get maxPositions(): number | undefined {
    return isSsmConfig(this.config) ? undefined : this.config.maxPositions;
  }

  get mambaConfig(): MambaConfig {
    if (this.config.arch !== 'mamba') throw new FactlensError(`${this.name} is a ${this.config.arch} model, not Mamba`);
    return this.config;
  }

  /** The MLP down projection (ROME's W_down, module name inside a layer) and its input width; null for SSMs. */
  get mlpDown(): { module: string; dFF: number } | null {
    const c = this.config;
    if (isSsmConfig(c)) return null;
    return { module: c.arch === 'gpt_neox' ? 'mlp.dense_4h_to_h' : TRANSFORMER_ADAPTERS[c.arch].down, dFF: c.dFF };
  }

  /** Heads at an attention hook: query heads, or key/value heads at attn.k / attn.v (fewer under GQA). */
  headsAt(hook: string): number {
    const c = this.config;
    if (isSsmConfig(c)) throw new FactlensError(`${this.name} is a ${c.arch} model: it has no attention heads`);
    return c.arch !== 'gpt_neox' && /attn\.(k|v)$/.test(hook) ? c.nKvHeads : c.nHead;
  }

  get transformerConfig(): TransformerConfig {
    const c = this.config;
    if (isSsmConfig(c) || c.arch === 'gpt_neox') throw new FactlensError(`${this.name} is a ${c.arch} model, not GPT-2 / Llama-family`);
    return c;
  }

  get mamba2Config(): Mamba2Config {
    if (this.config.arch !== 'mamba2') throw new FactlensError(`${this.name} is a ${this.config.arch} model, not Mamba-2`);
    return this.config;
  }

  get neoxConfig(): NeoxConfig {
    if (this.config.arch !== 'gpt_neox') throw new FactlensError(`${this.name} is a ${this.config.arch} model, not GPT-NeoX`);
    return this.config;
  }

  /** A weight by canonical name (e.g. "layers.3.mixer.out_proj.weight"). */
  weight(name: string): Tensor {
    // A packed model's first float32 read: retire the packed copy (freed before the next run).
    if (this.packed && !this.packed.retired && !this.overrides.has(name) && !this.base.isResident(name)) this.packed.retire();
    const w = this.overrides.get(name) ?? this.base.get(name);
    if (w) return w;
    if (name === unembeddingName(this.arch) && this.config.tieEmbeddings) return this.weight(embeddingName(this.arch));
    throw new FactlensError(`${this.name}: no weight "${name}"`);
  }

  /** Canonical names of every weight. */
  weightNames(): string[] {
    return this.base.names();
  }

  /** A view of this model with some weights replaced (the original is unchanged). */
  withWeights(replacements: Map<string, Tensor>): Model {
    for (const [name, t] of replacements) {
      const w = this.weight(name);
      if (w.shape.join() !== t.shape.join()) throw new FactlensError(`withWeights: "${name}" has shape [${w.shape}], replacement has [${t.shape}]`);
    }
    const merged = new Map([...this.overrides, ...replacements]);
    return new Model(this.config, this.base, this.tokenizer, this.name, merged, this.nativeScan, this.packed);
  }

  /** Canonical names of the weights this view replaces (edits). */
  editedWeightNames(): string[] {
    return [...this.overrides.keys()];
  }

  /**
   * Save this model (an edited view) as a Hugging Face checkpoint directory: the source checkpoint's
   * files with the edited tensors rewritten in place in their own dtype (io/save-checkpoint.ts).
   */
  save(dir: string): SaveReport {
    return saveCheckpoint(this.requireSource('save'), dir, this.editedValues());
  }

  /** This view with its edited weights rounded as `save` stores them (F16/BF16 checkpoints): what a reload holds. */
  asStored(): Model {
    const stored = asStoredValues(this.requireSource('asStored'), this.editedValues());
    return this.withWeights(new Map([...stored].map(([n, v]) => [n, new Tensor(v, this.weight(n).shape)])));
  }

  private editedValues(): Map<string, Float32Array> {
    return new Map([...this.overrides].map(([n, t]) => [n, t.data]));
  }

  private requireSource(what: string): string {
    const src = sourceOf(this.config);
    if (!src) throw new FactlensError(`${what}: ${this.name} was not loaded from a checkpoint directory (Model.load), so there is no source to copy`);
    return src;
  }

  /** Bytes of all float32 weights (resident or, for a packed model, still on disk). */
  get weightBytes(): number {
    return this.base.bytes();
  }

  /** Bytes of float32 weights held in JavaScript now. */
  get residentWeightBytes(): number {
    return this.base.residentBytes;
  }

  // ---- tokens ---------------------------------------------------------------
  private requireTokenizer(): Tokenizer {
    if (!this.tokenizer) throw new FactlensError(`${this.name} has no tokenizer.json; pass token ids instead of text`);
    return this.tokenizer;
  }

  encode(text: string): number[] {
    return this.requireTokenizer().encode(text);
  }

  decode(ids: number[]): string {
    return this.requireTokenizer().decode(ids);
  }

  /** Each token as its own string (axis labels). */
  tokenStrings(ids: number[]): string[] {
    return this.requireTokenizer().tokenStrings(ids);
  }

  /** TransformerLens's to_str_tokens: each token of a text (or of token ids) as its own string. */
  toStrTokens(textOrIds: string | number[]): string[] {
    return this.tokenStrings(typeof textOrIds === 'string' ? this.encode(textOrIds) : textOrIds);
  }

  /** TransformerLens's to_tokens: text(s) as the right-padded batch that run, logits, runWithCache and every method accept. */
  toTokens(text: string | string[]): Batch {
    return this.batch(text);
  }

  get padId(): number {
    return this.config.padTokenId ?? this.config.eosTokenId;
  }

  /** Text(s) or token id row(s) as a right-padded batch. */
  batch(input: ModelInput): Batch {
    if (isBatch(input)) return input;
    const rows: number[][] = typeof input === 'string'
      ? [this.encode(input)]
      : input.length && typeof input[0] === 'string'
        ? (input as string[]).map((s) => this.encode(s))
        : input.length && Array.isArray(input[0])
          ? (input as number[][])
          : [input as number[]];
    return makeBatch(rows, this.config.vocabSize, this.padId);
  }

  // ---- running --------------------------------------------------------------
  /**
   * Token embeddings [B,T,D] (a lookup done in TypeScript). `positionOffsets`: per row, the absolute
   * position of its first token (decoding one token per row at its own position); default 0.
   */
  embed(batch: Batch, positionOffsets?: number[]): Tensor {
    const name = embeddingName(this.arch);
    const edited = this.overrides.get(name);
    const rows = edited ? gatherRows(edited, batch.ids) : this.base.rows(name, batch.ids); // [B*T,D]
    const pos = this.positionEmbedding(batch, positionOffsets ?? new Array<number>(batch.B).fill(0));
    if (pos) for (let i = 0; i < rows.length; i++) rows[i] += pos[i];
    return new Tensor(rows, [batch.B, batch.T, this.config.dModel]);
  }

  /** GPT-2's learned position rows for positions offset..offset+T-1 of every row [B*T,D], or null (rotary / no positions). */
  private positionEmbedding(batch: Batch, offsets: number[]): Float32Array | null {
    if (isSsmConfig(this.config) || this.config.arch === 'gpt_neox') return null;
    const name = TRANSFORMER_ADAPTERS[this.config.arch].posEmbed;
    if (name === undefined) return null;
    const end = Math.max(...offsets) + batch.T;
    if (end > this.config.maxPositions) throw new FactlensError(`${this.name}: ${end} tokens exceed the ${this.config.maxPositions} learned positions (n_positions)`);
    const positions = Array.from({ length: batch.B * batch.T }, (_, i) => offsets[Math.floor(i / batch.T)] + (i % batch.T));
    const edited = this.overrides.get(name);
    return edited ? gatherRows(edited, positions) : this.base.rows(name, positions); // [B*T,D]
  }

  run(input: ModelInput, opts: RunOptions = {}): Promise<RunResult> {
    return runModel(this, this.batch(input), opts);
  }

  /** Logits [B,T,V] (or [B,1,V] with last: true). */
  async logits(input: ModelInput, opts: { last?: boolean } = {}): Promise<Tensor> {
    return (await this.run(input, { logits: opts.last ? 'last' : 'all' })).logits!;
  }

  /**
   * Decode residual-stream vectors [N,D] with the final norm and unembedding
   * (a logit lens): logits [N,V].
   */
  async unembed(resid: Tensor): Promise<Tensor> {
    const [N, D] = resid.shape;
    if (resid.shape.length !== 2 || D !== this.config.dModel) throw new FactlensError(`unembed: expected residual vectors [N,${this.config.dModel}], got [${resid.shape}]`);
    const batch = makeBatch(Array.from({ length: N }, () => [0]), this.config.vocabSize, this.padId);
    const res = await this.run(batch, { startAt: { layer: this.nLayers, resid: resid.reshape([N, 1, D]) }, logits: 'all' });
    return res.logits!.reshape([N, this.config.vocabSize]);
  }

  /**
   * Logits plus the named activations, TransformerLens style. Without names, every hook point
   * (allHookNames) is kept, after checking that it fits: the estimate must stay within
   * `maxCacheBytes` (default: half the free memory), or the call throws with the estimate.
   */
  async runWithCache(input: ModelInput, names?: string[], opts: RunOptions & { maxCacheBytes?: number } = {}): Promise<RunResult> {
    const { maxCacheBytes, ...runOpts } = opts;
    const batch = this.batch(input);
    let keep = names;
    if (!keep) {
      keep = allHookNames(this.arch, this.nLayers, this.parallelResidual);
      checkCacheFits(this, batch, keep, maxCacheBytes ?? defaultCacheBudget(), runOpts.logits === 'last' ? 1 : batch.T);
    }
    return this.run(batch, { ...runOpts, cache: [...(runOpts.cache ?? []), ...keep] });
  }

  /** Text from a prompt: the `generate` function (greedy, or seeded top-k sampling) on this model. */
  generate(prompt: ModelInput, opts: GenerateOptions = {}): Promise<Generation> {
    return generate(this, prompt, opts);
  }

  async runWithHooks(input: ModelInput, hooks: RunOptions['hooks'], opts: RunOptions = {}): Promise<RunResult> {
    return this.run(input, { ...opts, hooks: [...(opts.hooks ?? []), ...(hooks ?? [])] });
  }

  /** One line (a notebook cell's last expression, console.log). */
  toString(): string {
    return summarizeModel(this);
  }

  [inspect.custom](): string {
    return summarizeModel(this);
  }
}

function isBatch(x: ModelInput): x is Batch {
  return typeof x === 'object' && !Array.isArray(x) && 'ids' in x;
}
