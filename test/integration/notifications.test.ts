import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { notificationQueries } from '../../src/db/notifications';
import { NOTIFY_ATTEMPTS } from '../../src/jobs/notify';
import { createDeliverer, runEndDeliveries } from '../../src/notifications/deliver';
import { createMailer } from '../../src/notifications/mailer';
import { readMail, waitForMail, mailTo } from '../helpers/mailpit';
import { startRun, uniqueId, usersCsv, useStackWithWorker, waitForRun, writeFixture } from '../helpers/stack';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhooks';

interface DeliveryView {
  id: string;
  channel: string;
  target: string;
  event: string;
  status: string;
  attempts: number;
  attemptLog: { ok: boolean; status?: number; error?: string }[];
  payload: { type: string; data: Record<string, unknown> };
}
interface LogView {
  counts: { pending: number; delivered: number; failed: number };
  deliveries: DeliveryView[];
  next: string | null;
}

describe('notifications', () => {
  const fixture = useStackWithWorker();
  const receivers: WebhookReceiver[] = [];
  const receiver = async (fail?: (n: number) => boolean) => {
    const r = await startWebhookReceiver({ fail });
    receivers.push(r);
    return r;
  };
  let hooks: WebhookReceiver;
  before(async () => {
    hooks = await receiver();
  });
  after(() => Promise.all(receivers.map((r) => r.close())));

  const notifications = async (runId: string, query = '') => {
    const res = await fixture.stack.app.inject({ method: 'GET', url: `/runs/${runId}/notifications${query}` });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<LogView>();
  };

  /** A users CSV of `good` valid rows and `bad` rows with an invalid email. */
  const usersFile = async (p: string, good: number, bad: number) =>
    writeFixture(`${p}.csv`, usersCsv(p, good) + Array.from({ length: bad }, (_, i) => `not-an-email-${i},Bad ${i},user,active,2024-01-01\n`).join(''));

  it('a run tells its webhook (signed) and its email addresses how it ended', async () => {
    const p = uniqueId('notify');
    const ops = `${p}.ops@example.com`;
    const runId = await startRun(fixture.stack, 'import', { source: await usersFile(p, 5, 2), dataset: 'users', notify: { on: ['partial', 'failed'], webhook: hooks.url, email: [ops] } });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'partial');

    const got = hooks.received.filter((r) => r.body.data.runId === runId);
    assert.deepEqual(got.map((r) => [r.type, r.verified]), [['run.partial', true]]);
    assert.deepEqual(got[0]!.body.data.counts, run.result!.counts);
    assert.equal(got[0]!.body.data.errorCount, 2);
    assert.equal(got[0]!.body.data.kind, 'import');

    const [mail] = await waitForMail(`to:"${ops}"`, 1);
    assert.equal(mail!.Subject, `[Batchflow] import run ${runId} ended partial`);
    assert.match((await readMail(mail!.ID)).Text, /Processed 7: 5 succeeded, 2 failed, 0 skipped\.\r?\nRow errors: 2/);

    const log = await notifications(runId);
    assert.deepEqual(log.counts, { pending: 0, delivered: 2, failed: 0 });
    assert.deepEqual(log.deliveries.map((d) => [d.channel, d.event, d.status, d.attempts]).sort(), [
      ['email', 'run.partial', 'delivered', 1],
      ['webhook', 'run.partial', 'delivered', 1],
    ]);
    assert.equal(log.deliveries.find((d) => d.channel === 'webhook')!.id, got[0]!.id, 'the log shows the webhook-id the receiver got');
  });

  it('outcomes that notify.on does not list are not reported; the error threshold alerts whatever the outcome', async () => {
    const p = uniqueId('quiet');
    const quiet = await startRun(fixture.stack, 'import', { source: await usersFile(p, 3, 0), dataset: 'users', notify: { on: ['failed'], webhook: hooks.url } });
    assert.equal((await waitForRun(fixture.stack, quiet)).status, 'success');
    assert.deepEqual((await notifications(quiet)).deliveries, []);

    const q = uniqueId('threshold');
    const alerted = await startRun(fixture.stack, 'import', { source: await usersFile(q, 7, 3), dataset: 'users', notify: { on: ['failed'], webhook: hooks.url, email: [`${q}.ops@example.com`], errorThreshold: { rate: 0.2 } } });
    assert.equal((await waitForRun(fixture.stack, alerted)).status, 'partial');
    assert.deepEqual(hooks.received.filter((r) => r.body.data.runId === alerted).map((r) => r.type), ['run.error_threshold']);
    const [mail] = await waitForMail(`to:"${q}.ops@example.com"`, 1);
    assert.equal(mail!.Subject, `[Batchflow] import run ${alerted} rejected 3 rows`);
  });

  it('a failing receiver is retried with backoff under the same webhook-id; one that keeps failing is recorded as failed and the run ends as it would have', async () => {
    const flaky = await receiver((n) => n <= 2);
    const down = await receiver(() => true);
    const [retried, refused] = await Promise.all(
      [flaky, down].map((r) => startRun(fixture.stack, 'cleanup', { dryRun: true, notify: { webhook: r.url } })),
    );
    const [retriedRun, refusedRun] = await Promise.all([waitForRun(fixture.stack, retried!), waitForRun(fixture.stack, refused!, undefined, 120_000)]);
    assert.equal(retriedRun.status, 'success');
    assert.equal(refusedRun.status, 'success', 'a notification failing never fails the run');

    assert.deepEqual(flaky.received.map((r) => [r.answered, r.verified]), [
      [500, true],
      [500, true],
      [204, true],
    ]);
    assert.equal(new Set(flaky.received.map((r) => r.id)).size, 1, 'one webhook-id across the attempts');
    const [delivered] = (await notifications(retried!)).deliveries;
    assert.deepEqual([delivered!.status, delivered!.attempts, delivered!.attemptLog.map((a) => a.status)], ['delivered', 3, [500, 500, 204]]);

    assert.equal(down.received.length, NOTIFY_ATTEMPTS);
    const failed = await notifications(refused!);
    assert.deepEqual(failed.counts, { pending: 0, delivered: 0, failed: 1 });
    assert.deepEqual([failed.deliveries[0]!.status, failed.deliveries[0]!.attempts, failed.deliveries[0]!.attemptLog.at(-1)!.error], ['failed', NOTIFY_ATTEMPTS, 'HTTP 500']);
    assert.deepEqual((await notifications(refused!, '?status=failed')).deliveries.length, 1);
  });

  it('a pipeline and its steps report their own ends; the delivery log pages; an unknown run is a 404', async () => {
    const p = uniqueId('pipe');
    const ops = `${p}.ops@example.com`;
    const runId = await startRun(fixture.stack, 'pipeline', {
      steps: [{ name: 'tidy', kind: 'cleanup', params: { dryRun: true, notify: { webhook: hooks.url } } }],
      notify: { webhook: hooks.url, email: [ops] },
    });
    assert.equal((await waitForRun(fixture.stack, runId)).status, 'success');
    assert.deepEqual(hooks.received.filter((r) => r.body.data.runId === runId).map((r) => [r.type, r.body.data.kind]), [['run.success', 'pipeline']]);
    assert.deepEqual(hooks.received.filter((r) => r.body.data.runId === `${runId}.tidy`).map((r) => [r.type, r.body.data.kind]), [['run.success', 'cleanup']]);
    assert.equal((await mailTo(ops)).length, 1);

    const first = await notifications(runId, '?limit=1');
    assert.equal(first.deliveries.length, 1);
    assert.ok(first.next);
    const second = await notifications(runId, first.next.slice(first.next.indexOf('?')));
    assert.equal(second.deliveries.length, 1);
    assert.notEqual(second.deliveries[0]!.id, first.deliveries[0]!.id);

    assert.equal((await fixture.stack.app.inject({ method: 'GET', url: '/runs/no-such-run/notifications' })).statusCode, 404);
  });

  it('without WEBHOOK_SECRET or SMTP_URL, deliveries fail at once, saying what to set', async () => {
    const runId = uniqueId('unconfigured');
    const run = { id: runId, execution: uniqueId('unconfigured-exec') };
    const pool = fixture.stack.pool;
    const end = { runId, kind: 'import', status: 'success' as const, counts: { processed: 1, succeeded: 1, failed: 0, skipped: 0 }, errorCount: 0, startedAt: '2026-11-30T00:00:00Z', endedAt: '2026-11-30T00:01:00Z' };
    await notificationQueries.enqueue(pool, run, runEndDeliveries({ on: ['success'], webhook: hooks.url, email: ['ops@example.com'] }, end, runId));
    const from = fixture.stack.config.email.from;
    const deliverer = createDeliverer({ pool, mailer: createMailer({ smtpUrl: undefined, from }), webhookSecret: undefined, emailFrom: from });
    assert.deepEqual(await deliverer.deliverPending(run.execution, { final: false }), { delivered: 0, failed: 2, pending: 0 });
    const log = await notificationQueries.list(pool, run.execution, { limit: 10 });
    assert.deepEqual(log.map((d) => [d.channel, d.status, d.attempts, d.attemptLog[0]!.error]).sort(), [
      ['email', 'failed', 1, 'no SMTP server is configured (set SMTP_URL)'],
      ['webhook', 'failed', 1, 'WEBHOOK_SECRET is not set: webhooks cannot be signed'],
    ]);
    assert.equal(hooks.received.filter((r) => r.body.data.runId === runId).length, 0, 'nothing unsigned was sent');
  });
});
