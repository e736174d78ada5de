import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { sourceOf } from './input';
import { follow } from './follow';
import { CliError, ExitCode, type ApiClient } from './http';

/** `batchflow rejected RUN [--out FILE]`: an import's rejected rows, in its input's format, to fix. */
export async function rejectedCommand(api: ApiClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' } } });
  const runId = positionals[0];
  if (!runId) throw new CliError('usage: batchflow rejected RUN_ID [--out FILE]', ExitCode.Usage);
  const { body } = await api.request<string | object>('GET', `/runs/${encodeURIComponent(runId)}/rejected`);
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2) + '\n';
  if (values.out) {
    fs.writeFileSync(values.out, text);
    console.error(`rejected rows of ${runId} written to ${values.out}; fix them, then: batchflow replay ${runId} ${values.out}`);
  } else process.stdout.write(text);
  return ExitCode.Success;
}

/** `batchflow replay RUN FIXED_FILE`: uploads the file (as import does) and imports the fixed rejected rows as a new run linked to the first. */
export async function replayCommand(api: ApiClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { format: { type: 'string' }, 'run-id': { type: 'string' }, 'no-wait': { type: 'boolean' }, 'server-path': { type: 'boolean' } } });
  const [runId, file] = positionals;
  if (!runId || !file) throw new CliError('usage: batchflow replay RUN_ID FIXED_FILE [--format F] [--run-id ID] [--no-wait] [--server-path]', ExitCode.Usage);
  const { body } = await api.request<{ runId: string; replayOf: string; existing: boolean }>('POST', `/runs/${encodeURIComponent(runId)}/replay`, {
    source: await sourceOf(api, file, values['server-path']),
    ...(values.format && { format: values.format }),
    ...(values['run-id'] && { runId: values['run-id'] }),
  });
  console.error(`${body.existing ? 'existing' : 'started'} replay ${body.runId} of ${body.replayOf}`);
  if (values['no-wait']) {
    console.log(body.runId);
    return ExitCode.Success;
  }
  return follow(api, body.runId);
}
