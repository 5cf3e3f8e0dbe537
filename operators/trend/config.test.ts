import { describe, expect, it } from 'vitest';
import { parseConfig } from '../keyed/config.js';
import { trendConfigSchema } from './config.js';
import { TrendTracker } from './trend.js';

describe('trend config', () => {
  it('parses the film_trending options with the window size as period, and builds a tracker', () => {
    const opts = parseConfig(trendConfigSchema, { period: '1d', threshold: 0.05, movers: 25 }, 'film_trending.yaml: trend');
    expect(opts).toEqual({ periodMs: 86_400_000, threshold: 0.05, movers: 25 });
    expect(new TrendTracker(opts).movers(opts.movers)).toEqual({ start: -Infinity, rising: [], falling: [] });
  });

  it('defaults threshold 0.05 and 10 movers', () => {
    expect(parseConfig(trendConfigSchema, { period: 60_000 }, 't')).toEqual({ periodMs: 60_000, threshold: 0.05, movers: 10 });
  });

  it.each([
    [{ period: '0s' }, /trend: period: must be longer than 0/],
    [{ period: '1 day' }, /trend: period: duration must look like/],
    [{ period: '1d', threshold: -0.1 }, /trend: threshold: must be a fraction >= 0/],
    [{ period: '1d', movers: 2.5 }, /trend: movers: /],
    [{ period: '1d', field: 'clicks' }, /trend: \(root\): .*field/],
  ])('refuses %j naming the path', (input, message) => {
    expect(() => parseConfig(trendConfigSchema, input, 'trend')).toThrow(message);
  });
});
