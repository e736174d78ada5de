import { parseArgs } from 'node:util';
import { CliError, ExitCode, type ApiClient } from './http';
import { formatTable } from './table';

interface DeliveryPage {
  counts: { pending: number; delivered: number; failed: number };
  deliveries: { id: string; channel: string; target: string; event: string; status: string; attempts: number; attemptLog: { error?: string }[] }[];
  next: string | null;
}

/** `batchflow notifications RUN_ID [--status S]`: a run's delivery log, one line per notification. */
export async function notificationsCommand(api: ApiClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { status: { type: 'string' } } });
  const runId = positionals[0];
  if (!runId) throw new CliError('usage: batchflow notifications RUN_ID [--status pending|delivered|failed]', ExitCode.Usage);
  const rows: string[][] = [];
  let counts: DeliveryPage['counts'] | undefined;
  for (let path: string | null = `/runs/${encodeURIComponent(runId)}/notifications?limit=1000${values.status ? `&status=${encodeURIComponent(values.status)}` : ''}`; path; ) {
    const { body }: { body: DeliveryPage } = await api.request<DeliveryPage>('GET', path);
    counts = body.counts;
    rows.push(...body.deliveries.map((d) => [d.event, d.channel, d.target, d.status, String(d.attempts), d.attemptLog.at(-1)?.error ?? '', d.id]));
    path = body.next;
  }
  console.log(formatTable(['event', 'channel', 'target', 'status', 'attempts', 'last error', 'id'], rows));
  console.log(`${counts!.delivered} delivered, ${counts!.failed} failed, ${counts!.pending} pending`);
  return ExitCode.Success;
}
