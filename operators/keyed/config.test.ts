import { describe, expect, it } from 'vitest';
import { debounceConfigSchema, parseConfig, throttleConfigSchema } from './config.js';
import { KeyedDebounce } from './debounceByKey.js';

describe('keyed operator configs', () => {
  it('debounce: durations become ms, defaults are lodash\'s, and the result builds the operator', () => {
    const opts = parseConfig(debounceConfigSchema, { wait: '2s', maxWait: '30s' }, 'tutors.yaml: debounce');
    expect(opts).toEqual({ waitMs: 2000, maxWaitMs: 30_000, leading: false, trailing: true });
    expect(() => new KeyedDebounce(opts)).not.toThrow();
    expect(parseConfig(debounceConfigSchema, { wait: 500, leading: true }, 'd')).toEqual({ waitMs: 500, leading: true, trailing: true });
  });

  it('throttle: defaults leading and trailing', () => {
    expect(parseConfig(throttleConfigSchema, { wait: '1s' }, 't')).toEqual({ waitMs: 1000, leading: true, trailing: true });
  });

  it.each([
    [{ wait: '2 s' }, /debounce: wait: duration must look like 500ms, 10s, 1m, 2h or 7d, got "2 s"/],
    [{ wait: 0 }, /debounce: wait: must be longer than 0/],
    [{ wait: '2s', maxWait: '1s' }, /debounce: maxWait: must be at least wait \(2000 ms\), got 1000 ms/],
    [{ wait: '2s', leading: false, trailing: false }, /debounce: trailing: leading and trailing are both false/],
    [{ wait: '2s', leading: 'yes' }, /debounce: leading: /],
    [{ wait: '2s', maxwait: '1m' }, /debounce: \(root\): .*maxwait/],
    [{}, /debounce: wait: /],
  ])('debounce refuses %j naming the path', (input, message) => {
    expect(() => parseConfig(debounceConfigSchema, input, 'debounce')).toThrow(message);
  });

  it('throttle refuses unknown keys such as maxWait (a throttle window is wait long)', () => {
    expect(() => parseConfig(throttleConfigSchema, { wait: '1s', maxWait: '2s' }, 'throttle')).toThrow(/throttle: \(root\): .*maxWait/);
  });
});
