import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { RunView } from '../api/runs';
import { follow } from './follow';
import { CliError, ExitCode, type ApiClient } from './http';
import { readStructuredFile } from './input';

const USAGE = `usage: batchflow export DATASET [--where FILE] [--columns a,b] [--format csv|ndjson|json] [--gzip]
        [--destination KEY] [--no-formula-escape] [--run-id ID] [-o FILE]`;

/**
 * `batchflow export`: starts an export, follows it with a progress bar, then downloads its file
 * (to -o FILE, `-` for stdout, or the object's name in the working directory) and checks it
 * against the SHA-256 in the run's result.
 */
export async function exportCommand(client: ApiClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      where: { type: 'string' },
      columns: { type: 'string' },
      format: { type: 'string' },
      gzip: { type: 'boolean' },
      destination: { type: 'string' },
      'no-formula-escape': { type: 'boolean' },
      'run-id': { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
  });
  const dataset = positionals[0];
  if (!dataset || positionals.length > 1) throw new CliError(USAGE, ExitCode.Usage);
  const params = {
    dataset,
    ...(values.where && { where: readStructuredFile(values.where) }),
    ...(values.columns && { columns: values.columns.split(',').map((c) => c.trim()) }),
    ...(values.format && { format: values.format }),
    ...(values.gzip && { gzip: true }),
    ...(values.destination && { destination: values.destination }),
    ...(values['no-formula-escape'] && { csvFormulaEscape: false }),
  };
  const toStdout = values.output === '-';
  const { body: started } = await client.request<{ runId: string; existing: boolean }>('POST', '/runs', { kind: 'export', params, runId: values['run-id'] });
  console.error(`${started.existing ? 'existing' : 'started'} run ${started.runId}`);
  const runId = encodeURIComponent(started.runId);
  // With the file on stdout, the run's summary goes to stderr.
  const code = await follow(client, started.runId, toStdout ? console.error : console.log);
  if (code !== ExitCode.Success) return code;

  const { body: run } = await client.request<RunView>('GET', `/runs/${runId}`);
  const output = run.result?.outputs[0];
  if (!output) throw new CliError(`run ${started.runId} has no file`, ExitCode.Failed);
  const file = toStdout ? undefined : path.resolve(values.output ?? path.posix.basename(output.location));
  const temp = file && `${file}.${process.pid}.part`;
  try {
    const { bytes, sha256 } = await client.download(`/runs/${runId}/download`, temp ? fs.createWriteStream(temp) : process.stdout);
    if (sha256 !== output.sha256 || bytes !== output.bytes) {
      throw new CliError(`the download does not match the run's file (${bytes} bytes, SHA-256 ${sha256}; expected ${output.bytes} bytes, ${output.sha256})`, ExitCode.Failed);
    }
    if (file && temp) fs.renameSync(temp, file);
  } finally {
    if (temp) fs.rmSync(temp, { force: true });
  }
  console.error(`${file ? `wrote ${file}` : 'wrote the file to stdout'}: ${output.rows ?? '?'} rows, ${output.bytes} bytes, SHA-256 ${output.sha256}`);
  return ExitCode.Success;
}
