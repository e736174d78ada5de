import { parseArgs } from 'node:util';
import type { ScheduleView } from '../api/schedules';
import { loadConfig } from '../config';
import { codeDatasets, loadDatasets } from '../datasets';
import { loadSchedules } from '../schedules/declarations';
import { summariseSync, syncSchedules } from '../schedules/sync';
import { connectTemporal } from '../temporal';
import { follow } from './follow';
import { apiClient } from './api';
import { CliError, ExitCode } from './http';

const path = (id: string, action = '') => `/schedules/${encodeURIComponent(id)}${action && `/${action}`}`;

/** One line per schedule: what a person scans for. */
function listLine(s: ScheduleView): string {
  const last = s.recentRuns[0];
  return [
    s.id.padEnd(20),
    (s.kind ?? '').padEnd(10),
    `${s.spec.declared} ${s.spec.timeZone}`.padEnd(34),
    (s.paused ? `PAUSED (${s.note})` : `next ${s.nextRunTimes[0] ?? '-'}`).padEnd(36),
    last ? `last ${last.runId} ${last.status}` : 'no runs yet',
  ].join(' ');
}

/** `batchflow schedules …`: through the API, except `sync`, which reads the schedules file and talks to Temporal itself (as a worker does at start). */
export async function schedulesCommand(args: string[], usage: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { note: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, file: { type: 'string' }, 'no-wait': { type: 'boolean' } },
  });
  const [sub, id] = positionals;
  const needId = () => {
    if (!id) throw new CliError(`missing schedule ID\n\n${usage}`, ExitCode.Usage);
    return id;
  };
  const config = loadConfig();
  const api = apiClient();
  switch (sub) {
    case 'list': {
      const { body } = await api.request<{ schedules: ScheduleView[] }>('GET', '/schedules');
      console.log(body.schedules.length ? body.schedules.map(listLine).join('\n') : 'no schedules (is a worker syncing the schedules file?)');
      return ExitCode.Success;
    }
    case 'show': {
      const { body } = await api.request<ScheduleView>('GET', path(needId()));
      console.log(JSON.stringify(body, null, 2));
      return ExitCode.Success;
    }
    case 'pause':
    case 'unpause': {
      const { body } = await api.request<ScheduleView>('POST', path(needId(), sub), { note: values.note });
      console.log(`${body.id}: ${body.paused ? 'paused' : 'running'}${body.note ? ` (${body.note})` : ''}`);
      return ExitCode.Success;
    }
    case 'trigger': {
      const { body } = await api.request<{ runId: string | null }>('POST', path(needId(), 'trigger'), {});
      if (!body.runId) {
        console.log(`triggered ${id}; see batchflow schedules show ${id} for its run`);
        return ExitCode.Success;
      }
      console.error(`started run ${body.runId}`);
      if (values['no-wait']) {
        console.log(body.runId);
        return ExitCode.Success;
      }
      return follow(api, body.runId);
    }
    case 'backfill': {
      if (!values.from || !values.to) throw new CliError(`usage: batchflow schedules backfill ID --from YYYY-MM-DD --to YYYY-MM-DD\n\n${usage}`, ExitCode.Usage);
      const { body } = await api.request<{ start: string; end: string }>('POST', path(needId(), 'backfill'), { from: values.from, to: values.to });
      console.log(`backfilling ${id}: every time it was due from ${body.start} to ${body.end}, one run after another (batchflow runs --schedule ${id})`);
      return ExitCode.Success;
    }
    case 'sync': {
      const file = values.file ?? config.schedulesFile;
      if (!file) throw new CliError('BATCHFLOW_SCHEDULES is off: give --file', ExitCode.Usage);
      // Params are checked against the declared datasets, as the worker's own sync checks them.
      const declarations = loadSchedules(file, loadDatasets(config.datasetDirs, codeDatasets));
      const temporal = await connectTemporal(config);
      try {
        console.log(summariseSync(await syncSchedules(temporal.client, declarations, config.temporal.taskQueue), file));
      } finally {
        await temporal.close();
      }
      return ExitCode.Success;
    }
    default:
      throw new CliError(`unknown or missing schedules command "${sub ?? ''}"\n\n${usage}`, ExitCode.Usage);
  }
}
