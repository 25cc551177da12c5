/** Checkpoint, config, safetensors and tokenizer I/O. */
export { openCheckpoint, Checkpoint } from './checkpoint';
export type { CheckpointTensorInfo } from './checkpoint';
export { parseConfig, readConfigFile } from './config';
export type { MambaConfig, NeoxConfig, ModelConfig, TransformerConfig, TransformerArch } from './config-types';
export type { Mamba2Config } from './config-types';
export { SafetensorsFile, writeSafetensors, MAX_TENSOR_BYTES } from './safetensors';
export type { TensorInfo, WritableTensor } from './safetensors';
export { expectedWeights, canonicalName, embeddingName, unembeddingName, isStoredTransposed } from './weights';
export { Tokenizer } from './tokenizer';
export { CheckpointError } from './errors';
export type { Dtype, FloatDtype } from './dtypes';
export { saveCheckpoint, asStoredValues } from './save-checkpoint';
export type { SaveReport } from './save-checkpoint';
