/**
 * The selective scan as a host op backed by the native addon in native/
 * (built by `npm install` with node-gyp when a C++ compiler is present).
 * Without the addon, or with FACTLENS_NATIVE=0, Mamba layers use the ONNX
 * Scan in selective-scan.ts instead; both compute the same function (tested).
 */
import type { Dim } from './ir';
import type { HostOp } from '../runtime/stage';
import { Tensor } from '../runtime/tensor';
import { FactlensError } from '../errors';
import { nativeAddon } from './native-addon';

const dimsOf = (dt: Tensor, A: Tensor) => [dt.shape[0], dt.shape[1], A.shape[0], A.shape[1]]; // B,T,E,N

/**
 * Inputs dt, u [B,T,E]; B, C [B,T,N]; A [E,N]; h0 [B,E,N].
 * Outputs y [B,T,E] (without the D skip), last [B,E,N], and states [B,T,E,N] if asked.
 */
export function nativeScanOp(E: number, N: number, withStates: boolean): HostOp {
  const lib = nativeAddon();
  if (!lib) throw new FactlensError('the native selective scan is not built (run `npm install` with a C++ compiler, or use the ONNX scan)');
  const outputs: Record<string, Dim[]> = { y: ['B', 'T', E], last: ['B', E, N] };
  if (withStates) outputs.states = ['B', 'T', E, N];
  return {
    name: 'scan',
    outputs,
    forward({ dt, A, u, B, C, h0 }): Record<string, Tensor> {
      const [b, t, e, n] = dimsOf(dt, A);
      const y = Tensor.zeros([b, t, e]);
      const last = Tensor.zeros([b, e, n]);
      const states = withStates ? Tensor.zeros([b, t, e, n]) : null;
      lib.scanForward(b, t, e, n, dt.data, A.data, u.data, B.data, C.data, h0.data, y.data, last.data, states ? states.data : null);
      return states ? { y, last, states } : { y, last };
    },
    backward({ dt, A, u, B, C, h0 }, cots): Record<string, Tensor | null> {
      if (cots.states) throw new FactlensError('autodiff: gradients into per-position SSM states are not supported');
      const [b, t, e, n] = dimsOf(dt, A);
      const g = { dt: Tensor.zeros([b, t, e]), A: Tensor.zeros([e, n]), u: Tensor.zeros([b, t, e]), B: Tensor.zeros([b, t, n]), C: Tensor.zeros([b, t, n]), h0: Tensor.zeros([b, e, n]) };
      const gy = cots.y ?? Tensor.zeros([b, t, e]);
      lib.scanBackward(b, t, e, n, dt.data, A.data, u.data, B.data, C.data, h0.data, gy.data, cots.last ? cots.last.data : null,
        g.dt.data, g.A.data, g.u.data, g.B.data, g.C.data, g.h0.data);
      return g;
    },
  };
}
