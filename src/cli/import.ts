import { parseArgs } from 'node:util';
import { apiClient, startAndFollow } from './api';
import { CliError, ExitCode } from './http';
import { readStructuredFile, sourceOf } from './input';

export const IMPORT_USAGE = `  batchflow import FILE --dataset NAME [--mode upsert|insert|skip-existing] [--format csv|ndjson|json]
        [--delimiter C] [--mapping FILE] [--batch-size N] [--stop-on-error] [--max-errors N] [--run-id ID] [--no-wait]
        [--server-path]
        FILE is uploaded to the API first; s3://bucket/key and store://key are imported where they are;
        with --server-path FILE is a path on the worker's machine (file:// also means that)`;

/** `batchflow import FILE`: uploads FILE (so the API may be on another machine), then imports it. */
export async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dataset: { type: 'string' },
      mode: { type: 'string' },
      format: { type: 'string' },
      delimiter: { type: 'string' },
      mapping: { type: 'string' },
      'batch-size': { type: 'string' },
      'stop-on-error': { type: 'boolean' },
      'max-errors': { type: 'string' },
      'run-id': { type: 'string' },
      'no-wait': { type: 'boolean' },
      'server-path': { type: 'boolean' },
    },
  });
  const file = positionals[0];
  if (!file || !values.dataset) throw new CliError(`usage:\n${IMPORT_USAGE}`, ExitCode.Usage);
  const params = {
    source: await sourceOf(apiClient(), file, values['server-path']),
    dataset: values.dataset,
    ...(values.mapping && { mapping: readStructuredFile(values.mapping) }),
    ...(values.mode && { mode: values.mode }),
    ...(values.format && { format: values.format }),
    ...(values.delimiter && { delimiter: values.delimiter }),
    ...(values['batch-size'] && { batchSize: Number(values['batch-size']) }),
    ...(values['max-errors'] && { maxErrors: Number(values['max-errors']) }),
    ...(values['stop-on-error'] && { errorHandling: 'stop_on_error' }),
  };
  return startAndFollow('import', params, values['run-id'], !values['no-wait']);
}
