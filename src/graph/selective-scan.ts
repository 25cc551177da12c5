/**
 * Mamba's selective scan as an ONNX Scan over time, with a hand-written
 * reverse-mode rule (a second Scan running backwards in time).
 *
 *   Ā_t = exp(Δ_t ⊗ A)              [B,E,N]   (zero-order hold for A)
 *   h_t = Ā_t ⊙ h_{t-1} + (Δ_t ⊙ u_t) ⊗ B_t   (simplified Euler for B)
 *   y_t = h_t · C_t                  [B,E]
 *
 * Shapes: B batch, T tokens, E d_inner, N d_state.
 */
import { Graph, Node, Value } from './ir';

export interface ScanResult {
  y: Value; // [B,T,E] scan output (without the D skip)
  last: Value; // [B,E,N] state after the last token
  states?: Value; // [B,T,E,N] state after every token
}

const TIME_MAJOR = [1, 0, 2];

/** Per-step body: (h_prev, Δ_t, u_t, B_t, C_t) → (h_t, y_t[, h_t]). */
function forwardBody(A: Value, E: number, N: number, withStates: boolean): Graph {
  const b = new Graph('scan_fwd');
  const hPrev = b.input('h_prev', ['B', E, N]);
  const dt = b.input('dt_t', ['B', E]);
  const u = b.input('u_t', ['B', E]);
  const Bt = b.input('B_t', ['B', N]);
  const Ct = b.input('C_t', ['B', N]);
  const dA = b.exp(b.mul(b.unsqueeze(dt, [2]), b.capture(A))); // [B,E,N]
  const dBu = b.mul(b.unsqueeze(b.mul(dt, u), [2]), b.unsqueeze(Bt, [1])); // [B,E,N]
  const h = b.add(b.mul(dA, hPrev), dBu); // [B,E,N]
  const y = b.squeeze(b.matmul(h, b.unsqueeze(Ct, [2])), [2]); // [B,E]
  b.output('h_next', h);
  b.output('y_t', y);
  if (withStates) {
    b.output('h_t', h);
    b.output('h_prev_t', hPrev);
  }
  return b;
}

/** Reverse-time body: carries ∂L/∂h_t backwards and emits per-step input cotangents. */
function backwardBody(A: Value, E: number, N: number): Graph {
  const b = new Graph('scan_bwd');
  const carry = b.input('gh_carry', ['B', E, N]); // ∂L/∂h_t from step t+1
  const gy = b.input('gy_t', ['B', E]);
  const dt = b.input('dt_t', ['B', E]);
  const u = b.input('u_t', ['B', E]);
  const Bt = b.input('B_t', ['B', N]);
  const Ct = b.input('C_t', ['B', N]);
  const h = b.input('h_t', ['B', E, N]);
  const hPrev = b.input('h_prev_t', ['B', E, N]);
  const Ac = b.capture(A);
  const gh = b.add(carry, b.mul(b.unsqueeze(gy, [2]), b.unsqueeze(Ct, [1]))); // [B,E,N]
  const gC = b.reduceSum(b.mul(h, b.unsqueeze(gy, [2])), [1], false); // [B,N]
  const dA = b.exp(b.mul(b.unsqueeze(dt, [2]), Ac)); // [B,E,N]
  const gArg = b.mul(b.mul(gh, hPrev), dA); // ∂L/∂(Δ⊗A) [B,E,N]
  const gDtu = b.reduceSum(b.mul(gh, b.unsqueeze(Bt, [1])), [2], false); // ∂L/∂(Δ⊙u) [B,E]
  const gB = b.reduceSum(b.mul(gh, b.unsqueeze(b.mul(dt, u), [2])), [1], false); // [B,N]
  const gDt = b.add(b.reduceSum(b.mul(gArg, Ac), [2], false), b.mul(gDtu, u)); // [B,E]
  const gU = b.mul(gDtu, dt); // [B,E]
  b.output('gh_prev', b.mul(gh, dA));
  b.output('g_dt_t', gDt);
  b.output('g_u_t', gU);
  b.output('g_B_t', gB);
  b.output('g_C_t', gC);
  b.output('g_A_t', b.reduceSum(b.mul(gArg, b.unsqueeze(dt, [2])), [0], false)); // [E,N]
  return b;
}

/**
 * dt, u: [B,T,E]; Bm, Cm: [B,T,N]; A: [E,N] (a value of the enclosing graph); h0: [B,E,N].
 */
export function selectiveScan(g: Graph, dt: Value, A: Value, u: Value, Bm: Value, Cm: Value, h0: Value, withStates = false): ScanResult {
  const E = A.shape[0] as number;
  const N = A.shape[1] as number;
  const tm = (v: Value) => g.transpose(v, TIME_MAJOR); // [B,T,*] -> [T,B,*]
  const inputs = [h0, tm(dt), tm(u), tm(Bm), tm(Cm)];
  const shapes = [['B', E, N], ['T', 'B', E], ...(withStates ? [['T', 'B', E, N], ['T', 'B', E, N]] : [])];
  const outs = g.node('Scan', inputs, { body: forwardBody(A, E, N, withStates), num_scan_inputs: 4 }, shapes);
  const node = g.nodes[g.nodes.length - 1];
  node.vjp = (gg, n, outGrads) => scanVjp(gg, n, outGrads, A, E, N);
  node.captures = [A]; // A reaches the body by capture; autodiff still owes it a cotangent
  const toBatchMajor = (v: Value, rank: number) => g.transpose(v, rank === 3 ? TIME_MAJOR : [1, 0, 2, 3]);
  return {
    last: outs[0],
    y: toBatchMajor(outs[1], 3),
    states: withStates ? toBatchMajor(outs[2], 4) : undefined,
  };
}

function scanVjp(g: Graph, n: Node, outGrads: (Value | null)[], A: Value, E: number, N: number): (Value | null)[] {
  if (outGrads[2] || outGrads[3]) throw new Error('autodiff: gradients into per-position SSM states are not supported');
  const [h0, dt, u, Bm, Cm] = n.inputs as Value[]; // time-major
  // Recompute every state (and its predecessor) with a forward Scan that emits them.
  const [, , hs, hPrevs] = g.node('Scan', [h0, dt, u, Bm, Cm], { body: forwardBody(A, E, N, true), num_scan_inputs: 4 },
    [['B', E, N], ['T', 'B', E], ['T', 'B', E, N], ['T', 'B', E, N]]);
  const zero = g.scalar(0);
  const gLast = outGrads[0] ?? g.expandLike(zero, h0); // [B,E,N]
  const gy = outGrads[1] ?? g.expandLike(zero, dt); // [T,B,E]
  const [gh0, gDt, gU, gB, gC, gAs] = g.node('Scan', [gLast, gy, dt, u, Bm, Cm, hs, hPrevs], {
    body: backwardBody(A, E, N),
    num_scan_inputs: 7,
    scan_input_directions: [1, 1, 1, 1, 1, 1, 1],
    scan_output_directions: [1, 1, 1, 1, 1],
  }, [['B', E, N], ['T', 'B', E], ['T', 'B', E], ['T', 'B', N], ['T', 'B', N], ['T', E, N]]);
  return [gh0, gDt, gU, gB, gC, g.reduceSum(gAs, [0], false)];
}

