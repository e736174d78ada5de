import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { loadConfig } from '../config';
import type { RunView } from '../api/runs';
import { exitCodeOf, follow } from './follow';
import { ApiClient, CliError, ExitCode } from './http';

const USAGE = `batchflow: durable batch data jobs on Temporal

Usage:
  batchflow start [--no-sample]          the whole local stack (Temporal, Postgres, Mailpit, worker, API)
  batchflow worker                       a worker against TEMPORAL_ADDRESS and DATABASE_URL
  batchflow api                          the HTTP API on PORT
  batchflow import FILE --dataset NAME [--mode upsert|insert|skip-existing] [--format csv|ndjson|json]
        [--delimiter C] [--batch-size N] [--stop-on-error] [--max-errors N] [--run-id ID] [--no-wait]
  batchflow run KIND --params FILE [--run-id ID] [--no-wait]
        KIND is import, bulk-update, cleanup, pipeline, custom or invoicing; FILE is JSON or YAML (- for stdin)
  batchflow approve RUN_ID [--comment TEXT]
  batchflow reject RUN_ID [--reason TEXT]
  batchflow status RUN_ID
  batchflow cancel RUN_ID
  batchflow errors RUN_ID [--format csv|ndjson|json]
  batchflow notifications RUN_ID [--status pending|delivered|failed]
  batchflow runs [--kind K] [--dataset D] [--status S]

FILE is a local path, s3://bucket/key or store://key. The commands that talk to the API use
BATCHFLOW_API_URL (default http://localhost:$PORT). Exit codes: 0 success, 1 failed, 2 partial
(some rows rejected), 3 cancelled, 64 bad usage or request, 69 API unavailable.`;

const api = () => new ApiClient(loadConfig().api.url);

/** Starts a run through the API and follows it unless told not to wait. */
async function startAndFollow(kind: string, params: unknown, runId: string | undefined, wait: boolean): Promise<number> {
  const client = api();
  const { body } = await client.request<{ runId: string; existing: boolean }>('POST', '/runs', { kind, params, runId });
  console.error(`${body.existing ? 'existing' : 'started'} run ${body.runId}`);
  if (!wait) {
    console.log(body.runId);
    return ExitCode.Success;
  }
  return follow(client, body.runId);
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { params: { type: 'string' }, 'run-id': { type: 'string' }, 'no-wait': { type: 'boolean' } },
  });
  const kind = positionals[0];
  if (!kind || !values.params) throw new CliError(`usage: batchflow run KIND --params FILE\n\n${USAGE}`, ExitCode.Usage);
  let text: string;
  try {
    text = values.params === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(values.params, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${values.params}: ${(err as Error).message}`, ExitCode.Usage);
  }
  let params: unknown;
  try {
    // YAML is a superset of JSON: one parser reads both.
    params = YAML.parse(text);
  } catch (err) {
    throw new CliError(`${values.params} is not valid JSON or YAML: ${(err as Error).message}`, ExitCode.Usage);
  }
  return startAndFollow(kind, params, values['run-id'], !values['no-wait']);
}

async function decideCommand(decision: 'approve' | 'reject', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { comment: { type: 'string' }, reason: { type: 'string' }, by: { type: 'string' } } });
  const runId = requireArg(positionals[0], 'RUN_ID');
  const by = values.by ?? process.env.USER;
  await api().request('POST', `/runs/${encodeURIComponent(runId)}/${decision}`, { by, comment: values.comment, reason: values.reason });
  console.log(decision === 'approve' ? `approved ${runId}; it starts changing rows now` : `rejected ${runId}; it ends cancelled, nothing changed`);
  return ExitCode.Success;
}

async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dataset: { type: 'string' },
      mode: { type: 'string' },
      format: { type: 'string' },
      delimiter: { type: 'string' },
      'batch-size': { type: 'string' },
      'stop-on-error': { type: 'boolean' },
      'max-errors': { type: 'string' },
      'run-id': { type: 'string' },
      'no-wait': { type: 'boolean' },
    },
  });
  const file = positionals[0];
  if (!file || !values.dataset) throw new CliError(`usage: batchflow import FILE --dataset NAME [--mode upsert]\n\n${USAGE}`, ExitCode.Usage);
  const params = {
    source: /^(s3|store|file):\/\//.test(file) ? file : path.resolve(file),
    dataset: values.dataset,
    ...(values.mode && { mode: values.mode }),
    ...(values.format && { format: values.format }),
    ...(values.delimiter && { delimiter: values.delimiter }),
    ...(values['batch-size'] && { batchSize: Number(values['batch-size']) }),
    ...(values['max-errors'] && { maxErrors: Number(values['max-errors']) }),
    ...(values['stop-on-error'] && { errorHandling: 'stop_on_error' }),
  };
  return startAndFollow('import', params, values['run-id'], !values['no-wait']);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const { startLocalStack } = await import('./start');
      await startLocalStack({ sample: !rest.includes('--no-sample') });
      return ExitCode.Success;
    }
    case 'worker': {
      const { runWorker } = await import('../worker');
      await runWorker();
      return ExitCode.Success;
    }
    case 'api': {
      const { runApi } = await import('../api/server');
      await runApi();
      return -1;
    }
    case 'import':
      return importCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'approve':
    case 'reject':
      return decideCommand(command, rest);
    case 'status': {
      const client = api();
      const { body } = await client.request<RunView>('GET', `/runs/${encodeURIComponent(requireArg(rest[0], 'RUN_ID'))}`);
      console.log(JSON.stringify(body, null, 2));
      return exitCodeOf[body.status] ?? ExitCode.Success;
    }
    case 'cancel': {
      const runId = requireArg(rest[0], 'RUN_ID');
      await api().request('POST', `/runs/${encodeURIComponent(runId)}/cancel`, {});
      console.log(`cancel requested for ${runId}; it stops after its current batch`);
      return ExitCode.Success;
    }
    case 'errors': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { format: { type: 'string', default: 'csv' } } });
      const runId = requireArg(positionals[0], 'RUN_ID');
      const { body } = await api().request<string | object>('GET', `/runs/${encodeURIComponent(runId)}/errors?format=${values.format}`);
      process.stdout.write(typeof body === 'string' ? body : JSON.stringify(body, null, 2) + '\n');
      return ExitCode.Success;
    }
    case 'notifications':
      return (await import('./notifications')).notificationsCommand(api(), rest);
    case 'runs': {
      const { values } = parseArgs({ args: rest, options: { kind: { type: 'string' }, dataset: { type: 'string' }, status: { type: 'string' } } });
      const query = new URLSearchParams(Object.entries(values).filter((e): e is [string, string] => typeof e[1] === 'string'));
      const { body } = await api().request<{ runs: object[] }>('GET', `/runs?${query.toString()}`);
      console.table(body.runs);
      return ExitCode.Success;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? ExitCode.Usage : ExitCode.Success;
    default:
      throw new CliError(`unknown command "${command}"\n\n${USAGE}`, ExitCode.Usage);
  }
}

function requireArg(value: string | undefined, name: string): string {
  if (!value) throw new CliError(`missing ${name}\n\n${USAGE}`, ExitCode.Usage);
  return value;
}

main(process.argv.slice(2)).then(
  (code) => {
    // Long-running commands (api) keep the process alive themselves.
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof CliError ? err.message : err instanceof Error ? err.message : String(err));
    process.exitCode = err instanceof CliError ? err.exitCode : ExitCode.Failed;
  },
);
