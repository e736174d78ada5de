import { parseArgs } from 'node:util';
import type { RunListItem } from '../jobs/run';
import { ExitCode, type ApiClient } from './http';
import { formatTable, timeArg } from './table';

/** `batchflow runs`: every run the filters match, following the API's pages. */
export async function runsCommand(api: ApiClient, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      kind: { type: 'string' },
      dataset: { type: 'string' },
      status: { type: 'string' },
      schedule: { type: 'string' },
      'started-by': { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'page-size': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const filter = {
    kind: values.kind,
    dataset: values.dataset,
    status: values.status,
    scheduleId: values.schedule,
    startedBy: values['started-by'],
    from: timeArg(values.from),
    to: timeArg(values.to),
    // Few, large pages: a long list stays well under the API's rate limit.
    limit: values['page-size'] ?? '1000',
  };
  const query = new URLSearchParams(Object.entries(filter).filter((e): e is [string, string] => e[1] !== undefined));
  const runs: RunListItem[] = [];
  for (let pageToken: string | null = null; ; ) {
    if (pageToken) query.set('pageToken', pageToken);
    const { body } = await api.request<{ runs: RunListItem[]; nextPageToken: string | null }>('GET', `/runs?${query.toString()}`);
    // JSON lines go out page by page; the table needs every row for its widths.
    if (values.json) for (const run of body.runs) console.log(JSON.stringify(run));
    else runs.push(...body.runs);
    pageToken = body.nextPageToken;
    if (!pageToken) break;
  }
  if (!values.json) {
    console.log(formatTable(['run', 'kind', 'dataset', 'status', 'started', 'ended'], runs.map((r) => [r.runId, r.kind ?? '', r.dataset ?? '', r.status, r.startTime, r.closeTime ?? ''])));
    console.error(`${runs.length} run(s)`);
  }
  return ExitCode.Success;
}
