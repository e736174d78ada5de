import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { DatasetView } from '../api/routes/datasets';
import { loadConfig, requireDatabaseUrl } from '../config';
import { codeDatasets, declarationYaml, loadDatasets } from '../datasets';
import { checkDatasets, scaffoldDeclaration } from '../datasets/check';
import { quoteTable } from '../datasets/dataset';
import { readTableCatalogue } from '../db/catalogue';
import { createPool, type Pool } from '../db/pool';
import { CliError, ExitCode, type ApiClient } from './http';
import { formatTable } from './table';

const USAGE = 'usage: batchflow datasets [NAME] | batchflow datasets check | batchflow datasets scaffold TABLE [--name NAME] [--out FILE|-]';

/**
 * `batchflow datasets [NAME]` lists what runs can import into through the API; `check` and
 * `scaffold` run against DATABASE_URL and the declaration files, like the worker at start.
 */
export async function datasetsCommand(api: () => ApiClient, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'check' && sub !== 'scaffold') return showDatasets(api(), args);
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

const rowCount = (rows: DatasetView['rows']) => `${rows.exact ? '' : '~'}${rows.count.toLocaleString('en-US')}`;

/** What runs can import into; with a name, its columns. */
async function showDatasets(api: ApiClient, args: string[]): Promise<number> {
  const name = args.find((a) => !a.startsWith('-'));
  if (!name) {
    const { body } = await api.request<{ datasets: DatasetView[] }>('GET', '/datasets');
    console.log(formatTable(['dataset', 'table', 'key', 'rows', 'columns', 'description'], body.datasets.map((d) => [d.name, d.table, d.key.join(', '), rowCount(d.rows), d.columns.length, d.description])));
    return ExitCode.Success;
  }
  const { body: d } = await api.request<DatasetView>('GET', `/datasets/${encodeURIComponent(name)}`);
  console.log(`${d.name} (table ${d.table}): ${d.description}`);
  console.log(`key: ${d.key.join(', ')}   rows: ${rowCount(d.rows)}${d.rows.exact ? '' : ' (estimate)'}\n`);
  const flags = (c: DatasetView['columns'][number]) => [c.required && 'required', c.key && 'key', c.secret && 'secret'].filter(Boolean).join(', ');
  console.log(formatTable(['column', 'type', '', 'aliases', 'description'], d.columns.map((c) => [c.name, c.type, flags(c), c.aliases.join(', '), c.description])));
  console.log(`\nmaintained by the database: ${d.systemColumns.map((c) => `${c.name} (${c.type})`).join(', ')}`);
  return ExitCode.Success;
}
