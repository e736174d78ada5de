import type { RunView } from '../api/runs';
import type { RunStatus } from '../jobs/run';
import { ExitCode, type ApiClient } from './http';
import { previewLines, progressLine, resultSummary } from './progress';

export const exitCodeOf: Record<RunStatus, number> = {
  success: ExitCode.Success,
  partial: ExitCode.Partial,
  failed: ExitCode.Failed,
  cancelled: ExitCode.Cancelled,
  running: ExitCode.Failed,
};

/** Polls a run until it ends, drawing progress; Ctrl-C asks the run to cancel after its batch. `print` shows the summary. */
export async function follow(client: ApiClient, runId: string, print: (summary: string) => void = console.log): Promise<number> {
  const tty = process.stderr.isTTY;
  let cancelled = false;
  const onInterrupt = () => {
    if (cancelled) process.exit(ExitCode.Cancelled);
    cancelled = true;
    process.stderr.write('\ncancelling after the current batch (Ctrl-C again to stop waiting)\n');
    void client.request('POST', `/runs/${encodeURIComponent(runId)}/cancel`, {}).catch(() => undefined);
  };
  process.on('SIGINT', onInterrupt);
  let lastPrinted = 0;
  let announcedApproval = false;
  try {
    for (;;) {
      const { body: run } = await client.request<RunView>('GET', `/runs/${encodeURIComponent(runId)}`);
      if (run.status !== 'running') {
        if (tty) process.stderr.write('\r\x1b[K');
        print(resultSummary(runId, run.result, run.error));
        return exitCodeOf[run.status];
      }
      if (run.progress?.preview && !announcedApproval) {
        announcedApproval = true;
        if (tty) process.stderr.write('\r\x1b[K');
        const lines = [`run ${runId} awaits approval until ${run.progress.approvalDeadline}:`, ...previewLines(run.progress.preview)];
        process.stderr.write(`${lines.join('\n')}\n  approve: batchflow approve ${runId}    reject: batchflow reject ${runId}\n`);
      }
      if (run.progress) {
        if (tty) process.stderr.write(`\r\x1b[K${progressLine(run.progress)}`);
        else if (Date.now() - lastPrinted > 5_000) {
          process.stderr.write(`${progressLine(run.progress)}\n`);
          lastPrinted = Date.now();
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}
