import { describe, expect, it } from 'vitest';
import { decodeNumber } from './snapshot.js';

describe('decodeNumber (window snapshots)', () => {
  it('reads finite numbers and the encoded non-finite ones', () => {
    expect(decodeNumber(1.5, 'x')).toBe(1.5);
    expect(decodeNumber('Infinity', 'x')).toBe(Infinity);
    expect(decodeNumber('-Infinity', 'x')).toBe(-Infinity);
    expect(decodeNumber('NaN', 'x')).toBeNaN();
  });

  it('names a literal past the double range for what it is (JSON.parse gives Infinity, which prints as null)', () => {
    const [v] = JSON.parse('[5e975]');
    expect(() => decodeNumber(v, 'sum')).toThrow('window snapshot: sum must be a number, got a literal past the double range (parsed as Infinity)');
    const [w] = JSON.parse('[-1e999]');
    expect(() => decodeNumber(w, 'min')).toThrow('window snapshot: min must be a number, got a literal past the double range (parsed as -Infinity)');
    expect(() => decodeNumber('12', 'max')).toThrow('window snapshot: max must be a number, got "12"');
    expect(() => decodeNumber(null, 'max')).toThrow('window snapshot: max must be a number, got null');
  });
});
