import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';

const tok = (name: string, token: string) => ({ name, token, scopes: ['read'] });

describe('parseConfig', () => {
  it('defaults are valid and auth is off without tokens', () => {
    const c = parseConfig({});
    expect(c.gateway.tokens).toEqual([]);
  });

  it('token names and values must be unique; the error names the path', () => {
    expect(() => parseConfig({ gateway: { tokens: [tok('ops', 'a'.repeat(16)), tok('ops', 'b'.repeat(16))] } })).toThrow(/gateway\.tokens\.1\.name: token name "ops" is used twice/);
    expect(() => parseConfig({ gateway: { tokens: [tok('ops', 'a'.repeat(16)), tok('dash', 'a'.repeat(16))] } })).toThrow(/gateway\.tokens\.1\.token: .*same value/);
    expect(parseConfig({ gateway: { tokens: [tok('ops', 'a'.repeat(16)), tok('dash', 'b'.repeat(16))] } }).gateway.tokens).toHaveLength(2);
  });

  it('short tokens, unknown scopes and unknown fields are refused with their path', () => {
    expect(() => parseConfig({ gateway: { tokens: [tok('ops', 'short')] } })).toThrow(/gateway\.tokens\.0\.token: token: at least 16 characters/);
    expect(() => parseConfig({ gateway: { tokens: [{ ...tok('ops', 'a'.repeat(16)), scopes: ['root'] }] } })).toThrow(/gateway\.tokens\.0\.scopes\.0/);
    expect(() => parseConfig({ gateway: { tokens: [{ ...tok('ops', 'a'.repeat(16)), extra: 1 }] } })).toThrow(/gateway\.tokens\.0/);
  });

  it('a window name used twice is refused', () => {
    const w = parseConfig({}).pipeline.windows[0];
    expect(() => parseConfig({ pipeline: { windows: [w, w] } })).toThrow(/window name ".*" appears twice/);
  });
});
