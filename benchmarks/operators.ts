/**
 * Operator micro-benchmarks (no stack): events/s on one thread and bytes of state per key, per
 * operator family. Each family lives in benchmarks/operators/<family>.ts and exports
 * `run(say)`, printing its own rows with a baseline measured in the same run.
 *
 * `BENCH_ONLY=operators npm run bench`, or `npx tsx benchmarks/operators.ts [family...]`.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export type Say = (line: string) => void;

export async function operatorBench(say: Say, only: string[] = []): Promise<void> {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'operators');
  const families = (existsSync(dir) ? readdirSync(dir) : [])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .filter((f) => only.length === 0 || only.includes(f))
    .sort();
  say(`operators (${families.join(', ')}), Node ${process.version}, one thread`);
  for (const family of families) {
    const mod = (await import(pathToFileURL(path.join(dir, `${family}.ts`)).href)) as { run: (say: Say) => Promise<void> | void };
    say(`  ${family}`);
    await mod.run((line) => say(`    ${line}`));
  }
}

// Families import timing helpers from ./timing.js, never from this file: this file imports them
// while its top-level await runs, so importing it back would never finish.
export { perSecond } from './timing.js';

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await operatorBench((l) => process.stdout.write(l + '\n'), process.argv.slice(2));
}
