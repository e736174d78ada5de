import { z } from 'zod';
import type { Dataset, DatasetRegistry } from '../../datasets';
import { estimateRows } from '../../db/datasets';
import type { Pool } from '../../db/pool';
import type { App } from '../app';
import { errorResponses, notFound } from '../errors';

const columnSchema = z.object({
  name: z.string(),
  type: z.string().describe('The SQL type: text, integer, numeric, date, timestamptz or boolean'),
  required: z.boolean().describe('An imported row must give a value'),
  key: z.boolean().describe('Part of the key: the conflict target of upserts and the identity duplicates are found by'),
  aliases: z.array(z.string()).describe('Other source header names that feed this column'),
  description: z.string(),
  secret: z.boolean().describe('A credential: previews, samples and reports show [redacted] instead'),
});

const usersExample = {
  name: 'users',
  table: 'users',
  description: 'Application users, keyed by email.',
  key: ['email'],
  columns: [
    { name: 'email', type: 'text', required: true, key: true, aliases: ['e-mail', 'email_address', 'mail'], description: 'Unique email address (stored lower-case).', secret: false },
    { name: 'name', type: 'text', required: true, key: false, aliases: ['full_name', 'fullname'], description: 'Display name.', secret: false },
  ],
  systemColumns: [
    { name: 'id', type: 'integer' },
    { name: 'created_at', type: 'timestamptz' },
  ],
  rows: { count: 1204, exact: true },
};

const datasetSchema = z
  .object({
    name: z.string(),
    table: z.string(),
    description: z.string(),
    key: z.array(z.string()).describe('The key columns'),
    columns: z.array(columnSchema).describe('Columns runs may import into, update and filter on'),
    systemColumns: z.array(z.object({ name: z.string(), type: z.string() })).describe('Columns the database maintains: filters may use them, imports and updates may not'),
    writtenBy: z
      .string()
      .optional()
      .describe('The job kind that alone writes this dataset (invoices: invoicing); imports, bulk updates, cleanups and dedupe merges refuse it'),
    rows: z
      .object({ count: z.number().int(), exact: z.boolean().describe('false: the planner\'s estimate (large tables)') })
      .describe('How many rows the table holds: counted for small tables, estimated from pg_class.reltuples for large ones'),
  })
  .meta({ id: 'Dataset', examples: [usersExample] });
export type DatasetView = z.infer<typeof datasetSchema>;

async function describeDataset(pool: Pool, dataset: Dataset): Promise<DatasetView> {
  return {
    name: dataset.name,
    table: dataset.table,
    description: dataset.description,
    key: [...dataset.key],
    columns: dataset.columnNames.map((name) => {
      const column = dataset.columns[name]!;
      return {
        name,
        type: column.sql,
        required: column.required,
        key: dataset.key.includes(name),
        aliases: [...(column.aliases ?? [])],
        description: column.description,
        secret: column.secret ?? false,
      };
    }),
    systemColumns: Object.entries(dataset.system).map(([name, type]) => ({ name, type })),
    ...(dataset.writtenBy && { writtenBy: dataset.writtenBy }),
    rows: await estimateRows(pool, dataset),
  };
}

/** What runs can import into and change: each dataset's columns, key and size. */
export function datasetRoutes(app: App, deps: { pool: Pool; datasets: DatasetRegistry }): void {
  app.get(
    '/datasets',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['datasets'],
        summary: 'Every dataset: columns, types, key, aliases, secret columns, row count',
        response: {
          200: z
            .object({ datasets: z.array(datasetSchema) })
            .describe('Every declared dataset')
            .meta({ examples: [{ datasets: [usersExample] }] }),
          ...errorResponses,
        },
      },
    },
    async () => ({ datasets: await Promise.all(deps.datasets.all().map((d) => describeDataset(deps.pool, d))) }),
  );

  app.get(
    '/datasets/:name',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['datasets'],
        summary: 'One dataset: columns, types, key, aliases, secret columns, row count',
        params: z.strictObject({ name: z.string().max(100).describe('The dataset name, such as users') }),
        response: { 200: datasetSchema.describe('The dataset'), ...errorResponses },
      },
    },
    async (request) => {
      const dataset = deps.datasets.get(request.params.name);
      if (!dataset) throw notFound(`dataset "${request.params.name}"`);
      return describeDataset(deps.pool, dataset);
    },
  );
}
