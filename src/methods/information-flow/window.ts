/**
 * Layer windows of the knockout experiments: k layers around a centre, [c − ⌊k/2⌋, c − ⌊k/2⌋ + k)
 * clipped to the model. For k = 10 this is romba's [ℓ−5, ℓ+5) (the same as the library's layerWindow);
 * for an odd k such as Geva et al.'s 9 it is centred, [ℓ−4, ℓ+4].
 */
import { FactlensError } from '../../errors';

export function knockoutWindow(center: number, k: number, nLayers: number): number[] {
  if (!Number.isInteger(k) || k < 1) throw new FactlensError(`window size ${k} must be a positive integer`);
  if (!Number.isInteger(center) || center < 0 || center >= nLayers) throw new FactlensError(`window centre ${center} is out of range 0..${nLayers - 1}`);
  const lo = center - Math.floor(k / 2);
  const out: number[] = [];
  for (let l = Math.max(0, lo); l < Math.min(nLayers, lo + k); l++) out.push(l);
  return out;
}
