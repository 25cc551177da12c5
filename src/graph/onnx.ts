/**
 * Emit an IR Graph as an ONNX ModelProto (opset 18), written with the
 * hand-rolled protobuf encoder. Field numbers follow onnx/onnx.proto.
 */
import path from 'path';
import { Attr, Dim, ExternalTensor, Graph, Node, onnxTypeCode, Value } from './ir';
import { Msg } from './protobuf';

export const OPSET = 18;
const IR_VERSION = 8;
/** onnxruntime's contrib operators (FusedMatMul), imported at version 1 when a graph uses one. */
const CONTRIB_DOMAIN = 'com.microsoft';

export function toOnnx(g: Graph): Uint8Array {
  const model = new Msg()
    .int(1, IR_VERSION)
    .string(2, 'factlens')
    .message(7, graphProto(g, live(g)))
    .message(8, new Msg().string(1, '').int(2, OPSET));
  if (usesDomain(g, CONTRIB_DOMAIN)) model.message(8, new Msg().string(1, CONTRIB_DOMAIN).int(2, 1));
  return model.finish();
}

function usesDomain(g: Graph, domain: string): boolean {
  return g.nodes.some((n) => n.domain === domain || Object.values(n.attrs).some((a) => a instanceof Graph && usesDomain(a, domain)));
}

/** The nodes, graph inputs and constants that the outputs depend on (dead code is dropped). */
export function live(g: Graph): { nodes: Set<Node>; inputs: Value[]; constants: Set<number> } {
  const needed = new Set<number>(g.outputs.map((o) => o.value.id));
  const nodes = new Set<Node>();
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!n.outputs.some((o) => needed.has(o.id))) continue;
    nodes.add(n);
    for (const v of n.inputs) if (v) needed.add(v.id);
    for (const a of Object.values(n.attrs)) if (a instanceof Graph) for (const id of capturedIds(a)) needed.add(id);
  }
  return { nodes, inputs: g.inputs.filter((v) => needed.has(v.id)), constants: new Set(g.constants.filter((c) => needed.has(c.value.id)).map((c) => c.value.id)) };
}

function capturedIds(body: Graph): number[] {
  const ids: number[] = [];
  for (const n of body.nodes) {
    for (const v of n.inputs) if (v?.captured) ids.push(v.id);
    for (const a of Object.values(n.attrs)) if (a instanceof Graph) ids.push(...capturedIds(a));
  }
  return ids;
}

function graphProto(g: Graph, keep?: ReturnType<typeof live>): Msg {
  const m = new Msg();
  const nodes = keep ? g.nodes.filter((n) => keep.nodes.has(n)) : g.nodes;
  const inputs = keep ? keep.inputs : g.inputs;
  nodes.forEach((n, i) => {
    const node = new Msg();
    for (const inp of n.inputs) node.string(1, inp ? inp.name : '');
    for (const out of n.outputs) node.string(2, out.name);
    node.string(3, `${n.op}_${i}`);
    node.string(4, n.op);
    if (n.domain) node.string(7, n.domain);
    for (const [name, a] of Object.entries(n.attrs)) node.message(5, attrProto(name, a));
    m.message(1, node);
  });
  m.string(2, g.name);
  for (const c of keep ? g.constants.filter((k) => keep.constants.has(k.value.id)) : g.constants) {
    m.message(5, c.external ? externalTensorProto(c.value, c.external) : tensorProto(c.value.name, c.value.shape as number[], c.data!));
  }
  for (const v of inputs) m.message(11, valueInfo(v.name, v));
  for (const o of g.outputs) m.message(12, valueInfo(o.name, o.value));
  return m;
}

function attrProto(name: string, a: Attr): Msg {
  const m = new Msg().string(1, name);
  if (typeof a === 'number') return m.int(3, a).int(20, 2);
  if (typeof a === 'string') return m.string(4, a).int(20, 3);
  if (Array.isArray(a)) return m.packedInts(8, a).int(20, 7);
  if (a instanceof Graph) return m.message(6, graphProto(a)).int(20, 5);
  if ('float' in a) return m.float(2, a.float).int(20, 1);
  return m.packedFloats(7, a.floats).int(20, 6);
}

/** The folder of a graph's external tensors: onnxruntime resolves their file names there. */
export function externalFolder(g: Graph): string | null {
  const dirs = new Set(g.constants.filter((c) => c.external).map((c) => path.dirname(c.external!.file)));
  if (dirs.size > 1) throw new Error(`graph ${g.name}: external tensors in more than one folder (${[...dirs].join(', ')})`);
  return dirs.size ? [...dirs][0] : null;
}

/** TensorProto with data_location EXTERNAL (14 = 1) and external_data (13) entries location/offset/length. */
function externalTensorProto(v: Value, ext: ExternalTensor): Msg {
  const entry = (key: string, value: string) => new Msg().string(1, key).string(2, value);
  return new Msg()
    .packedInts(1, v.shape as number[])
    .int(2, onnxTypeCode(v.dtype))
    .string(8, v.name)
    .message(13, entry('location', path.basename(ext.file)))
    .message(13, entry('offset', String(ext.offset)))
    .message(13, entry('length', String(ext.length)))
    .int(14, 1);
}

function tensorProto(name: string, dims: number[], data: Float32Array | BigInt64Array): Msg {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Msg()
    .packedInts(1, dims)
    .int(2, data instanceof BigInt64Array ? 7 : 1)
    .string(8, name)
    .bytes(9, raw);
}

function valueInfo(name: string, v: Value): Msg {
  const shape = new Msg();
  for (const d of v.shape) shape.message(1, dimProto(d));
  const tensorType = new Msg().int(1, onnxTypeCode(v.dtype)).message(2, shape);
  return new Msg().string(1, name).message(2, new Msg().message(1, tensorType));
}

function dimProto(d: Dim): Msg {
  return typeof d === 'number' ? new Msg().int(1, d) : new Msg().string(2, d);
}
