import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, requireDatabaseUrl } from '../config';
import { codeDatasets, declarationYaml, loadDatasets } from '../datasets';
import { checkDatasets, scaffoldDeclaration } from '../datasets/check';
import { quoteTable } from '../datasets/dataset';
import { readTableCatalogue } from '../db/catalogue';
import { createPool, type Pool } from '../db/pool';
import { CliError, ExitCode } from './http';

const USAGE = 'usage: batchflow datasets check | batchflow datasets scaffold TABLE [--name NAME] [--out FILE|-]';

/** `batchflow datasets …`: run against DATABASE_URL and the declaration files, like the worker at start. */
export async function datasetsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const config = loadConfig();
  const pool = createPool(requireDatabaseUrl(config), 2);
  try {
    if (sub === 'check') return await check(pool, config.datasetDirs);
    if (sub === 'scaffold') return await scaffold(pool, config.datasetDirs, rest);
    throw new CliError(USAGE, ExitCode.Usage);
  } finally {
    await pool.end();
  }
}

async function check(pool: Pool, dirs: string[]): Promise<number> {
  const checks = await checkDatasets(pool, loadDatasets(dirs, codeDatasets));
  for (const c of checks) {
    console.log(`${c.errors.length > 0 ? 'FAIL' : 'ok  '} ${c.dataset} → table ${c.table} (${c.source})`);
    for (const e of c.errors) console.log(`       error: ${e}`);
    for (const w of c.warnings) console.log(`       warning: ${w}`);
  }
  const failing = checks.filter((c) => c.errors.length > 0).length;
  console.log(failing === 0 ? `${checks.length} datasets match their tables` : `${failing} of ${checks.length} datasets do not match their tables`);
  return failing === 0 ? ExitCode.Success : ExitCode.Failed;
}

async function scaffold(pool: Pool, dirs: string[], args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { name: { type: 'string' }, out: { type: 'string' } } });
  const table = positionals[0];
  if (!table || !/^([A-Za-z_]\w*\.)?[A-Za-z_]\w*$/.test(table)) throw new CliError(USAGE, ExitCode.Usage);
  const catalogue = await readTableCatalogue(pool, quoteTable(table));
  if (!catalogue) throw new CliError(`no table ${table} in the database`, ExitCode.Failed);
  const name = values.name ?? table.split('.').at(-1)!.toLowerCase();
  const { declaration, notes } = scaffoldDeclaration(catalogue, name);
  const text = declarationYaml(
    declaration,
    [`Drafted by \`batchflow datasets scaffold ${table}\` from the table's catalogue: review the descriptions,`, 'add aliases and normalisers, then run `batchflow datasets check`.', ...notes.map((n) => `NOTE: ${n}`)].join('\n'),
  );
  if (values.out === '-') {
    process.stdout.write(text);
    return ExitCode.Success;
  }
  const out = values.out ?? path.join(dirs[0]!, `${name}.yaml`);
  if (fs.existsSync(out)) throw new CliError(`${out} exists; pass --out FILE or --out - to print`, ExitCode.Usage);
  fs.writeFileSync(out, text);
  console.log(`wrote ${out}${notes.length > 0 ? ` (${notes.length} note(s) in it to resolve)` : ''}`);
  return ExitCode.Success;
}
