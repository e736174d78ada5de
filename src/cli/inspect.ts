import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { InspectReport } from '../inspect/inspect';
import { sourceOf } from './input';
import { CliError, ExitCode, type ApiClient } from './http';

const percent = (n: number) => `${Math.round(n * 100)}%`;

/** The report as a person reads it: a line per column, its problems under it, then the dataset's verdict. */
export function reportLines(r: InspectReport): string[] {
  const lines = [`${r.source}: ${r.format}${r.delimiter ? ` (delimiter ${JSON.stringify(r.delimiter)})` : ''}, ${r.sampledRows} rows sampled${r.wholeFile ? ' (the whole file)' : ` of ${r.bytesTotal} bytes`}`];
  for (const c of r.columns) {
    const formats = c.formats.length > 0 ? ` [${c.formats.map((f) => f.format).join(', ')}]` : '';
    const values = c.values ? ` values: ${c.values.slice(0, 8).join(', ')}` : '';
    lines.push(`  ${c.header}: ${c.type}${formats} ${percent(c.confidence)} sure, ${percent(c.nullRate)} blank, e.g. ${c.examples.slice(0, 3).map((e) => JSON.stringify(e)).join(', ')}${values}`);
    for (const p of c.problems) lines.push(`      ! ${p}`);
    if (c.normalise.length > 0) lines.push(`      normalise: ${JSON.stringify(c.normalise)}`);
  }
  for (const p of r.problems) lines.push(`  ! ${p}`);
  if (r.dataset) {
    lines.push(`against dataset ${r.dataset.name}:`);
    for (const c of r.dataset.columns) {
      const from = c.header === null ? 'no header' : `from ${JSON.stringify(c.header)}`;
      const why = c.message ? `: ${c.message}${c.examples.length > 0 ? ` (e.g. ${c.examples.map((e) => JSON.stringify(e)).join(', ')})` : ''}` : '';
      lines.push(`  ${c.status === 'ok' ? 'ok     ' : c.status.padEnd(7)} ${c.column} ${from}${c.failing > 0 ? `, ${c.failing} sampled values refused` : ''}${why}`);
      if (c.suggest) lines.push(`          declare normalise: ${JSON.stringify(c.suggest)}`);
    }
    if (r.dataset.ignoredHeaders.length > 0) lines.push(`  ignored headers: ${r.dataset.ignoredHeaders.join(', ')}`);
    if (r.dataset.duplicateKeys > 0) lines.push(`  ! ${r.dataset.duplicateKeys} rows repeat a key of an earlier sampled row`);
    lines.push(`  mapping: ${JSON.stringify(r.dataset.mapping)}`);
  }
  return lines;
}

/** `batchflow inspect FILE [--dataset D]`: FILE uploaded as an import's is, POST /inspect, printed; --save-mapping keeps the mapping for `import --mapping`. */
export async function inspectCommand(api: ApiClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dataset: { type: 'string' },
      format: { type: 'string' },
      delimiter: { type: 'string' },
      sample: { type: 'string' },
      region: { type: 'string' },
      'save-mapping': { type: 'string' },
      json: { type: 'boolean' },
      'server-path': { type: 'boolean' },
    },
  });
  const file = positionals[0];
  if (!file) throw new CliError('usage: batchflow inspect FILE [--dataset NAME] [--format F] [--delimiter C] [--sample N] [--region CC] [--save-mapping FILE] [--json] [--server-path]', ExitCode.Usage);
  if (values['save-mapping'] && !values.dataset) throw new CliError('--save-mapping needs --dataset: the mapping is onto its columns', ExitCode.Usage);
  const { body } = await api.request<InspectReport>('POST', '/inspect', {
    source: await sourceOf(api, file, values['server-path']),
    ...(values.dataset && { dataset: values.dataset }),
    ...(values.format && { format: values.format }),
    ...(values.delimiter && { delimiter: values.delimiter }),
    ...(values.sample && { sampleRows: Number(values.sample) }),
    ...(values.region && { region: values.region }),
  });
  console.log(values.json ? JSON.stringify(body, null, 2) : reportLines(body).join('\n'));
  if (values['save-mapping'] && body.dataset) {
    fs.writeFileSync(values['save-mapping'], JSON.stringify(body.dataset.mapping, null, 2) + '\n');
    console.error(`mapping saved to ${values['save-mapping']}: batchflow import ${file} --dataset ${body.dataset.name} --mapping ${values['save-mapping']}`);
  }
  return ExitCode.Success;
}
