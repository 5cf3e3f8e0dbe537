/** What the soak scripts share (scripts/soak.ts, scripts/soak-pipelines.ts): their options, log lines and closing table. */
import { parseArgs } from 'node:util';

export interface SoakArgs {
  minutes: number;
  rate: number;
  seed0: number;
  verbose: boolean;
}

/** --minutes, --rate (messages/s), --seed, --verbose; a bad value prints the usage and exits 2. */
export function soakArgs(defaults: { minutes: number; rate: number }, command: string): SoakArgs {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: String(defaults.minutes) },
      rate: { type: 'string', default: String(defaults.rate) },
      seed: { type: 'string', default: '1' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  const seed0 = Number(values.seed);
  if (!(minutes > 0) || !(rate > 0) || !Number.isInteger(seed0)) {
    process.stderr.write(`usage: ${command} --minutes N [--rate messages/s] [--seed S] [--verbose]\n`);
    process.exit(2);
  }
  return { minutes, rate, seed0, verbose: values.verbose === true };
}

/** Log lines stamped with the minutes since the start. */
export function soakLog(name: string): { t0: number; say: (line: string) => void } {
  const t0 = Date.now();
  const say = (line: string) => process.stdout.write(`[${name} ${((Date.now() - t0) / 60_000).toFixed(1).padStart(5)} min] ${line}\n`);
  return { t0, say };
}

/** The closing table, as Markdown. */
export function printTable(rows: [string, string][]): void {
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n| ${'figure'.padEnd(w)} | value |\n|${'-'.repeat(w + 2)}|-------|\n`);
  for (const [k, v] of rows) process.stdout.write(`| ${k.padEnd(w)} | ${v} |\n`);
}
