// Number and time formatting shared by the readouts, the table and the chart axes.

/** A compact, readable number: integers with separators, others with 4 significant digits. */
export function fmt(v) {
  if (v === null || v === undefined || typeof v !== 'number' || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e12 || a < 1e-3)) return v.toExponential(3);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  if (a >= 1000) return v.toLocaleString('en-US', { maximumFractionDigits: 1 });
  return String(Number(v.toPrecision(4)));
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}
