import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { customers, usageEvents } from '../../src/datasets';
import { jobKinds } from '../../src/jobs';
import { bulkUpdateParamsSchema } from '../../src/jobs/bulk-update';
import { cleanupParamsSchema } from '../../src/jobs/cleanup';
import { importParamsSchema } from '../../src/jobs/import';
import { invoicingParamsSchema, periodRange, previousMonth } from '../../src/jobs/invoicing';
import { notifySchema, overThreshold } from '../../src/jobs/notify';

const issues = (result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  result.success ? [] : result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

describe('invoicing params', () => {
  it('the default month is the one before the scheduled (or start) time, in UTC', () => {
    assert.equal(previousMonth(new Date('2026-11-01T03:00:00Z')), '2026-10');
    assert.equal(previousMonth(new Date('2027-01-01T03:00:00Z')), '2026-12');
    assert.equal(previousMonth(new Date('2026-03-31T23:59:59Z')), '2026-02');
  });

  it("a month's range is its first instant up to the next month's", () => {
    assert.deepEqual(periodRange('2026-12'), { from: '2026-12-01T00:00:00.000Z', to: '2027-01-01T00:00:00.000Z' });
    assert.deepEqual(periodRange('2028-02'), { from: '2028-02-01T00:00:00.000Z', to: '2028-03-01T00:00:00.000Z' });
  });

  it('accepts a month, a customer filter, a tax rate and the approval options', () => {
    const parsed = invoicingParamsSchema.parse({ period: '2026-10', where: { field: 'country', op: 'eq', value: 'France' }, taxRate: 0.2, dryRun: true });
    assert.equal(parsed.taxRate, '0.2');
    assert.equal(parsed.dueDays, 30);
    assert.equal(parsed.requiresConfirmation, false);
    assert.equal(jobKinds.invoicing.schema, invoicingParamsSchema);
  });

  it('refuses unknown keys, bad months, rates and filters, naming the field', () => {
    assert.deepEqual(issues(invoicingParamsSchema.safeParse({ periode: '2026-10' })), [': Unrecognized key: "periode"']);
    assert.deepEqual(issues(invoicingParamsSchema.safeParse({ period: '2026-13' })), ['period: must be a month as YYYY-MM, such as 2026-10']);
    assert.match(issues(invoicingParamsSchema.safeParse({ taxRate: 1.5 }))[0]!, /^taxRate: must be a fraction between 0 and 1/);
    assert.match(issues(invoicingParamsSchema.safeParse({ taxRate: '0.1234567' }))[0]!, /^taxRate: /);
    assert.match(issues(invoicingParamsSchema.safeParse({ where: { field: 'nope', op: 'eq', value: 1 } }))[0]!, /^where\.field: must be a column of customers/);
  });
});

describe('notify', () => {
  it('takes emails, a webhook, the outcomes to report and an error threshold; every kind accepts it', () => {
    const notify = { on: ['failed', 'partial'], email: ['ops@example.com'], webhook: 'https://hooks.example.com/batchflow', errorThreshold: { rate: 0.05 } };
    assert.deepEqual(notifySchema.parse(notify), notify);
    assert.deepEqual(notifySchema.parse({ webhook: 'http://127.0.0.1:9/x' }).on, ['success', 'partial', 'failed', 'cancelled']);
    for (const [kind, params] of [
      ['import', { source: '/tmp/x.csv', dataset: 'users' }],
      ['bulk-update', { dataset: 'users', where: { field: 'id', op: 'not_null' }, set: { status: 'active' } }],
      ['cleanup', {}],
      ['custom', { step: 'validate_data', dataset: 'users' }],
      ['pipeline', { steps: [{ name: 'a', kind: 'cleanup', params: { notify } }] }],
      ['invoicing', {}],
    ] as const) {
      const parsed = jobKinds[kind].schema.safeParse({ ...params, notify });
      assert.ok(parsed.success, `${kind}: ${JSON.stringify(parsed.error?.issues)}`);
    }
  });

  it('refuses a notify with nowhere to send, a non-http URL or an unknown key', () => {
    assert.deepEqual(issues(notifySchema.safeParse({ on: ['failed'] })), ['webhook: give email addresses, a webhook URL or both']);
    assert.deepEqual(issues(notifySchema.safeParse({ webhook: 'ftp://example.com/x' })), ['webhook: must be an http or https URL']);
    assert.deepEqual(issues(notifySchema.safeParse({ webhook: 'https://example.com/x', retries: 3 })), [': Unrecognized key: "retries"']);
    assert.deepEqual(issues(notifySchema.safeParse({ email: ['not-an-address'] })), ['email.0: must be an email address']);
  });

  it('alerts when rejected rows pass the count or the rate', () => {
    assert.equal(overThreshold(undefined, { processed: 10, failed: 10 }), false);
    assert.equal(overThreshold({ count: 2 }, { processed: 10, failed: 2 }), false);
    assert.equal(overThreshold({ count: 2 }, { processed: 10, failed: 3 }), true);
    assert.equal(overThreshold({ rate: 0.2 }, { processed: 10, failed: 2 }), false);
    assert.equal(overThreshold({ rate: 0.2 }, { processed: 10, failed: 3 }), true);
    assert.equal(overThreshold({ rate: 0 }, { processed: 0, failed: 0 }), false);
  });
});

describe('billing datasets', () => {
  it('keep usage quantities and prices as exact decimal text', () => {
    const quantity = usageEvents.columns.quantity.schema;
    assert.equal(quantity.parse(' 12.5 '), '12.5');
    assert.equal(quantity.parse(0.0125), '0.0125');
    assert.equal(quantity.parse('12345678901234.123456'), '12345678901234.123456', 'more digits than a double holds, unchanged');
    for (const bad of ['1e3', '-1', '1.1234567', '123456789012345', 'x']) assert.equal(quantity.safeParse(bad).success, false, bad);
  });

  it('take customers without an email, and currencies upper-cased', () => {
    assert.equal(customers.columns.email.schema.parse(undefined), undefined);
    assert.equal(customers.columns.email.schema.parse(' Ada@Example.COM '), 'ada@example.com');
    assert.equal(customers.columns.currency.schema.parse(undefined), 'EUR');
    assert.equal(customers.columns.currency.schema.parse('usd'), 'USD');
    assert.equal(customers.columns.currency.schema.safeParse('EURO').success, false);
  });

  it('customers and usage import; invoices and their lines are written by invoicing only', () => {
    assert.ok(importParamsSchema.safeParse({ source: '/tmp/c.csv', dataset: 'customers' }).success);
    assert.ok(importParamsSchema.safeParse({ source: '/tmp/u.csv', dataset: 'usage_events' }).success);
    for (const dataset of ['invoices', 'invoice_lines']) {
      assert.match(issues(importParamsSchema.safeParse({ source: '/tmp/i.csv', dataset }))[0]!, /^dataset: /);
      assert.match(issues(bulkUpdateParamsSchema.safeParse({ dataset, where: { field: 'id', op: 'not_null' }, set: { status: 'sent' } }))[0]!, /^dataset: /);
      assert.match(issues(cleanupParamsSchema.safeParse({ rules: [{ name: 'x', dataset, where: { field: 'id', op: 'not_null' } }] }))[0]!, /^rules\.0/);
    }
  });
});
