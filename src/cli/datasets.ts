import type { DatasetView } from '../api/routes/datasets';
import { ExitCode, type ApiClient } from './http';
import { formatTable } from './table';

const rowCount = (rows: DatasetView['rows']) => `${rows.exact ? '' : '~'}${rows.count.toLocaleString('en-US')}`;

/** `batchflow datasets [NAME]`: what runs can import into; with a name, its columns. */
export async function datasetsCommand(api: ApiClient, args: string[]): Promise<number> {
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
