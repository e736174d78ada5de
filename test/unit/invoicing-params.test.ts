import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobKinds, type JobKind, type JobKindName } from '../../src/jobs';
import { invoicingParamsSchema, periodRange, previousMonth } from '../../src/jobs/invoicing';
import { notifySchema, overThreshold } from '../../src/jobs/notify';
import { column, shipped } from '../helpers/datasets';

const issues = (result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  result.success ? [] : result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

/** A kind's params as the API holds them before a run starts: the schema's shape, then its check against the shipped datasets. */
function problems(kind: JobKindName, params: object): string[] {
  const job = jobKinds[kind] as JobKind;
  const parsed = job.schema.safeParse(params);
  if (!parsed.success) return issues(parsed);
  return job.check(parsed.data, shipped).map((i) => `${i.path.join('.')}: ${i.message}`);
}
const customers = shipped.get('customers')!;
const usageEvents = shipped.get('usage_events')!;

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
    const parsed = invoicingParamsSchema.parse({ period: '2026-10', where: { field: 'country', op: 'eq', value: 'France' }, taxRate: '0.2', dryRun: true });
    assert.equal(parsed.taxRate, '0.2');
    assert.equal(parsed.dueDays, 30);
    assert.equal(parsed.requiresConfirmation, false);
    assert.equal(jobKinds.invoicing.schema, invoicingParamsSchema);
  });

  it('refuses unknown keys (suggesting the one meant), bad months, rates and filters, naming the field', () => {
    assert.deepEqual(issues(invoicingParamsSchema.safeParse({ periode: '2026-10' })), [': Unrecognized key: "periode"; did you mean "period"?']);
    assert.deepEqual(issues(invoicingParamsSchema.safeParse({ period: '2026-13' })), ['period: must be a month as YYYY-MM, such as 2026-10']);
    assert.match(issues(invoicingParamsSchema.safeParse({ taxRate: '1.5' }))[0]!, /^taxRate: must be a fraction between 0 and 1/);
    assert.deepEqual(issues(invoicingParamsSchema.safeParse({ taxRate: 0.2 })), ['taxRate: must be a fraction as text, such as "0.2" for 20 %']);
    assert.match(issues(invoicingParamsSchema.safeParse({ taxRate: '0.1234567' }))[0]!, /^taxRate: /);
    assert.match(problems('invoicing', { where: { field: 'nope', op: 'eq', value: 1 } })[0]!, /^where\.field: must be a column of customers/);
    assert.deepEqual(problems('invoicing', { where: { field: 'country', op: 'eq', value: 'France' } }), []);
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
    assert.deepEqual(issues(notifySchema.safeParse({ webhook: 'https://example.com/x', retries: 3 })), [': Unrecognized key: "retries" (known: on, email, webhook, errorThreshold)']);
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
    const quantity = column(usageEvents, 'quantity').schema;
    assert.equal(quantity.parse(' 12.5 '), '12.5');
    assert.equal(quantity.parse(0.0125), '0.0125');
    assert.equal(quantity.parse('12345678901234.123456'), '12345678901234.123456', 'more digits than a double holds, unchanged');
    for (const bad of ['1e3', '-1', '1.1234567', '123456789012345', 'x']) assert.equal(quantity.safeParse(bad).success, false, bad);
  });

  it('take customers without an email, and currencies upper-cased', () => {
    const [email, currency] = [column(customers, 'email').schema, column(customers, 'currency')];
    assert.equal(email.parse(undefined), undefined);
    assert.equal(email.parse(' Ada@Example.COM '), 'ada@example.com');
    assert.equal(currency.schema.parse(undefined), 'EUR');
    assert.equal(currency.quick!(undefined), 'EUR', 'the quick path gives the default too');
    assert.equal(currency.schema.parse('usd'), 'USD');
    assert.equal(currency.schema.safeParse('EURO').success, false);
  });

  it('customers and usage import; invoices and their lines are written by invoicing only (writtenBy), read by exports and dedupe reports', () => {
    assert.deepEqual(problems('import', { source: '/tmp/c.csv', dataset: 'customers' }), []);
    assert.deepEqual(problems('import', { source: '/tmp/u.csv', dataset: 'usage_events' }), []);
    const only = (dataset: string) => new RegExp(`"${dataset}" is written by invoicing runs only`);
    for (const dataset of ['invoices', 'invoice_lines']) {
      assert.equal(shipped.get(dataset)!.writtenBy, 'invoicing');
      assert.match(problems('import', { source: '/tmp/i.csv', dataset })[0]!, new RegExp(`^dataset: ${only(dataset).source}`));
      assert.match(problems('bulk-update', { dataset, where: { field: 'id', op: 'not_null' }, set: { metric: 'x' } })[0]!, new RegExp(`^dataset: ${only(dataset).source}`));
      assert.match(problems('cleanup', { rules: [{ name: 'x', dataset, where: { field: 'id', op: 'not_null' } }] })[0]!, new RegExp(`^rules\\.0\\.dataset: ${only(dataset).source}`));
      const exact = [dataset === 'invoices' ? 'number' : 'metric'];
      assert.match(problems('dedupe', { dataset, exact, merge: {} }).join('; '), new RegExp(`^merge: ${only(dataset).source}[^;]*$`));
      assert.deepEqual(problems('export', { dataset }), []);
    }
    assert.deepEqual(problems('dedupe', { dataset: 'invoices', exact: ['number'] }), [], 'finding duplicates only reads');
  });
});
