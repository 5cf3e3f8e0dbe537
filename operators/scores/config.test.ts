import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from '../keyed/config.js';
import { scoreConfigSchema } from './config.js';
import { ScoreBoard } from './scoreboard.js';

describe('score config', () => {
  it('accepts the films pipeline\'s score block and builds a ScoreBoard from it', () => {
    const films = parse(readFileSync(new URL('../../config/pipelines/films.yaml', import.meta.url), 'utf8')) as { score: unknown };
    const spec = parseConfig(scoreConfigSchema, films.score, 'films.yaml: score');
    expect(spec.topK).toBe(50);
    const board = new ScoreBoard(spec);
    expect(board.profileNames).toEqual(['balanced', 'critics', 'crowd']);
    board.update('f1', { imdb: 8, metacritic: 70, rt: 90, wins: 2, noms: 5, popularity: 5000, clicks: 100 });
    expect(board.topK('balanced', 1)[0].id).toBe('f1');
  });

  it('defaults: no normalisers, topK 50', () => {
    expect(parseConfig(scoreConfigSchema, { components: { c: { m: 1 } }, profiles: { p: { c: 1 } } }, 's')).toEqual({
      normalise: {},
      components: { c: { m: 1 } },
      profiles: { p: { c: 1 } },
      topK: 50,
    });
  });

  const base = { components: { opinion: { imdb: 1 }, awards: { wins: 1 } }, profiles: { p: { opinion: 1 } } };
  it.each([
    [{ ...base, profiles: { critics: { acclaim: 1 } } }, /score: profiles\.critics\.acclaim: "acclaim" is not a component \(opinion, awards\)/],
    [{ ...base, normalise: { budget: { log: { max: 10 } } } }, /score: normalise\.budget: "budget" is not used by any component/],
    [{ ...base, normalise: { imdb: { minmax: { min: 10, max: 0 } } } }, /score: normalise\.imdb\.minmax\.max: max must be greater than min/],
    [{ ...base, normalise: { imdb: { log: { max: 0 } } } }, /score: normalise\.imdb\.log\.max: must be greater than 0/],
    [{ ...base, normalise: { imdb: { log: { max: 10 }, capped: { cap: 3 } } } }, /score: normalise\.imdb: choose exactly one of minmax, log, capped, zscore, rank \(got log, capped\)/],
    [{ ...base, normalise: { imdb: { sigmoid: {} } } }, /score: normalise\.imdb: .*sigmoid/],
    [{ ...base, components: { opinion: {} } }, /score: components\.opinion: give at least one metric weight/],
    [{ ...base, profiles: {} }, /score: profiles: define at least one profile/],
    [{ ...base, profiles: { p: { opinion: 'high' } } }, /score: profiles\.p\.opinion: /],
    [{ ...base, topK: 0 }, /score: topK: /],
  ])('refuses %j naming the path', (input, message) => {
    expect(() => parseConfig(scoreConfigSchema, input, 'score')).toThrow(message);
  });
});
