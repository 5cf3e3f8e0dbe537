import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { apiSubject, keyFromToken, keyToken, resultFilterSubject, resultSubject, statusSubject } from './subjects.js';

// ---- generators ------------------------------------------------------------------------------

const PLAIN = /^[A-Za-z0-9_:-]+$/;
const plainKey = fc.stringMatching(PLAIN);
/** Well-formed Unicode: any code point (astral included), any grapheme, and keys with the characters NATS cares about. */
const unicodeKey = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: fc.constantFrom('.', '*', '>', ' ', '\t', '\n', '~', 'a', 'Z', '0', '-', '_', ':', '=', '/', 'é', '😀'), maxLength: 20 }),
  plainKey,
);
/** Any sequence of UTF-16 code units, lone surrogates included (JSON.parse("\"\\ud800\"") gives one). */
const utf16Key = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 20 });

const TOKEN_FORBIDDEN = /[.*>\s]/;

/** NATS subject matching: "*" matches one token, ">" one or more trailing tokens. */
function natsMatch(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}

// ---- tests -----------------------------------------------------------------------------------

describe('keyToken / keyFromToken', () => {
  it('round-trips every well-formed Unicode key', () => {
    fc.assert(
      fc.property(unicodeKey, (key) => {
        expect(keyFromToken(keyToken(key))).toBe(key);
      }),
      { numRuns: 2_000 },
    );
    for (const key of ['', '~', '~abc', '.', '*', '>', ' ', 'a.b', 'a b', '😀', '\u0000', 'é']) expect(keyFromToken(keyToken(key)), JSON.stringify(key)).toBe(key);
  });

  it('tokens are valid subject tokens: non-empty, no ".", "*", ">" or whitespace', () => {
    fc.assert(
      fc.property(fc.oneof(unicodeKey, utf16Key), (key) => {
        const t = keyToken(key);
        expect(t.length).toBeGreaterThan(0);
        expect(t, JSON.stringify(key)).not.toMatch(TOKEN_FORBIDDEN);
      }),
      { numRuns: 2_000 },
    );
    expect(keyToken('')).not.toBe('');
  });

  it('plain keys are their own token; every other key is "~" + base64url', () => {
    fc.assert(
      fc.property(plainKey, (key) => {
        expect(keyToken(key)).toBe(key);
        expect(keyFromToken(key)).toBe(key);
      }),
    );
    fc.assert(
      fc.property(unicodeKey, (key) => {
        fc.pre(!PLAIN.test(key));
        const t = keyToken(key);
        expect(t.startsWith('~')).toBe(true);
        expect(t.slice(1)).toMatch(/^[A-Za-z0-9_-]*$/);
      }),
    );
    expect(keyToken('host-1:eu_west')).toBe('host-1:eu_west');
    expect(keyToken('a.b')).toBe('~' + Buffer.from('a.b').toString('base64url'));
  });

  it('distinct well-formed keys never share a token', () => {
    fc.assert(
      fc.property(unicodeKey, unicodeKey, (a, b) => {
        fc.pre(a !== b);
        expect(keyToken(a)).not.toBe(keyToken(b));
      }),
      { numRuns: 2_000 },
    );
    // near misses: a plain key and its encoded-looking twin, prefixes, case
    const near = ['a', 'A', 'a ', ' a', 'a.', '~a', '~YQ', 'YQ', '', '~', 'a\u0000', 'é', 'e\u0301'];
    const tokens = near.map(keyToken);
    expect(new Set(tokens).size).toBe(near.length);
  });

  it('any key, lone UTF-16 surrogates included, round-trips and gets its own token', () => {
    // A key like "\ud800" is valid JSON ("\\ud800") and passes the decoder; utf-8 turns every lone
    // surrogate into U+FFFD, so such keys would share a subject (and a subscription) with each other.
    expect(keyFromToken(keyToken('\ud800'))).toBe('\ud800');
    expect(new Set(['\ud800', '\udc00', '\ufffd'].map(keyToken)).size).toBe(3);
    fc.assert(
      fc.property(utf16Key, utf16Key, (a, b) => {
        expect(keyFromToken(keyToken(a))).toBe(a);
        if (a !== b) expect(keyToken(a)).not.toBe(keyToken(b));
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('result subjects', () => {
  const name = fc.stringMatching(/^[A-Za-z0-9_-]+$/);
  const metric = fc.stringMatching(/^[A-Za-z0-9_:-]+$/);

  it('resultSubject is weir.results.<pipeline>.<metric>.<keyToken> with exactly five tokens', () => {
    fc.assert(
      fc.property(name, metric, unicodeKey, (p, m, key) => {
        const s = resultSubject(p, m, key);
        const parts = s.split('.');
        expect(parts).toHaveLength(5);
        expect(parts.slice(0, 4)).toEqual(['weir', 'results', p, m]);
        expect(parts[4]).toBe(keyToken(key));
        expect(keyFromToken(parts[4])).toBe(key);
        expect(s).not.toMatch(/[*>\s]/);
      }),
      { numRuns: 500 },
    );
  });

  it('resultFilterSubject selects exactly the subjects of its metric and key', () => {
    fc.assert(
      fc.property(name, metric, metric, unicodeKey, unicodeKey, (p, m, m2, key, key2) => {
        const subj = resultSubject(p, m, key);
        expect(resultFilterSubject(p)).toBe(`weir.results.${p}.*.*`);
        expect(resultFilterSubject(p, m)).toBe(`weir.results.${p}.${m}.*`);
        expect(resultFilterSubject(p, m, key)).toBe(subj);
        expect(resultFilterSubject(p, undefined, key)).toBe(`weir.results.${p}.*.${keyToken(key)}`);
        for (const f of [resultFilterSubject(p), resultFilterSubject(p, m), resultFilterSubject(p, m, key), resultFilterSubject(p, undefined, key)])
          expect(natsMatch(f, subj), `${f} vs ${subj}`).toBe(true);
        const other = resultSubject(p, m2, key2);
        expect(natsMatch(resultFilterSubject(p, m, key), other)).toBe(m === m2 && key === key2);
        expect(natsMatch(resultFilterSubject(p, m), other)).toBe(m === m2);
        expect(natsMatch(resultFilterSubject(p, undefined, key), other)).toBe(key === key2);
        expect(natsMatch(resultFilterSubject(`${p}x`), subj)).toBe(false);
      }),
      { numRuns: 500 },
    );
    // a key that looks like a wildcard is a literal, not a wildcard
    expect(resultFilterSubject('p', 'm', '*')).not.toMatch(/\.\*$/);
    expect(resultFilterSubject('p', 'm', '>')).not.toMatch(/\.>$/);
    expect(resultFilterSubject('p', 'm', '')).toBe('weir.results.p.m.~');
  });

  it('status and api subjects', () => {
    expect(statusSubject('default')).toBe('weir.status.default');
    expect(apiSubject('default', 'latest')).toBe('weir.api.default.latest');
    expect(apiSubject('p-1', 'topk')).toBe('weir.api.p-1.topk');
    expect(apiSubject('p', 'status')).toBe('weir.api.p.status');
  });
});
