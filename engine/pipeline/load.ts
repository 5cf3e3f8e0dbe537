/**
 * Loads pipeline files: config/pipelines/*.yaml, *.yml or *.json. YAML syntax errors carry their
 * line and column; schema errors name the file and the path (see spec.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { parsePipeline, PipelineError, type PipelineSpec } from './spec.js';

const EXTENSIONS = ['.yaml', '.yml', '.json'];

/** Parses the text of one pipeline file; `file` names it in errors and picks the syntax by extension. */
export function parsePipelineText(text: string, file: string): PipelineSpec {
  const where = path.basename(file);
  let data: unknown;
  if (file.endsWith('.json')) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new PipelineError(where, `invalid pipeline ${where}: not valid JSON: ${(err as Error).message}`);
    }
  } else {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length) {
      const lines = doc.errors.map((e) => `  - ${where}: ${e.message.split('\n')[0]}`);
      throw new PipelineError(where, `invalid pipeline ${where}: YAML syntax:\n${lines.join('\n')}`);
    }
    data = doc.toJS();
  }
  return parsePipeline(data, where);
}

export function loadPipelineFile(file: string): PipelineSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PipelineError(path.basename(file), `cannot read pipeline ${file}: ${(err as Error).message}`);
  }
  return parsePipelineText(text, file);
}

/** Every pipeline file of a directory, sorted by file name; names must be unique. */
export function loadPipelineDir(dir: string): PipelineSpec[] {
  const files = readdirSync(dir)
    .filter((f) => EXTENSIONS.some((e) => f.endsWith(e)))
    .sort();
  const specs: PipelineSpec[] = [];
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const f of files) {
    try {
      const spec = loadPipelineFile(path.join(dir, f));
      const other = seen.get(spec.name);
      if (other) problems.push(`  - ${f}: name: "${spec.name}" is also the name of ${other}`);
      seen.set(spec.name, f);
      specs.push(spec);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length) throw new PipelineError(dir, problems.join('\n'));
  return specs;
}
