import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunView } from '../../src/api/runs';
import { freePort } from '../../src/stack/ports';
import { dashboardMetrics, sample } from '../helpers/prometheus';
import { openStack, spawnBatchflow, storedCheckpoint, uniqueId, usersCsv, writeFixture, type Stack } from '../helpers/stack';

const scrape = async (url: string) => {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  return res.text();
};

/** Polls `probe` until it stops throwing. */
async function eventually<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** A spawned process's stdout as JSON log lines; a line that is not JSON fails the parse. */
function jsonLines(child: ReturnType<typeof spawnBatchflow>): { lines: Record<string, unknown>[]; raw: string[] } {
  const out = { lines: [] as Record<string, unknown>[], raw: [] as string[] };
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (pending + chunk).split('\n');
    pending = parts.pop()!;
    for (const line of parts.filter(Boolean)) {
      out.raw.push(line);
      out.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return out;
}

describe('a worker process and an API process: metrics and logs', () => {
  let stack: Stack;
  const withKey = () => ({ authorization: `Bearer ${stack.adminKey}` });
  let worker: ReturnType<typeof spawnBatchflow>;
  let api: ReturnType<typeof spawnBatchflow>;
  let workerLog: ReturnType<typeof jsonLines>;
  let apiLog: ReturnType<typeof jsonLines>;
  const urls = { api: '', apiMetrics: '', workerMetrics: '', temporalMetrics: '' };

  before(async () => {
    stack = await openStack();
    const [apiPort, apiMetricsPort, workerMetricsPort, temporalMetricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const json = { LOG_FORMAT: 'json', LOG_LEVEL: 'info', BATCHFLOW_METRICS_HOST: '127.0.0.1' };
    worker = spawnBatchflow('worker', stack.config, { env: { ...json, BATCHFLOW_WORKER_METRICS_PORT: String(workerMetricsPort), BATCHFLOW_TEMPORAL_METRICS_PORT: String(temporalMetricsPort) }, stdout: 'pipe' });
    // Debug: successful reads log at debug level.
    api = spawnBatchflow('api', stack.config, { env: { ...json, LOG_LEVEL: 'debug', PORT: String(apiPort), HOST: '127.0.0.1', BATCHFLOW_API_METRICS_PORT: String(apiMetricsPort) }, stdout: 'pipe' });
    workerLog = jsonLines(worker);
    apiLog = jsonLines(api);
    Object.assign(urls, {
      api: `http://127.0.0.1:${apiPort}`,
      apiMetrics: `http://127.0.0.1:${apiMetricsPort}/metrics`,
      workerMetrics: `http://127.0.0.1:${workerMetricsPort}/metrics`,
      temporalMetrics: `http://127.0.0.1:${temporalMetricsPort}/metrics`,
    });
    await eventually(() => scrape(urls.workerMetrics), 'the worker serves its metrics');
    await eventually(async () => assert.equal((await fetch(`${urls.api}/health`)).status, 200), 'the API answers');
  });

  after(async () => {
    for (const child of [worker, api]) {
      child.kill('SIGTERM');
      await child.exited;
    }
    await stack.close();
  });

  it("after a real import, /metrics on both processes shows Batchflow's series moving; the worker shows Temporal's too", async () => {
    const before = { worker: await scrape(urls.workerMetrics), api: await scrape(urls.apiMetrics) };
    const p = uniqueId('metrics');
    const csv = usersCsv(p, 1000) + 'bad-1,One\nbad-2,Two\nbad-3,Three\n';
    const runId = uniqueId('metrics-run');
    const started = await fetch(`${urls.api}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...withKey() },
      body: JSON.stringify({ kind: 'import', runId, params: { source: await writeFixture('metrics.csv', csv), dataset: 'users', batchSize: 250 } }),
    });
    assert.equal(started.status, 202, await started.text());
    const run = await eventually(async () => {
      const view = (await (await fetch(`${urls.api}/runs/${runId}`, { headers: withKey() })).json()) as RunView;
      assert.notEqual(view.status, 'running');
      return view;
    }, 'the run ends');
    assert.equal(run.status, 'partial');
    const batches = (await storedCheckpoint(stack.pool, runId))!.seq;

    const afterWorker = await scrape(urls.workerMetrics);
    const moved = (name: string, labels: Record<string, string>) => sample(afterWorker, name, labels) - sample(before.worker, name, labels);
    const imported = { kind: 'import', dataset: 'users' };
    assert.deepEqual(
      {
        processed: moved('batchflow_rows_processed_total', imported),
        rejected: moved('batchflow_rows_rejected_total', imported),
        skipped: moved('batchflow_rows_skipped_total', imported),
        batches: moved('batchflow_batch_duration_seconds_count', imported),
        started: moved('batchflow_runs_started_total', { kind: 'import' }),
        finished: moved('batchflow_runs_finished_total', { kind: 'import', status: 'partial' }),
      },
      { processed: 1003, rejected: 3, skipped: 0, batches, started: 1, finished: 1 },
    );
    assert.ok(batches >= 4, `${batches} batches of 250`);
    assert.match(afterWorker, /^# TYPE batchflow_slice_retries_total counter$/m);

    const afterApi = await scrape(urls.apiMetrics);
    const posted = { method: 'POST', route: '/runs', status: '202' };
    assert.equal(sample(afterApi, 'batchflow_api_requests_total', posted) - sample(before.api, 'batchflow_api_requests_total', posted), 1);
    assert.equal(sample(afterApi, 'batchflow_api_request_duration_seconds_count', posted) - sample(before.api, 'batchflow_api_request_duration_seconds_count', posted), 1);
    assert.ok(sample(afterApi, 'batchflow_api_requests_total', { method: 'GET', route: '/runs/:id', status: '200' }) >= 1);

    // The Temporal SDK's own metrics, from the worker's runtime, for this worker's task queue.
    const temporal = await eventually(async () => {
      const text = await scrape(urls.temporalMetrics);
      assert.ok(sample(text, 'temporal_activity_execution_latency_seconds_count', { task_queue: stack.config.temporal.taskQueue, activity_type: 'importSlice' }) >= 1, 'activity latency recorded');
      return text;
    }, 'the Temporal SDK exports its metrics');
    assert.ok(sample(temporal, 'temporal_workflow_completed_total', { task_queue: stack.config.temporal.taskQueue }) >= 1);

    // The dashboard's queries read series these endpoints serve; both processes serve their own process metrics.
    const served = new Set([afterWorker, afterApi, temporal].flatMap((text) => [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!)));
    for (const name of dashboardMetrics()) assert.ok(served.has(name), `${name} is served`);
    for (const text of [afterWorker, afterApi]) assert.match(text, /^process_cpu_user_seconds_total \d/m);
    // URLs no route matches share one label.
    await fetch(`${urls.api}/no/such/route`, { headers: withKey() });
    assert.equal(sample(await scrape(urls.apiMetrics), 'batchflow_api_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 1);
  });

  it("logs are JSON lines that carry the run id (and the activity attempt) across the API's and the worker's", async () => {
    const runId = await eventually(() => {
      const line = apiLog.lines.find((l) => l.msg === 'run started' && typeof l.runId === 'string' && String(l.runId).startsWith('metrics-run-'));
      assert.ok(line, `the API logged the run's start: ${apiLog.raw.join('\n')}`);
      assert.equal(line.kind, 'import');
      return line.runId as string;
    }, 'API log');
    const ofRun = (msg: string) => workerLog.lines.filter((l) => l.msg === msg && l.runId === runId);
    await eventually(() => assert.equal(ofRun('run finished').length, 1, workerLog.raw.join('\n')), 'worker log');
    assert.equal(ofRun('run started').length, 1);
    assert.equal(ofRun('run finished')[0]!.status, 'partial');
    const slices = ofRun('slice handed back');
    assert.ok(slices.length >= 1);
    assert.ok(slices.every((l) => l.attempt === 1 && l.activityType === 'importSlice' && typeof l.temporalRunId === 'string' && l.level === 'info'), JSON.stringify(slices));
    assert.ok(apiLog.lines.every((l) => typeof l.time === 'string' && l.component === 'api'));
    assert.ok(workerLog.lines.every((l) => typeof l.time === 'string' && l.component === 'worker'));
    assert.ok(apiLog.lines.some((l) => l.msg === 'request' && l.method === 'POST' && l.url === '/runs' && l.status === 202 && l.level === 'info'), 'changes log at info');
    // The API's lines about the run, from its requests for it (reads at debug level).
    assert.ok(apiLog.lines.some((l) => l.msg === 'request' && l.runId === runId && l.method === 'GET' && l.level === 'debug'), 'GET /runs/:id is logged with the run id');
  });
});

describe('npm start (batchflow start) against running services', () => {
  it('prints where the API, its docs and the three metrics endpoints are, in readable log lines', async () => {
    const stack = await openStack();
    const [port, apiMetrics, workerMetrics, temporalMetrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const child = spawnBatchflow('start', stack.config, {
      args: ['--no-sample'],
      stdout: 'pipe',
      env: {
        PORT: String(port),
        BATCHFLOW_API_METRICS_PORT: String(apiMetrics),
        BATCHFLOW_WORKER_METRICS_PORT: String(workerMetrics),
        BATCHFLOW_TEMPORAL_METRICS_PORT: String(temporalMetrics),
        BATCHFLOW_DATA_DIR: path.join(process.env.BATCHFLOW_TEST_TMP ?? os.tmpdir(), uniqueId('start-data')),
      },
    });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    try {
      await eventually(() => assert.match(out, /running; Ctrl-C stops everything/), `the stack starts: ${out}`);
      const at = (p: number) => `http://127.0.0.1:${p}/metrics`;
      assert.match(out, new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO +\\[start\\] API: +http://localhost:${port} .* docs: http://localhost:${port}/docs$`, 'm'));
      assert.ok(out.includes(`metrics:      API ${at(apiMetrics)}   worker ${at(workerMetrics)}   Temporal SDK ${at(temporalMetrics)}`), out);
      assert.ok(out.split('\n').every((line) => !line.startsWith('{')), 'no JSON lines');
      for (const url of [at(apiMetrics), at(workerMetrics), at(temporalMetrics)]) assert.equal((await fetch(url)).status, 200, url);
      const docs = await fetch(`http://127.0.0.1:${port}/docs`);
      assert.deepEqual([docs.status, docs.headers.get('content-type')?.split(';')[0]], [200, 'text/html']);
    } finally {
      child.kill('SIGINT');
      await child.exited;
      await stack.close();
    }
  });
});
