import { parseArgs } from 'node:util';
import type { RunView } from '../api/runs';
import { apiClient as api, startAndFollow } from './api';
import { datasetsCommand } from './datasets';
import { exportCommand } from './export';
import { exitCodeOf } from './follow';
import { CliError, ExitCode } from './http';
import { IMPORT_USAGE, importCommand } from './import';
import { readStructuredFile } from './input';
import { KEYS_USAGE, keysCommand } from './keys';
import { notificationsCommand } from './notifications';
import { runsCommand } from './runs';
import { statsCommand } from './stats';

const USAGE = `batchflow: durable batch data jobs on Temporal

Usage:
  batchflow start [--no-sample]          the whole local stack (Temporal, Postgres, Mailpit, worker, API)
  batchflow worker                       a worker against TEMPORAL_ADDRESS and DATABASE_URL
  batchflow api                          the HTTP API on PORT
${IMPORT_USAGE}
  batchflow inspect FILE [--dataset NAME] [--format F] [--delimiter C] [--sample N] [--region CC]
        [--save-mapping FILE] [--json] [--server-path]   detected column types and problems; against a dataset, the mapping
  batchflow run KIND --params FILE [--run-id ID] [--no-wait]
        KIND is import, bulk-update, cleanup, pipeline, custom, dedupe, aggregate, report, export, cache-refresh or invoicing; FILE is JSON or YAML (- for stdin)
  batchflow export DATASET [--where FILE] [--columns a,b] [--format csv|ndjson|json] [--gzip]
        [--destination KEY] [--no-formula-escape] [--run-id ID] [-o FILE]   waits, then downloads (-o - for stdout)
  batchflow approve RUN_ID [--comment TEXT]
  batchflow reject RUN_ID [--reason TEXT]
  batchflow status RUN_ID
  batchflow cancel RUN_ID
  batchflow errors RUN_ID [--format csv|ndjson|json]
  batchflow notifications RUN_ID [--status pending|delivered|failed]   a run's webhooks and emails, each with its attempts
  batchflow rejected RUN_ID [--out FILE]   an import's rejected rows in its input's format, to fix
  batchflow replay RUN_ID FIXED_FILE [--format F] [--run-id ID] [--no-wait] [--server-path]
        import the fixed rows as a new run linked to the first (FIXED_FILE is uploaded as import's FILE is)
  batchflow runs [--kind K] [--dataset D] [--status S] [--schedule ID] [--started-by KEY_NAME] [--from T] [--to T]
        [--page-size N] [--json]   every matching run, following the pages; T is ISO 8601 or a time ago (30m, 24h, 7d)
  batchflow datasets [NAME]              the datasets runs can import into; with NAME, its columns
  batchflow stats [--from T] [--to T] [--json]
        runs by kind and status, rows per dataset, top error codes, durations (default: the last 24h)
  batchflow schedules list | show ID | pause ID [--note N] | unpause ID [--note N]
        | trigger ID [--no-wait] | backfill ID --from YYYY-MM-DD --to YYYY-MM-DD | sync [--file F]
  batchflow datasets check               hold every declaration (BATCHFLOW_DATASETS) against its table
  batchflow datasets scaffold TABLE [--name NAME] [--out FILE|-]
        draft a declaration from the table's catalogue (default: NAME.yaml in the first datasets directory)
${KEYS_USAGE}

The commands that talk to the API use BATCHFLOW_API_URL (default http://localhost:$PORT) and the
key in BATCHFLOW_API_KEY (for a local API, the one npm start keeps in $BATCHFLOW_DATA_DIR/admin-api-key).
Exit codes: 0 success, 1 failed, 2 partial (some rows rejected), 3 cancelled, 64 bad usage or
request (refused keys and scopes too), 69 API unavailable (or rate-limited).`;

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { params: { type: 'string' }, 'run-id': { type: 'string' }, 'no-wait': { type: 'boolean' } },
  });
  const kind = positionals[0];
  if (!kind || !values.params) throw new CliError(`usage: batchflow run KIND --params FILE\n\n${USAGE}`, ExitCode.Usage);
  return startAndFollow(kind, readStructuredFile(values.params), values['run-id'], !values['no-wait']);
}

async function decideCommand(decision: 'approve' | 'reject', args: string[]): Promise<number> {
  // Who decides is the key's name: the API takes it from the key.
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: decision === 'approve' ? { comment: { type: 'string' } } : { reason: { type: 'string' } } });
  const runId = requireArg(positionals[0], 'RUN_ID');
  await api().request('POST', `/runs/${encodeURIComponent(runId)}/${decision}`, values);
  console.log(decision === 'approve' ? `approved ${runId}; it starts changing rows now` : `rejected ${runId}; it ends cancelled, nothing changed`);
  return ExitCode.Success;
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
    case 'rejected':
    case 'replay': {
      const { rejectedCommand, replayCommand } = await import('./replay');
      return (command === 'rejected' ? rejectedCommand : replayCommand)(api(), rest);
    }
    case 'inspect': {
      const { inspectCommand } = await import('./inspect');
      return inspectCommand(api(), rest);
    }
    case 'datasets':
      return datasetsCommand(api, rest);
    case 'run':
      return runCommand(rest);
    case 'approve':
    case 'reject':
      return decideCommand(command, rest);
    case 'export':
      return exportCommand(api(), rest);
    case 'keys':
      return keysCommand(rest);
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
      return notificationsCommand(api(), rest);
    case 'runs':
      return runsCommand(api(), rest);
    case 'stats':
      return statsCommand(api(), rest);
    case 'schedules': {
      const { schedulesCommand } = await import('./schedules');
      return schedulesCommand(rest, USAGE);
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
    // parseArgs refuses unknown options and missing values: that is bad usage too.
    const badArgs = String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    process.exitCode = err instanceof CliError ? err.exitCode : badArgs ? ExitCode.Usage : ExitCode.Failed;
  },
);
