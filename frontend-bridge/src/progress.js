// Progress maths for uploads, as pure functions: a smoothed rate from (bytes, time) samples and
// the ETA it implies. The rate only moves when bytes move, so a stall shows as a falling rate.

const HALF_LIFE_MS = 2000;

/** @typedef {{bytes: number, at: number, rate: number|null}} RateState */

/** The state after one sample; `rate` is bytes/s, null until two samples are at least 200 ms apart. */
export function nextRate(state, bytes, at) {
  if (!state) return { bytes, at, rate: null };
  const dt = at - state.at;
  if (dt < 200) return state;
  const instant = Math.max(0, bytes - state.bytes) / (dt / 1000);
  const weight = 1 - Math.pow(0.5, dt / HALF_LIFE_MS);
  const rate = state.rate === null ? instant : state.rate + weight * (instant - state.rate);
  return { bytes, at, rate };
}

/** Seconds left at this rate, or null when unknown. */
export function etaSeconds(done, total, rate) {
  if (!total || rate === null || rate === undefined || rate <= 0) return null;
  return Math.max(0, (total - done) / rate);
}

/** Percent with one decimal, clamped to 0–100; null when the total is unknown. */
export function percentOf(done, total) {
  if (!total) return null;
  return Math.min(100, Math.max(0, Math.floor((done / total) * 1000) / 10));
}
