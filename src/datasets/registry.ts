import fs from 'node:fs';
import path from 'node:path';
import type { Dataset } from './dataset';
import { compileDeclaration, DatasetDeclarationError, parseDeclarationYaml } from './declaration';

/** The datasets a process knows, by name: loaded once at start, passed to whatever needs them. */
export interface DatasetRegistry {
  readonly names: readonly string[];
  get(name: string): Dataset | undefined;
  all(): readonly Dataset[];
  /** Where each dataset was declared (a file, or "code"), for messages. */
  sourceOf(name: string): string | undefined;
}

export function createRegistry(entries: readonly { dataset: Dataset; source: string }[]): DatasetRegistry {
  const byName = new Map<string, { dataset: Dataset; source: string }>();
  for (const entry of entries) {
    const earlier = byName.get(entry.dataset.name);
    if (earlier) throw new DatasetDeclarationError(`dataset "${entry.dataset.name}" is declared twice: in ${earlier.source} and in ${entry.source}`);
    byName.set(entry.dataset.name, entry);
  }
  const names = [...byName.keys()].sort();
  return {
    names,
    get: (name) => byName.get(name)?.dataset,
    all: () => names.map((n) => byName.get(n)!.dataset),
    sourceOf: (name) => byName.get(name)?.source,
  };
}

/**
 * Reads every *.yaml / *.yml file of the directories (in name order) and compiles it, with the
 * datasets declared in code. Problems in any file are all reported at once, each with its file.
 */
export function loadDatasets(dirs: readonly string[], code: readonly Dataset[] = []): DatasetRegistry {
  const entries: { dataset: Dataset; source: string }[] = code.map((dataset) => ({ dataset, source: 'code' }));
  const problems: string[] = [];
  for (const dir of dirs) {
    let files: string[];
    try {
      files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
    } catch (err) {
      problems.push(`${dir}: cannot read the datasets directory: ${(err as Error).message}`);
      continue;
    }
    for (const file of files) {
      const full = path.join(dir, file);
      try {
        const declaration = parseDeclarationYaml(fs.readFileSync(full, 'utf8'), full, path.basename(file).replace(/\.ya?ml$/, ''));
        entries.push({ dataset: compileDeclaration(declaration), source: full });
      } catch (err) {
        if (!(err instanceof DatasetDeclarationError)) throw err;
        problems.push(err.message);
      }
    }
  }
  if (problems.length > 0) throw new DatasetDeclarationError(`Invalid dataset declarations:\n${problems.join('\n')}`);
  return createRegistry(entries);
}
